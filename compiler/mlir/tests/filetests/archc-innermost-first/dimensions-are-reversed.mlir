// RUN: archc-innermost-first
// A three-dimensional loop: induction variables, bounds and steps reversed; the body
// still indexes each dimension by its own variable. The one-dimensional loop inside is
// left as it is.
module {
  func.func @f(%m: memref<2x16x8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    scf.parallel (%a, %b, %c) = (%c0, %c0, %c1) to (%c2, %c16, %c8) step (%c1, %c1, %c2) {
      %0 = memref.load %m[%a, %b, %c] : memref<2x16x8xf32>
      scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
        memref.store %0, %m[%a, %b, %i] : memref<2x16x8xf32>
        scf.reduce
      }
      scf.reduce
    }
    return
  }
}
