// RUN: archc-device-math
// f32 and f64 ops in one kernel: `absf` on f32 calls the f64 helper, which is defined
// once; each gpu.module gets the helpers it uses; host math stays.
module attributes {gpu.container_module} {
  func.func @host(%x: f32) -> f32 {
    %0 = math.absf %x : f32
    %1 = math.floor %0 : f32
    return %1 : f32
  }
  gpu.module @k1 {
    gpu.func @k1(%p: memref<4xf32>, %q: memref<4xf64>) kernel {
      %c0 = arith.constant 0 : index
      %a = memref.load %p[%c0] : memref<4xf32>
      %b = memref.load %q[%c0] : memref<4xf64>
      %0 = math.absf %a fastmath<fast> : f32
      %1 = math.absf %b : f64
      %2 = math.copysign %1, %b : f64
      memref.store %0, %p[%c0] : memref<4xf32>
      memref.store %2, %q[%c0] : memref<4xf64>
      gpu.return
    }
  }
  gpu.module @k2 {
    gpu.func @k2(%p: memref<4xf32>) kernel {
      %c0 = arith.constant 0 : index
      %a = memref.load %p[%c0] : memref<4xf32>
      %0 = math.copysign %a, %a : f32
      %1 = math.isnan %0 : f32
      %2 = arith.select %1, %a, %0 : f32
      memref.store %2, %p[%c0] : memref<4xf32>
      gpu.return
    }
  }
}
