// RUN: archc-mark-distinct
// One buffer (or none) is nothing to declare distinct: @one and @none are unchanged, and
// a declaration has no body to mark. A dynamic allocation (with an operand) is not moved
// or marked in @dynamic, whose two arguments are.
module {
  func.func private @ext(memref<4xf32>)
  func.func @one(%arg0: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %cst = arith.constant 1.0 : f32
    memref.store %cst, %arg0[%c0] : memref<4xf32>
    return
  }
  func.func @none(%arg0: f32) -> f32 {
    return %arg0 : f32
  }
  func.func @dynamic(%a: memref<4xf32>, %b: memref<4xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %d = memref.alloc(%n) : memref<?xf32>
    %v = memref.load %a[%c0] : memref<4xf32>
    memref.store %v, %d[%c0] : memref<?xf32>
    memref.store %v, %b[%c0] : memref<4xf32>
    memref.dealloc %d : memref<?xf32>
    return
  }
}
