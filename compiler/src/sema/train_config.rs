//! The configuration of a `train` block, read into plain values for the training loop:
//! the model's program, the loss and optimizer (as autodiff takes them), the data set,
//! the schedule and the loop settings. Unknown names and wrong argument types are
//! diagnostics with spans (the block has already passed `check_train`).

use super::args::{ArgReader, CallArgs};
use super::experiment::{build_model, check_train};
use super::modules::{ModuleInfo, Options};
use super::scope::Scope;
use super::{Checker, R};
use crate::autodiff::loss::Loss;
use crate::autodiff::optim::Optimizer;
use crate::autodiff::TrainSpec;
use crate::diag::Diagnostic;
use crate::tir::Program;
use archc_grammar::ast::{Expr, ExprKind, TrainDef};

/// A learning-rate schedule, by its parameters (the loop computes the rate per step).
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSpec {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        step_size: u64,
        gamma: f64,
    },
    /// Linear warmup over `warmup` steps, then cosine decay to `min_lr`.
    Cosine {
        warmup: u64,
        min_lr: f64,
    },
    /// One-cycle: up to `max_lr` over `pct_start` of the steps, then cosine down.
    OneCycle {
        max_lr: f64,
        pct_start: f64,
    },
}

/// Which data set and how to split it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub name: String,
    /// Fractions for a seeded split of one part (e.g. digits: `[0.8, 0.2]`).
    pub split: Option<Vec<f64>>,
    pub split_seed: u64,
    /// Named parts for train and test when the data set ships them (mnist1d, darcy).
    pub train_part: Option<String>,
    pub test_part: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The model in inference mode (`main`, and the forward of `eval_step`).
    pub program: Program,
    /// The model in training mode (dropout active, batch statistics).
    pub training: Program,
    pub spec: TrainSpec,
    pub lr: f64,
    pub schedule: ScheduleSpec,
    pub data: DataSpec,
    pub batch: u64,
    pub epochs: u64,
    pub seed: u64,
    pub eval_every: u64,
}

/// Reads the `train` block `t` of the main module.
pub fn train_config(modules: &[ModuleInfo], opts: &Options, t: &TrainDef) -> R<TrainConfig> {
    check_train(modules, opts, t)?;
    let program = build_model(modules, opts, &t.model)?;
    let train_opts = Options { training: true, ..opts.clone() };
    let training = build_model(modules, &train_opts, &t.model)?;
    let mut c = Checker::new(modules, opts);
    let env = Scope::child(&c.globals[0]);
    let mut cfg = TrainConfig {
        spec: TrainSpec {
            output: program.main().result_names.first().cloned().unwrap_or_default(),
            loss: Loss::Mse,
            target: "y".into(),
            optimizer: Optimizer::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
            clip: None,
            noise: None,
        },
        program,
        training,
        lr: 1e-3,
        schedule: ScheduleSpec::Constant,
        data: data_spec(&mut c, &t.data)?,
        batch: 32,
        epochs: 10,
        seed: 0,
        eval_every: 1,
    };
    for e in &t.entries {
        let key = e.key.node.as_str();
        match key {
            "loss" => read_loss(&mut c, &e.value, &mut cfg)?,
            "optimizer" => read_optimizer(&mut c, &e.value, &mut cfg)?,
            "schedule" => cfg.schedule = read_schedule(&mut c, &e.value)?,
            "batch" => cfg.batch = positive(&mut c, &e.value)?,
            "epochs" => cfg.epochs = positive(&mut c, &e.value)?,
            "eval_every" => cfg.eval_every = positive(&mut c, &e.value)?,
            "seed" => cfg.seed = nonneg(&mut c, &e.value)?,
            "clip" => cfg.spec.clip = Some(number(&mut c, &e.value)?),
            "noise" => {
                let (name, mut r) = call(&mut c, &e.value)?;
                if name != "gradient_noise" {
                    return Err(Diagnostic::error("expected `gradient_noise(eta = .., gamma = ..)`", e.value.span));
                }
                cfg.spec.noise = Some((r.float_or("eta", 0.01)?, r.float_or("gamma", 0.55)?));
                r.finish()?;
            }
            _ => {}
        }
    }
    let _ = &env;
    Ok(cfg)
}

/// `name(args)` evaluated: the callee's name and a reader over the arguments.
fn call(c: &mut Checker, e: &Expr) -> R<(String, ArgReader)> {
    let env = Scope::child(&c.globals[0]);
    let (name, args) = match &e.kind {
        ExprKind::Call(callee, args) => match &callee.kind {
            ExprKind::Name(n) => (n.clone(), CallArgs::eval(c, args, &env, 0)?),
            _ => return Err(Diagnostic::error("expected a call like `adam(lr = 1e-3)`", e.span)),
        },
        ExprKind::Name(n) => (n.clone(), CallArgs::default()),
        _ => return Err(Diagnostic::error("expected a call like `adam(lr = 1e-3)`", e.span)),
    };
    let reader = ArgReader::new(name.clone(), args, e.span);
    Ok((name, reader))
}

fn number(c: &mut Checker, e: &Expr) -> R<f64> {
    let env = Scope::child(&c.globals[0]);
    let v = c.eval(e, &env, 0)?;
    v.as_float().ok_or_else(|| Diagnostic::error(format!("expected a number, found {} `{v}`", v.kind()), e.span))
}

fn nonneg(c: &mut Checker, e: &Expr) -> R<u64> {
    let env = Scope::child(&c.globals[0]);
    let v = c.eval(e, &env, 0)?;
    v.as_const_int()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| Diagnostic::error(format!("expected a non-negative integer, found `{v}`"), e.span))
}

fn positive(c: &mut Checker, e: &Expr) -> R<u64> {
    match nonneg(c, e)? {
        0 => Err(Diagnostic::error("expected a positive integer", e.span)),
        n => Ok(n),
    }
}

/// `loss: cross_entropy(logits, label, smoothing = 0.1)`: output and target are names.
fn read_loss(c: &mut Checker, e: &Expr, cfg: &mut TrainConfig) -> R<()> {
    let ExprKind::Call(callee, args) = &e.kind else {
        return Err(Diagnostic::error("expected a loss like `cross_entropy(logits, label)`", e.span));
    };
    let ExprKind::Name(name) = &callee.kind else { return Err(Diagnostic::error("expected a loss name", callee.span)) };
    let names: Vec<&str> = args
        .iter()
        .take(2)
        .map(|a| match &a.value.kind {
            ExprKind::Name(n) if a.name.is_none() => Ok(n.as_str()),
            _ => Err(Diagnostic::error("the first two arguments of a loss name the output and the target", a.span)),
        })
        .collect::<R<_>>()?;
    let [output, target] = names.as_slice() else {
        return Err(Diagnostic::error("a loss takes the model output and the target: `mse(u, y)`", e.span));
    };
    cfg.spec.output = output.to_string();
    cfg.spec.target = target.to_string();
    let env = Scope::child(&c.globals[0]);
    let rest = CallArgs::eval(c, &args[2..], &env, 0)?;
    let mut r = ArgReader::new(name.clone(), rest, e.span);
    cfg.spec.loss = match name.as_str() {
        "cross_entropy" => Loss::CrossEntropy { smoothing: r.float_or("smoothing", 0.0)? },
        "mse" => Loss::Mse,
        "rel_l2" => Loss::RelL2,
        _ => Loss::Bce,
    };
    r.finish()
}

fn read_optimizer(c: &mut Checker, e: &Expr, cfg: &mut TrainConfig) -> R<()> {
    let (name, mut r) = call(c, e)?;
    cfg.lr = r.float_or("lr", 1e-3)?;
    let wd_default = if name == "adamw" { 0.01 } else { 0.0 };
    let weight_decay = r.float_or("weight_decay", wd_default)?;
    cfg.spec.optimizer = match name.as_str() {
        "sgd" => Optimizer::Sgd {
            momentum: r.float_or("momentum", 0.0)?,
            nesterov: r.bool_or("nesterov", false)?,
            weight_decay,
        },
        "adam" | "adamw" => {
            let (beta1, beta2, eps) =
                (r.float_or("beta1", 0.9)?, r.float_or("beta2", 0.999)?, r.float_or("eps", 1e-8)?);
            if name == "adam" {
                Optimizer::Adam { beta1, beta2, eps, weight_decay }
            } else {
                Optimizer::AdamW { beta1, beta2, eps, weight_decay }
            }
        }
        _ => Optimizer::RmsProp { alpha: r.float_or("alpha", 0.99)?, eps: r.float_or("eps", 1e-8)?, weight_decay },
    };
    r.finish()
}

fn read_schedule(c: &mut Checker, e: &Expr) -> R<ScheduleSpec> {
    let (name, mut r) = call(c, e)?;
    let s = match name.as_str() {
        "constant" => ScheduleSpec::Constant,
        "step" => {
            ScheduleSpec::Step { step_size: r.int_or("step_size", 10)?.max(1) as u64, gamma: r.float_or("gamma", 0.1)? }
        }
        "cosine" => {
            ScheduleSpec::Cosine { warmup: r.int_or("warmup", 0)?.max(0) as u64, min_lr: r.float_or("min_lr", 0.0)? }
        }
        _ => {
            ScheduleSpec::OneCycle { max_lr: r.float_or("max_lr", f64::NAN)?, pct_start: r.float_or("pct_start", 0.3)? }
        }
    };
    r.finish()?;
    Ok(s)
}

fn data_spec(c: &mut Checker, e: &Expr) -> R<DataSpec> {
    let (name, mut r) = call(c, e)?;
    let split = match r.opt("split") {
        Some((super::value::Value::List(items), s)) => Some(
            items
                .iter()
                .map(|v| v.as_float())
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| Diagnostic::error("`split` must be a list of fractions", s))?,
        ),
        Some((v, s)) => return Err(r.wrong("split", "a list of fractions", &v, s)),
        None => None,
    };
    let split_seed = r.int_or("seed", 0)?.max(0) as u64;
    let part = |r: &mut ArgReader, k: &'static str| -> R<Option<String>> {
        match r.opt(k) {
            Some((super::value::Value::Str(s), _)) => Ok(Some(s)),
            Some((v, s)) => Err(r.wrong(k, "a string", &v, s)),
            None => Ok(None),
        }
    };
    let train_part = part(&mut r, "train")?;
    let test_part = part(&mut r, "test")?;
    r.finish()?;
    Ok(DataSpec { name, split, split_seed, train_part, test_part })
}
