// RUN: archc-wrap-host-compute
// In @f, `%2` is a call's argument, so `math.exp` stays on the host; then `%0` and `%1`
// are used after their shortened segment and stay too, and the store after them is
// wrapped alone. In @g, the `scf.if` and the ops around it form one loop, after the run's
// constants.
module {
  func.func private @use(f32)
  func.func @f(%a: memref<f32>, %b: memref<f32>) {
    %0 = memref.load %a[] : memref<f32>
    %1 = arith.negf %0 : f32
    %2 = math.exp %1 : f32
    memref.store %0, %b[] : memref<f32>
    func.call @use(%2) : (f32) -> ()
    return
  }
  func.func @g(%a: memref<4xf32>, %flag: i1) {
    %c0 = arith.constant 0 : index
    %0 = memref.load %a[%c0] : memref<4xf32>
    %cst = arith.constant 1.000000e+00 : f32
    %1 = scf.if %flag -> (f32) {
      %2 = arith.addf %0, %cst : f32
      scf.yield %2 : f32
    } else {
      scf.yield %0 : f32
    }
    %c3 = arith.constant 3 : index
    memref.store %1, %a[%c3] : memref<4xf32>
    return
  }
}
