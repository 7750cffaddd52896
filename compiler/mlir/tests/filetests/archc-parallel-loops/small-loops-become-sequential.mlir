// RUN: archc-parallel-loops min-work=32769
// A 2-d elementwise loop and a row reduction, each 64 x 256 x 2 = 32768 operations:
// below min-work, so both become nested scf.for loops (no scf.parallel, no scf.reduce).
module {
  func.func @f(%arg0: memref<64x256xf32>, %arg1: memref<64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    scf.parallel (%i, %j) = (%c0, %c0) to (%c64, %c256) step (%c1, %c1) {
      %0 = memref.load %arg0[%i, %j] : memref<64x256xf32>
      memref.store %0, %arg0[%i, %j] : memref<64x256xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      scf.for %j = %c0 to %c256 step %c1 {
        %0 = memref.load %arg0[%i, %j] : memref<64x256xf32>
        memref.store %0, %arg1[%i] : memref<64xf32>
      }
      scf.reduce
    }
    return
  }
}
