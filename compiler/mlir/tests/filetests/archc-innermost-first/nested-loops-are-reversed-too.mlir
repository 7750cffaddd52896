// RUN: archc-innermost-first
// A two-dimensional loop inside another: both reversed.
module {
  func.func @f(%m: memref<3x5x7x9xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %c5 = arith.constant 5 : index
    %c7 = arith.constant 7 : index
    %c9 = arith.constant 9 : index
    scf.parallel (%i, %j) = (%c0, %c0) to (%c3, %c5) step (%c1, %c1) {
      scf.parallel (%k, %l) = (%c0, %c0) to (%c7, %c9) step (%c1, %c1) {
        %0 = memref.load %m[%i, %j, %k, %l] : memref<3x5x7x9xf32>
        %1 = arith.negf %0 : f32
        memref.store %1, %m[%i, %j, %k, %l] : memref<3x5x7x9xf32>
        scf.reduce
      }
      scf.reduce
    }
    return
  }
}
