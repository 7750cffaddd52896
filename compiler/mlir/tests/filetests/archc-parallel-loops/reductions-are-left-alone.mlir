// RUN: archc-parallel-loops min-work=1
// A scf.parallel with a result (a reduction) is left as it is; the loop without one next
// to it is rewritten.
module {
  func.func @f(%a: memref<64xf32>) -> f32 {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %zero = arith.constant 0.0 : f32
    %r = scf.parallel (%i) = (%c0) to (%c64) step (%c1) init (%zero) -> f32 {
      %0 = memref.load %a[%i] : memref<64xf32>
      scf.reduce(%0 : f32) {
      ^bb0(%x: f32, %y: f32):
        %1 = arith.addf %x, %y : f32
        scf.reduce.return %1 : f32
      }
    }
    scf.parallel (%i, %j) = (%c0, %c0) to (%c64, %c64) step (%c1, %c1) {
      memref.store %r, %a[%j] : memref<64xf32>
      scf.reduce
    }
    return %r : f32
  }
}
