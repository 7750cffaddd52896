// RUN: archc-device-math
// `arith.remf` in a kernel calls C's fmod (f32 through the f64 helper); in host code it
// stays.
module attributes {gpu.container_module} {
  func.func @host(%x: f64, %y: f64) -> f64 {
    %0 = arith.remf %x, %y : f64
    return %0 : f64
  }
  gpu.module @rem {
    gpu.func @rem(%p: memref<4xf32>) kernel {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %a = memref.load %p[%c0] : memref<4xf32>
      %b = memref.load %p[%c1] : memref<4xf32>
      %0 = arith.remf %a, %b fastmath<contract> : f32
      memref.store %0, %p[%c0] : memref<4xf32>
      gpu.return
    }
  }
}
