//! What the driver's helpers that run a program return (`training::evaluate`,
//! `training::predict`, `batches::Batches::run`, `tasks::train_tasks`): the user's error as
//! a message, or the run's or training loop's own error, whose kind says whether archc is
//! at fault ([`Error::is_internal`]); the CLI maps that kind to its exit code.

use archc_runtime::train::TrainError;
use archc_runtime::RunError;

/// An error of a helper that runs a program (see the module docs).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program, its data or the command line is at fault.
    #[error("{0}")]
    User(String),
    /// Running a function failed (a backend's own bug where the `RunError` says so).
    #[error("{0}")]
    Run(RunError),
    /// The training loop failed.
    #[error("{0}")]
    Train(TrainError),
    /// `source`, met while doing `context` (`rows 0..64 of the inputs`).
    #[error("{context}: {source}")]
    At { context: String, source: Box<Error> },
}

impl Error {
    /// Whether archc, not the user's program, data or options, is at fault.
    pub fn is_internal(&self) -> bool {
        match self {
            Error::User(_) => false,
            Error::Run(e) => e.is_internal(),
            Error::Train(e) => e.is_internal(),
            Error::At { source, .. } => source.is_internal(),
        }
    }

    /// This error with `context` before its message (`{context}: {message}`), its kind kept.
    pub fn at(self, context: impl Into<String>) -> Error {
        Error::At { context: context.into(), source: Box::new(self) }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::User(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::User(message.to_string())
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        Error::Run(e)
    }
}

impl From<TrainError> for Error {
    fn from(e: TrainError) -> Error {
        Error::Train(e)
    }
}
