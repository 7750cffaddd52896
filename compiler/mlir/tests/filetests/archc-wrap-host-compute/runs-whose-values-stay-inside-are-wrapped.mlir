// RUN: archc-wrap-host-compute
// The store, the reduction loop and the final load/trunc/store form one one-iteration
// loop, after the run's constant. `%3` feeds the parallel loop, so the load and negation
// that compute it stay on the host.
module {
  func.func @f(%arg0: memref<2x10xf32>, %arg1: memref<f32>, %arg2: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %alloc = memref.alloc() : memref<f64>
    %cst = arith.constant 0.000000e+00 : f64
    memref.store %cst, %alloc[] : memref<f64>
    scf.for %i = %c0 to %c2 step %c1 {
      %a = memref.load %arg0[%i, %c0] : memref<2x10xf32>
      %b = memref.load %alloc[] : memref<f64>
      %e = arith.extf %a : f32 to f64
      %s = arith.addf %b, %e : f64
      memref.store %s, %alloc[] : memref<f64>
    }
    %0 = memref.load %alloc[] : memref<f64>
    %1 = arith.truncf %0 : f64 to f32
    memref.store %1, %arg1[] : memref<f32>
    %2 = memref.load %arg2[] : memref<f32>
    %3 = arith.negf %2 : f32
    scf.parallel (%j) = (%c0) to (%c2) step (%c1) {
      memref.store %3, %arg1[] : memref<f32>
      scf.reduce
    }
    memref.dealloc %alloc : memref<f64>
    return
  }
}
