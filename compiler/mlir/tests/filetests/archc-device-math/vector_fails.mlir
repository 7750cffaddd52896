// RUN-FAIL: archc-device-math
// A math op on a vector in a kernel has no helper: the pass fails naming the op.
module attributes {gpu.container_module} {
  gpu.module @k {
    func.func @f(%v: vector<4xf32>) -> vector<4xf32> {
      %0 = math.exp %v : vector<4xf32>
      return %0 : vector<4xf32>
    }
  }
}
