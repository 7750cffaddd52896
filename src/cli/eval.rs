//! `archc eval FILE`: the test metrics of a checkpoint written by `archc train` (or of a
//! weights file), on the `train` block's test part or another part of its data set,
//! and with `--out` the network's outputs on every evaluated sample.
//!
//! Contract: without `--choices`/`--sample` the candidate is the one the checkpoint's
//! run recorded (a note says so); `--max-memory` is checked before evaluating; the
//! metrics go to stdout, one `NAME: VALUE` line each after a header naming the samples
//! and the weights; predictions are written in the data's order.

use super::candidate::{self, Candidate};
use super::select::{options, resolve, Selection};
use super::train_block::{self, data_failure, run_dir};
use super::{Context, Fail};
use crate::backend::{self, Backend};
use crate::training;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_mlir::aot::Artifact;
use archc_runtime::data::Frame;
use archc_runtime::train::TrainData;
use archc_runtime::{io, Tensor};
use clap::Args;
use std::path::{Path, PathBuf};

/// The arguments of `archc eval`.
#[derive(Args)]
pub struct EvalArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub cand: Candidate,
    /// The checkpoint (default: runs/NAME/checkpoint.safetensors), or a weights file
    /// (`.safetensors` with names as in `build --emit tir`).
    #[arg(long, visible_alias = "weights")]
    pub checkpoint: Option<PathBuf>,
    /// The part of the data set to evaluate on instead of the `train` block's test
    /// part, e.g. `--split test_32` for zero-shot evaluation at another resolution.
    #[arg(long, value_name = "NAME")]
    pub split: Option<String>,
    /// What runs the eval steps (default as for `run`; an artifact: its target's).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Report every compilation at the end: tier, function, time.
    #[arg(long)]
    pub timings: bool,
    /// Also write the network's outputs on every evaluated sample: `preds.npy` (a
    /// network with one output) or a folder (NAME.npy per output), in the data's
    /// order.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Runs `archc eval`.
pub fn run(mut args: EvalArgs, cx: &Context) -> Result<(), Fail> {
    candidate::refuse_for_artifact(&args.file, &args.cand)?;
    let input = resolve(&args.file, std::mem::take(&mut args.cand).selection(), args.backend, cx.device())?;
    let ckpt = checkpoint(&input.file, &args);
    if input.art.is_some() && args.out.is_some() {
        return Err(Fail::user(
            "--out runs the network of a `.arch` file; an artifact holds its train and eval steps only",
        ));
    }
    let mut opts = options(&Selection { train: false, ..input.sel.clone() }, false)?;
    if input.art.is_none() {
        opts.choices = candidate::of_run(&ckpt, opts.choices).map_err(Fail::user)?;
    }
    candidate::show(&input.file, &opts, cx.color)?;
    eval(&input.file, (&opts, &ckpt), &args, cx, input.artifact())
}

/// `--checkpoint`, else the run folder's checkpoint.
fn checkpoint(file: &Path, args: &EvalArgs) -> PathBuf {
    args.checkpoint.clone().unwrap_or_else(|| run_dir(file, None).join("checkpoint.safetensors"))
}

/// Evaluates the checkpoint `ckpt` of the candidate `opts` selects.
fn eval(
    file: &Path,
    (opts, ckpt): (&Options, &Path),
    args: &EvalArgs,
    cx: &Context,
    art: Option<&Artifact>,
) -> Result<(), Fail> {
    let block = train_block::read(file, opts, cx.color)?;
    let mut cfg = block.cfg;
    if let Some(part) = &args.split {
        cfg.data.test_part = Some(part.clone());
        cfg.data.split = None;
    }
    let program = training::train_program(&cfg).map_err(|e| Fail::user(format!("cannot build the eval step: {e}")))?;
    let data = training::train_data(&cfg, &program).map_err(|e| data_failure(&cfg, e, &block.sources, cx.color))?;
    let weights = crate::weights::read(ckpt).map_err(Fail::user)?;
    let test = test_part(&data, &cfg, args)?;
    let env = training::step_env(&program, "eval_step", test, cfg.batch);
    crate::memory::check(&program, "eval_step", &env, cx.max_memory).map_err(Fail::user)?;
    let mut exec = backend::executor(&program, args.backend, art).map_err(Fail::user)?;
    let metrics =
        training::evaluate(&program, &weights.params, test, cfg.batch as usize, exec.as_mut()).map_err(Fail::driver)?;
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    let part = args.split.as_deref().map(|p| format!(" (part `{p}`)")).unwrap_or_default();
    let epoch = weights.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
    out!("{} test samples{part}, weights {}{epoch}", test.len(), ckpt.display());
    print_metrics(metrics)?;
    if let Some(out) = &args.out {
        let preds = predictions(&cfg.program, &weights, ckpt, test, cfg.batch as usize, args.backend)?;
        write_predictions(&preds, out)?;
    }
    Ok(())
}

/// The part evaluated: the test part, or `--split`'s.
fn test_part<'d>(data: &'d TrainData, cfg: &TrainConfig, args: &EvalArgs) -> Result<&'d Frame, Fail> {
    match (&data.test, &args.split) {
        (Some(t), _) => Ok(t),
        (None, Some(part)) => Err(Fail::user(training::no_part(&cfg.data.name, part))),
        (None, None) => Err(Fail::user("this data set has no test part")),
    }
}

/// One `NAME: VALUE` line per metric (`metric:correct` shown as `accuracy`).
fn print_metrics(metrics: Vec<(String, f64)>) -> Result<(), Fail> {
    for (name, v) in metrics {
        let shown = match name.as_str() {
            "metric:correct" => "accuracy".to_string(),
            other => other.trim_start_matches("metric:").to_string(),
        };
        out!("{shown}: {v:.4}");
    }
    Ok(())
}

/// The forward's outputs on `test` with the checkpoint's parameters (`eval --out`).
fn predictions(
    program: &Program,
    weights: &crate::weights::Weights,
    ckpt: &Path,
    test: &Frame,
    batch: usize,
    backend: Option<Backend>,
) -> Result<Vec<(String, Tensor)>, Fail> {
    let fitted = crate::weights::fit(weights, program, ckpt, false).map_err(Fail::user)?;
    let mut exec = backend::executor(program, backend, None).map_err(Fail::user)?;
    for (name, t) in fitted.values {
        exec.set_param_value(&name, t).map_err(Fail::user)?;
    }
    training::predict(program, test, batch, exec.as_mut()).map_err(Fail::driver)
}

/// `preds.npy` for a network with one output, else `out/NAME.npy` per output.
fn write_predictions(preds: &[(String, Tensor)], out: &Path) -> Result<(), Fail> {
    let single = out.extension().is_some_and(|e| e == "npy");
    if single && preds.len() != 1 {
        let names: Vec<&str> = preds.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Fail::user(format!(
            "--out {}: the network has {} outputs ({}); give a folder to write NAME.npy for each",
            out.display(),
            preds.len(),
            names.join(", ")
        )));
    }
    for (name, t) in preds {
        let path = match single {
            true => out.to_path_buf(),
            false => {
                std::fs::create_dir_all(out)
                    .map_err(|e| Fail::user(format!("cannot create {}: {e}", out.display())))?;
                out.join(format!("{name}.npy"))
            }
        };
        io::write_npy(&path, t).map_err(Fail::user)?;
        out!("predictions: {} ({})", path.display(), t.type_string());
    }
    Ok(())
}
