//! The runtime's options: which device CUDA starts on, where cuBLAS is looked for, and
//! whether matrix products and strided copies run on the host instead ([`CudaOptions`]).
//!
//! Contract:
//! - The runtime reads no environment variable: its user (the `archc` CLI, which maps
//!   `ARCHC_CUDA_DEVICE` and `--device`, `ARCHC_CUBLAS_DIR`, `ARCHC_GPU_HOST_GEMM` and
//!   `ARCHC_GPU_HOST_COPY` to these fields) calls [`configure`] once, before CUDA starts.
//! - The options are process-wide and fixed once read: the runtime's deep call sites (the
//!   `mgpu*` ABI, the products and copies that generated code calls) take no arguments
//!   beyond their C signatures. The first read without [`configure`] fixes the defaults
//!   (device 0, the standard cuBLAS search, everything on the GPU); [`configure`] then
//!   refuses other options rather than leaving them unused.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::CudaError;

/// The runtime's options (see the module doc); `Default` is device 0, the standard cuBLAS
/// search, and products and copies on the GPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CudaOptions {
    /// The device CUDA starts on; `None`: device 0.
    pub device: Option<DeviceChoice>,
    /// A folder searched for the newest `libcublas.so*` before the standard folders (after
    /// the loader's own search).
    pub cublas_dir: Option<PathBuf>,
    /// Matrix products on the host (an exact loop) instead of cuBLAS, for comparison.
    pub host_gemm: bool,
    /// `memrefCopy` on the host instead of the driver, for comparison.
    pub host_copy: bool,
}

/// A device asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceChoice {
    /// Its ordinal; `None` for a setting that is not a number, refused when CUDA starts like
    /// an ordinal of no device.
    pub index: Option<i32>,
    /// How it was asked for, named in that error: `ARCHC_CUDA_DEVICE=7`, `--device cuda:7`.
    pub setting: String,
}

impl DeviceChoice {
    /// Device `index`, asked for as `setting`.
    pub fn new(index: Option<i32>, setting: impl Into<String>) -> DeviceChoice {
        DeviceChoice { index, setting: setting.into() }
    }
}

static OPTIONS: OnceLock<CudaOptions> = OnceLock::new();

/// Sets the process's options; call it before anything starts CUDA. Setting the same
/// options again is fine; other options once some are set (or the defaults were read)
/// are a [`CudaError::Config`].
pub fn configure(options: CudaOptions) -> Result<(), CudaError> {
    let set = OPTIONS.get_or_init(|| options.clone());
    if *set == options {
        return Ok(());
    }
    Err(CudaError::Config(format!(
        "the CUDA runtime's options are set already ({set:?}); they are set once, before CUDA starts"
    )))
}

/// The options in force: those set by [`configure`], else the defaults (fixed from then on).
pub fn options() -> &'static CudaOptions {
    OPTIONS.get_or_init(CudaOptions::default)
}
