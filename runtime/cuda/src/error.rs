//! The runtime's errors: [`CudaError`].
//!
//! Contract:
//! - Every fallible function of this crate returns a `CudaError`; its `Display` is one
//!   readable line (the driver call, the CUDA error's name and text, and what was being
//!   done), the same text the runtime reported before errors were typed.
//! - The variants separate what a caller branches on: no usable GPU at all ([`NoDriver`],
//!   [`DriverTooOld`], [`NoDevice`]) and bad options ([`NoSuchDevice`], [`Config`]), which
//!   are the user's to fix (see [`CudaError::is_user_error`]); a failed driver or cuBLAS
//!   call ([`Driver`], [`OutOfMemory`], [`Blas`]); cuBLAS being unavailable
//!   ([`NoBlas`]); a runtime path that would need the host to touch device memory
//!   ([`NeedsHostMemory`]: the caller can rerun with managed memory); a bad argument from
//!   generated code or a broken invariant ([`Internal`]).
//! - [`CudaError::context`] prefixes what was being done (`archc_matmul_f32: ...`). It
//!   keeps [`NeedsHostMemory`] at the top (the prefix joins its message), so callers can
//!   match that variant directly; any other error is wrapped in [`Context`], and
//!   [`CudaError::root`] finds the error inside.
//!
//! [`NoDriver`]: CudaError::NoDriver
//! [`DriverTooOld`]: CudaError::DriverTooOld
//! [`NoDevice`]: CudaError::NoDevice
//! [`NoSuchDevice`]: CudaError::NoSuchDevice
//! [`Config`]: CudaError::Config
//! [`Driver`]: CudaError::Driver
//! [`OutOfMemory`]: CudaError::OutOfMemory
//! [`Blas`]: CudaError::Blas
//! [`NoBlas`]: CudaError::NoBlas
//! [`NeedsHostMemory`]: CudaError::NeedsHostMemory
//! [`Internal`]: CudaError::Internal
//! [`Context`]: CudaError::Context

use std::fmt::Display;

/// What every [`CudaError::NeedsHostMemory`] message says.
const NEEDS_HOST_MEMORY: &str = "needs host-accessible memory";

/// An error of the CUDA runtime (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CudaError {
    /// The driver library (`libcuda.so.1`) cannot be opened: no NVIDIA driver here.
    #[error("no CUDA driver ({0}): mlir-gpu needs an NVIDIA GPU and its driver")]
    NoDriver(String),
    /// The driver lacks an entry point the runtime uses.
    #[error("CUDA driver too old: no {symbol} ({reason})")]
    DriverTooOld { symbol: &'static str, reason: String },
    /// The driver sees no device.
    #[error("CUDA: no device (cuDeviceGetCount = 0)")]
    NoDevice,
    /// The device asked for ([`crate::CudaOptions::device`]) is not one of the `count`
    /// devices; `setting` is how it was asked for (`ARCHC_CUDA_DEVICE=7`).
    #[error("CUDA: {setting} is not a device index (0..{count})")]
    NoSuchDevice { setting: String, count: i32 },
    /// A bad option, or options set too late.
    #[error("{0}")]
    Config(String),
    /// A driver call failed with `CUresult` `code` (named `name`, described by `text`);
    /// `detail` is appended as it is (` (64 bytes)`, `; JIT log: ...`).
    #[error("CUDA error {name} ({text}) in {call}{detail}")]
    Driver { call: &'static str, code: i32, name: String, text: String, detail: String },
    /// A driver call failed with `CUDA_ERROR_OUT_OF_MEMORY`; fields as for `Driver`.
    #[error("CUDA error {name} ({text}) in {call}{detail}")]
    OutOfMemory { call: &'static str, name: String, text: String, detail: String },
    /// A cuBLAS call failed with `cublasStatus_t` `status` (named `name`).
    #[error("cuBLAS error {name} ({status}) in {call}{detail}")]
    Blas { call: &'static str, status: i32, name: &'static str, detail: String },
    /// cuBLAS cannot be used (not found, not set up, or turned off): why, in a sentence.
    #[error("{0}")]
    NoBlas(String),
    /// A path that would have the host read or write device memory was not taken; the
    /// message says which (and contains `needs host-accessible memory`).
    #[error("{0}")]
    NeedsHostMemory(String),
    /// A bad argument from generated code, or a broken invariant of the runtime.
    #[error("{0}")]
    Internal(String),
    /// `inner`, with what was being done when it happened.
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<CudaError> },
}

impl CudaError {
    /// A [`CudaError::NeedsHostMemory`]: `"{what} needs host-accessible memory{after}"`.
    pub(crate) fn needs_host_memory(what: &str, after: &str) -> CudaError {
        CudaError::NeedsHostMemory(format!("{what} {NEEDS_HOST_MEMORY}{after}"))
    }

    /// This error with `context` (what was being done) before it (see the module doc).
    pub fn context(self, context: impl Display) -> CudaError {
        match self {
            CudaError::NeedsHostMemory(message) => CudaError::NeedsHostMemory(format!("{context}: {message}")),
            inner => CudaError::Context { context: context.to_string(), inner: Box::new(inner) },
        }
    }

    /// This error with ` ({detail})` after it: the size of a failed allocation, the kernel
    /// of a failed launch.
    pub fn with_detail(self, detail: impl Display) -> CudaError {
        self.append(&format!(" ({detail})"))
    }

    /// This error with `suffix` appended to its message.
    pub(crate) fn append(self, suffix: &str) -> CudaError {
        use CudaError::*;
        match self {
            Driver { call, code, name, text, detail } => Driver { call, code, name, text, detail: detail + suffix },
            OutOfMemory { call, name, text, detail } => OutOfMemory { call, name, text, detail: detail + suffix },
            Blas { call, status, name, detail } => Blas { call, status, name, detail: detail + suffix },
            Config(m) => Config(m + suffix),
            NoBlas(m) => NoBlas(m + suffix),
            NeedsHostMemory(m) => NeedsHostMemory(m + suffix),
            Internal(m) => Internal(m + suffix),
            Context { context, inner } => Context { context, inner: Box::new(inner.append(suffix)) },
            other => Internal(format!("{other}{suffix}")),
        }
    }

    /// The error inside any [`CudaError::Context`].
    pub fn root(&self) -> &CudaError {
        match self {
            CudaError::Context { inner, .. } => inner.root(),
            other => other,
        }
    }

    /// Whether there is no usable GPU here (no driver, a driver too old, no device,
    /// including `cuInit`'s `CUDA_ERROR_NO_DEVICE` and `CUDA_ERROR_INSUFFICIENT_DRIVER`).
    pub fn is_no_gpu(&self) -> bool {
        use crate::driver::{CUDA_ERROR_INSUFFICIENT_DRIVER, CUDA_ERROR_NO_DEVICE};
        match self.root() {
            CudaError::NoDriver(_) | CudaError::DriverTooOld { .. } | CudaError::NoDevice => true,
            CudaError::Driver { code, .. } => [CUDA_ERROR_NO_DEVICE, CUDA_ERROR_INSUFFICIENT_DRIVER].contains(code),
            _ => false,
        }
    }

    /// Whether the user's machine or options are at fault rather than the runtime or the
    /// compiled code: no usable GPU, or a bad option.
    pub fn is_user_error(&self) -> bool {
        self.is_no_gpu() || matches!(self.root(), CudaError::NoSuchDevice { .. } | CudaError::Config(_))
    }
}

/// For callers whose errors are still messages: the error's one line.
impl From<CudaError> for String {
    fn from(error: CudaError) -> String {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(detail: &str) -> CudaError {
        CudaError::Driver {
            call: "cuMemAlloc",
            code: 1,
            name: "CUDA_ERROR_INVALID_VALUE".into(),
            text: "invalid argument".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn messages_read_as_one_line() {
        assert_eq!(
            driver("").with_detail("64 bytes").to_string(),
            "CUDA error CUDA_ERROR_INVALID_VALUE (invalid argument) in cuMemAlloc (64 bytes)"
        );
        let e = driver("").context("archc_matmul_f32");
        assert_eq!(
            e.to_string(),
            "archc_matmul_f32: CUDA error CUDA_ERROR_INVALID_VALUE (invalid argument) in cuMemAlloc"
        );
        assert_eq!(e.root(), &driver(""));
        assert_eq!(
            CudaError::NoSuchDevice { setting: "ARCHC_CUDA_DEVICE=7".into(), count: 2 }.to_string(),
            "CUDA: ARCHC_CUDA_DEVICE=7 is not a device index (0..2)"
        );
    }

    #[test]
    fn needs_host_memory_stays_on_top_with_its_context() {
        let e = CudaError::needs_host_memory("a product on the host", "").context("archc_matmul_f32");
        assert_eq!(
            e,
            CudaError::NeedsHostMemory("archc_matmul_f32: a product on the host needs host-accessible memory".into())
        );
    }

    #[test]
    fn user_errors_are_the_machine_or_the_options() {
        assert!(CudaError::NoDevice.context("starting").is_no_gpu());
        assert!(CudaError::Config("bad".into()).is_user_error());
        assert!(!driver("").is_user_error());
        assert!(!CudaError::Internal("bad grid".into()).is_user_error());
    }
}
