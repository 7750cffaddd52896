// RUN: archc-flatten-parallel-loops
// A qualifying loop nested in a one-thread wrapper loop (how host compute reaches a
// kernel) is flattened inside it; the wrapper (one dimension) stays.
module {
  func.func @f(%a: memref<4x5xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c5 = arith.constant 5 : index
    scf.parallel (%w) = (%c0) to (%c1) step (%c1) {
      scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c5) step (%c1, %c1) {
        %0 = memref.load %a[%i, %j] : memref<4x5xf32>
        %1 = arith.addf %0, %0 : f32
        memref.store %1, %a[%i, %j] : memref<4x5xf32>
        scf.reduce
      }
      scf.reduce
    }
    return
  }
}
