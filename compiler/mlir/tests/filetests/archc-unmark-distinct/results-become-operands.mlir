// RUN: archc-unmark-distinct
// The op goes; each use of its results reads the buffer it stood for.
module {
  func.func @f(%a: memref<4xf32>, %b: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %0:2 = memref.distinct_objects %a, %b : memref<4xf32>, memref<4xf32>
    %1 = memref.load %0#0[%c0] : memref<4xf32>
    memref.store %1, %0#1[%c0] : memref<4xf32>
    return
  }
}
