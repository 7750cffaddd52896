//! `archc train FILE --time-steps N`: the median time of one train step on a backend,
//! on random batches of the configured batch size, without a data set or a run folder.
//!
//! Contract: the step's arguments are built from its signature: parameters initialised
//! as for training (`seed`), optimizer state zero, the configured learning rate, and a
//! random tensor for every data field (dims: `B` = the batch size unless `--dim` sets it,
//! others from `--dim`, default 16). Parameters and optimizer state are put into the
//! executor as resident state, as in training, and updated by every step; the same batch
//! and learning rate are given `1 + steps` times. The first run (which compiles) is
//! reported apart from the median of the rest.

use crate::inputs::{arg_shapes, random_tensor};
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::tir::Program;
use archc_runtime::interp::random::init_param;
use archc_runtime::train::step_bindings;
use archc_runtime::{Executor, Tensor};
use std::collections::HashMap;
use std::time::Instant;

/// Step times in milliseconds: the first run and the sorted rest.
pub struct StepTimes {
    pub first_ms: f64,
    pub sorted_ms: Vec<f64>,
}

impl StepTimes {
    pub fn median_ms(&self) -> f64 {
        self.sorted_ms.get(self.sorted_ms.len() / 2).copied().unwrap_or(self.first_ms)
    }
}

/// The train step's arguments on a random batch.
pub fn step_args(cfg: &TrainConfig, program: &Program, dims: &HashMap<String, i64>) -> Result<Vec<Tensor>, String> {
    let f = program.func("train_step").ok_or("the program has no train step")?;
    let mut dims = dims.clone();
    dims.entry("B".into()).or_insert(cfg.batch as i64);
    let shapes = arg_shapes(f, &dims)?;
    f.arg_names
        .iter()
        .zip(&f.args)
        .zip(shapes)
        .enumerate()
        .map(|(i, ((name, (_, ty)), shape))| {
            if let Some(p) = name.strip_prefix("param:") {
                let decl = program.param(p).ok_or_else(|| format!("no parameter {p}"))?;
                init_param(decl, cfg.seed)
            } else if name == "lr" {
                Ok(Tensor::full(ty.dtype, &[], cfg.lr))
            } else if name.starts_with("state:") {
                Ok(Tensor::zeros(ty.dtype, &shape))
            } else {
                Ok(random_tensor(ty.dtype, &shape, cfg.seed.wrapping_add(i as u64)))
            }
        })
        .collect()
}

/// Runs `program`'s train step `1 + steps` times from `args` (see the module docs).
pub fn time_steps(
    exec: &mut dyn Executor,
    program: &Program,
    args: Vec<Tensor>,
    steps: usize,
) -> Result<StepTimes, String> {
    let f = program.func("train_step").ok_or("the program has no train step")?;
    let bindings = step_bindings(f);
    let mut given = Vec::new();
    for (t, name) in args.into_iter().zip(&bindings.args) {
        match name {
            Some(name) => exec.put_state(name, t).map_err(|e| e.to_string())?,
            None => given.push(t),
        }
    }
    let mut run = || -> Result<f64, String> {
        let batch = given.clone();
        let t = Instant::now();
        exec.run_bound("train_step", &bindings, batch, 0).map_err(|e| e.to_string())?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    let first_ms = run()?;
    let mut sorted_ms = (0..steps).map(|_| run()).collect::<Result<Vec<_>, _>>()?;
    sorted_ms.sort_by(f64::total_cmp);
    Ok(StepTimes { first_ms, sorted_ms })
}
