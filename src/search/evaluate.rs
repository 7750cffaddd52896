//! Evaluating one candidate of a space on every objective of a search.
//!
//! The data set of the file's `train` block is loaded once (fitted to the first
//! candidate's train step, as `archc train` fits it) and shared by every candidate:
//! proxies read its first `proxy_batch` training rows, latency times the forward on the
//! first `batch` rows, and accuracy trains the candidate for `train_epochs` epochs in the
//! trial's own folder and reads the test accuracy of the last epoch. Parameters start
//! from the train block's seed, as `archc train` would start them.

use super::objective::Objective;
use super::proxies::{Batch, Scorer};
use super::space::Candidate;
use crate::backend::{self, Backend};
use crate::training;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::{ChoiceMode, Options};
use archc_compiler::tir::{cost, Program};
use archc_runtime::train::TrainData;
use archc_runtime::{Interpreter, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// How candidates are evaluated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// What runs latency and training (the default backend when `None`).
    pub backend: Option<Backend>,
    /// Epochs of training for the accuracy objective.
    pub train_epochs: u64,
    /// Timed forward runs for latency (after one untimed run).
    pub latency_runs: usize,
    /// Training rows the proxies see.
    pub proxy_batch: usize,
    /// A latency budget (ms): a candidate whose forward is slower is measured only
    /// (a failed trial, see [`OVER_BUDGET`]) and never trained or scored.
    pub max_latency: Option<f64>,
}

/// How the error of a candidate over the latency budget begins.
pub const OVER_BUDGET: &str = "over --max-latency";

/// One candidate's values, in the order of the objectives asked for.
pub type Metrics = Vec<(Objective, f64)>;

/// Evaluates candidates of one space.
pub struct Evaluator<'a, 's> {
    file: &'a SpaceFile<'s>,
    settings: Settings,
    data: Option<TrainData>,
    /// The train block's settings, read once.
    shared: Option<TrainConfig>,
    /// Programs the strategy's space built already.
    pub built: super::run::Built,
    /// The types of the data fields the loss reads (a loss written as an expression).
    data_fields: std::sync::OnceLock<Vec<archc_compiler::sema::loss_expr::DataField>>,
}

impl<'a, 's> Evaluator<'a, 's> {
    pub fn new(file: &'a SpaceFile<'s>, settings: Settings) -> Self {
        Evaluator {
            file,
            settings,
            data: None,
            shared: None,
            built: Default::default(),
            data_fields: Default::default(),
        }
    }

    /// The candidate's train configuration (its model built in both modes).
    pub fn config(&self, cand: &Candidate) -> Result<TrainConfig, String> {
        let choices = ChoiceMode::Assign { fixed: cand.assignment(), seed: None };
        let mut opts = Options { choices, data_fields: self.data_fields.get().cloned(), ..Options::default() };
        let cfg = self.read_config(&opts)?;
        if cfg.pending.is_empty() {
            return Ok(cfg);
        }
        // A loss written as an expression reads data fields: typed from the data, once.
        let fields = match self.data_fields.get() {
            Some(f) => f.clone(),
            None => {
                let f = training::field_types(&cfg)?;
                self.data_fields.get_or_init(|| f).clone()
            }
        };
        opts.data_fields = Some(fields);
        self.read_config(&opts)
    }

    /// The `train` block read with `opts`, its data paths resolved.
    fn read_config(&self, opts: &Options) -> Result<TrainConfig, String> {
        let mut cfg = self.file.train_config(opts).map_err(|ds| {
            let first = ds.first().map(|d| d.message.clone()).unwrap_or_default();
            format!("the candidate does not build: {first}")
        })?;
        let dir = Path::new(&self.file.name).parent().unwrap_or(Path::new(""));
        training::resolve_data_paths(&mut cfg, dir);
        Ok(cfg)
    }

    /// Every objective of `objectives` for `cand`; training writes into `dir`. Only the
    /// accuracy objective needs the candidate's training build; the others take the
    /// inference build and the settings every candidate shares (the first candidate's).
    pub fn evaluate(&mut self, cand: &Candidate, objectives: &[Objective], dir: &Path) -> Result<Metrics, String> {
        let cfg = match objectives.contains(&Objective::Accuracy) {
            true => self.config(cand)?,
            false => self.inference_config(cand)?,
        };
        let mut out = Vec::new();
        let mut params: Option<HashMap<String, Tensor>> = None;
        let mut latency = None;
        if let Some(bound) = self.settings.max_latency {
            let p = init_params(&cfg, &mut params)?;
            let l = self.latency(&cfg, p)?;
            if l > bound {
                return Err(format!("{OVER_BUDGET}: {l:.3} ms > {bound:.3} ms (not evaluated further)"));
            }
            latency = Some(l);
        }
        for &o in objectives {
            let v = match o {
                Objective::Params => cost::param_count(&cfg.program) as f64,
                Objective::Flops => per_sample_flops(&cfg.program)?,
                Objective::Accuracy => self.accuracy(&cfg, dir)?,
                Objective::Latency => match latency {
                    Some(l) => l,
                    None => {
                        let p = init_params(&cfg, &mut params)?;
                        self.latency(&cfg, p)?
                    }
                },
                Objective::Proxy(proxy) => {
                    let p = init_params(&cfg, &mut params)?.clone();
                    let (x, y) = self.proxy_batch(&cfg)?;
                    Scorer::new(&cfg.program, &cfg.spec.loss)?.score(proxy, &p, &Batch { x: &x, y: &y })?
                }
            };
            if !v.is_finite() {
                return Err(format!("{o} is not finite ({v})"));
            }
            out.push((o, v));
        }
        Ok(out)
    }

    /// The shared settings of the space (the train block read for its first candidate),
    /// with `cand`'s inference build as the model.
    fn inference_config(&mut self, cand: &Candidate) -> Result<TrainConfig, String> {
        if self.shared.is_none() {
            let first = Candidate { decisions: Vec::new(), chosen: Vec::new() };
            self.shared = Some(self.config(&first)?);
        }
        let program = match self.built.take(&cand.assignment()) {
            Some(p) => p,
            None => {
                let choices = ChoiceMode::Assign { fixed: cand.assignment(), seed: None };
                let opts = Options { choices, ..Options::default() };
                self.file.build(&opts).program.map_err(|ds| {
                    let first = ds.first().map(|d| d.message.clone()).unwrap_or_default();
                    format!("the candidate does not build: {first}")
                })?
            }
        };
        // The shared settings without their programs (cloning those per candidate would
        // copy the first candidate's two builds for nothing).
        let s = self.shared.as_ref().expect("read");
        let mut program = program;
        // A loss written as an expression is a function of the shared program.
        let loss_funcs = s.program.funcs.iter().filter(|f| f.name == "loss");
        program.funcs.extend(loss_funcs.cloned());
        let training = program.clone();
        Ok(TrainConfig {
            program,
            training,
            spec: s.spec.clone(),
            lr: s.lr,
            schedule: s.schedule.clone(),
            data: s.data.clone(),
            batch: s.batch,
            epochs: s.epochs,
            seed: s.seed,
            eval_every: s.eval_every,
            tasks: s.tasks.clone(),
            pending: s.pending.clone(),
        })
    }

    /// The training data, loaded on first use.
    fn data(&mut self, cfg: &TrainConfig) -> Result<&TrainData, String> {
        if self.data.is_none() {
            let program = training::train_program(cfg).map_err(|e| format!("cannot build the train step: {e}"))?;
            self.data = Some(training::train_data(cfg, &program)?);
        }
        Ok(self.data.as_ref().expect("loaded"))
    }

    /// The first `proxy_batch` training rows: the model's input and the loss target.
    fn proxy_batch(&mut self, cfg: &TrainConfig) -> Result<(Tensor, Tensor), String> {
        let rows = self.settings.proxy_batch;
        let input = cfg.program.main().arg_names.first().cloned().ok_or("the model has no input")?;
        let target = cfg.spec.target.clone();
        let data = self.data(cfg)?;
        let take: Vec<usize> = (0..rows.min(data.train.len())).collect();
        let part = data.train.select(&take).map_err(|e| e.to_string())?;
        let x = part.get(&input).ok_or_else(|| format!("the data set has no `{input}`"))?.clone();
        let y = part.get(&target).ok_or_else(|| format!("the data set has no `{target}`"))?.clone();
        Ok((x, y))
    }

    /// The median forward time (ms) of the file's network (no choices) at its train
    /// block's batch size, measured as candidates are: the reference of
    /// `--max-latency FILE`.
    pub fn network_latency(&mut self) -> Result<(f64, u64), String> {
        let cfg = self.inference_config(&Candidate { decisions: Vec::new(), chosen: Vec::new() })?;
        let mut params = None;
        let p = init_params(&cfg, &mut params)?;
        Ok((self.latency(&cfg, p)?, cfg.batch))
    }

    /// Median forward time (ms) at the train block's batch size.
    fn latency(&mut self, cfg: &TrainConfig, params: &HashMap<String, Tensor>) -> Result<f64, String> {
        let batch = cfg.batch as usize;
        let input = cfg.program.main().arg_names.first().cloned().ok_or("the model has no input")?;
        let data = self.data(cfg)?;
        let take: Vec<usize> = (0..batch.min(data.train.len())).collect();
        let x = data
            .train
            .select(&take)
            .map_err(|e| e.to_string())?
            .get(&input)
            .ok_or_else(|| format!("the data set has no `{input}`"))?
            .clone();
        let mut exec = backend::executor(&cfg.program, self.settings.backend, None)?;
        for (name, t) in params {
            exec.set_param_value(name, t.clone()).map_err(|e| e.to_string())?;
        }
        exec.run_func("main", std::slice::from_ref(&x), 0).map_err(|e| e.to_string())?;
        let mut times = Vec::with_capacity(self.settings.latency_runs);
        for _ in 0..self.settings.latency_runs.max(1) {
            let t0 = Instant::now();
            exec.run_func("main", std::slice::from_ref(&x), 0).map_err(|e| e.to_string())?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(&mut times))
    }

    /// Test accuracy after `train_epochs` epochs, trained in `dir`.
    fn accuracy(&mut self, cfg: &TrainConfig, dir: &Path) -> Result<f64, String> {
        self.accuracy_at(cfg, dir, self.settings.train_epochs, false)
    }

    /// Trains `cand` on in `dir` (its trial folder, which holds its checkpoint) until
    /// `epochs` epochs in all; the test accuracy then (successive halving's promotion).
    pub fn train_on(&mut self, cand: &Candidate, dir: &Path, epochs: u64) -> Result<f64, String> {
        let cfg = self.config(cand)?;
        self.accuracy_at(&cfg, dir, epochs, true)
    }

    fn accuracy_at(&mut self, cfg: &TrainConfig, dir: &Path, epochs: u64, resume: bool) -> Result<f64, String> {
        let program = training::train_program(cfg).map_err(|e| format!("cannot build the train step: {e}"))?;
        let backend = self.settings.backend;
        let data = self.data(cfg)?;
        if data.test.is_none() {
            return Err("the accuracy objective needs a test part in the train block's data".into());
        }
        let mut spec = training::loop_spec(cfg, data.train.len());
        spec.epochs = epochs;
        spec.eval_every = 0;
        let mut exec = backend::executor(&program, backend, None)?;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let report = archc_runtime::train::train_with(&program, &spec, data, dir, resume, false, exec.as_mut())
            .map_err(|e| e.to_string())?;
        report.test_acc.ok_or_else(|| {
            "training reported no test accuracy (does the train block list `metrics: [accuracy]`, or `accuracy(logits, label)` with a loss written as an expression?)".into()
        })
    }
}

/// The candidate's initial parameters (the train block's seed), made once.
fn init_params<'p>(
    cfg: &TrainConfig,
    slot: &'p mut Option<HashMap<String, Tensor>>,
) -> Result<&'p HashMap<String, Tensor>, String> {
    if slot.is_none() {
        let mut interp = Interpreter::new(&cfg.program);
        interp.init_params(cfg.seed).map_err(|e| e.to_string())?;
        *slot = Some(interp.params().clone());
    }
    Ok(slot.as_ref().expect("made"))
}

/// FLOPs of one sample's forward (every size symbol but the batch at 1 is refused).
fn per_sample_flops(program: &Program) -> Result<f64, String> {
    let sizes: HashMap<String, i64> = [("B".to_string(), 1)].into_iter().collect();
    cost::flops(program, "main", &sizes).map(|f| f as f64)
}

/// The median of `v` (sorted in place); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
