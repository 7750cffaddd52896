// RUN: archc-route-copies
// A copy into a strided view: both operands cast to `memref<*xf32>`, one call, and one
// declaration at the start of the module.
#map = affine_map<(d0) -> (d0)>
module {
  func.func @f(%a: memref<2x3xf32>, %b: memref<2x3xf32, strided<[4, 1], offset: ?>>) {
    memref.copy %a, %b : memref<2x3xf32> to memref<2x3xf32, strided<[4, 1], offset: ?>>
    return
  }
}
