// RUN: archc-mark-distinct
// @w is read twice (two names for one buffer): neither read is marked; the arguments
// and the allocation are.
module {
  memref.global "private" @w : memref<4xf32> = dense<0.0>
  func.func @e(%arg1: memref<4xf32>, %arg2: memref<4xf32>) {
    %0 = memref.get_global @w : memref<4xf32>
    %1 = memref.get_global @w : memref<4xf32>
    %c0 = arith.constant 0 : index
    %v = memref.load %arg1[%c0] : memref<4xf32>
    memref.store %v, %0[%c0] : memref<4xf32>
    memref.store %v, %1[%c0] : memref<4xf32>
    %alloc = memref.alloc() : memref<2xf32>
    memref.store %v, %alloc[%c0] : memref<2xf32>
    memref.store %v, %arg2[%c0] : memref<4xf32>
    memref.dealloc %alloc : memref<2xf32>
    return
  }
}
