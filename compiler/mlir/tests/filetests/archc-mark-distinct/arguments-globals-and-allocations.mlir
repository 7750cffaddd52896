// RUN: archc-mark-distinct
// Two memref arguments, a global read once and an allocation after it (moved up to
// follow the global read): all four go through one memref.distinct_objects, whose
// results replace them below it. The i64 argument is not a buffer.
module {
  memref.global "private" @w : memref<4xf32> = dense<0.0>
  func.func @e(%arg0: i64, %arg1: memref<4xf32>, %arg2: memref<?x?xf32, strided<[?, ?], offset: ?>>) {
    %0 = memref.get_global @w : memref<4xf32>
    %c0 = arith.constant 0 : index
    %v = memref.load %arg1[%c0] : memref<4xf32>
    memref.store %v, %0[%c0] : memref<4xf32>
    %alloc = memref.alloc() {alignment = 64 : i64} : memref<2xf32>
    memref.store %v, %alloc[%c0] : memref<2xf32>
    %plain = memref.alloc() : memref<3xf32>
    memref.store %v, %plain[%c0] : memref<3xf32>
    memref.dealloc %plain : memref<3xf32>
    memref.dealloc %alloc : memref<2xf32>
    return
  }
}
