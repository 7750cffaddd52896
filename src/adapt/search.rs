//! Per-sample chain searches as state machines: a search proposes chains, its caller
//! evaluates them (batched with other samples' proposals) and feeds the scores back.
//!
//! Contract: a search proposes each chain at most once, only chains of its [`Space`],
//! the root (the trained order) first; it is deterministic given its seed and the scores
//! fed; it ends (proposes nothing) within its budget. The objective it climbs is
//! `score - length_penalty * len / depth`; the chain it finally picks ([`pick`]) is the
//! evaluated one with the highest score, then the shorter, then the lexicographically
//! smaller (PoLar's rule: sort by accuracy, then length).

use super::chain::{Chain, Space};
use super::mcts::Mcts;
use archc_compiler::sema::adapt::SearchKind;
use std::collections::HashSet;

/// A search over the chains of one sample.
pub trait Search {
    /// The chains to evaluate next (empty: the search is over).
    fn propose(&mut self) -> Vec<Chain>;
    /// The scores of the chains of the last proposal, in order.
    fn feed(&mut self, scores: &[f64]);
    /// Every chain evaluated so far with its score, in order of evaluation.
    fn evaluated(&self) -> &[(Chain, f64)];
}

/// A seeded splitmix64 stream (no dependency; the same numbers on every platform).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// What a search needs besides its kind.
#[derive(Clone, Debug)]
pub struct SearchSpec {
    pub kind: SearchKind,
    pub length_penalty: f64,
    pub seed: u64,
}

/// Rounds without improvement after which greedy and beam search stop.
pub const PLATEAU: usize = 2;

/// The most chains greedy and beam search evaluate per sample.
pub const MAX_EVALUATIONS: usize = 10_000;

/// A search of `spec`'s kind over `space`, seeded for sample `sample`.
pub fn start(space: &Space, spec: &SearchSpec, sample: u64) -> Box<dyn Search> {
    let seed = spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ sample;
    match spec.kind {
        SearchKind::Mcts { simulations, epsilon } => {
            Box::new(Mcts::new(space.clone(), simulations as usize, spec.length_penalty, epsilon, seed))
        }
        SearchKind::Greedy => Box::new(Beam::new(space.clone(), 1, spec.length_penalty)),
        SearchKind::Beam { width } => Box::new(Beam::new(space.clone(), width as usize, spec.length_penalty)),
    }
}

/// `score - penalty * len / depth`.
pub fn objective(score: f64, chain: &Chain, penalty: f64, depth: usize) -> f64 {
    score - penalty * chain.len() as f64 / depth.max(1) as f64
}

/// The index of the chain [`pick`]ed among `evaluated` under `score` (see the module
/// docs); `None` when nothing was evaluated.
pub fn pick<T>(evaluated: &[(Chain, T)], score: impl Fn(usize) -> f64) -> Option<usize> {
    let better = |i: usize, j: usize| {
        let (si, sj) = (score(i), score(j));
        let (ci, cj) = (&evaluated[i].0, &evaluated[j].0);
        si.total_cmp(&sj).then(cj.len().cmp(&ci.len())).then(cj.cmp(ci)).is_gt()
    };
    (0..evaluated.len()).reduce(|best, i| if better(i, best) { i } else { best })
}

/// Beam search (greedy: width 1): from the root, each round evaluates every unseen move
/// of the chains kept and keeps the `width` best by objective; it stops after
/// [`PLATEAU`] rounds in a row that improve on no chain before them.
pub struct Beam {
    space: Space,
    width: usize,
    penalty: f64,
    beam: Vec<Chain>,
    proposed: Vec<Chain>,
    seen: HashSet<Chain>,
    evaluated: Vec<(Chain, f64)>,
    best: f64,
    /// Rounds in a row without improvement.
    stale: usize,
    done: bool,
}

impl Beam {
    pub fn new(space: Space, width: usize, penalty: f64) -> Beam {
        Beam {
            space,
            width: width.max(1),
            penalty,
            beam: Vec::new(),
            proposed: Vec::new(),
            seen: HashSet::new(),
            evaluated: Vec::new(),
            best: f64::NEG_INFINITY,
            stale: 0,
            done: false,
        }
    }

    fn objective(&self, c: &Chain, score: f64) -> f64 {
        objective(score, c, self.penalty, self.space.depth)
    }
}

impl Search for Beam {
    fn propose(&mut self) -> Vec<Chain> {
        if self.done {
            return Vec::new();
        }
        let root = Chain::trained(self.space.depth);
        let next: Vec<Chain> = if self.evaluated.is_empty() {
            vec![root]
        } else {
            let mut v = Vec::new();
            for c in &self.beam {
                for m in self.space.moves(c, *c == root) {
                    if !self.seen.contains(&m) && !v.contains(&m) {
                        v.push(m);
                    }
                }
            }
            v.truncate(MAX_EVALUATIONS.saturating_sub(self.evaluated.len()));
            v
        };
        self.done = next.is_empty();
        self.seen.extend(next.iter().cloned());
        self.proposed.clone_from(&next);
        next
    }

    fn feed(&mut self, scores: &[f64]) {
        let round: Vec<(Chain, f64)> =
            std::mem::take(&mut self.proposed).into_iter().zip(scores.iter().copied()).collect();
        let mut ranked: Vec<(f64, Chain)> = round.iter().map(|(c, s)| (self.objective(c, *s), c.clone())).collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.len().cmp(&b.1.len())).then(a.1.cmp(&b.1)));
        let top = ranked.first().map_or(f64::NEG_INFINITY, |r| r.0);
        if top > self.best {
            self.best = top;
            self.stale = 0;
        } else {
            self.stale += 1;
            self.done = self.stale >= PLATEAU;
        }
        self.beam = ranked.into_iter().take(self.width).map(|(_, c)| c).collect();
        self.evaluated.extend(round);
    }

    fn evaluated(&self) -> &[(Chain, f64)] {
        &self.evaluated
    }
}

/// Runs `search` to its end with `score` as the evaluator; the chains evaluated.
pub fn run_with(search: &mut dyn Search, mut score: impl FnMut(&Chain) -> f64) -> Vec<(Chain, f64)> {
    loop {
        let chains = search.propose();
        if chains.is_empty() {
            return search.evaluated().to_vec();
        }
        let scores: Vec<f64> = chains.iter().map(&mut score).collect();
        search.feed(&scores);
    }
}
