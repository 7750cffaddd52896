// RUN: archc-parallel-loops min-work=1000
// A 3-d loop with enough work stays parallel over its first dimension only, with two
// scf.for loops inside; a scf.parallel nested in another becomes scf.for loops whatever
// its work (one fork per outer loop, never nested regions).
module {
  func.func @f(%a: memref<8x16x32xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c8, %c16, %c32) step (%c1, %c1, %c1) {
      %0 = memref.load %a[%i, %j, %k] : memref<8x16x32xf32>
      memref.store %0, %a[%i, %j, %k] : memref<8x16x32xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      scf.parallel (%j, %k) = (%c0, %c0) to (%c16, %c32) step (%c1, %c1) {
        %0 = memref.load %a[%i, %j, %k] : memref<8x16x32xf32>
        memref.store %0, %a[%i, %j, %k] : memref<8x16x32xf32>
        scf.reduce
      }
      scf.reduce
    }
    return
  }
}
