//! ProxylessNAS (Cai, Zhu and Han, 2019) over a supernet's choices among layers:
//! architecture parameters learned through binary gates next to the shared weights, with
//! an expected-latency term from a latency table measured on the run's backend.
//!
//! Contract:
//! - Every choice among layers with two or more options (after `--choices` pins) gets
//!   logits `α` (zero at the start) and probabilities `p = softmax(α)`. A decision of
//!   another kind (a depth, a width) must be pinned to one option.
//! - Latency table ([`LatencyTable`]): measured before training on the run's backend:
//!   the forward (the train block's batch, median of the runs) of the reference subnet
//!   (every choice at its first option) and of each subnet that differs from it in one
//!   choice (the least of three medians, measured in interleaved rounds); an option's
//!   entry is its subnet's time less the reference's. The expected
//!   latency is `E[lat] = ref + Σ_c Σ_j p_cj · lat_cj`.
//! - The training rows split: the last tenth is held out for the architecture steps.
//!   Every step is a weight step: one path per choice drawn from `p` (the binary gate),
//!   that subnet's gradient step and the update. After the warm-up (a fraction of the
//!   epochs with weight steps only, `p` uniform) an architecture step follows every
//!   `arch_every`-th weight step of an epoch, on a held-out batch: per choice two paths drawn from `p` without
//!   replacement, the active one drawn from their renormalised probabilities `q`; the
//!   gated step ([`super::build::GATED_STEP`]) with the gates one-hot on the active paths
//!   gives `∂L/∂g`; `∂L/∂α_i = Σ_j ∂L/∂g_j · q_j (δ_ij − q_i)` over the two, plus
//!   `λ · ∂E[lat]/∂α / bound` over every option; Adam (β1 = 0 as in the reference code;
//!   β2 a setting, the reference's 0.999 by default); then the two logits are shifted together so that their share of
//!   the probability is what it was before the update (the reference's rescaling).
//! - The latency bound is a constraint: `λ` follows dual ascent,
//!   `λ ← max(0, λ + ρ · (lat / bound − 1))` after each architecture step, `lat` the
//!   larger of `E[lat]` and the table latency of the argmax subnet (the expectation
//!   alone can meet the bound while the subnet that is derived does not).
//! - The derived architecture is the most probable subnet (`Σ log p`) whose table
//!   latency meets the bound: the argmax per choice when that one does.
//! - Everything random is a function of the train block's seed.

use super::build::GATED_STEP;
use super::space::{Kind, Subnets};
use super::train::{bindings, Run};
use archc_compiler::tir::DType;
use archc_runtime::data::{Dataset, Frame};
use archc_runtime::train::{step_seed, TrainData};
use archc_runtime::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Adam's epsilon for the architecture logits.
const EPS: f64 = 1e-8;

/// One learned choice among layers.
#[derive(Clone, Debug)]
pub struct ArchChoice {
    /// The decision's qualified name.
    pub name: String,
    /// Its gate parameter (`arch_gate.NAME`) and the number of options the gate has.
    pub gate: String,
    pub width: usize,
    /// The options some subnet takes (indices into the gate), and their logits.
    pub options: Vec<usize>,
    pub alpha: Vec<f64>,
    v: Vec<f64>,
}

impl ArchChoice {
    pub fn new(name: String, gate: String, width: usize, options: Vec<usize>) -> ArchChoice {
        let n = options.len();
        ArchChoice { name, gate, width, options, alpha: vec![0.0; n], v: vec![0.0; n] }
    }

    /// `softmax(α)`.
    pub fn probs(&self) -> Vec<f64> {
        softmax(&self.alpha)
    }
}

/// `softmax(x)`, computed from the largest entry.
pub fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// An index drawn from `p` (non-negative, summing to about 1).
fn draw(p: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let mut u: f64 = rng.random::<f64>() * p.iter().sum::<f64>();
    for (i, w) in p.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    p.len() - 1
}

/// Two distinct indices drawn from `p` without replacement (one when `p` has one entry).
fn draw_two(p: &[f64], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let a = draw(p, rng);
    if p.len() < 2 {
        return vec![a];
    }
    let mut rest = p.to_vec();
    rest[a] = 0.0;
    match rest.iter().sum::<f64>() > 0.0 {
        true => vec![a, draw(&rest, rng)],
        false => vec![a, (a + 1) % p.len()],
    }
}

/// The latency table (see the module docs), in ms.
#[derive(Clone, Debug)]
pub struct LatencyTable {
    pub reference: f64,
    /// Per learned choice, per option (as `ArchChoice::options`).
    pub delta: Vec<Vec<f64>>,
}

impl LatencyTable {
    /// `E[lat]` under the choices' probabilities.
    pub fn expected(&self, choices: &[ArchChoice]) -> f64 {
        self.reference + choices.iter().zip(&self.delta).map(|(c, d)| dot(&c.probs(), d)).sum::<f64>()
    }

    /// The table latency of the subnet taking option `picks[c]` (a position in
    /// `ArchChoice::options`) of each choice.
    pub fn of(&self, picks: &[usize]) -> f64 {
        self.reference + picks.iter().zip(&self.delta).map(|(&j, d)| d[j]).sum::<f64>()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How the search runs.
#[derive(Clone, Debug)]
pub struct Spec {
    pub epochs: u64,
    /// The fraction of the epochs with weight steps only.
    pub warmup: f64,
    /// The architecture logits' learning rate and Adam's β2 for them.
    pub arch_lr: f64,
    pub arch_beta2: f64,
    /// Weight steps per architecture step.
    pub arch_every: u64,
    /// The latency bound (ms) and the starting weight of its term.
    pub bound: f64,
    pub lambda: f64,
    /// The dual ascent rate of `λ`.
    pub rho: f64,
}

/// What an epoch measured.
#[derive(Clone, Debug)]
pub struct EpochStats {
    pub train_loss: f64,
    pub arch_loss: Option<f64>,
    pub expected_latency: f64,
    pub lambda: f64,
    /// The derived subnet's test loss and accuracy (shared weights, buffers recalibrated).
    pub derived: Option<(f64, f64)>,
}

/// The search's state: the run, the learned choices, the table.
pub struct Search<'r, 'a> {
    pub run: &'r mut Run<'a>,
    pub choices: Vec<ArchChoice>,
    pub table: LatencyTable,
    /// Gates of choices among layers that are not learned: (gate, width, its one option).
    pub fixed_gates: Vec<(String, usize, usize)>,
    pub lambda: f64,
    arch_steps: u64,
}

impl<'r, 'a> Search<'r, 'a> {
    pub fn new(
        run: &'r mut Run<'a>,
        choices: Vec<ArchChoice>,
        table: LatencyTable,
        fixed_gates: Vec<(String, usize, usize)>,
        lambda: f64,
    ) -> Self {
        Search { run, choices, table, fixed_gates, lambda, arch_steps: 0 }
    }

    /// Draws a subnet: each learned choice's option from `p`, the others at their only
    /// option.
    fn sample_leaf(&self, rng: &mut ChaCha8Rng) -> usize {
        let space: &Subnets = self.run.space;
        space.sample_with(&mut |name, available| match self.choices.iter().find(|c| c.name == name) {
            Some(c) => {
                let p = c.probs();
                let weights: Vec<f64> =
                    available.iter().map(|o| c.options.iter().position(|x| x == o).map_or(0.0, |k| p[k])).collect();
                available[draw(&weights, rng)]
            }
            None => available[0],
        })
    }

    /// Puts the gates' initial state: the fixed gates one-hot, accumulators zero.
    pub fn init_gates(&mut self) -> Result<(), String> {
        let mut all: Vec<(String, usize, Option<usize>)> =
            self.choices.iter().map(|c| (c.gate.clone(), c.width, None)).collect();
        all.extend(self.fixed_gates.iter().map(|(g, w, o)| (g.clone(), *w, Some(*o))));
        for (gate, width, on) in all {
            self.put(&format!("param:{gate}"), one_hot(width, on.unwrap_or(0)))?;
            self.put(&format!("grad:{gate}"), Tensor::zeros(DType::F32, &[width]))?;
        }
        Ok(())
    }

    fn put(&mut self, name: &str, t: Tensor) -> Result<(), String> {
        self.run.exec.put_state(name, t).map_err(|e| e.to_string())
    }

    /// One architecture step on `batch` (see the module docs); returns the batch's loss.
    pub fn arch_step(&mut self, batch: &Dataset, spec: &Spec, rng: &mut ChaCha8Rng, seed: u64) -> Result<f64, String> {
        // Per choice: the two paths (positions in `options`), their renormalised
        // probabilities and the active one.
        let mut drawn = Vec::with_capacity(self.choices.len());
        for c in &self.choices {
            let pair = draw_two(&c.probs(), rng);
            let q = softmax(&pair.iter().map(|&k| c.alpha[k]).collect::<Vec<_>>());
            let active = pair[draw(&q, rng)];
            drawn.push((pair, q, active));
        }
        for (c, (_, _, active)) in self.choices.clone().iter().zip(&drawn) {
            self.put(&format!("param:{}", c.gate), one_hot(c.width, c.options[*active]))?;
            self.put(&format!("grad:{}", c.gate), Tensor::zeros(DType::F32, &[c.width]))?;
        }
        let given = gated_inputs(self.run, batch)?;
        let b = bindings(self.run.program, GATED_STEP);
        let out = self.run.exec.run_bound(GATED_STEP, &b, given, seed).map_err(|e| e.to_string())?;
        let loss = out.first().and_then(|t| t.to_f64_vec()).map_or(f64::NAN, |v| v.iter().sum());
        if !loss.is_finite() {
            return Err(format!("architecture step: the loss is not finite ({loss})"));
        }
        self.arch_steps += 1;
        let expected = self.table.expected(&self.choices);
        for (ci, (pair, q, _)) in drawn.iter().enumerate() {
            let g = self.run.exec.read_state(&format!("grad:{}", self.choices[ci].gate)).map_err(|e| e.to_string())?;
            let dg = g.to_f64_vec().ok_or("internal: a gate's gradient is not real")?;
            let c = &mut self.choices[ci];
            let grad = logit_gradient(c, &self.table.delta[ci], pair, q, &dg, self.lambda, spec.bound);
            update(c, pair, &grad, (spec.arch_lr, spec.arch_beta2), self.arch_steps);
        }
        let argmax: Vec<usize> = self.choices.iter().map(|c| argmax(&c.probs())).collect();
        let over = expected.max(self.table.of(&argmax));
        self.lambda = (self.lambda + spec.rho * (over / spec.bound - 1.0)).max(0.0);
        Ok(loss)
    }
}

/// `∂(L + λ·E[lat]/bound)/∂α` of choice `c` whose latency row is `delta` (see the
/// module docs): `dg` is `∂L/∂g` over the gate, `pair` the drawn positions in
/// `c.options` and `q` their renormalised probabilities.
pub fn logit_gradient(
    c: &ArchChoice,
    delta: &[f64],
    pair: &[usize],
    q: &[f64],
    dg: &[f64],
    lambda: f64,
    bound: f64,
) -> Vec<f64> {
    let mut grad = vec![0.0; c.alpha.len()];
    for (a, &i) in pair.iter().enumerate() {
        for (b, &j) in pair.iter().enumerate() {
            let kronecker = if a == b { 1.0 } else { 0.0 };
            grad[i] += dg[c.options[j]] * q[b] * (kronecker - q[a]);
        }
    }
    let p = c.probs();
    let mean = dot(&p, delta);
    for (k, g) in grad.iter_mut().enumerate() {
        *g += lambda / bound * p[k] * (delta[k] - mean);
    }
    grad
}

/// Adam step `t` (from 1, β1 = 0; `adam` is the rate and β2) on `c`'s logits, then the drawn `pair` shifted so that
/// `log Σ_pair exp(α)` is what it was before the step (the reference's rescaling).
pub fn update(c: &mut ArchChoice, pair: &[usize], grad: &[f64], adam: (f64, f64), t: u64) {
    let (lr, beta2) = adam;
    let before = logsumexp(&pair.iter().map(|&k| c.alpha[k]).collect::<Vec<_>>());
    for (k, g) in grad.iter().enumerate() {
        c.v[k] = beta2 * c.v[k] + (1.0 - beta2) * g * g;
        let v_hat = c.v[k] / (1.0 - beta2.powi(t.min(i32::MAX as u64) as i32));
        c.alpha[k] -= lr * g / (v_hat.sqrt() + EPS);
    }
    let after = logsumexp(&pair.iter().map(|&k| c.alpha[k]).collect::<Vec<_>>());
    for &k in pair {
        c.alpha[k] -= after - before;
    }
}

/// The most probable subnet whose table latency meets `bound` (positions in each
/// choice's options) and its table latency; `None` when no subnet meets it.
pub fn derive(choices: &[ArchChoice], table: &LatencyTable, bound: f64) -> Option<(Vec<usize>, f64)> {
    let logp: Vec<Vec<f64>> = choices.iter().map(|c| c.probs().iter().map(|p| p.ln()).collect()).collect();
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut picks = vec![0usize; choices.len()];
    loop {
        let score: f64 = picks.iter().zip(&logp).map(|(&j, l)| l[j]).sum();
        if table.of(&picks) <= bound && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, picks.clone()));
        }
        if !advance(&mut picks, choices) {
            break;
        }
    }
    best.map(|(_, p)| {
        let lat = table.of(&p);
        (p, lat)
    })
}

/// The subnet with the lowest table latency.
pub fn fastest(table: &LatencyTable) -> (Vec<usize>, f64) {
    let picks: Vec<usize> =
        table.delta.iter().map(|d| (0..d.len()).fold(0, |b, k| if d[k] < d[b] { k } else { b })).collect();
    let lat = table.of(&picks);
    (picks, lat)
}

/// The index of the largest entry (the first of equals).
fn argmax(x: &[f64]) -> usize {
    (0..x.len()).fold(0, |b, k| if x[k] > x[b] { k } else { b })
}

/// The subnet of `space` that takes option `picks[c]` (a position in the options) of
/// each learned choice, the other decisions at their first available option.
pub fn leaf_of(space: &Subnets, choices: &[ArchChoice], picks: &[usize]) -> usize {
    space.sample_with(&mut |name, available| {
        let want = choices.iter().zip(picks).find(|(c, _)| c.name == name).map(|(c, &p)| c.options[p]);
        want.filter(|w| available.contains(w)).unwrap_or(available[0])
    })
}

/// `log Σ exp(x)` (−∞ for none).
fn logsumexp(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NEG_INFINITY;
    }
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// The next combination of options (odometer order); false after the last.
fn advance(picks: &mut [usize], choices: &[ArchChoice]) -> bool {
    for (p, c) in picks.iter_mut().zip(choices) {
        *p += 1;
        if *p < c.options.len() {
            return true;
        }
        *p = 0;
    }
    false
}

/// `f32[width]` with a one at `on`.
fn one_hot(width: usize, on: usize) -> Tensor {
    let v: Vec<f32> = (0..width).map(|i| if i == on { 1.0 } else { 0.0 }).collect();
    Tensor::from_f32(&[width], v)
}

/// The gated step's given inputs (its data arguments) from `batch`.
fn gated_inputs(run: &Run, batch: &Dataset) -> Result<Vec<Tensor>, String> {
    let f = run.program.func(GATED_STEP).expect("built");
    let b = bindings(run.program, GATED_STEP);
    f.arg_names
        .iter()
        .zip(b.args)
        .filter(|(_, bound)| bound.is_none())
        .map(|(name, _)| match name.as_str() {
            super::train::LOSS_SCALE => Ok(Tensor::scalar_f32(1.0)),
            _ => batch.get(name).cloned().ok_or_else(|| format!("the data set has no `{name}`")),
        })
        .collect()
}

/// The training rows for the weights and the held-out rows for the architecture.
pub fn split(train: &Frame) -> (Frame, Frame) {
    let n = train.len();
    let held = (n / 10).max(1).min(n.saturating_sub(1));
    let weights: Vec<usize> = (0..n - held).collect();
    let arch: Vec<usize> = (n - held..n).collect();
    (train.view(&weights), train.view(&arch))
}

/// Runs the search (see the module docs); calls `report` after each epoch.
pub fn search(
    s: &mut Search,
    data: &TrainData,
    spec: &Spec,
    mut report: impl FnMut(u64, &EpochStats, &Search) -> Result<(), String>,
) -> Result<u64, String> {
    let cfg = &s.run.built.cfg;
    let (batch, seed) = (cfg.batch as usize, cfg.seed);
    let (weights, held) = split(&data.train);
    let loop_spec = crate::training::loop_spec(cfg, weights.len());
    let per_epoch = (weights.len() as u64).div_ceil(batch.max(1) as u64);
    let total = per_epoch * spec.epochs;
    let warm_epochs = (spec.epochs as f64 * spec.warmup).round() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut step = 0u64;
    s.init_gates()?;
    for epoch in 0..spec.epochs {
        let held_batches: Vec<Dataset> =
            held.batches(batch, seed, epoch, false).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let (mut loss, mut arch_loss, mut n) = (0.0, 0.0, 0u64);
        for (i, b) in weights.batches(batch, seed, epoch, false).enumerate() {
            let b = b.map_err(|e| e.to_string())?;
            let leaf = s.sample_leaf(&mut rng);
            let lr = loop_spec.schedule.lr(step, total);
            loss += s.run.step(&[leaf], &b, lr, 1.0, step_seed(seed, step)).map_err(|e| format!("step {step}: {e}"))?;
            if epoch >= warm_epochs && (i as u64 + 1) % spec.arch_every.max(1) == 0 {
                let hb = &held_batches[i % held_batches.len().max(1)];
                arch_loss += s.arch_step(hb, spec, &mut rng, step_seed(seed, step))?;
            }
            n += 1;
            step += 1;
        }
        let n = n.max(1) as f64;
        let mut stats = EpochStats {
            train_loss: loss / n,
            arch_loss: (epoch >= warm_epochs).then_some(arch_loss / n),
            expected_latency: s.table.expected(&s.choices),
            lambda: s.lambda,
            derived: None,
        };
        if let Some(test) = &data.test {
            let picks = derive(&s.choices, &s.table, spec.bound).map_or_else(|| fastest(&s.table).0, |d| d.0);
            let leaf = leaf_of(s.run.space, &s.choices, &picks);
            let calibration = super::train::calibration_batches(&weights, batch, seed, epoch)?;
            let saved = s.run.calibrate(leaf, &calibration)?;
            stats.derived = Some(s.run.evaluate(leaf, test, batch)?);
            s.run.restore(saved)?;
        }
        report(epoch, &stats, s)?;
    }
    Ok(step)
}

/// The learned choices of `space` and the fixed gates, from the gated build's gates
/// (see the module docs); a decision of another kind with two or more options left is
/// an error that names its options.
pub fn arch_choices(
    space: &Subnets,
    gates: &[(String, usize)],
) -> Result<(Vec<ArchChoice>, Vec<(String, usize, usize)>), String> {
    for name in space.names() {
        let taken = space.taken(&name);
        if space.kind(&name) != Kind::Layer && taken.len() > 1 {
            let labels: Vec<String> = taken.iter().map(|&i| space.options[&name][i].clone()).collect();
            return Err(format!(
                "ProxylessNAS learns choices among layers; pin `{name}` with --choices {}={} (options: {})",
                name.rsplit('.').next().unwrap_or(&name),
                labels[0],
                labels.join(", ")
            ));
        }
    }
    let (mut learned, mut fixed) = (Vec::new(), Vec::new());
    for (gate, width) in gates {
        let name = gate.trim_start_matches("arch_gate.").to_string();
        let taken = space.taken(&name);
        match taken.len() {
            0 => return Err(format!("internal: the gated choice `{name}` is in no subnet")),
            1 => fixed.push((gate.clone(), *width, taken[0])),
            _ => learned.push(ArchChoice::new(name, gate.clone(), *width, taken)),
        }
    }
    if learned.is_empty() {
        return Err("no choice among layers is left to learn (every one is pinned)".into());
    }
    Ok((learned, fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(alpha: Vec<f64>) -> ArchChoice {
        let n = alpha.len();
        let mut c = ArchChoice::new("op".into(), "arch_gate.op".into(), n, (0..n).collect());
        c.alpha = alpha;
        c
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = [0.1, 0.6, 0.3];
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[draw(&p, &mut rng)] += 1;
        }
        for (c, want) in counts.iter().zip(p) {
            assert!((*c as f64 / 20_000.0 - want).abs() < 0.02, "{counts:?}");
        }
        for _ in 0..100 {
            let two = draw_two(&p, &mut rng);
            assert_eq!(two.len(), 2);
            assert_ne!(two[0], two[1]);
        }
    }

    #[test]
    fn the_pair_keeps_its_share_of_the_probability() {
        let mut c = choice(vec![0.3, -0.2, 0.5]);
        let share = |c: &ArchChoice| c.probs()[0] + c.probs()[1];
        let (before, ratio) = (share(&c), c.probs()[0] / c.probs()[1]);
        // The gate gradient favours option 1 over option 0; option 2 was not drawn.
        let q = softmax(&[c.alpha[0], c.alpha[1]]);
        let grad = logit_gradient(&c, &[0.0, 0.0, 0.0], &[0, 1], &q, &[1.0, -1.0, 0.0], 0.0, 1.0);
        assert_eq!(grad[2], 0.0);
        update(&mut c, &[0, 1], &grad, (0.1, 0.999), 1);
        assert!((share(&c) - before).abs() < 1e-12, "{} vs {before}", share(&c));
        assert!(c.probs()[0] / c.probs()[1] < ratio, "option 1 gained on option 0");
        assert_eq!(c.alpha[2], 0.5, "an option not drawn keeps its logit");
    }

    #[test]
    fn the_latency_term_pushes_towards_faster_options() {
        let c = choice(vec![0.0, 0.0, 0.0]);
        let delta = [0.0, 3.0, -1.0];
        let grad = logit_gradient(&c, &delta, &[0, 1], &[0.5, 0.5], &[0.0, 0.0, 0.0], 2.0, 4.0);
        // λ/bound · p_k (lat_k − E): a descent step lowers the slow option's logit.
        let want = [
            2.0 / 4.0 / 3.0 * (0.0 - 2.0 / 3.0),
            2.0 / 4.0 / 3.0 * (3.0 - 2.0 / 3.0),
            2.0 / 4.0 / 3.0 * (-1.0 - 2.0 / 3.0),
        ];
        for (g, w) in grad.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{grad:?}");
        }
        let table = LatencyTable { reference: 1.0, delta: vec![delta.to_vec()] };
        assert!((table.expected(&[c]) - (1.0 + 2.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn the_gate_gradient_becomes_the_logit_gradient_of_the_softmax() {
        // For a loss linear in the gates, L = Σ_j c_j g_j, ∂L/∂g = c and the logit
        // gradient must be the derivative of Σ_j c_j softmax(α)_j over the pair,
        // checked by finite differences.
        let c = choice(vec![0.4, -0.3, 1.0]);
        let cost = [2.0, -1.0, 7.0];
        let pair = [2, 0];
        let sub = |a: &[f64]| vec![a[2], a[0]];
        let q = softmax(&sub(&c.alpha));
        let grad = logit_gradient(&c, &[0.0; 3], &pair, &q, &cost, 0.0, 1.0);
        let f = |a: &[f64]| dot(&softmax(&sub(a)), &[cost[2], cost[0]]);
        for i in 0..3 {
            let (mut up, mut down) = (c.alpha.clone(), c.alpha.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let fd = (f(&up) - f(&down)) / 2e-6;
            assert!((fd - grad[i]).abs() < 1e-6, "α_{i}: {fd} vs {}", grad[i]);
        }
    }

    #[test]
    fn the_derived_subnet_is_the_argmax_unless_it_breaks_the_bound() {
        let choices = [choice(vec![2.0, 0.0]), choice(vec![0.0, 1.0, -1.0])];
        let table = LatencyTable { reference: 1.0, delta: vec![vec![0.0, -0.5], vec![0.0, 2.0, 0.2]] };
        assert_eq!(derive(&choices, &table, 10.0), Some((vec![0, 1], 3.0)), "the argmax");
        assert_eq!(derive(&choices, &table, 1.5), Some((vec![0, 0], 1.0)), "the most probable under 1.5 ms");
        assert_eq!(derive(&choices, &table, 0.4), None);
        assert_eq!(fastest(&table), (vec![1, 0], 0.5));
    }
}
