// RUN: archc-parallel-loops min-work=32768
// A run-time row count (%n) counts as a typical batch of 64 rows: the 2-d loop holds the
// same work as with 64 constant rows and stays parallel over %n.
module {
  func.func @f(%arg0: memref<?x256xf32>, %arg1: memref<64xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c256) step (%c1, %c1) {
      %0 = memref.load %arg0[%i, %j] : memref<?x256xf32>
      memref.store %0, %arg0[%i, %j] : memref<?x256xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      scf.for %j = %c0 to %c256 step %c1 {
        %0 = memref.load %arg0[%i, %j] : memref<?x256xf32>
        memref.store %0, %arg1[%i] : memref<64xf32>
      }
      scf.reduce
    }
    return
  }
}
