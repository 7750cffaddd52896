// RUN: archc-route-copies
// Copies of four element types, one inside a loop and two of f32: one declaration per
// element type, in the order of their names (`complex<f32>` is `archc_copy_c64`).
module {
  func.func @f(%a: memref<4xf32>, %b: memref<4xf32>, %c: memref<2xcomplex<f32>>, %d: memref<2xcomplex<f32>>,
               %e: memref<3xi1>, %f: memref<3xi1>, %g: memref<?xindex>, %h: memref<?xindex>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    memref.copy %a, %b : memref<4xf32> to memref<4xf32>
    scf.for %i = %c0 to %c2 step %c1 {
      memref.copy %c, %d : memref<2xcomplex<f32>> to memref<2xcomplex<f32>>
    }
    memref.copy %g, %h : memref<?xindex> to memref<?xindex>
    memref.copy %e, %f : memref<3xi1> to memref<3xi1>
    memref.copy %b, %a : memref<4xf32> to memref<4xf32>
    return
  }
}
