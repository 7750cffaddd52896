// RUN: archc-carry-accumulators
// A max and its index (argmax's pair of buffers): both are carried, in the order of their
// stores, as two iter_args values of one loop.
module {
  func.func @f(%x: memref<4x8xf32>, %m: memref<4xf32>, %n: memref<4xi64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      scf.for %j = %c0 to %c8 step %c1 {
        %0 = memref.load %x[%i, %j] : memref<4x8xf32>
        %1 = memref.load %m[%i] : memref<4xf32>
        %2 = memref.load %n[%i] : memref<4xi64>
        %3 = arith.maximumf %1, %0 : f32
        %4 = arith.index_cast %j : index to i64
        %5 = arith.cmpf ogt, %0, %1 : f32
        %6 = arith.select %5, %4, %2 : i64
        memref.store %3, %m[%i] : memref<4xf32>
        memref.store %6, %n[%i] : memref<4xi64>
      }
      scf.reduce
    }
    return
  }
}
