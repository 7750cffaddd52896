// RUN: archc-flatten-parallel-loops
// Left as they are: a first dimension that fills thread blocks (512 = 2 x 256), a
// one-dimensional loop, a run-time bound (%n), a lower bound that is not 0, and a loop
// with a reduction.
module {
  func.func @f(%a: memref<512x3xf32>, %n: index) -> f32 {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c3 = arith.constant 3 : index
    %c10 = arith.constant 10 : index
    %c512 = arith.constant 512 : index
    %zero = arith.constant 0.0 : f32
    scf.parallel (%i, %j) = (%c0, %c0) to (%c512, %c3) step (%c1, %c1) {
      %0 = memref.load %a[%i, %j] : memref<512x3xf32>
      memref.store %0, %a[%i, %j] : memref<512x3xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c10) step (%c1) {
      %0 = memref.load %a[%i, %c0] : memref<512x3xf32>
      memref.store %0, %a[%i, %c1] : memref<512x3xf32>
      scf.reduce
    }
    scf.parallel (%i, %j) = (%c0, %c0) to (%c10, %n) step (%c1, %c1) {
      %0 = memref.load %a[%i, %j] : memref<512x3xf32>
      memref.store %0, %a[%i, %j] : memref<512x3xf32>
      scf.reduce
    }
    scf.parallel (%i, %j) = (%c2, %c0) to (%c10, %c3) step (%c1, %c1) {
      %0 = memref.load %a[%i, %j] : memref<512x3xf32>
      memref.store %0, %a[%i, %j] : memref<512x3xf32>
      scf.reduce
    }
    %r = scf.parallel (%i, %j) = (%c0, %c0) to (%c10, %c3) step (%c1, %c1) init (%zero) -> f32 {
      %0 = memref.load %a[%i, %j] : memref<512x3xf32>
      scf.reduce(%0 : f32) {
      ^bb0(%x: f32, %y: f32):
        %1 = arith.addf %x, %y : f32
        scf.reduce.return %1 : f32
      }
    }
    return %r : f32
  }
}
