// RUN: archc-carry-accumulators
// Left alone or carried in part:
// - @moving: the index is the innermost induction variable (a different element each
//   iteration): nothing is carried;
// - @middle: the index is the middle level's variable: the inner loop alone carries it;
// - @twice: the buffer is stored twice: nothing is carried;
// - @imperfect: an op between the levels: the inner loop alone carries it.
module {
  func.func @moving(%x: memref<8x2xf32>, %acc: memref<2xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c8 = arith.constant 8 : index
    scf.for %j = %c0 to %c8 step %c1 {
      scf.for %k = %c0 to %c2 step %c1 {
        %0 = memref.load %x[%j, %k] : memref<8x2xf32>
        %1 = memref.load %acc[%k] : memref<2xf32>
        %2 = arith.addf %1, %0 : f32
        memref.store %2, %acc[%k] : memref<2xf32>
      }
    }
    return
  }
  func.func @middle(%x: memref<8x2xf32>, %acc: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c8 = arith.constant 8 : index
    scf.for %j = %c0 to %c8 step %c1 {
      scf.for %k = %c0 to %c2 step %c1 {
        %0 = memref.load %x[%j, %k] : memref<8x2xf32>
        %1 = memref.load %acc[%j] : memref<8xf32>
        %2 = arith.addf %1, %0 : f32
        memref.store %2, %acc[%j] : memref<8xf32>
      }
    }
    return
  }
  func.func @twice(%x: memref<8xf32>, %acc: memref<1xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    scf.for %j = %c0 to %c8 step %c1 {
      %0 = memref.load %x[%j] : memref<8xf32>
      %1 = memref.load %acc[%c0] : memref<1xf32>
      %2 = arith.addf %1, %0 : f32
      memref.store %2, %acc[%c0] : memref<1xf32>
      memref.store %0, %acc[%c0] : memref<1xf32>
    }
    return
  }
  func.func @imperfect(%x: memref<8x2xf32>, %acc: memref<1xf32>, %y: memref<8xindex>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c8 = arith.constant 8 : index
    scf.for %j = %c0 to %c8 step %c1 {
      %9 = arith.addi %j, %j : index
      memref.store %9, %y[%j] : memref<8xindex>
      scf.for %k = %c0 to %c2 step %c1 {
        %0 = memref.load %x[%j, %k] : memref<8x2xf32>
        %1 = memref.load %acc[%c0] : memref<1xf32>
        %2 = arith.addf %1, %0 : f32
        memref.store %2, %acc[%c0] : memref<1xf32>
      }
    }
    return
  }
}
