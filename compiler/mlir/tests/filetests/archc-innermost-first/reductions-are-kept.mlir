// RUN: archc-innermost-first
// A two-dimensional loop with a reduction: dimensions reversed, its initial value, result
// and reduction body kept. A one-dimensional loop is unchanged.
module {
  func.func @f(%m: memref<4x6xf32>, %r: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c6 = arith.constant 6 : index
    %zero = arith.constant 0.000000e+00 : f32
    %sum = scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c6) step (%c1, %c1) init (%zero) -> f32 {
      %0 = memref.load %m[%i, %j] : memref<4x6xf32>
      scf.reduce(%0 : f32) {
      ^bb0(%x: f32, %y: f32):
        %1 = arith.addf %x, %y : f32
        scf.reduce.return %1 : f32
      }
    }
    memref.store %sum, %r[] : memref<f32>
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %zero, %m[%i, %c0] : memref<4x6xf32>
      scf.reduce
    }
    return
  }
}
