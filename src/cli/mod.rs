//! The commands of `archc` that have no module elsewhere, one module per command
//! (`check`, `build`, `run`, `train`, `eval`, `fmt`), and the steps they share.
//!
//! Contract: a command takes its parsed arguments and the [`Context`] of the global
//! flags; it prints results to stdout through [`stdout`] (a closed pipe ends the output
//! quietly), notes and diagnostics to stderr, and returns a [`Fail`]. [`on_worker`]
//! runs a command and turns its result into the exit code: 0 success, 1 user error
//! (the message printed), 2 internal error; an MLIR backend's error takes the code of
//! its kind ([`Fail::backend`]). No command reads the environment or exits the process.

/// `println!` for results: a closed pipe (`archc train ... | head`) ends the output
/// quietly instead of panicking; other write errors are user errors.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::stdout(&format!("{}\n", format_args!($($t)*)))?
    };
}

pub mod build;
pub mod build_artifact;
pub mod candidate;
pub mod check;
pub mod eval;
pub mod fmt;
pub mod program;
pub mod run;
pub mod select;
pub mod train;
pub mod train_block;

use std::process::ExitCode;

/// Stack of the thread that runs a command.
const STACK_BYTES: usize = 256 << 20;

/// A failure: user errors exit 1, internal ones 2.
pub enum Fail {
    /// The message to print (empty when diagnostics were printed already).
    User(String),
    Internal(String),
}

impl Fail {
    /// A one-line user error: `error: {e}`.
    pub fn user(e: impl std::fmt::Display) -> Fail {
        Fail::User(format!("error: {e}"))
    }

    /// An error of a run: archc's own bug where it says so (exit 2, `internal error: {e}`),
    /// else the user's (exit 1, `error: {e}`).
    pub fn run(e: archc_runtime::RunError) -> Fail {
        Fail::of_kind(e.is_internal(), e)
    }

    /// An error of a driver helper that ran a program (`crate::error::Error`): archc's own
    /// bug where its kind says so (exit 2), else the user's (exit 1).
    pub fn driver(e: crate::error::Error) -> Fail {
        Fail::of_kind(e.is_internal(), e)
    }

    /// `e` as archc's own bug (`internal`: exit 2) or the user's error (exit 1).
    pub fn of_kind(internal: bool, e: impl std::fmt::Display) -> Fail {
        match internal {
            true => Fail::Internal(e.to_string()),
            false => Fail::user(e),
        }
    }

    /// An error of the MLIR backend: archc's own bug where its kind says so (exit 2,
    /// `internal error: {e}`), else the user's (exit 1, `error: {e}`).
    pub fn backend(e: impl Into<archc_mlir::Error>) -> Fail {
        Fail::backend_in("", e)
    }

    /// [`Fail::backend`] of `e` met while doing `what` (`cannot compile @main`): the
    /// message is `{what}: {e}`.
    pub fn backend_in(what: &str, e: impl Into<archc_mlir::Error>) -> Fail {
        let e = e.into();
        let message = if what.is_empty() { e.to_string() } else { format!("{what}: {e}") };
        Fail::of_kind(e.is_internal(), message)
    }
}

/// The global flags every command sees.
pub struct Context {
    /// Colour diagnostics.
    pub color: bool,
    /// `--device`, which an artifact must agree with.
    pub device: Option<String>,
    /// `--max-memory` in bytes (`None`: no limit).
    pub max_memory: Option<u128>,
}

impl Context {
    /// Selects `device`, sets the GPU options from it and the environment
    /// ([`crate::options::configure`]) and reads `--max-memory`; `Err` is the message to
    /// print.
    pub fn new(color: bool, device: Option<String>, max_memory: Option<&str>) -> Result<Context, String> {
        crate::options::configure(crate::backend::select_device(device.as_deref())?)?;
        let max_memory = crate::memory::limit(max_memory)?;
        Ok(Context { color, device, max_memory })
    }

    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
}

/// Runs `cmd` on a thread with a large stack (MLIR's and LLVM's recursive passes over
/// large modules, a train step's GPU kernels, need more than a main thread's 8 MiB) and
/// returns its exit code, printing its error.
pub fn on_worker<F>(cmd: F) -> ExitCode
where
    F: FnOnce() -> Result<(), Fail> + Send + std::panic::UnwindSafe + 'static,
{
    let worker = std::thread::Builder::new()
        .name("archc".into())
        .stack_size(STACK_BYTES)
        .spawn(move || std::panic::catch_unwind(cmd));
    let r = match worker.map(|w| w.join()) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(Box::new("the worker thread died") as Box<dyn std::any::Any + Send>),
        Err(e) => Ok(Err(Fail::Internal(format!("cannot start the worker thread: {e}")))),
    };
    match r {
        Ok(r) => exit_code(r),
        Err(_) => ExitCode::from(2),
    }
}

/// The exit code of a command's result, its error printed.
fn exit_code(r: Result<(), Fail>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::User(msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(1)
        }
        Err(Fail::Internal(msg)) => {
            eprintln!("internal error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Writes to stdout; a closed pipe (`archc build ... | head`) is not an error.
pub fn stdout(text: &str) -> Result<(), Fail> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Fail::user(format!("cannot write to stdout: {e}"))),
        _ => Ok(()),
    }
}

/// `archc devices`: the CPU and the GPU archc finds here.
pub fn devices() -> Result<(), Fail> {
    out!("{}", crate::backend::devices_report());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{exit_code, Fail};
    use archc_mlir::emit::EmitError;
    use std::process::ExitCode;

    #[test]
    fn backend_errors_exit_by_whose_fault_they_are() {
        let parse = archc_mlir::Error::Parse { what: "emitted MLIR", diagnostics: "expected ')'".into() };
        let fail = Fail::backend(parse);
        assert!(matches!(&fail, Fail::Internal(m) if m == "emitted MLIR does not parse:\nexpected ')'"));
        assert_eq!(exit_code(Err(fail)), ExitCode::from(2));
        let malformed = EmitError::Malformed("vmap flags do not match its operands and results".into());
        let fail = Fail::backend_in("cannot compile @main", malformed.at("in @main, %3 = vmap"));
        let want = "cannot compile @main: in @main, %3 = vmap: vmap flags do not match its operands and results";
        assert!(matches!(&fail, Fail::Internal(m) if m == want));
        let dynamic = EmitError::Dynamic("size `Q` is not the size of an input axis".into()).at("@main");
        let fail = Fail::backend(dynamic);
        assert!(matches!(&fail, Fail::User(m) if m == "error: @main: size `Q` is not the size of an input axis"));
        assert_eq!(exit_code(Err(fail)), ExitCode::from(1));
    }

    /// A run's error is archc's where the backend said so, also from inside a call.
    #[test]
    fn run_errors_exit_by_whose_fault_they_are() {
        use archc_runtime::RunError;
        let bug = RunError::Internal { func: "main".into(), message: "ABI mismatch".into() };
        let nested = RunError::Nested { func: "main".into(), inst: "%2 = call".into(), source: Box::new(bug) };
        assert!(matches!(Fail::run(nested), Fail::Internal(m) if m == "in @main, %2 = call: @main: ABI mismatch"));
        let refused = RunError::Backend { func: "main".into(), message: "index 7 out of range".into() };
        assert!(matches!(Fail::run(refused), Fail::User(m) if m == "error: @main: index 7 out of range"));
    }

    /// A driver helper's error (eval, batched runs, tasks) keeps the kind of the run or
    /// training error inside it, through added context.
    #[test]
    fn driver_errors_exit_by_whose_fault_they_are() {
        use crate::error::Error;
        use archc_runtime::train::TrainError;
        use archc_runtime::RunError;
        let bug = RunError::Internal { func: "eval_step".into(), message: "ABI mismatch".into() };
        let fail = Fail::driver(Error::from(bug).at("rows 0..2 of the inputs"));
        assert!(matches!(&fail, Fail::Internal(m) if m == "rows 0..2 of the inputs: @eval_step: ABI mismatch"));
        let step = TrainError::Run {
            step: 3,
            source: RunError::Internal { func: "train_step".into(), message: "bad descriptor".into() },
        };
        assert!(matches!(Fail::driver(step.into()), Fail::Internal(_)));
        let user = Error::from("`tasks` needs a test part to measure forgetting");
        assert!(
            matches!(Fail::driver(user), Fail::User(m) if m == "error: `tasks` needs a test part to measure forgetting")
        );
        assert!(matches!(Fail::driver(TrainError::Spec("batch 0".into()).into()), Fail::User(_)));
    }
}
