// RUN: archc-unmark-distinct
// Every function's op goes, including one inside a loop body and one over an allocation.
module {
  func.func @f(%a: memref<4xf32>, %b: memref<4xf32>) {
    %0:2 = memref.distinct_objects %a, %b : memref<4xf32>, memref<4xf32>
    memref.copy %0#0, %0#1 : memref<4xf32> to memref<4xf32>
    return
  }
  func.func @g(%a: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %t = memref.alloc() : memref<4xf32>
    scf.for %i = %c0 to %c4 step %c1 {
      %0:2 = memref.distinct_objects %a, %t : memref<4xf32>, memref<4xf32>
      %1 = memref.load %0#0[%i] : memref<4xf32>
      memref.store %1, %0#1[%i] : memref<4xf32>
    }
    memref.dealloc %t : memref<4xf32>
    return
  }
}
