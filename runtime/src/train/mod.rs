//! The training loop runtime: runs a train-step TIR function (produced by autodiff) over
//! mini-batches and writes a run directory.
//!
//! A run directory (`runs/NAME/`) holds `metrics.jsonl` (one line per epoch, [`metrics`]),
//! `curves.svg` (loss and accuracy per epoch, [`plot`]), `checkpoint.safetensors` (the
//! full [`TrainState`], [`state`]) and the `.arch` source, written by the caller with
//! [`write_source`].
//!
//! The train-step ABI ([`run`] checks it before the first step):
//! - `train_step(data..., param:NAME..., state:NAME..., lr: f32[])` returns
//!   `(loss: f32[], metric:NAME: f32[]..., param:NAME..., state:NAME...)`, everything
//!   identified by `arg_names` / `result_names`, in any order. Data args are fed from the
//!   data set (through [`TrainData::input_names`]); every `param:NAME` and `state:NAME`
//!   arg has a result of the same name and type (the updated value).
//! - `eval_step(data..., param:NAME...)` returns `(loss, metric:NAME...)`; it is optional
//!   (without it, test metrics are not computed).
//! - `loss` is the batch mean; `metric:NAME` results are batch sums (`metric:correct`
//!   becomes `train_acc` / `test_acc`).
//! - Every `param:NAME` is declared in `Program::params`; initial values come from
//!   `Interpreter::init_params(seed)`. State slots start at zeros of their arg types.
//! - Before step `t` the interpreter seed is [`step_seed`]`(seed, t)`.

pub mod anomaly;
pub mod metrics;
pub mod plot;
pub mod run;
pub mod schedule;
pub mod state;
mod tmpfile;

pub use anomaly::{find_anomaly, Anomaly};
pub use metrics::{read_metrics, MetricsWriter, Record, Value};
pub use plot::{render_curves, write_curves};
pub use run::{
    existing_run, step_bindings, step_seed, train, train_with, write_source, LoopSpec, TrainData, TrainReport,
    CHECKPOINT_FILE, CURVES_FILE, METRICS_FILE,
};
pub use schedule::Schedule;
pub use state::{EpochTotals, TrainState};

use crate::interp::RunError;
use crate::io::IoError;
use std::fmt;
use std::path::PathBuf;

/// A failed or stopped training run.
#[derive(Debug)]
pub enum TrainError {
    /// The program does not follow the train-step ABI (see the module docs), or the data
    /// does not fit it.
    Abi(String),
    /// Invalid loop settings (batch size 0, a resumed checkpoint of another run, ...).
    Spec(String),
    /// The interpreter failed on a step.
    Run { step: u64, source: RunError },
    /// A file of the run directory could not be read or written.
    Io(IoError),
    /// A checkpoint or metrics file is malformed.
    Format { path: PathBuf, message: String },
    /// Step `step` (0-based) produced a non-finite `what` (`loss`, `param:NAME` or
    /// `state:NAME`, the first in result order); its update was not applied or saved.
    /// With `detect_anomaly`, `anomaly` names the first instruction whose result was
    /// non-finite.
    NonFinite { step: u64, what: String, anomaly: Option<Box<Anomaly>> },
    /// A batch could not be read from a data file.
    Data(crate::data::DataError),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            TrainError::Abi(m) => write!(f, "train-step ABI: {m}"),
            TrainError::Spec(m) => f.write_str(m),
            TrainError::Run { step, source } => write!(f, "step {step}: {source}"),
            TrainError::Io(e) => e.fmt(f),
            TrainError::Data(e) => write!(f, "reading a batch: {e}"),
            TrainError::Format { path, message } => write!(f, "{}: {message}", path.display()),
            TrainError::NonFinite { step, what, anomaly } => {
                write!(f, "step {step}: {what} is not finite (NaN or infinity); stopped without saving this step")?;
                if let Some(a) = anomaly {
                    write!(f, "\n{a}")?;
                }
                Ok(())
            }
        }
    }
}

impl TrainError {
    /// Whether archc, not the program, its data or the files it was given, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, TrainError::Run { source, .. } if source.is_internal())
    }
}

impl std::error::Error for TrainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrainError::Run { source, .. } => Some(source),
            TrainError::Io(e) => Some(e),
            TrainError::Data(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IoError> for TrainError {
    fn from(e: IoError) -> TrainError {
        TrainError::Io(e)
    }
}

/// An `IoError::Io` for `path`.
pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> TrainError {
    TrainError::Io(IoError::Io { path: path.to_path_buf(), source })
}
