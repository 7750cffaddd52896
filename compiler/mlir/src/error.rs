//! The errors of the MLIR backend: [`Error`], and [`ArtifactError`] for artifacts that
//! cannot be read, checked or loaded.
//!
//! Contract:
//! - Every fallible function of this crate outside `emit` and `runtime` returns an
//!   [`Error`] (the archive and manifest readers keep their own [`ArchiveError`] and
//!   [`ManifestError`], which an `Error` wraps). Its `Display` is the one readable message
//!   the backend gave before errors were typed, so the CLI prints what it printed.
//! - [`Error::kind`] says whose fault an error is. [`ErrorKind::User`]: a program, input,
//!   option, file or artifact the user gave is wrong (inputs of the wrong shape, an op or
//!   a size this target cannot lower, a refusal of compiled code at run time, an artifact
//!   built for another CPU or by another archc, a missing file or tool, no usable GPU).
//!   [`ErrorKind::Internal`]: archc's own bug (TIR the emitter finds malformed or lowers
//!   to values of other types than declared, emitted MLIR that does not parse or verify,
//!   a failed pass pipeline, LLVM translation, the JIT, or an ABI mismatch between
//!   what the emitter wrote and what the runner calls).
//! - The emitter's errors are [`EmitError`]s: where this crate calls it, they become
//!   [`Error::Emit`], whose kind is the emitter's ([`EmitError::is_internal`]), or
//!   [`Error::Input`] for its checks of input shapes.
//! - A failed archc pass keeps its own error inside [`Error::Pipeline`] (`pass`), which
//!   decides the pipeline error's kind: a kernel math op without a device implementation
//!   is the user's, though it fails a pipeline.

use crate::aot::archive::ArchiveError;
use crate::aot::manifest::ManifestError;
use crate::emit::EmitError;
use archc_cuda::CudaError;
use std::path::PathBuf;

/// A `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whose fault an error is (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's program, input, options, files or artifact.
    User,
    /// archc's own bug.
    Internal,
}

/// An error of the MLIR backend (see the module docs).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Error {
    // The user's.
    /// Inputs, parameter values or bindings that do not fit the compiled entry (count,
    /// dtype, shape).
    #[error("{0}")]
    Input(String),
    /// Resident state that is missing or does not fit.
    #[error("{0}")]
    State(String),
    /// The emitter cannot lower the function for this target (the function and
    /// instruction, e.g. an op or a size only known at run time it cannot lower): the
    /// user's, or archc's where [`EmitError::is_internal`] says so.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// An op or type the target has no implementation of (a kernel's math op without a
    /// device helper).
    #[error("{0}")]
    Unsupported(String),
    /// Compiled code refused its input at run time (an index out of range, a reduction
    /// over nothing), worded as the interpreter's error.
    #[error("{0}")]
    Refused(String),
    /// A bad option or setting: a CPU or GPU architecture name, a pass name or option, a
    /// GPU variable, options set twice.
    #[error("{0}")]
    Config(String),
    /// A file or folder that cannot be read, written or created; `what` says which
    /// (`cannot write m.archx`).
    #[error("{what}: {message}")]
    Io { what: String, message: String },
    /// An external tool (`opt`, `llc`, the C compiler) that cannot be started.
    #[error("cannot run {tool}: {message}")]
    NoTool { tool: String, message: String },
    /// An artifact that cannot be read, checked or loaded here.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A manifest or member name refused.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The CUDA runtime's error: the user's where [`Error::kind`] says so.
    #[error(transparent)]
    Gpu(#[from] CudaError),

    // archc's own.
    /// MLIR text that does not parse; `what` is `emitted MLIR`, `MLIR` or `input`.
    #[error("{what} does not parse:\n{diagnostics}")]
    Parse { what: &'static str, diagnostics: String },
    /// MLIR that parses but does not verify.
    #[error("{what} does not verify:\n{diagnostics}")]
    Verify { what: &'static str, diagnostics: String },
    /// A pipeline step that MLIR's pipeline parser refuses.
    #[error("pipeline `{pipeline}`: bad pass pipeline element `{element}`: {message}")]
    PipelineElement { pipeline: String, element: String, message: String },
    /// A pass pipeline that failed: MLIR's error and diagnostics, and the error of the
    /// archc pass that failed it, if one did (its kind is the pipeline error's).
    #[error("MLIR pass pipeline `{pipeline}` failed ({error}):\n{diagnostics}")]
    Pipeline { pipeline: String, error: String, diagnostics: String, pass: Option<Box<Error>> },
    /// An archc pass met IR it does not handle.
    #[error("{0}")]
    Pass(String),
    /// Translation to LLVM IR, or LLVM IR that does not parse or verify.
    #[error("{0}")]
    Translate(String),
    /// The JIT (MLIR's ExecutionEngine) could not compile or call the module.
    #[error("{0}")]
    Jit(String),
    /// Compiled code lacks what its runner calls (an entry point, a global), or has it in
    /// another form than the convention of [`crate::abi`].
    #[error("{0}")]
    Abi(String),
    /// An external tool that failed, with its error output.
    #[error("{tool} failed:\n{stderr}")]
    ToolFailed { tool: String, stderr: String },
    /// Another broken invariant of the backend.
    #[error("{0}")]
    Internal(String),
}

/// Why an artifact cannot be written, read, checked against its sources or loaded: the
/// user's (the artifact, or the options it was asked for, is wrong).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ArtifactError {
    /// The archive at `path` is refused (see `aot::archive`).
    #[error("{}: not a valid archc artifact: {error}", path.display())]
    Invalid { path: PathBuf, error: ArchiveError },
    /// The archive at `path` was written by an older or newer archc.
    #[error("{}: {error}", path.display())]
    OtherVersion { path: PathBuf, error: ManifestError },
    /// A source member that is not UTF-8.
    #[error("{}: not a valid archc artifact: source `{name}` is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf, name: String },
    /// The main source is not among the artifact's sources.
    #[error("the artifact has no source `{0}`")]
    NoSource(String),
    /// An artifact that could not be read back if written (why).
    #[error("cannot write this artifact: {0}")]
    Unwritable(String),
    /// The sources build a program with another hash.
    #[error(
        "the artifact's sources build a different program with this archc (built by another version?); rebuild it"
    )]
    OtherProgram,
    /// A function's signature in the manifest is not the one its sources give.
    #[error("the artifact's manifest does not match its sources: @{func} {what}; rebuild the artifact")]
    Mismatch { func: String, what: String },
    /// This machine cannot run the host code (built for another CPU).
    #[error("{0}")]
    Cpu(String),
    /// A function's object cannot be loaded, or lacks what the loader fills or calls.
    #[error("{0}")]
    Load(String),
}

impl Error {
    /// Whose fault the error is (see the module docs).
    pub fn kind(&self) -> ErrorKind {
        use Error::*;
        match self {
            Emit(e) if e.is_internal() => ErrorKind::Internal,
            Input(_) | State(_) | Emit(_) | Unsupported(_) | Refused(_) | Config(_) | Io { .. } | NoTool { .. } => {
                ErrorKind::User
            }
            Artifact(_) | Manifest(_) => ErrorKind::User,
            Gpu(e) if e.is_user_error() || matches!(e.root(), CudaError::OutOfMemory { .. }) => ErrorKind::User,
            Pipeline { pass: Some(pass), .. } => pass.kind(),
            Gpu(_) | Parse { .. } | Verify { .. } | PipelineElement { .. } | Pipeline { .. } | Pass(_) => {
                ErrorKind::Internal
            }
            Translate(_) | Jit(_) | Abi(_) | ToolFailed { .. } | Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether the error is archc's own bug rather than the user's.
    pub fn is_internal(&self) -> bool {
        self.kind() == ErrorKind::Internal
    }

    /// An [`Error::Io`]: `what` failed (`cannot write m.archx`) because of `e`.
    pub(crate) fn io(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
        Error::Io { what: what.into(), message: e.to_string() }
    }
}

/// For callers whose errors are still messages: the error's text.
impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aot::HostCpu;

    #[test]
    fn artifacts_for_another_cpu_are_the_users() {
        let e = HostCpu::X86Level(4).check(&["sse3"]).expect_err("lacks AVX-512");
        assert!(matches!(e, Error::Artifact(ArtifactError::Cpu(_))), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::User);
        assert!(e.to_string().starts_with("this artifact was built for x86-64-v4 (AVX-512); this CPU lacks"), "{e}");
        let e = HostCpu::named("skylake").expect_err("no such --cpu");
        assert!(!e.is_internal(), "{e}");
    }

    #[test]
    fn manifests_of_other_versions_and_bad_inputs_are_the_users() {
        let e: Error = crate::aot::manifest::parse("archx 2\ntarget cpu\n").expect_err("old").into();
        assert_eq!(e.kind(), ErrorKind::User);
        let sig = crate::aot::manifest::empty_sig();
        let e =
            crate::abi::output_tensors(&sig, &[&archc_runtime::Tensor::zeros(archc_compiler::tir::DType::F32, &[2])])
                .expect_err("one input too many");
        assert!(matches!(e, Error::Input(_)) && !e.is_internal(), "{e:?}");
        assert_eq!(e.to_string(), "expects 0 inputs, got 1");
    }

    #[test]
    fn emitter_errors_keep_their_kind_and_text() {
        use archc_compiler::tir::{parse::parse_program, DType};
        let text = "program P\nparam @w : f32[2] = zeros()\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  \
                    %1 = param() {name=\"v\"} : f32[2]\n  return %0\n}\n";
        let p = parse_program(text).expect("parses");
        let emit = |shape: Vec<usize>| crate::emit::emit_module(&p, "main", &[(DType::F32, shape)], None);
        let e: Error = emit(vec![3]).expect_err("reads an undeclared parameter").into();
        assert!(matches!(e, Error::Emit(_)) && e.is_internal(), "{e:?}");
        assert_eq!(e.to_string(), "in @main, %1 = param: no parameter @v");
        let e: Error = emit(vec![2, 3]).expect_err("an input of rank 2").into();
        assert_eq!(e.kind(), ErrorKind::User);
        assert_eq!(e.to_string(), "@main: input 0 is f32[2, 3], expected f32[B]");
        // The verifier lets a function without arguments name a size nothing binds.
        let text = "program P\nfunc @main() -> (f32[N] \"y\") {\n  %0 = const() {value=0.0} : f32[]\n  \
                    %1 = broadcast(%0) : f32[N]\n  return %1\n}\n";
        let p = parse_program(text).expect("parses");
        archc_compiler::tir::verify::verify(&p).expect("verifies");
        let e: Error = crate::emit::emit_module(&p, "main", &[], None).expect_err("N is unbound").into();
        assert_eq!(e.kind(), ErrorKind::User);
        assert_eq!(e.to_string(), "@main result: dim `N` has unbound symbol N");
    }

    #[test]
    fn gpu_errors_follow_the_runtime() {
        assert_eq!(Error::Gpu(CudaError::NoDevice).kind(), ErrorKind::User);
        assert_eq!(Error::Gpu(CudaError::Internal("bad grid".into())).kind(), ErrorKind::Internal);
    }

    #[cfg(feature = "llvm")]
    #[test]
    fn emitted_mlir_that_does_not_parse_is_internal() {
        let e = crate::jit::verify("func.func @f( {").expect_err("does not parse");
        assert!(matches!(e, Error::Parse { what: "MLIR", .. }), "{e:?}");
        assert!(e.is_internal());
        assert!(e.to_string().starts_with("MLIR does not parse:\n"), "{e}");
        let e = crate::passes::ArchcPass::parse("archc-bogus", &[]).expect_err("no such pass");
        assert_eq!(e.kind(), ErrorKind::User);
    }

    #[cfg(feature = "llvm")]
    #[test]
    fn a_pipeline_failed_by_an_unsupported_kernel_op_is_the_users() {
        let text = "module {\n  gpu.module @g {\n    func.func @f(%x: f32) {\n      %0 = math.sinh %x : f32\n      \
                    return\n    }\n  }\n}\n";
        let pass = crate::passes::ArchcPass::DeviceMath;
        let e = crate::passes::run_on_text(&pass, text).expect_err("no device sinh");
        assert!(matches!(&e, Error::Pipeline { pass: Some(p), .. } if matches!(**p, Error::Unsupported(_))), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::User);
        assert!(e.to_string().contains("`math.sinh` on f32: no device implementation"), "{e}");
        let e = crate::passes::run_on_text(&pass, "module {").expect_err("does not parse");
        assert!(e.is_internal(), "{e}");
    }
}
