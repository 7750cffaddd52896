//! Training a supernet: one weight set, subnets sampled every step.
//!
//! Contract:
//! - The weights, the optimizer's slots, the gradient accumulators (`grad:NAME`) and the
//!   step counter are the executor's resident state for the whole run. A step draws its
//!   subnets ([`SampleRule`]), runs each one's `sN.grad_step` on the batch (the
//!   gradients add up in the accumulators; BatchNorm statistics are updated by each
//!   subnet in turn), then `apply_step` once: one update from the summed gradients, as
//!   OFA, BigNAS and US-Nets accumulate them (zeroed, not unset: a parameter no subnet of
//!   the step used still moves by its momentum, as with PyTorch 1.x's `zero_grad`).
//! - `Shrink` delays when dimensions become elastic: with none elastic a step trains the
//!   largest subnet alone; a decision not yet elastic holds its largest option (an int)
//!   or its first (a choice among layers). With a ramp ([`Shrink::epsilon`], DεpS's
//!   ε-shrinking) the gradients of a step's subnets after the first (the sandwich rule's
//!   largest) are weighed by ε, rising from 0 to 1 once shrinking starts.
//! - Everything random is a function of the `train` block's seed: initial weights, batch
//!   order, the subnets drawn (ChaCha8 seeded by it), dropout per step. The same
//!   command gives the same weights, bit for bit, on the same backend.
//! - Compiled steps: one `grad_step` and one `eval_step` per structure and one
//!   `apply_step`; the count is reported and does not grow with the steps (widths are
//!   run-time sizes).
//! - After each epoch the largest and the smallest subnet (every int decision at its
//!   largest or smallest option, choices among layers at their first) are evaluated on
//!   the test part,
//!   each with its buffers (BatchNorm's running statistics, which every subnet of a step
//!   updates in turn) recalibrated first, as OFA does for each subnet it extracts: reset
//!   to their initial values, then updated by the subnet's training-mode pass over up to
//!   [`CALIBRATION_BATCHES`] training batches (gradients discarded); the supernet's own
//!   buffers are put back afterwards. One line per epoch goes to `metrics.jsonl`.
//! - At the end the weights are written to `supernet.safetensors` (by parameter name, as
//!   a plain weights file), with `supernet.json` (the space file, the rule, steps,
//!   structures, compile count).

use super::build::{func_name, Built, Teacher, TeacherKind};
use super::space::{Kind, Rule, Subnets};
use archc_compiler::tir::{DType, Program};
use archc_runtime::data::{Dataset, Frame};
use archc_runtime::train::{step_seed, TrainData};
use archc_runtime::{Bindings, Executor, Interpreter, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The given scalar that weighs a gradient step's gradients (`autodiff::split`).
pub const LOSS_SCALE: &str = "loss_scale";

/// Training batches that recalibrate a subnet's buffers before it is evaluated.
pub const CALIBRATION_BATCHES: usize = 50;

/// The first [`CALIBRATION_BATCHES`] batches of epoch `epoch` of `train`, read.
pub fn calibration_batches(train: &Frame, batch: usize, seed: u64, epoch: u64) -> Result<Vec<Dataset>, String> {
    let batches = train.batches(batch, seed, epoch, false).take(CALIBRATION_BATCHES);
    batches.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// Which subnets a step trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleRule {
    /// The largest, the smallest and `n` uniform subnets (BigNAS, US-Nets).
    Sandwich { n: usize },
    /// `n` uniform subnets (OFA's random subnets per step).
    Random { n: usize },
    /// One uniform subnet (single-path one-shot, SPOS).
    Uniform,
    /// One subnet of the nested sequence from smallest to largest, its level uniform
    /// (SortedNet).
    Sorted,
}

impl SampleRule {
    /// The subnets (leaf indices) of one step, with the decisions of the kinds not in
    /// `elastic` held (see [`Subnets::sample_frozen`]); only the largest subnet when
    /// nothing is elastic.
    pub fn draw(&self, space: &Subnets, elastic: &[Kind], rng: &mut ChaCha8Rng) -> Vec<usize> {
        use rand::Rng;
        let frozen = |name: &str| !elastic.contains(&space.kind(name));
        let mut one = |rule| space.sample_frozen(rule, &frozen, rng);
        if elastic.is_empty() {
            return vec![one(Rule::Largest)];
        }
        match *self {
            SampleRule::Sandwich { n } => {
                let mut v = vec![one(Rule::Largest), one(Rule::Smallest)];
                v.extend((0..n).map(|_| one(Rule::Uniform)));
                v
            }
            SampleRule::Random { n } => (0..n.max(1)).map(|_| one(Rule::Uniform)).collect(),
            SampleRule::Uniform => vec![one(Rule::Uniform)],
            SampleRule::Sorted => {
                let level: f64 = rng.random();
                vec![space.sample_frozen(Rule::Level(level), &frozen, rng)]
            }
        }
    }
}

/// When the dimensions become elastic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shrink {
    /// Every dimension from the first step.
    None,
    /// Once-for-All's progressive shrinking: the training is cut in four equal parts:
    /// the largest subnet only, then layer choices elastic, then depths too, then widths
    /// too.
    Progressive,
    /// Delayed shrinking (DεpS): the largest subnet only for this fraction of the steps,
    /// then every dimension.
    Delayed(f64),
}

impl Shrink {
    /// The kinds of decision that are elastic at `step` of `total`.
    pub fn elastic(&self, step: u64, total: u64) -> Vec<Kind> {
        let at = step as f64 / total.max(1) as f64;
        let all = vec![Kind::Layer, Kind::Depth, Kind::Width];
        match *self {
            Shrink::None => all,
            Shrink::Progressive => all.into_iter().take((at * 4.0).floor() as usize).collect(),
            Shrink::Delayed(f) if at < f => Vec::new(),
            Shrink::Delayed(_) => all,
        }
    }

    /// The fraction of the steps before any dimension is elastic.
    fn start(&self) -> f64 {
        match *self {
            Shrink::None => 0.0,
            Shrink::Progressive => 0.25,
            Shrink::Delayed(f) => f,
        }
    }

    /// DεpS's ε-shrinking: the weight of the subnets after the first (the largest) at
    /// `step` of `total`, rising linearly from 0 when shrinking starts to 1 after `ramp`
    /// of the steps; 1 throughout when `ramp` is 0.
    pub fn epsilon(&self, step: u64, total: u64, ramp: f64) -> f64 {
        if ramp <= 0.0 {
            return 1.0;
        }
        let at = step as f64 / total.max(1) as f64;
        ((at - self.start()) / ramp).clamp(0.0, 1.0)
    }
}

/// The run's executor, program and the bindings of its functions.
pub struct Run<'a> {
    pub exec: Box<dyn Executor + 'a>,
    pub program: &'a Program,
    pub space: &'a Subnets,
    pub built: &'a Built,
}

/// What an epoch of supernet training measured.
#[derive(Clone, Debug, Default)]
pub struct EpochStats {
    pub train_loss: f64,
    pub largest: Option<(f64, f64)>,
    pub smallest: Option<(f64, f64)>,
}

/// The bindings of a supernet function: parameters, slots and accumulators are state.
pub fn bindings(program: &Program, func: &str) -> Bindings {
    Bindings::by_prefix(program.func(func).expect("built"), &["param:", "state:", "grad:"])
}

impl Run<'_> {
    /// Puts the initial state: weights by their initialisers (`seed`), zero slots,
    /// accumulators and step.
    pub fn init(&mut self, seed: u64) -> Result<(), String> {
        let mut interp = Interpreter::new(self.program);
        interp.init_params(seed).map_err(|e| e.to_string())?;
        let slots = self.built.cfg.spec.optimizer.slots();
        for p in &self.program.params {
            let v = interp.param(&p.name).ok_or("internal: parameter not initialised")?.clone();
            let zeros = Tensor::zeros(v.dtype(), v.shape());
            self.put(&format!("param:{}", p.name), v)?;
            if p.trainable {
                self.put(&format!("grad:{}", p.name), zeros.clone())?;
                for s in slots {
                    self.put(&format!("state:{}.{s}", p.name), zeros.clone())?;
                }
            }
        }
        self.put("state:step", Tensor::zeros(DType::F32, &[]))
    }

    fn put(&mut self, name: &str, t: Tensor) -> Result<(), String> {
        self.exec.put_state(name, t).map_err(|e| e.to_string())
    }

    /// The given inputs of structure function `func` for subnet `leaf` on `batch`.
    fn given(&self, func: &str, leaf: usize, batch: &Dataset) -> Result<Vec<Tensor>, String> {
        self.given_with(func, leaf, batch, None, 1.0)
    }

    /// [`Self::given`], with `targets` in place of the batch's targets when given.
    fn given_with(
        &self,
        func: &str,
        leaf: usize,
        batch: &Dataset,
        targets: Option<&Tensor>,
        scale: f64,
    ) -> Result<Vec<Tensor>, String> {
        let f = self.program.func(func).expect("built");
        let widths = &self.space.leaves[leaf].widths;
        let target = &self.built.cfg.spec.target;
        let mut out = Vec::new();
        for (name, bound) in f.arg_names.iter().zip(bindings(self.program, func).args) {
            if bound.is_some() {
                continue;
            }
            let t = match (widths.iter().find(|(n, _)| n == name), targets) {
                (Some((_, w)), _) => Tensor::zeros(DType::F32, &[0, *w as usize]),
                (None, Some(t)) if name == target => t.clone(),
                (None, _) if name == LOSS_SCALE => Tensor::scalar_f32(scale as f32),
                (None, _) => batch.get(name).ok_or_else(|| format!("the data set has no `{name}`"))?.clone(),
            };
            out.push(t);
        }
        Ok(out)
    }

    /// One step: the subnets `leaves` on `batch`, then the update with rate `lr`.
    /// Returns the mean loss over the subnets. With a teacher (in-place distillation)
    /// the first subnet learns from the labels and teaches the others. The gradients of
    /// every subnet after the first are weighed by `epsilon` (DεpS's ε-shrinking; 1 for
    /// the plain sum).
    pub fn step(&mut self, leaves: &[usize], batch: &Dataset, lr: f64, epsilon: f64, seed: u64) -> Result<f64, String> {
        let mut loss = 0.0;
        let mut soft: Option<Tensor> = None;
        for (k, &leaf) in leaves.iter().enumerate() {
            let structure = self.space.leaves[leaf].structure;
            let func = match (&self.built.teacher, &soft) {
                (Some(t), Some(_)) => t.step(structure),
                _ => func_name(structure, "grad_step"),
            };
            let scale = if k == 0 { 1.0 } else { epsilon };
            let given = self.given_with(&func, leaf, batch, soft.as_ref(), scale)?;
            let b = bindings(self.program, &func);
            let out = self.exec.run_bound(&func, &b, given, seed).map_err(|e| e.to_string())?;
            let l = scalar(&out[0]);
            if !l.is_finite() {
                return Err(format!("subnet {leaf}: the loss is not finite ({l})"));
            }
            loss += l;
            if let (0, Some(teacher)) = (k, self.built.teacher) {
                if leaves.len() > 1 {
                    let output = returned(self.program, &func, &b, &out, "output")
                        .ok_or("internal: the grad step returns no output")?;
                    soft = Some(teacher_targets(&teacher, output, batch.get(&self.built.cfg.spec.target))?);
                }
            }
        }
        let b = bindings(self.program, "apply_step");
        self.exec
            .run_bound("apply_step", &b, vec![Tensor::full(DType::F32, &[], lr)], seed)
            .map_err(|e| e.to_string())?;
        Ok(loss / leaves.len().max(1) as f64)
    }

    /// The buffers' names (non-trainable parameters).
    fn buffers(&self) -> Vec<String> {
        self.program.params.iter().filter(|p| !p.trainable).map(|p| format!("param:{}", p.name)).collect()
    }

    /// Recalibrates subnet `leaf`'s buffers on `batches` (see the module docs); returns
    /// the buffers' values before, to put back.
    pub fn calibrate(&mut self, leaf: usize, batches: &[Dataset]) -> Result<Vec<(String, Tensor)>, String> {
        let names = self.buffers();
        let mut saved = Vec::new();
        for n in &names {
            saved.push((n.clone(), self.exec.read_state(n).map_err(|e| e.to_string())?));
        }
        if names.is_empty() {
            return Ok(saved);
        }
        let mut interp = Interpreter::new(self.program);
        interp.init_params(self.built.cfg.seed).map_err(|e| e.to_string())?;
        for n in &names {
            let init = interp.param(n.trim_start_matches("param:")).ok_or("internal: buffer not initialised")?;
            self.put(n, init.clone())?;
        }
        let func = func_name(self.space.leaves[leaf].structure, "grad_step");
        let mut b = bindings(self.program, &func);
        // Gradients are returned (and dropped), not added to the accumulators.
        for r in b.results.iter_mut() {
            if r.as_deref().is_some_and(|n| n.starts_with("grad:")) {
                *r = None;
            }
        }
        for (i, batch) in batches.iter().enumerate() {
            let given = self.given(&func, leaf, batch)?;
            self.exec.run_bound(&func, &b, given, i as u64).map_err(|e| e.to_string())?;
        }
        Ok(saved)
    }

    /// Puts buffers back (from [`Self::calibrate`]).
    pub fn restore(&mut self, saved: Vec<(String, Tensor)>) -> Result<(), String> {
        for (n, t) in saved {
            self.put(&n, t)?;
        }
        Ok(())
    }

    /// Test loss and accuracy (when the loss has one) of subnet `leaf`, in chunks of `batch`.
    pub fn evaluate(&mut self, leaf: usize, test: &Frame, batch: usize) -> Result<(f64, f64), String> {
        let func = func_name(self.space.leaves[leaf].structure, "eval_step");
        let b = bindings(self.program, &func);
        let names = self.program.func(&func).expect("built").result_names.clone();
        let (mut loss, mut correct, n) = (0.0, 0.0, test.len());
        for start in (0..n).step_by(batch.max(1)) {
            let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
            let given = self.given(&func, leaf, &test.select(&rows).map_err(|e| e.to_string())?)?;
            let out = self.exec.run_bound(&func, &b, given, 0).map_err(|e| e.to_string())?;
            for (name, t) in names.iter().zip(&out) {
                match name.as_str() {
                    "loss" => loss += scalar(t) * rows.len() as f64,
                    "metric:correct" => correct += scalar(t),
                    _ => {}
                }
            }
        }
        let n = n.max(1) as f64;
        Ok((loss / n, correct / n))
    }

    /// The weights by parameter name, read back.
    pub fn weights(&mut self) -> Result<BTreeMap<String, Tensor>, String> {
        let mut out = BTreeMap::new();
        for p in &self.program.params {
            let t = self.exec.read_state(&format!("param:{}", p.name)).map_err(|e| e.to_string())?;
            out.insert(p.name.clone(), t);
        }
        Ok(out)
    }
}

/// The returned result `name` of `func` among `out` (the results `b` does not bind).
fn returned<'t>(program: &Program, func: &str, b: &Bindings, out: &'t [Tensor], name: &str) -> Option<&'t Tensor> {
    let f = program.func(func)?;
    let k = b.returned().position(|i| f.result_names[i] == name)?;
    out.get(k)
}

/// The targets a distilled subnet learns from: `(1 - w) · labels + w · teacher`, the
/// teacher's `output` turned into a target as its kind says (see [`Teacher`]); the labels
/// are the batch's `target` (class indices become one-hot rows, smoothed).
pub fn teacher_targets(teacher: &Teacher, output: &Tensor, target: Option<&Tensor>) -> Result<Tensor, String> {
    let target = target.ok_or("the batch has no targets")?;
    let out = output.to_f64_vec().ok_or("the teacher's output is not real")?;
    let w = teacher.weight;
    let shape = output.shape().to_vec();
    let mixed: Vec<f64> = match teacher.kind {
        TeacherKind::Softmax { smoothing } => {
            let (b, c) = match shape[..] {
                [b, c] => (b, c),
                _ => return Err(format!("distillation needs [B, C] logits, found {}", output.type_string())),
            };
            let labels = target.as_i64().filter(|l| l.len() == b).ok_or("distillation needs i64[B] labels")?;
            let mut v = Vec::with_capacity(b * c);
            for (row, &label) in out.chunks(c.max(1)).zip(labels) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|z| (z - max).exp()).sum();
                for (j, z) in row.iter().enumerate() {
                    let hard = if j as i64 == label { 1.0 - smoothing } else { 0.0 } + smoothing / c as f64;
                    v.push((1.0 - w) * hard + w * (z - max).exp() / sum);
                }
            }
            v
        }
        TeacherKind::Sigmoid | TeacherKind::Identity => {
            let t = target.to_f64_vec().filter(|t| t.len() == out.len()).ok_or("targets of the output's shape")?;
            let f = |z: f64| if teacher.kind == TeacherKind::Sigmoid { 1.0 / (1.0 + (-z).exp()) } else { z };
            t.iter().zip(&out).map(|(t, z)| (1.0 - w) * t + w * f(*z)).collect()
        }
    };
    Ok(Tensor::from_f64(&shape, mixed).cast(output.dtype()))
}

/// The sum of a float tensor's values (a scalar's value).
fn scalar(t: &Tensor) -> f64 {
    t.to_f64_vec().map_or(f64::NAN, |v| v.iter().sum())
}

/// Trains for `epochs` epochs; calls `report` after each.
pub fn train(
    run: &mut Run,
    data: &TrainData,
    rule: SampleRule,
    shrink: Shrink,
    ramp: f64,
    epochs: u64,
    mut report: impl FnMut(u64, &EpochStats) -> Result<(), String>,
) -> Result<u64, String> {
    let cfg = &run.built.cfg;
    let spec = crate::training::loop_spec(cfg, data.train.len());
    let batch = cfg.batch as usize;
    let per_epoch = (data.train.len() as u64).div_ceil(batch.max(1) as u64);
    let total = per_epoch * epochs;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Every int decision at its largest (smallest) option, choices among layers at their
    // first.
    let layers = |name: &str| run.space.kind(name) == Kind::Layer;
    let largest = run.space.sample_frozen(Rule::Largest, &layers, &mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let smallest = run.space.sample_frozen(Rule::Smallest, &layers, &mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let mut step = 0u64;
    for epoch in 0..epochs {
        let (mut loss_sum, mut n) = (0.0, 0u64);
        for b in data.train.batches(batch, cfg.seed, epoch, false) {
            let b = b.map_err(|e| e.to_string())?;
            let leaves = rule.draw(run.space, &shrink.elastic(step, total), &mut rng);
            let lr = spec.schedule.lr(step, total);
            let eps = shrink.epsilon(step, total, ramp);
            loss_sum +=
                run.step(&leaves, &b, lr, eps, step_seed(cfg.seed, step)).map_err(|e| format!("step {step}: {e}"))?;
            n += 1;
            step += 1;
        }
        let mut stats = EpochStats { train_loss: loss_sum / n.max(1) as f64, ..EpochStats::default() };
        if let Some(test) = &data.test {
            let calibration = calibration_batches(&data.train, batch, cfg.seed, epoch)?;
            for (leaf, slot) in [(largest, &mut stats.largest), (smallest, &mut stats.smallest)] {
                let saved = run.calibrate(leaf, &calibration)?;
                *slot = Some(run.evaluate(leaf, test, batch)?);
                run.restore(saved)?;
            }
        }
        report(epoch, &stats)?;
    }
    Ok(step)
}
