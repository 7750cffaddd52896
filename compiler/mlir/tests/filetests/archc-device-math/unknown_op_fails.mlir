// RUN-FAIL: archc-device-math
// A math op the library does not implement fails the pass, naming the op.
module attributes {gpu.container_module} {
  gpu.module @k {
    func.func @f(%x: f64) -> f64 {
      %0 = math.sinh %x : f64
      return %0 : f64
    }
  }
}
