//! Running given chains (deployment) and timing chain evaluation (the benchmark).
//!
//! Contract: [`run_chains`] predicts each sample with its own chain; [`bench`] evaluates
//! distinct (sample, chain) pairs, none cached, drawn by seeded random walks of moves
//! from the trained order, and reports how many modules were compiled before and after
//! (a constant count: new chains never compile).

use super::chain::{Chain, Space};
use super::exec::{Runner, State};
use super::lockstep::rows_of;
use super::score::argmax;
use super::search::Rng;
use std::collections::HashSet;

/// The class each `(sample, chain)` predicts, in order.
pub fn run_chains(
    runner: &mut Runner,
    st: &State,
    chains: &[(usize, Chain)],
    batch: usize,
) -> Result<Vec<usize>, String> {
    let mut preds = Vec::with_capacity(chains.len());
    for chunk in chains.chunks(batch.max(1)) {
        let pairs: Vec<(usize, &[usize])> = chunk.iter().map(|(i, c)| (*i, c.0.as_slice())).collect();
        let out = runner.eval(st, &pairs)?;
        preds.extend(rows_of(&out)?.iter().map(|r| argmax(r).unwrap_or(0)));
    }
    Ok(preds)
}

/// What [`bench`] measured.
#[derive(Clone, Debug)]
pub struct Bench {
    pub evaluations: u64,
    /// Time of the timed evaluations (after one warm-up batch, which compiles).
    pub seconds: f64,
    pub warmup_seconds: f64,
    /// Modules compiled after the warm-up batch, and after everything.
    pub compiles_after_warmup: usize,
    pub compiles: usize,
    /// Distinct (function, batch size) calls: the modules a backend without dynamic
    /// sizes would have compiled.
    pub static_modules: usize,
    pub batch: usize,
}

impl Bench {
    pub fn per_second(&self) -> f64 {
        self.evaluations as f64 / self.seconds.max(1e-9)
    }
}

/// Evaluates `count` distinct random (sample, chain) pairs in batches of `batch` (see
/// the module docs).
pub fn bench(
    runner: &mut Runner,
    st: &State,
    space: &Space,
    count: usize,
    batch: usize,
    seed: u64,
) -> Result<Bench, String> {
    let pairs = random_pairs(space, st.len(), count + batch, seed)?;
    let (warm, timed) = pairs.split_at(batch.min(pairs.len()));
    let t0 = std::time::Instant::now();
    run_chains(runner, st, warm, batch)?;
    let warmup_seconds = t0.elapsed().as_secs_f64();
    let compiles_after_warmup = runner.compiles();
    let t1 = std::time::Instant::now();
    run_chains(runner, st, &timed[..count.min(timed.len())], batch)?;
    Ok(Bench {
        evaluations: count.min(timed.len()) as u64,
        seconds: t1.elapsed().as_secs_f64(),
        warmup_seconds,
        compiles_after_warmup,
        compiles: runner.compiles(),
        static_modules: runner.shapes.len(),
        batch,
    })
}

/// `count` distinct pairs: sample `k % n` with a chain of 1 to 4 random moves from the
/// trained order (a sample whose reachable chains run out is skipped over).
fn random_pairs(space: &Space, n: usize, count: usize, seed: u64) -> Result<Vec<(usize, Chain)>, String> {
    if n == 0 {
        return Err("no samples to run".into());
    }
    let mut rng = Rng::new(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count);
    let mut misses = 0;
    while out.len() < count {
        let sample = out.len() % n;
        let mut c = Chain::trained(space.depth);
        for step in 0..=rng.below(4) {
            let moves = space.moves(&c, step == 0);
            if moves.is_empty() {
                break;
            }
            c = moves[rng.below(moves.len())].clone();
        }
        if seen.insert((sample, c.clone())) {
            out.push((sample, c));
            misses = 0;
        } else {
            misses += 1;
            if misses > 10_000 {
                return Err(format!("cannot draw {count} distinct (sample, chain) pairs from this space"));
            }
        }
    }
    Ok(out)
}
