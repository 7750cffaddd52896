// RUN: archc-unmark-distinct
// A module without the op is unchanged.
module {
  func.func @f(%a: memref<4xf32>, %b: memref<4xf32>) {
    memref.copy %a, %b : memref<4xf32> to memref<4xf32>
    return
  }
}
