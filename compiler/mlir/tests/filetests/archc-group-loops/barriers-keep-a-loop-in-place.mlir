// RUN: archc-group-loops
// The third loop stays after the [8] loop in each function:
// - @view: it reads a view of %y, which the [8] loop writes (and the view is defined in
//   between);
// - @call: a call between may write %w, which it reads;
// - @cast: it reads a value defined in between.
module {
  func.func private @use4(memref<4xf32>)
  func.func @view(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>) {
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
    %yv = memref.subview %y[0] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1]>>
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %v = memref.load %yv[%i] : memref<4xf32, strided<[1]>>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }
    return
  }
  func.func @call(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>, %w: memref<4xf32>) {
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
    func.call @use4(%w) : (memref<4xf32>) -> ()
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %v = memref.load %w[%i] : memref<4xf32>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }
    return
  }
  func.func @cast(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>, %w: memref<4xf32>) {
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
    %w2 = memref.cast %w : memref<4xf32> to memref<?xf32>
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %v = memref.load %w2[%i] : memref<?xf32>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }
    return
  }
}
