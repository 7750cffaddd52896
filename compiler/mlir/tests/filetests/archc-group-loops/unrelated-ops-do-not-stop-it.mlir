// RUN: archc-group-loops
// A call on a buffer the loop does not touch, and a loop over other bounds, do not stop
// it: the last loop moves up next to the first. A loop with a run-time bound (%n) has
// no constant bounds and stays where it is.
module {
  func.func private @use8(memref<8xf32>)
  func.func @f(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>, %w: memref<4xf32>, %n: index) {
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
    func.call @use8(%y) : (memref<8xf32>) -> ()
    scf.parallel (%i) = (%c0) to (%n) step (%c1) {
      memref.store %cst, %w[%i] : memref<4xf32>
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
