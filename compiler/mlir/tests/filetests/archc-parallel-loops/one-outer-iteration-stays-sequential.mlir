// RUN: archc-parallel-loops min-work=4096
// One outer iteration never forks, whatever its work (4096 x 2 operations here, counted
// through the iter_args loop): the loop becomes sequential.
module {
  func.func @f(%a: memref<1x4096xf32>, %s: memref<1xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4096 = arith.constant 4096 : index
    %zero = arith.constant 0.0 : f32
    scf.parallel (%i) = (%c0) to (%c1) step (%c1) {
      %sum = scf.for %j = %c0 to %c4096 step %c1 iter_args(%acc = %zero) -> (f32) {
        %0 = memref.load %a[%i, %j] : memref<1x4096xf32>
        %1 = arith.addf %acc, %0 : f32
        scf.yield %1 : f32
      }
      memref.store %sum, %s[%i] : memref<1xf32>
      scf.reduce
    }
    return
  }
}
