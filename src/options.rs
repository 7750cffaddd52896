//! The environment variables archc's libraries are configured by, read here and nowhere
//! else: the libraries (`archc-runtime`, `archc-cuda`, `archc-mlir`) read no environment
//! variable; the CLI maps these to their options once, at start-up ([`configure`], called
//! by `cli::Context::new`).
//!
//! | variable | option |
//! |---|---|
//! | `ARCHC_PAR_MIN=N`, `ARCHC_LLVM_OPT=0..3`, `ARCHC_MLIR_DUMP=DIR`, `CC` | `archc_mlir::jit::CpuOptions` ([`cpu_options`]) |
//! | `ARCHC_BLAS=off` | `archc_runtime::blas::disable` |
//! | `ARCHC_DATA=DIR` | `archc_runtime::data::sets::set_data_dir` |
//! | `ARCHC_CUDA_DEVICE=N` (`--device cuda:N` wins) | [`CudaOptions::device`] |
//! | `ARCHC_CUBLAS_DIR=DIR` | [`CudaOptions::cublas_dir`] |
//! | `ARCHC_GPU_HOST_GEMM=1`, `ARCHC_GPU_HOST_COPY=1` | [`CudaOptions::host_gemm`], [`CudaOptions::host_copy`] |
//! | `ARCHC_GPU_MEMORY=device\|managed`, `ARCHC_GPU_GRAPH=1\|0` | [`GpuOptions::memory`] |
//! | `ARCHC_GPU_ASYNC=1` | [`GpuOptions::async_launches`] |
//! | `ARCHC_GPU_PROFILE=1\|kernels` | [`GpuOptions::profile`] |
//!
//! Contract: the values mean what they meant when the libraries read them. A flag is on
//! when set to `1` only; an unset or empty `ARCHC_GPU_MEMORY` or `ARCHC_GPU_GRAPH` is the
//! default, and another value than those listed is an error, reported when a GPU backend
//! is set up ([`gpu_ready`]), not at start-up, so that commands which do not use the GPU
//! ignore it as before. An `ARCHC_CUDA_DEVICE` (or `--device`) that names no device is
//! refused when CUDA starts, naming the setting. Other unknown values (of
//! `ARCHC_GPU_PROFILE`, say) are ignored.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use archc_cuda::{CudaOptions, DeviceChoice};
use archc_mlir::exec::gpu::GpuOptions;

/// The CUDA runtime's options from the variables `var` gives (the environment), the
/// device `--device` chose winning over `ARCHC_CUDA_DEVICE`.
pub fn cuda_options(var: &dyn Fn(&str) -> Option<OsString>, device: Option<DeviceChoice>) -> CudaOptions {
    let flag = |name: &str| var(name).is_some_and(|value| value == "1");
    let from_env = || {
        let text = var("ARCHC_CUDA_DEVICE")?.into_string().ok()?;
        Some(DeviceChoice::new(text.trim().parse().ok(), format!("ARCHC_CUDA_DEVICE={text}")))
    };
    CudaOptions {
        device: device.or_else(from_env),
        cublas_dir: var("ARCHC_CUBLAS_DIR").map(PathBuf::from),
        host_gemm: flag("ARCHC_GPU_HOST_GEMM"),
        host_copy: flag("ARCHC_GPU_HOST_COPY"),
    }
}

/// The GPU backend's options from the variables `var` gives, with the CUDA runtime's
/// `cuda`; an error names a variable with a value it does not take.
pub fn gpu_options(var: &dyn Fn(&str) -> Option<OsString>, cuda: CudaOptions) -> Result<GpuOptions, String> {
    GpuOptions::from_vars(var, cuda).map_err(|e| e.to_string())
}

/// Why the GPU backend cannot be set up (a bad variable), kept from [`configure`].
static GPU_ERROR: OnceLock<String> = OnceLock::new();

/// The CPU backend's options from the variables `var` gives: `ARCHC_PAR_MIN=N` (loops of
/// at least N operations on every core; 0: one core), `ARCHC_LLVM_OPT=0..3`,
/// `ARCHC_MLIR_DUMP=DIR`, `CC` (the C compiler that links artifacts). Values that are not
/// numbers in range leave the default.
#[cfg(feature = "mlir")]
pub fn cpu_options(var: &dyn Fn(&str) -> Option<OsString>) -> archc_mlir::jit::CpuOptions {
    let text = |name: &str| var(name).and_then(|value| value.into_string().ok());
    let mut options = archc_mlir::jit::CpuOptions::default();
    match text("ARCHC_PAR_MIN").and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(0) => options.parallel_min_work = None,
        Some(n) => options.parallel_min_work = Some(n),
        None => {}
    }
    if let Some(level) = text("ARCHC_LLVM_OPT").and_then(|v| v.trim().parse::<usize>().ok()).filter(|&l| l <= 3) {
        options.llvm_opt = level;
    }
    options.dump = var("ARCHC_MLIR_DUMP").filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(cc) = text("CC").filter(|c| !c.trim().is_empty()) {
        options.cc = cc;
    }
    options
}

/// The host-side settings: `ARCHC_BLAS=off` (products by archc's own kernels) and
/// `ARCHC_DATA=DIR` (where data sets are read from).
fn configure_host(var: &dyn Fn(&str) -> Option<OsString>) {
    if var("ARCHC_BLAS").is_some_and(|v| v == "off") {
        archc_runtime::blas::disable();
    }
    if let Some(dir) = var("ARCHC_DATA").filter(|d| !d.is_empty()) {
        archc_runtime::data::sets::set_data_dir(PathBuf::from(dir));
    }
    #[cfg(feature = "mlir")]
    archc_mlir::jit::configure(cpu_options(var));
}

/// Sets `OPENBLAS_NUM_THREADS=1` unless it is set: OpenBLAS then starts no threads of its
/// own when it loads (archc splits products over its own threads and calls OpenBLAS on
/// one; its idle workers delayed archc's helpers).
///
/// # Safety
/// Changes the environment: call it before any other thread starts (at the top of
/// `main`).
pub unsafe fn openblas_one_thread() {
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
        // SAFETY: the caller's promise: no other thread reads the environment yet.
        unsafe { std::env::set_var("OPENBLAS_NUM_THREADS", "1") };
    }
}

/// Reads the environment and sets the libraries' options (see the module doc); `device`
/// is what `--device` chose. Call it once, at start-up, before anything starts CUDA.
pub fn configure(device: Option<DeviceChoice>) -> Result<(), String> {
    let env = |name: &str| std::env::var_os(name);
    configure_host(&env);
    let cuda = cuda_options(&env, device);
    archc_cuda::configure(cuda.clone())?;
    match gpu_options(&env, cuda) {
        Ok(options) => archc_mlir::exec::gpu::configure(options).map_err(|e| e.to_string()),
        Err(e) => {
            let _ = GPU_ERROR.set(e);
            Ok(())
        }
    }
}

/// `Ok` unless [`configure`] found a GPU variable with a bad value: then its error, for
/// the construction of a GPU backend.
pub fn gpu_ready() -> Result<(), String> {
    GPU_ERROR.get().map_or(Ok(()), |e| Err(e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use archc_mlir::exec::gpu::{Memory, ProfileMode};

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        let none = vars(&[]);
        let cuda = cuda_options(&none, None);
        assert_eq!(cuda, CudaOptions::default());
        assert_eq!(gpu_options(&none, cuda), Ok(GpuOptions::default()));
        let empty = vars(&[("ARCHC_GPU_MEMORY", ""), ("ARCHC_GPU_GRAPH", "")]);
        assert_eq!(gpu_options(&empty, CudaOptions::default()), Ok(GpuOptions::default()));
    }

    #[cfg(feature = "mlir")]
    #[test]
    fn the_cpu_variables_set_the_cpu_options() {
        use archc_mlir::jit::CpuOptions;
        assert_eq!(cpu_options(&vars(&[])), CpuOptions::default());
        let all =
            vars(&[("ARCHC_PAR_MIN", "4096"), ("ARCHC_LLVM_OPT", "0"), ("ARCHC_MLIR_DUMP", "/tmp/d"), ("CC", "clang")]);
        let want = CpuOptions {
            parallel_min_work: Some(4096),
            llvm_opt: 0,
            dump: Some("/tmp/d".into()),
            cc: "clang".into(),
            pass_timing: false,
        };
        assert_eq!(cpu_options(&all), want);
        assert_eq!(cpu_options(&vars(&[("ARCHC_PAR_MIN", "0")])).parallel_min_work, None, "0: one core");
        let bad = vars(&[("ARCHC_PAR_MIN", "many"), ("ARCHC_LLVM_OPT", "7"), ("ARCHC_MLIR_DUMP", "")]);
        assert_eq!(cpu_options(&bad), CpuOptions::default(), "values out of range leave the defaults");
    }

    #[test]
    fn every_variable_sets_its_option() {
        let all = vars(&[
            ("ARCHC_CUDA_DEVICE", " 1 "),
            ("ARCHC_CUBLAS_DIR", "/opt/cublas"),
            ("ARCHC_GPU_HOST_GEMM", "1"),
            ("ARCHC_GPU_HOST_COPY", "1"),
            ("ARCHC_GPU_MEMORY", "managed"),
            ("ARCHC_GPU_ASYNC", "1"),
            ("ARCHC_GPU_PROFILE", "kernels"),
        ]);
        let cuda = cuda_options(&all, None);
        let device = DeviceChoice::new(Some(1), "ARCHC_CUDA_DEVICE= 1 ");
        let want = CudaOptions {
            device: Some(device),
            cublas_dir: Some("/opt/cublas".into()),
            host_gemm: true,
            host_copy: true,
        };
        assert_eq!(cuda, want);
        let gpu = gpu_options(&all, cuda).unwrap();
        assert_eq!((gpu.memory, gpu.async_launches, gpu.profile), (Memory::Managed, true, ProfileMode::Kernels));
        let device = gpu_options(&vars(&[("ARCHC_GPU_GRAPH", "0"), ("ARCHC_GPU_PROFILE", "1")]), want).unwrap();
        assert_eq!((device.memory, device.profile), (Memory::Device { graphs: false }, ProfileMode::Runs));
        let off = vars(&[("ARCHC_GPU_HOST_GEMM", "yes"), ("ARCHC_GPU_ASYNC", "true"), ("ARCHC_GPU_PROFILE", "2")]);
        let gpu = gpu_options(&off, cuda_options(&off, None)).unwrap();
        assert_eq!(gpu, GpuOptions::default(), "flags are on at `1` only");
    }

    #[test]
    fn the_device_flag_wins_and_bad_devices_are_kept_for_cuda() {
        let env = vars(&[("ARCHC_CUDA_DEVICE", "abc")]);
        assert_eq!(cuda_options(&env, None).device, Some(DeviceChoice::new(None, "ARCHC_CUDA_DEVICE=abc")));
        let flag = DeviceChoice::new(Some(2), "--device cuda:2");
        assert_eq!(cuda_options(&env, Some(flag.clone())).device, Some(flag));
    }

    #[test]
    fn bad_values_are_named() {
        let graph = vars(&[("ARCHC_GPU_GRAPH", "yes")]);
        assert_eq!(
            gpu_options(&graph, CudaOptions::default()).unwrap_err(),
            "ARCHC_GPU_GRAPH=yes: expected `1` or `0`"
        );
        let memory = vars(&[("ARCHC_GPU_MEMORY", "host")]);
        assert_eq!(
            gpu_options(&memory, CudaOptions::default()).unwrap_err(),
            "ARCHC_GPU_MEMORY=host: expected `device` or `managed`"
        );
    }
}
