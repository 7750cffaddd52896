//! The training loop: [`train`] runs `train_step` over the mini-batches of every epoch,
//! evaluates with `eval_step`, and keeps the run directory up to date.
//!
//! Contract (see the parent module for the train-step ABI):
//! - Initial parameters are `Interpreter::init_params(spec.seed)` of the program, or
//!   `spec.init_params` where it names them (same shape and dtype); state slots are
//!   zeros of their arg types (which must be concrete).
//! - Epoch `e` (0-based) visits `data.train.batches(spec.batch, spec.seed, e,
//!   spec.drop_last)`. Step `t` (0-based, counted over the whole run) uses learning rate
//!   `spec.schedule.lr(t, total)` with `total = epochs * batches per epoch`, and
//!   interpreter seed [`step_seed`]`(spec.seed, t)`.
//! - Parameters and optimizer slots live in the executor as resident state (see
//!   [`crate::resident`]), named like the step's args (`param:NAME`, `state:NAME`): a
//!   step is given its batch and learning rate and returns its loss and metrics; the
//!   executor replaces the state with the updated values. Checkpoints and the final
//!   report read the state back; `eval_step` reads the parameters where they live.
//! - After each step the loss and every updated `param:`/`state:` result (in result
//!   order, loss first) must be finite; otherwise the run stops with
//!   `TrainError::NonFinite` and nothing of that step is saved. With `detect_anomaly`,
//!   the state is read back before each step, and a non-finite step is re-run by
//!   [`super::anomaly`] on it to name the first instruction that made a non-finite value.
//! - At the end of each epoch: evaluation on the test set (when there is one and the
//!   program has `eval_step`) every `eval_every` epochs and after the last, in order,
//!   in chunks of `spec.batch` rows; one line appended to `metrics.jsonl`; `curves.svg`
//!   redrawn (after the first and the last epoch, and otherwise at most every
//!   [`PLOT_EVERY`]: each drawing plots every epoch so far, so drawing after every short
//!   epoch made long runs quadratic); `checkpoint.safetensors` saved, in that order. A
//!   run that stops early or on a non-finite value redraws the curves first if they
//!   lag behind `metrics.jsonl`.
//! - `stop_after_steps: Some(n)`: once `n` steps are done, the checkpoint is saved
//!   (mid-epoch if need be) and the run returns with `stopped_early`.
//! - `resume` with a checkpoint in `out_dir`: the run continues from it (same seed and
//!   batch size required), bit-for-bit as if never interrupted (the data order is a pure
//!   function of seed and epoch, and the checkpoint holds the batch index and the epoch's
//!   running totals); metric lines of epochs after the checkpoint are dropped, and so is
//!   a torn last line. The checkpoint's counters must agree with this data and batch
//!   size (`step = epoch * batches per epoch + batch_in_epoch`, `batch_in_epoch` at most
//!   the batches per epoch, `samples` the rows of the batches done); otherwise it is a
//!   format error. A checkpoint with `epoch >= epochs` trains nothing and rewrites no
//!   checkpoint or plot: the report says `already_complete`. Without a checkpoint, or without
//!   `resume`, the run starts fresh: the metrics file is truncated, and a stale
//!   checkpoint and plot are removed (callers refuse that unless asked to, see
//!   [`existing_run`]).

use super::anomaly::find_anomaly;
use super::metrics::{truncate_metrics, MetricsWriter, Record, Value};
use super::plot::write_curves;
use super::schedule::Schedule;
use super::state::{EpochTotals, TrainState};
use super::{io_error, TrainError};
use crate::data::{Dataset, Frame};
use crate::finite::is_finite;
use crate::interp::{Executor, Interpreter, RunError};
use crate::resident::Bindings;
use crate::tensor::Tensor;
use archc_compiler::tir::{Func, Program, TensorType};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The file names of a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const CURVES_FILE: &str = "curves.svg";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The least time between two drawings of `curves.svg` during a run.
pub const PLOT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// When `curves.svg` is redrawn (see the module docs).
#[derive(Default)]
struct PlotClock {
    last: Option<Instant>,
    /// Epochs recorded since the last drawing.
    behind: bool,
}

impl PlotClock {
    /// Records an epoch; whether to draw now (`last`: the run's last epoch).
    fn epoch_done(&mut self, last: bool) -> bool {
        self.behind = true;
        last || self.last.is_none_or(|t| t.elapsed() >= PLOT_EVERY)
    }

    /// Draws the curves of `history` if any epoch is not drawn yet.
    fn draw(&mut self, path: &Path, history: &[Record]) -> Result<(), TrainError> {
        if self.behind {
            write_curves(path, history)?;
            (self.last, self.behind) = (Some(Instant::now()), false);
        }
        Ok(())
    }
}

/// The names of the train-step ABI.
pub const TRAIN_STEP: &str = "train_step";
pub const EVAL_STEP: &str = "eval_step";

/// How to run the loop.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopSpec {
    pub epochs: u64,
    /// Rows per batch (> 0).
    pub batch: usize,
    /// Seeds parameter init, the batch order and the per-step interpreter seed.
    pub seed: u64,
    pub schedule: Schedule,
    /// Evaluate every this many epochs (and always after the last); 0: only after the last.
    pub eval_every: u64,
    /// On a non-finite step, find the instruction that made it (see `anomaly`).
    pub detect_anomaly: bool,
    /// Drop each epoch's last, shorter batch (for steps with a fixed batch dimension).
    pub drop_last: bool,
    /// Stop (saving a checkpoint) when the run's step count reaches exactly this value
    /// (so a resumed run already past it does not stop); for tests and kill simulation.
    pub stop_after_steps: Option<u64>,
    /// Start from these parameter values (by name, as in [`TrainState::params`]) instead
    /// of the declared initialisers: a run that continues another's weights (the next
    /// task of a class-incremental sequence). Each must have its parameter's shape.
    pub init_params: Option<BTreeMap<String, Tensor>>,
}

impl LoopSpec {
    /// Evaluation every epoch, no anomaly detection, all batches, no early stop.
    pub fn new(epochs: u64, batch: usize, seed: u64, schedule: Schedule) -> LoopSpec {
        LoopSpec {
            epochs,
            batch,
            seed,
            schedule,
            eval_every: 1,
            detect_anomaly: false,
            drop_last: false,
            stop_after_steps: None,
            init_params: None,
        }
    }
}

/// The data of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainData {
    pub train: Frame,
    pub test: Option<Frame>,
    /// Data set tensor name -> step arg name, for tensors whose names differ from the
    /// args they feed (every other data arg is fed by the tensor of its own name).
    pub input_names: BTreeMap<String, String>,
}

impl TrainData {
    /// A run's data: in memory (a [`Dataset`]) or read batch by batch (a [`Frame`]).
    pub fn new<D: Into<Frame>>(train: D, test: Option<D>) -> TrainData {
        TrainData { train: train.into(), test: test.map(Into::into), input_names: BTreeMap::new() }
    }

    /// The data set tensor that feeds arg `arg`.
    fn source_of<'a>(&'a self, arg: &'a str) -> &'a str {
        self.input_names.iter().find(|(_, a)| a.as_str() == arg).map_or(arg, |(d, _)| d.as_str())
    }
}

/// What a run did and wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Epochs and steps done in total (including those before a resume).
    pub epochs: u64,
    pub steps: u64,
    /// The last metrics line's values (`None` when absent or null).
    pub train_loss: Option<f64>,
    pub train_acc: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_acc: Option<f64>,
    /// Whether the run continued from a checkpoint.
    pub resumed: bool,
    /// Whether it stopped at `stop_after_steps`.
    pub stopped_early: bool,
    /// Whether the resumed checkpoint had already done every epoch (nothing was trained).
    pub already_complete: bool,
    pub metrics: PathBuf,
    pub curves: PathBuf,
    pub checkpoint: PathBuf,
    /// The final state (as saved in the checkpoint).
    pub state: TrainState,
}

/// The interpreter seed of step `step` of a run seeded `seed`: SplitMix64 finalisers,
/// `mix(seed ^ mix(step))`, so every step draws fresh random numbers reproducibly.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    mix(seed ^ mix(step))
}

/// The first file of a run found in `out_dir` (checkpoint, metrics or curves), if any: a
/// fresh run there would replace it.
pub fn existing_run(out_dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_FILE, METRICS_FILE, CURVES_FILE].iter().map(|f| out_dir.join(f)).find(|p| p.exists())
}

/// Writes the experiment's source text as `out_dir/name` (a plain file name).
pub fn write_source(out_dir: &Path, name: &str, text: &str) -> Result<PathBuf, TrainError> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(TrainError::Spec(format!("source file name {name:?} must be a plain file name")));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| io_error(out_dir, e))?;
    let path = out_dir.join(name);
    std::fs::write(&path, text).map_err(|e| io_error(&path, e))?;
    Ok(path)
}

/// The roles of a step function's args and results.
struct Abi {
    /// `(arg index, data set tensor name)`.
    data: Vec<(usize, String)>,
    /// `(arg index, name)` of `param:NAME` args.
    params: Vec<(usize, String)>,
    /// `(arg index, name)` of `state:NAME` args.
    slots: Vec<(usize, String)>,
    lr: Option<usize>,
    loss: usize,
    /// `(result index, NAME)` of `metric:NAME` results.
    metrics: Vec<(usize, String)>,
    /// `(result index, arg index)` of updated params and slots, in result order.
    updates: Vec<(usize, usize)>,
}

fn abi_err(func: &str, m: impl std::fmt::Display) -> TrainError {
    TrainError::Abi(format!("@{func}: {m}"))
}

impl Abi {
    fn of(f: &Func, data: &TrainData, dataset: &Frame, training: bool) -> Result<Abi, TrainError> {
        let err = |m: String| abi_err(&f.name, m);
        if f.arg_names.len() != f.args.len() || f.result_names.len() != f.results.len() {
            return Err(err("every arg and result needs a name".into()));
        }
        let mut abi =
            Abi { data: vec![], params: vec![], slots: vec![], lr: None, loss: 0, metrics: vec![], updates: vec![] };
        for (i, name) in f.arg_names.iter().enumerate() {
            if let Some(p) = name.strip_prefix("param:") {
                abi.params.push((i, p.to_string()));
            } else if let Some(s) = name.strip_prefix("state:") {
                if !training {
                    return Err(err(format!("arg {name:?}: an eval step takes no optimizer state")));
                }
                abi.slots.push((i, s.to_string()));
            } else if name == "lr" {
                if !training {
                    return Err(err("arg \"lr\": an eval step takes no learning rate".into()));
                }
                if f.args[i].1.rank() != 0 || !f.args[i].1.dtype.is_float() {
                    return Err(err(format!("arg \"lr\" is {}, expected a float scalar", f.args[i].1)));
                }
                abi.lr = Some(i);
            } else {
                let src = data.source_of(name);
                if dataset.get(src).is_none() {
                    let have: Vec<&str> = dataset.columns().map(|(n, _)| n).collect();
                    return Err(err(format!(
                        "data arg {name:?} has no data set tensor {src:?} (the data set has {})",
                        have.join(", ")
                    )));
                }
                abi.data.push((i, src.to_string()));
            }
        }
        if training && abi.lr.is_none() {
            return Err(err("no \"lr\" arg".into()));
        }
        let mut loss = None;
        for (r, name) in f.result_names.iter().enumerate() {
            let ty = f.type_of(f.results[r]).ok_or_else(|| err(format!("result {name:?} is not defined")))?;
            let scalar = |what: &str| {
                if ty.rank() == 0 && ty.dtype.is_float() {
                    Ok(())
                } else {
                    Err(err(format!("result {what:?} is {ty}, expected a float scalar")))
                }
            };
            if name == "loss" {
                scalar(name)?;
                loss = Some(r);
            } else if let Some(m) = name.strip_prefix("metric:") {
                scalar(name)?;
                abi.metrics.push((r, m.to_string()));
            } else if training && (name.starts_with("param:") || name.starts_with("state:")) {
                let a = f
                    .arg_names
                    .iter()
                    .position(|a| a == name)
                    .ok_or_else(|| err(format!("result {name:?} has no arg")))?;
                if &f.args[a].1 != ty {
                    return Err(err(format!("result {name:?} is {ty}, its arg is {}", f.args[a].1)));
                }
                abi.updates.push((r, a));
            } else {
                return Err(err(format!("unexpected result {name:?}")));
            }
        }
        abi.loss = loss.ok_or_else(|| err("no \"loss\" result".into()))?;
        if training {
            for (a, _) in abi.params.iter().chain(&abi.slots) {
                if !abi.updates.iter().any(|(_, ua)| ua == a) {
                    return Err(err(format!("arg {:?} has no updated result of the same name", f.arg_names[*a])));
                }
            }
        }
        Ok(abi)
    }
}

/// The concrete shape of a state slot's type.
fn concrete(func: &str, name: &str, ty: &TensorType) -> Result<Vec<usize>, TrainError> {
    ty.const_shape().ok_or_else(|| abi_err(func, format!("arg {name:?} has a symbolic type {ty}")))
}

/// The scalar value of a float result.
fn scalar(t: &Tensor) -> f64 {
    t.to_f64_vec().map_or(f64::NAN, |v| v.iter().sum())
}

/// The bindings of a step whose `param:`/`state:` args read the resident state of their
/// own names, and whose updates (results of those names) replace it.
pub fn step_bindings(f: &Func) -> Bindings {
    Bindings::by_prefix(f, &["param:", "state:"])
}

/// The loop's mutable state: the step's given args (batch and learning rate; params and
/// slots live in the executor, see the module docs) and the counters.
struct Run<'a> {
    program: &'a Program,
    spec: &'a LoopSpec,
    data: &'a TrainData,
    abi: Abi,
    bindings: Bindings,
    args: Vec<Tensor>,
    step: u64,
    epoch: u64,
    batch_in_epoch: u64,
    totals: EpochTotals,
}

impl Run<'_> {
    /// The state to save, read back from the executor.
    fn state(&self, exec: &mut dyn Executor) -> Result<TrainState, TrainError> {
        let read = |exec: &mut dyn Executor, v: &[(usize, String)], kind: &str| {
            v.iter()
                .map(|(_, n)| Ok((n.clone(), exec.read_state(&format!("{kind}:{n}"))?)))
                .collect::<Result<BTreeMap<String, Tensor>, RunError>>()
                .map_err(|source| TrainError::Run { step: self.step, source })
        };
        Ok(TrainState {
            params: read(exec, &self.abi.params, "param")?,
            slots: read(exec, &self.abi.slots, "state")?,
            step: self.step,
            epoch: self.epoch,
            batch_in_epoch: self.batch_in_epoch,
            seed: self.spec.seed,
            batch_size: self.spec.batch as u64,
            partial: self.totals.clone(),
        })
    }

    /// The step's full argument list: the given args and the state read back (anomaly
    /// reports).
    fn full_args(&self, exec: &mut dyn Executor) -> Result<Vec<Tensor>, RunError> {
        let mut args = self.args.clone();
        for (a, bound) in self.bindings.args.iter().enumerate() {
            if let Some(name) = bound {
                args[a] = exec.read_state(name)?;
            }
        }
        Ok(args)
    }

    /// The given args of a step, moved out (placeholders stay behind).
    fn take_given(&mut self) -> Vec<Tensor> {
        let bindings = &self.bindings;
        let args = &mut self.args;
        (0..args.len())
            .filter(|a| bindings.args[*a].is_none())
            .map(|a| {
                let placeholder = Tensor::zeros(args[a].dtype(), &[]);
                std::mem::replace(&mut args[a], placeholder)
            })
            .collect()
    }

    /// Puts a checkpoint's values into the executor's state, checking names and types.
    fn restore(&mut self, exec: &mut dyn Executor, f: &Func, st: TrainState, path: &Path) -> Result<(), TrainError> {
        let bad = |m: String| TrainError::Format { path: path.to_path_buf(), message: m };
        if st.seed != self.spec.seed || st.batch_size != self.spec.batch as u64 {
            return Err(TrainError::Spec(format!(
                "{}: the checkpoint is of a run with seed {} and batch {}, this run has seed {} and batch {}",
                path.display(),
                st.seed,
                st.batch_size,
                self.spec.seed,
                self.spec.batch
            )));
        }
        check_counters(&st, self.spec, self.data.train.len() as u64).map_err(bad)?;
        for (kind, slots, mut values) in [("param", &self.abi.params, st.params), ("state", &self.abi.slots, st.slots)]
        {
            for (a, name) in slots {
                let v = values.remove(name).ok_or_else(|| bad(format!("checkpoint has no {kind}/{name}")))?;
                let ty = &f.args[*a].1;
                let fits =
                    v.dtype() == ty.dtype && ty.const_shape().is_none_or(|s| s == v.shape) && ty.rank() == v.rank();
                if !fits {
                    return Err(bad(format!("{kind}/{name} is {}, the step takes {ty}", v.type_string())));
                }
                exec.put_state(&f.arg_names[*a], v).map_err(|source| TrainError::Run { step: st.step, source })?;
            }
            if let Some(extra) = values.keys().next() {
                return Err(bad(format!("checkpoint has {kind}/{extra}, which the step does not take")));
            }
        }
        self.step = st.step;
        self.epoch = st.epoch;
        self.batch_in_epoch = st.batch_in_epoch;
        self.totals = st.partial;
        Ok(())
    }

    /// Moves the batch's tensors into the data args.
    fn feed(abi_data: &[(usize, String)], args: &mut [Tensor], batch: Dataset) {
        let mut tensors: HashMap<String, Tensor> = batch.inputs.into_iter().chain(batch.targets).collect();
        for (a, src) in abi_data {
            args[*a] = tensors.remove(src).expect("checked by Abi::of");
        }
    }

    /// Test loss and per-sample metric means, by running `eval_step` in chunks.
    fn evaluate(&self, exec: &mut dyn Executor, test: &Frame) -> Result<(f64, BTreeMap<String, f64>), TrainError> {
        let f = self.program.func(EVAL_STEP).expect("checked");
        let abi = Abi::of(f, self.data, test, false)?;
        for (_, name) in &abi.params {
            if !self.abi.params.iter().any(|(_, n)| n == name) {
                return Err(abi_err(EVAL_STEP, format!("arg \"param:{name}\" is not a param of @{TRAIN_STEP}")));
            }
        }
        let bindings = step_bindings(f);
        let mut args: Vec<Tensor> = f.args.iter().map(|(_, t)| Tensor::zeros(t.dtype, &[])).collect();
        let seed = step_seed(self.spec.seed, self.step);
        let (mut loss_sum, mut sums, n) = (0.0, BTreeMap::new(), test.len());
        for start in (0..n).step_by(self.spec.batch) {
            let rows: Vec<usize> = (start..(start + self.spec.batch).min(n)).collect();
            Run::feed(&abi.data, &mut args, test.select(&rows).map_err(TrainError::Data)?);
            let given =
                abi.data.iter().map(|(a, _)| std::mem::replace(&mut args[*a], Tensor::zeros(f.args[*a].1.dtype, &[])));
            let out = exec
                .run_bound(EVAL_STEP, &bindings, given.collect(), seed)
                .map_err(|source| TrainError::Run { step: self.step, source })?;
            loss_sum += scalar(&out[abi.loss]) * rows.len() as f64;
            for (r, name) in &abi.metrics {
                *sums.entry(name.clone()).or_insert(0.0) += scalar(&out[*r]);
            }
        }
        let n = n.max(1) as f64;
        Ok((loss_sum / n, sums.into_iter().map(|(k, v)| (k, v / n)).collect()))
    }
}

/// Batches per epoch of `rows` training rows.
fn batches_per_epoch(spec: &LoopSpec, rows: u64) -> u64 {
    match spec.drop_last {
        true => rows / spec.batch as u64,
        false => rows.div_ceil(spec.batch as u64),
    }
}

/// Checks that a checkpoint's counters describe a point of a run over `rows` training
/// rows with `spec`'s batch size (see the module docs).
fn check_counters(st: &TrainState, spec: &LoopSpec, rows: u64) -> Result<(), String> {
    let per_epoch = batches_per_epoch(spec, rows);
    let (epoch, batch, step) = (st.epoch, st.batch_in_epoch, st.step);
    let expected_step = epoch.checked_mul(per_epoch).and_then(|s| s.checked_add(batch));
    let expected_samples = match spec.drop_last {
        true => batch.checked_mul(spec.batch as u64),
        false => batch.checked_mul(spec.batch as u64).map(|n| n.min(rows)),
    };
    if batch > per_epoch || expected_step != Some(step) || expected_samples != Some(st.partial.samples) {
        return Err(format!(
            "inconsistent checkpoint counters (epoch {epoch}, batch {batch}, step {step}, {} samples) for {per_epoch} \
             batches of {} per epoch",
            st.partial.samples, spec.batch
        ));
    }
    Ok(())
}

/// The progress bar of one epoch: hidden unless `show` and stderr is a terminal.
fn progress_bar(show: bool, epoch: u64, epochs: u64, len: u64, pos: u64) -> ProgressBar {
    let target = if show && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar.set_position(pos);
    bar
}

/// Runs the training loop (see the module docs) with the reference interpreter and
/// writes `out_dir`.
pub fn train(
    program: &Program,
    spec: &LoopSpec,
    data: &TrainData,
    out_dir: &Path,
    resume: bool,
    progress: bool,
) -> Result<TrainReport, TrainError> {
    train_with(program, spec, data, out_dir, resume, progress, &mut Interpreter::new(program))
}

/// [`train`] with the train and eval steps run by `exec` (a compiled backend, or the
/// interpreter). Initial values and anomaly reports still come from the interpreter.
pub fn train_with(
    program: &Program,
    spec: &LoopSpec,
    data: &TrainData,
    out_dir: &Path,
    resume: bool,
    progress: bool,
    exec: &mut dyn Executor,
) -> Result<TrainReport, TrainError> {
    if spec.batch == 0 {
        return Err(TrainError::Spec("batch size must be positive".into()));
    }
    let f = program.func(TRAIN_STEP).ok_or_else(|| TrainError::Abi(format!("the program has no @{TRAIN_STEP}")))?;
    let abi = Abi::of(f, data, &data.train, true)?;
    let has_eval = match (&data.test, program.func(EVAL_STEP)) {
        (Some(test), Some(ef)) => {
            Abi::of(ef, data, test, false)?;
            true
        }
        _ => false,
    };
    let batches_per_epoch = batches_per_epoch(spec, data.train.len() as u64);
    if batches_per_epoch == 0 {
        return Err(TrainError::Spec(format!(
            "the training set has {} rows: no batch of {} (drop_last = {})",
            data.train.len(),
            spec.batch,
            spec.drop_last
        )));
    }
    let total_steps = spec.epochs.saturating_mul(batches_per_epoch);

    // Initial values: declared inits for params, zeros for slots, placeholders for the rest.
    let mut interp = Interpreter::new(program);
    interp.init_params(spec.seed).map_err(|source| TrainError::Run { step: 0, source })?;
    let args: Vec<Tensor> = f.args.iter().map(|(_, t)| Tensor::zeros(t.dtype, &[])).collect();
    let put = |exec: &mut dyn Executor, name: String, v: Tensor| {
        exec.put_state(&name, v).map_err(|source| TrainError::Run { step: 0, source })
    };
    for (_, name) in &abi.params {
        let v = interp
            .param(name)
            .ok_or_else(|| abi_err(TRAIN_STEP, format!("arg \"param:{name}\": no parameter @{name} is declared")))?;
        let v = match spec.init_params.as_ref().and_then(|m| m.get(name)) {
            Some(given) if given.shape != v.shape || given.dtype() != v.dtype() => {
                return Err(TrainError::Spec(format!(
                    "initial value of {name} is {}, the parameter is {}",
                    given.type_string(),
                    v.type_string()
                )))
            }
            Some(given) => given,
            None => v,
        };
        put(exec, format!("param:{name}"), v.clone())?;
    }
    for (a, name) in &abi.slots {
        let ty = &f.args[*a].1;
        let name = format!("state:{name}");
        let zeros = Tensor::zeros(ty.dtype, &concrete(TRAIN_STEP, &name, ty)?);
        put(exec, name, zeros)?;
    }
    let bindings = step_bindings(f);
    let mut run = Run {
        program,
        spec,
        data,
        abi,
        bindings,
        args,
        step: 0,
        epoch: 0,
        batch_in_epoch: 0,
        totals: EpochTotals::default(),
    };

    std::fs::create_dir_all(out_dir).map_err(|e| io_error(out_dir, e))?;
    let metrics_path = out_dir.join(METRICS_FILE);
    let curves_path = out_dir.join(CURVES_FILE);
    let ckpt_path = out_dir.join(CHECKPOINT_FILE);
    let resumed = resume && ckpt_path.exists();
    let mut history = if resumed {
        let st = TrainState::load(&ckpt_path)?;
        run.restore(exec, f, st, &ckpt_path)?;
        truncate_metrics(&metrics_path, run.epoch)?
    } else {
        for stale in [&ckpt_path, &curves_path] {
            match std::fs::remove_file(stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(stale, e)),
                _ => {}
            }
        }
        Vec::new()
    };
    let already_complete = resumed && run.epoch >= spec.epochs;
    let report = |run: &Run, exec: &mut dyn Executor, history: &[Record], stopped_early: bool| {
        let last = history.last();
        let get = |k: &str| last.and_then(|r| r.f64(k));
        Ok(TrainReport {
            epochs: run.epoch,
            steps: run.step,
            train_loss: get("train_loss"),
            train_acc: get("train_acc"),
            test_loss: get("test_loss"),
            test_acc: get("test_acc"),
            resumed,
            stopped_early,
            already_complete,
            metrics: metrics_path.clone(),
            curves: curves_path.clone(),
            checkpoint: ckpt_path.clone(),
            state: run.state(exec)?,
        })
    };

    if already_complete {
        return report(&run, exec, &history, false);
    }
    let mut metrics = MetricsWriter::open(&metrics_path, resumed)?;
    let lr_arg = run.abi.lr.expect("checked by Abi::of");
    let lr_dtype = f.args[lr_arg].1.dtype;
    // Positions of the loss and metrics among the returned results.
    let returned: Vec<usize> = run.bindings.returned().collect();
    let at = |r: usize| returned.iter().position(|&x| x == r).expect("loss and metrics are returned");
    let update_names: Vec<String> = run.abi.updates.iter().map(|(r, _)| f.result_names[*r].clone()).collect();
    let mut plot = PlotClock::default();
    while run.epoch < spec.epochs {
        let epoch_start = Instant::now();
        let seconds_before = run.totals.seconds;
        let bar = progress_bar(progress, run.epoch, spec.epochs, batches_per_epoch, run.batch_in_epoch);
        let batches = data.train.batches(spec.batch, spec.seed, run.epoch, spec.drop_last);
        for batch in batches.skip(run.batch_in_epoch as usize) {
            let t0 = Instant::now();
            let batch = batch.map_err(TrainError::Data)?;
            let rows = batch.len() as u64;
            Run::feed(&run.abi.data, &mut run.args, batch);
            let lr = spec.schedule.lr(run.step, total_steps);
            run.args[lr_arg] = Tensor::full(lr_dtype, &[], lr);
            let seed = step_seed(spec.seed, run.step);
            let step = run.step;
            let step_err = |source| TrainError::Run { step, source };
            // Anomaly reports re-run the step on its inputs, so they are kept.
            let before = match spec.detect_anomaly {
                true => Some(run.full_args(exec).map_err(step_err)?),
                false => None,
            };
            let given = run.take_given();
            let out = exec.run_bound(TRAIN_STEP, &run.bindings, given, seed).map_err(step_err)?;
            let bad = match is_finite(&out[at(run.abi.loss)]) {
                false => Some("loss".to_string()),
                true => exec.non_finite_state(&update_names).map_err(step_err)?,
            };
            if let Some(what) = bad {
                bar.abandon();
                let anomaly = match &before {
                    Some(args) => {
                        find_anomaly(program, TRAIN_STEP, args, interp.params(), seed).map_err(step_err)?.map(Box::new)
                    }
                    None => None,
                };
                plot.draw(&curves_path, &history)?;
                return Err(TrainError::NonFinite { step, what, anomaly });
            }
            let loss = scalar(&out[at(run.abi.loss)]);
            run.totals.samples += rows;
            run.totals.loss_sum += loss * rows as f64;
            for (r, name) in &run.abi.metrics {
                *run.totals.metric_sums.entry(name.clone()).or_insert(0.0) += scalar(&out[at(*r)]);
            }
            run.step += 1;
            run.batch_in_epoch += 1;
            run.totals.seconds += t0.elapsed().as_secs_f64();
            bar.set_position(run.batch_in_epoch);
            bar.set_message(format!(
                "loss {loss:.4}  lr {lr:.3e}  {:.0} samples/s",
                run.totals.samples as f64 / run.totals.seconds.max(1e-9)
            ));
            if spec.stop_after_steps == Some(run.step) {
                bar.abandon();
                plot.draw(&curves_path, &history)?;
                run.state(exec)?.save(&ckpt_path)?;
                return report(&run, exec, &history, true);
            }
        }
        bar.finish_and_clear();

        // Epoch end: evaluate, log, plot, checkpoint.
        let done = run.epoch + 1;
        let evaluate = has_eval && (done == spec.epochs || (spec.eval_every > 0 && done % spec.eval_every == 0));
        let test = match (evaluate, &data.test) {
            (true, Some(test)) => Some(run.evaluate(exec, test)?),
            _ => None,
        };
        let t = &run.totals;
        let n = t.samples.max(1) as f64;
        let mut rec = Record::default();
        rec.push("epoch", Value::Int(done as i64));
        rec.push("step", Value::Int(run.step as i64));
        rec.push("train_loss", Value::num(t.loss_sum / n));
        for (_, name) in &run.abi.metrics {
            let key = if name == "correct" { "train_acc".to_string() } else { format!("train_{name}") };
            rec.push(&key, Value::opt(t.metric_sums.get(name).map(|s| s / n)));
        }
        if has_eval {
            rec.push("test_loss", Value::opt(test.as_ref().map(|(l, _)| *l)));
            for (_, name) in &run.abi.metrics {
                let key = if name == "correct" { "test_acc".to_string() } else { format!("test_{name}") };
                rec.push(&key, Value::opt(test.as_ref().and_then(|(_, m)| m.get(name).copied())));
            }
        }
        rec.push("lr", Value::num(spec.schedule.lr(run.step.saturating_sub(1), total_steps)));
        rec.push("seconds", Value::num(seconds_before + epoch_start.elapsed().as_secs_f64()));
        rec.push("samples_per_s", Value::num(t.samples as f64 / t.seconds.max(1e-9)));
        metrics.append(&rec)?;
        if progress {
            eprintln!("{}", rec.to_json());
        }
        history.push(rec);
        if plot.epoch_done(done == spec.epochs) {
            plot.draw(&curves_path, &history)?;
        }
        run.epoch = done;
        run.batch_in_epoch = 0;
        run.totals = EpochTotals::default();
        run.state(exec)?.save(&ckpt_path)?;
    }
    report(&run, exec, &history, false)
}

#[cfg(test)]
mod tests {
    use super::PlotClock;

    /// The first and the last epoch are drawn, epochs in between only once
    /// [`super::PLOT_EVERY`] has passed, and a drawing catches up only when behind.
    #[test]
    fn curves_are_drawn_first_last_and_at_most_every_plot_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        let mut clock = PlotClock::default();
        assert!(clock.epoch_done(false), "the first epoch is drawn");
        clock.draw(&path, &[]).unwrap();
        assert!(!clock.epoch_done(false), "an epoch right after a drawing waits");
        clock.draw(&path, &[]).unwrap();
        assert!(!clock.behind, "a lagging plot is caught up");
        clock.draw(&path, &[]).unwrap();
        assert!(clock.epoch_done(true), "the last epoch is drawn");
    }
}
