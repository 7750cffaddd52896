//! Searching a chain for every sample at once: each round, every unfinished sample's
//! search proposes its next chains, the proposals of all samples are evaluated together
//! ([`Runner::eval`], in batches), and the scores are fed back.
//!
//! Contract: a sample's result depends only on its own search seed and outputs, never
//! on the other samples or the batch size. The first chain a search evaluates is the
//! trained order: its prediction is the fixed model's. With labels, the CoLa statistics
//! are read off every chain evaluated: whether some chain shorter than the stack is
//! correct, and whether some chain at all is.

use super::chain::{Chain, Space};
use super::exec::{Runner, State};
use super::score::{argmax, softmax, Score};
use super::search::{pick, start, Search, SearchSpec};
use archc_runtime::Tensor;
use std::collections::{HashMap, VecDeque};

/// What to search for every sample.
pub struct Problem {
    pub space: Space,
    pub spec: SearchSpec,
    pub score: Score,
    /// The class of each sample, when known.
    pub labels: Option<Vec<usize>>,
    /// The most (sample, chain) pairs per evaluation call.
    pub batch: usize,
}

/// The result for one sample.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub chain: Chain,
    pub score: f64,
    pub label: Option<usize>,
    pub pred_before: Option<usize>,
    pub pred_after: Option<usize>,
    pub evaluated: usize,
    /// Some chain shorter than the stack predicts the label.
    pub shorter_correct: bool,
    /// Some chain predicts the label.
    pub any_correct: bool,
    /// How many classes the sample's chains predict between them.
    pub classes: usize,
}

impl Outcome {
    pub fn correct_before(&self) -> bool {
        self.label.is_some() && self.pred_before == self.label
    }

    pub fn correct_after(&self) -> bool {
        self.label.is_some() && self.pred_after == self.label
    }
}

/// Counts of a search run.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// (sample, chain) pairs run through the network.
    pub evaluations: u64,
    /// Scores taken from a sample's cache instead.
    pub cache_hits: u64,
    pub seconds: f64,
}

/// Evaluated chains kept per sample for lookups (first in, first out).
pub const CACHE: usize = 1000;

/// One sample's search, its evaluated chains with their probabilities, and its cache.
struct Track {
    search: Box<dyn Search>,
    seen: Vec<(Chain, Vec<f64>)>,
    cache: HashMap<Chain, usize>,
    order: VecDeque<Chain>,
    consensus: Vec<f64>,
    pending: Vec<Chain>,
    scores: Vec<Option<f64>>,
    done: bool,
}

impl Track {
    fn record(&mut self, chain: Chain, probs: Vec<f64>) -> usize {
        if self.consensus.is_empty() {
            self.consensus = vec![0.0; probs.len()];
        }
        for (c, p) in self.consensus.iter_mut().zip(&probs) {
            *c += p;
        }
        if self.order.len() == CACHE {
            if let Some(old) = self.order.pop_front() {
                self.cache.remove(&old);
            }
        }
        self.cache.insert(chain.clone(), self.seen.len());
        self.order.push_back(chain.clone());
        self.seen.push((chain, probs));
        self.seen.len() - 1
    }
}

/// Searches a chain for every sample of `st` (see the module docs); `tick` is called
/// with the number of chains scored after each round.
pub fn adapt_all(
    runner: &mut Runner,
    st: &State,
    problem: &Problem,
    mut tick: impl FnMut(u64),
) -> Result<(Vec<Outcome>, Totals), String> {
    let t0 = std::time::Instant::now();
    let n = st.len();
    let mut tracks: Vec<Track> = (0..n)
        .map(|i| Track {
            search: start(&problem.space, &problem.spec, i as u64),
            seen: Vec::new(),
            cache: HashMap::new(),
            order: VecDeque::new(),
            consensus: Vec::new(),
            pending: Vec::new(),
            scores: Vec::new(),
            done: false,
        })
        .collect();
    let mut totals = Totals::default();
    loop {
        let mut requests: Vec<(usize, usize)> = Vec::new();
        for (i, t) in tracks.iter_mut().enumerate().filter(|(_, t)| !t.done) {
            t.pending = t.search.propose();
            t.done = t.pending.is_empty();
            t.scores = vec![None; t.pending.len()];
            for j in 0..t.pending.len() {
                match t.cache.get(&t.pending[j]) {
                    Some(&k) => {
                        t.scores[j] = Some(problem.score.value(&t.seen[k].1, label(problem, i), &t.consensus));
                        totals.cache_hits += 1;
                    }
                    None => requests.push((i, j)),
                }
            }
        }
        if tracks.iter().all(|t| t.done) {
            break;
        }
        for chunk in requests.chunks(problem.batch.max(1)) {
            let pairs: Vec<(usize, &[usize])> =
                chunk.iter().map(|&(i, j)| (i, tracks[i].pending[j].0.as_slice())).collect();
            let out = runner.eval(st, &pairs)?;
            let rows = rows_of(&out)?;
            for (&(i, j), logits) in chunk.iter().zip(rows) {
                let t = &mut tracks[i];
                let k = t.record(t.pending[j].clone(), softmax(&logits));
                t.scores[j] = Some(problem.score.value(&t.seen[k].1, label(problem, i), &t.consensus));
            }
            totals.evaluations += chunk.len() as u64;
        }
        let mut scored = 0;
        for t in tracks.iter_mut().filter(|t| !t.pending.is_empty()) {
            let scores: Vec<f64> = t.scores.iter().map(|s| s.unwrap_or(f64::NEG_INFINITY)).collect();
            scored += scores.len() as u64;
            t.search.feed(&scores);
            t.pending.clear();
        }
        tick(scored);
    }
    totals.seconds = t0.elapsed().as_secs_f64();
    let outcomes = tracks.iter().enumerate().map(|(i, t)| outcome(t, problem, i)).collect();
    Ok((outcomes, totals))
}

fn label(problem: &Problem, i: usize) -> Option<usize> {
    problem.labels.as_ref().and_then(|l| l.get(i).copied())
}

/// A sample's result: the chain picked (scores recomputed with the final consensus)
/// and the statistics over every chain evaluated.
fn outcome(t: &Track, problem: &Problem, i: usize) -> Outcome {
    let label = label(problem, i);
    let depth = problem.space.depth;
    let score = |k: usize| problem.score.value(&t.seen[k].1, label, &t.consensus);
    let best = pick(&t.seen, score).unwrap_or(0);
    let correct = |p: &[f64]| label.is_some() && argmax(p) == label;
    Outcome {
        chain: t.seen.get(best).map_or_else(|| Chain::trained(depth), |s| s.0.clone()),
        score: if t.seen.is_empty() { f64::NAN } else { score(best) },
        label,
        pred_before: t.seen.first().and_then(|s| argmax(&s.1)),
        pred_after: t.seen.get(best).and_then(|s| argmax(&s.1)),
        evaluated: t.seen.len(),
        shorter_correct: t.seen.iter().any(|(c, p)| c.len() < depth && correct(p)),
        any_correct: t.seen.iter().any(|(_, p)| correct(p)),
        classes: t.seen.iter().filter_map(|(_, p)| argmax(p)).collect::<std::collections::HashSet<_>>().len(),
    }
}

/// The rows of a `[n, C]` output as f64 vectors.
pub fn rows_of(out: &Tensor) -> Result<Vec<Vec<f64>>, String> {
    let v = out.to_f64_vec().ok_or_else(|| format!("the network's output is {}, not numbers", out.type_string()))?;
    let n = out.shape.first().copied().unwrap_or(0);
    if out.shape.len() != 2 || n == 0 {
        return Err(format!(
            "adaptation scores class outputs `[B, C]`; this network's first output is {}",
            out.type_string()
        ));
    }
    let c = out.shape[1];
    Ok(v.chunks(c.max(1)).map(<[f64]>::to_vec).collect())
}
