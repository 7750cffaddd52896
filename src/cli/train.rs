//! `archc train FILE`: the network of a `train` block trained on its data set into a
//! run folder (`runs/NAME` or `--out`), or with `--time-steps N` its train step timed
//! on random batches.
//!
//! Contract: the flags override the block's settings; a run folder that already holds
//! a run is refused unless `--resume` (continue it, bit-exact) or `--overwrite`; the
//! folder gets the source and the candidate record before training starts; a value
//! that turns non-finite is shown at the source span that first produced it. The
//! summary (final metrics, curves, metrics and checkpoint paths) goes to stdout.

use super::candidate::{self, Candidate};
use super::select::{options, resolve, Selection};
use super::train_block::{self, data_failure, run_dir, TrainBlock};
use super::{Context, Fail};
use crate::backend::{self, Backend};
use crate::render::render;
use crate::training;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use archc_mlir::aot::Artifact;
use archc_runtime::train::{TrainData, TrainError, TrainReport};
use archc_runtime::Tensor;
use clap::Args;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The arguments of `archc train`: the candidate and the overrides of the `train` block.
#[derive(Args)]
pub struct TrainArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub cand: Candidate,
    /// Number of epochs.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Learning rate (the schedule scales it).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed for initialisation, shuffling and random ops.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Batch size.
    #[arg(long)]
    pub batch: Option<u64>,
    /// The run directory (default: runs/NAME, NAME the file's stem).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run directory's checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Start from the weights in FILE (a checkpoint or a `.safetensors`, tensor names as
    /// in `build --emit tir`): the parameters it names are loaded, the rest start from
    /// their declared initialisers (a pretrained part inside a new network).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Start afresh in a run directory that already holds a run, replacing it.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// On a NaN or Inf, find the first instruction that produced it.
    #[arg(long)]
    pub detect_anomaly: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// What runs the train and eval steps (default as for `run`; an artifact: its
    /// target's).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Do not train: time N train steps on random batches of the batch size and print
    /// the median (the first step, which compiles, apart). Needs no data set.
    #[arg(long, value_name = "N")]
    pub time_steps: Option<usize>,
    /// Sizes of symbolic dims for `--time-steps`: `--dim N=1024` (B is the batch size).
    #[arg(long, value_name = "NAME=SIZE,...", requires = "time_steps")]
    pub dim: Option<String>,
    /// Report every compilation at the end: tier, function, time.
    #[arg(long)]
    pub timings: bool,
}

/// Runs `archc train`.
pub fn run(mut args: TrainArgs, cx: &Context) -> Result<(), Fail> {
    candidate::refuse_for_artifact(&args.file, &args.cand)?;
    let input = resolve(&args.file, std::mem::take(&mut args.cand).selection(), args.backend, cx.device())?;
    let opts = options(&Selection { train: false, ..input.sel.clone() }, false)?;
    candidate::show(&input.file, &opts, cx.color)?;
    let block = train_block::read(&input.file, &opts, cx.color)?;
    train(&input.file, (block, &opts), &args, cx, input.artifact())
}

/// Trains the block's network (or times its steps) for the candidate `opts` selects.
fn train(
    file: &Path,
    (block, opts): (TrainBlock, &Options),
    args: &TrainArgs,
    cx: &Context,
    art: Option<&Artifact>,
) -> Result<(), Fail> {
    let TrainBlock { mut cfg, text, sources } = block;
    overrides(&mut cfg, args)?;
    let program = training::train_program(&cfg).map_err(|e| Fail::user(format!("cannot build the train step: {e}")))?;
    if let Some(steps) = args.time_steps {
        return time_steps(&cfg, &program, args, steps, (art, cx.max_memory));
    }
    let data = training::train_data(&cfg, &program).map_err(|e| data_failure(&cfg, e, &sources, cx.color))?;
    let env = training::step_env(&program, "train_step", &data.train, cfg.batch);
    crate::memory::check(&program, "train_step", &env, cx.max_memory).map_err(Fail::user)?;
    let mut spec = training::loop_spec(&cfg, data.train.len());
    spec.detect_anomaly = args.detect_anomaly;
    spec.init_params = args.init.as_deref().map(|p| initial_values(p, &program)).transpose()?;
    if cfg.tasks.is_some() && args.resume {
        return Err(Fail::user("--resume does not continue a task sequence (`tasks:`): start it again"));
    }
    let mut exec = backend::executor(&program, args.backend, art).map_err(Fail::user)?;
    let dir = prepare_dir(file, args, opts, &text)?;
    announce(&cfg, &data, &dir);
    let progress = !args.quiet && std::io::stderr().is_terminal();
    if cfg.tasks.is_some() {
        return train_tasks(&cfg, (&program, spec.init_params), &data, &dir, progress, exec.as_mut());
    }
    let report = archc_runtime::train::train_with(&program, &spec, &data, &dir, args.resume, progress, exec.as_mut())
        .map_err(|e| train_failure(e, &sources, cx.color, &dir))?;
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    summary(&report, &cfg, &dir)
}

/// A class-incremental run (`tasks:`): one task after another, then the accuracy table.
fn train_tasks(
    cfg: &TrainConfig,
    (program, init): (&Program, Option<BTreeMap<String, Tensor>>),
    data: &TrainData,
    dir: &Path,
    progress: bool,
    exec: &mut dyn archc_runtime::Executor,
) -> Result<(), Fail> {
    let report = crate::tasks::train_tasks(cfg, (program, init), data, dir, progress, exec).map_err(Fail::driver)?;
    out!("{}", report.table());
    out!("tasks: {}", dir.join("tasks.json").display());
    out!("checkpoint: {}", dir.join(archc_runtime::train::CHECKPOINT_FILE).display());
    Ok(())
}

/// The parameters `--init` gives, read from `path` for `program`; the file's tensors
/// that are not parameters of the program are named on stderr.
fn initial_values(path: &Path, program: &Program) -> Result<BTreeMap<String, Tensor>, Fail> {
    let w = crate::weights::read(path).map_err(|e| Fail::user(format!("--init: {e}")))?;
    let fitted = crate::weights::fit_init(&w, program, path).map_err(|e| Fail::user(format!("--init: {e}")))?;
    eprintln!(
        "starting from {} of the program's {} parameters in {}",
        fitted.values.len(),
        program.params.len(),
        path.display()
    );
    if !fitted.unused.is_empty() {
        eprintln!("  not parameters of this program, not loaded: {}", fitted.unused.join(", "));
    }
    Ok(fitted.values.into_iter().collect())
}

/// The block's settings with the flags that override them.
fn overrides(cfg: &mut TrainConfig, args: &TrainArgs) -> Result<(), Fail> {
    cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
    if let Some(lr) = args.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(Fail::user(format!("--lr {lr}: the learning rate must be a positive finite number")));
    }
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.batch = args.batch.unwrap_or(cfg.batch);
    Ok(())
}

/// The run folder, created, with the source and the candidate record written; a
/// folder holding a run is refused without `--resume` or `--overwrite`.
fn prepare_dir(file: &Path, args: &TrainArgs, opts: &Options, text: &str) -> Result<PathBuf, Fail> {
    let dir = run_dir(file, args.out.as_deref());
    if let Some(found) = archc_runtime::train::existing_run(&dir).filter(|_| !args.resume && !args.overwrite) {
        return Err(Fail::user(format!(
            "{} already holds a run ({}); pass --resume to continue it, --overwrite to replace it, or another --out",
            dir.display(),
            found.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Fail::user(format!("cannot create {}: {e}", dir.display())))?;
    let name = file.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "train.arch".into());
    archc_runtime::train::write_source(&dir, &name, text).map_err(Fail::user)?;
    candidate::record(&dir, opts).map_err(Fail::user)?;
    Ok(dir)
}

/// What is about to be trained, on stderr.
fn announce(cfg: &TrainConfig, data: &TrainData, dir: &Path) {
    eprintln!(
        "training {} on {} ({} train / {} test samples), {} epochs, batch {}, into {}",
        cfg.program.name,
        training::data_label(&cfg.data),
        data.train.len(),
        data.test.as_ref().map_or(0, |t| t.len()),
        cfg.epochs,
        cfg.batch,
        dir.display()
    );
}

/// The end of a run: a note when there was nothing to train, then the final metrics
/// and the files written.
fn summary(report: &TrainReport, cfg: &TrainConfig, dir: &Path) -> Result<(), Fail> {
    if report.already_complete {
        eprintln!(
            "the run in {} is already complete ({} epochs done, --epochs {}): nothing to train",
            dir.display(),
            report.epochs,
            cfg.epochs
        );
    }
    let last = archc_runtime::train::read_metrics(&report.metrics).ok().and_then(|r| r.last().cloned());
    for part in ["train", "test"] {
        out!("{}", training::summary_line(last.as_ref(), part));
    }
    out!("curves: {}", report.curves.display());
    out!("metrics: {}", report.metrics.display());
    out!("checkpoint: {}", report.checkpoint.display());
    Ok(())
}

/// `archc train --time-steps N`: prints the median train-step time on random batches.
fn time_steps(
    cfg: &TrainConfig,
    program: &Program,
    args: &TrainArgs,
    steps: usize,
    (art, mem): (Option<&Artifact>, Option<u128>),
) -> Result<(), Fail> {
    let dims = backend::parse_dims(args.dim.as_deref()).map_err(Fail::user)?;
    let mut env = dims.clone();
    env.entry("B".into()).or_insert(cfg.batch as i64);
    crate::memory::check(program, "train_step", &env, mem).map_err(Fail::user)?;
    let step_args = crate::steptime::step_args(cfg, program, &dims).map_err(Fail::user)?;
    let mut exec = backend::executor(program, args.backend, art).map_err(Fail::user)?;
    let t = crate::steptime::time_steps(exec.as_mut(), program, step_args, steps).map_err(Fail::user)?;
    out!(
        "train step: median {:.3} ms, min {:.3} ms over {} steps (first step {:.1} ms), batch {}",
        t.median_ms(),
        t.sorted_ms.first().copied().unwrap_or(t.first_ms),
        t.sorted_ms.len(),
        t.first_ms,
        cfg.batch
    );
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    Ok(())
}

/// A training error; a non-finite value traced to a source span is shown in the source
/// (the hint mentions the run directory's checkpoint only when there is one).
fn train_failure(e: TrainError, sources: &SourceMap, color: bool, dir: &Path) -> Fail {
    use archc_runtime::train::CHECKPOINT_FILE;
    if let TrainError::NonFinite { step, what, anomaly: Some(a) } = &e {
        if let Some(span) = a.span {
            let advice = "lower the learning rate or clip gradients (`clip: 1.0`)";
            let help = match dir.join(CHECKPOINT_FILE).exists() {
                true => format!("the last good checkpoint was kept; {advice}"),
                false => format!("no checkpoint was saved yet; {advice}"),
            };
            let d =
                Diagnostic::error(format!("step {step}: {what} is not finite; first produced by `{}`", a.inst), span)
                    .with_label(a.detail.clone())
                    .with_help(help);
            eprint!("{}", render(&[d], sources, color));
            return Fail::User(String::new());
        }
    }
    Fail::of_kind(e.is_internal(), e)
}
