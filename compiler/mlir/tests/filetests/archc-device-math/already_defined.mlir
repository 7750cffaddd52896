// RUN: archc-device-math
// A helper the gpu.module already defines (here a stand-in body) is kept and not defined
// again; only the missing ones are added. `ipowi` and `fpowi` pick helpers by their types.
module attributes {gpu.container_module} {
  gpu.module @k {
    gpu.func @k(%p: memref<4xf32>, %n: memref<4xi32>) kernel {
      %c0 = arith.constant 0 : index
      %a = memref.load %p[%c0] : memref<4xf32>
      %i = memref.load %n[%c0] : memref<4xi32>
      %0 = math.absf %a : f32
      %1 = math.ipowi %i, %i : i32
      memref.store %0, %p[%c0] : memref<4xf32>
      memref.store %1, %n[%c0] : memref<4xi32>
      gpu.return
    }
    func.func private @archc_dm_absf_f64(%x: f64) -> f64 {
      return %x : f64
    }
  }
}
