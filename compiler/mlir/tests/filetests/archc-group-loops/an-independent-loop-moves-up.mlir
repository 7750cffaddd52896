// RUN: archc-group-loops
// Loops over [4], [8], [4]: the third (reading %w, writing %z) is independent of the
// [8] loop and moves up next to the first; @g's third loop reads what the first wrote
// (%x) and still moves: whether they merge is for the fusion to judge.
module {
  func.func @f(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>, %w: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %cst = arith.constant 1.0 : f32
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %cst, %x[%i] : memref<4xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      memref.store %cst, %y[%i] : memref<8xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %v = memref.load %w[%i] : memref<4xf32>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }
    return
  }
  func.func @g(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %cst = arith.constant 1.0 : f32
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %cst, %x[%i] : memref<4xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      memref.store %cst, %y[%i] : memref<8xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %v = memref.load %x[%i] : memref<4xf32>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }
    return
  }
}
