// RUN: archc-flatten-parallel-loops
// A [10, 3, 256] loop (first dimension 10, not a multiple of 256 threads) becomes one
// loop over 7680 iterations; its body recovers the old indices, first dimension fastest.
module {
  func.func @f(%a: memref<10x3x256xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c10 = arith.constant 10 : index
    %c3 = arith.constant 3 : index
    %c256 = arith.constant 256 : index
    scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c10, %c3, %c256) step (%c1, %c1, %c1) {
      %0 = memref.load %a[%i, %j, %k] : memref<10x3x256xf32>
      memref.store %0, %a[%i, %j, %k] : memref<10x3x256xf32>
      scf.reduce
    }
    return
  }
}
