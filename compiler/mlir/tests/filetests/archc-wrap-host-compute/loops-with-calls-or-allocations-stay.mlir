// RUN: archc-wrap-host-compute
// A loop whose body allocates, or calls a function, is not host compute a kernel can run:
// the module is unchanged.
module {
  func.func private @g(memref<4xf32>)
  func.func @f(%m: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %i = %c0 to %c4 step %c1 {
      %a = memref.alloc() : memref<4xf32>
      memref.dealloc %a : memref<4xf32>
    }
    scf.for %i = %c0 to %c4 step %c1 {
      func.call @g(%m) : (memref<4xf32>) -> ()
    }
    return
  }
}
