// RUN: archc-carry-accumulators
// A row sum in f64 over a [8, 2] nest: %acc[%i] is loaded once before the nest, carried
// through both levels as an iter_args value, and stored once after.
module {
  func.func @f(%x: memref<4x8x2xf32>, %acc: memref<4xf64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %cst = arith.constant 0.0 : f64
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %cst, %acc[%i] : memref<4xf64>
      scf.for %j = %c0 to %c8 step %c1 {
        scf.for %k = %c0 to %c2 step %c1 {
          %0 = memref.load %x[%i, %j, %k] : memref<4x8x2xf32>
          %1 = memref.load %acc[%i] : memref<4xf64>
          %2 = arith.extf %0 : f32 to f64
          %3 = arith.addf %1, %2 : f64
          memref.store %3, %acc[%i] : memref<4xf64>
        }
      }
      scf.reduce
    }
    return
  }
}
