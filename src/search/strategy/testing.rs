//! Test support: a synthetic conditional [`Space`] and a loop that runs a strategy on an
//! objective.
//!
//! [`Toy`] meets, in order: `depth` (how many cells follow), then for each cell `i` below
//! the chosen depth the decisions `cell_i.<name>` of [`Toy::cell`], then `width`. Sampled
//! options are drawn from the seed and the decision's name, as real spaces do.

use crate::search::space::{Candidate, Decision, Rest, Space};
use crate::search::strategy::Strategy;

/// A synthetic space with a conditional number of cells.
pub struct Toy {
    /// The cell counts the `depth` decision offers (labels are the counts).
    pub depths: Vec<usize>,
    /// Each cell's decisions: name suffix and number of options.
    pub cell: Vec<(&'static str, usize)>,
    /// The number of options of `width`.
    pub widths: usize,
    /// How many times `resolve` ran.
    pub resolves: usize,
}

/// `depth` in 1..=4, each cell an `op` of 5 options, `width` of 3 options: 3 * (5 + 25 +
/// 125 + 625) = 2340 candidates.
pub fn toy() -> Toy {
    Toy { depths: vec![1, 2, 3, 4], cell: vec![("op", 5)], widths: 3, resolves: 0 }
}

/// `n` unconditional decisions `cell_i.x` of `k` options each (plus one-option `depth`
/// and `width`): k^n candidates.
pub fn flat(n: usize, k: usize) -> Toy {
    Toy { depths: vec![n], cell: vec![("x", k)], widths: 1, resolves: 0 }
}

impl Toy {
    /// The number of candidates, counted from the definition.
    pub fn size(&self) -> usize {
        let per_cell: usize = self.cell.iter().map(|(_, k)| k).product();
        self.depths.iter().map(|&d| per_cell.pow(d as u32)).sum::<usize>() * self.widths
    }

    /// Panics unless `cand` is exactly what this space builds for its own assignment.
    pub fn check(&mut self, cand: &Candidate) {
        let again = self.resolve(&cand.assignment(), Rest::First).unwrap();
        assert_eq!(&again, cand, "not a candidate of the space");
    }

    /// The number of cells `cand` has.
    pub fn cells(&self, cand: &Candidate) -> usize {
        self.depths[cand.get("depth").unwrap()]
    }
}

impl Space for Toy {
    fn resolve(&mut self, fixed: &[(String, usize)], rest: Rest) -> Result<Candidate, String> {
        self.resolves += 1;
        let mut cand = Candidate { decisions: Vec::new(), chosen: Vec::new() };
        let labels: Vec<String> = self.depths.iter().map(|d| d.to_string()).collect();
        let depth = meet(&mut cand, fixed, rest, "depth".into(), labels);
        for i in 0..self.depths[depth] {
            for (name, k) in &self.cell {
                meet(&mut cand, fixed, rest, format!("cell_{i}.{name}"), numbered(*k));
            }
        }
        meet(&mut cand, fixed, rest, "width".into(), numbered(self.widths));
        Ok(cand)
    }
}

fn numbered(k: usize) -> Vec<String> {
    (0..k).map(|i| format!("o{i}")).collect()
}

/// Appends decision `name` to `cand` with the option `fixed` or `rest` gives; returns it.
fn meet(cand: &mut Candidate, fixed: &[(String, usize)], rest: Rest, name: String, options: Vec<String>) -> usize {
    let k = options.len() as u64;
    let index = match fixed.iter().find(|(n, _)| *n == name) {
        Some(&(_, i)) => i,
        None => match rest {
            Rest::First => 0,
            Rest::Sample(seed) => (mix(seed ^ mix(fnv(&name))) % k) as usize,
        },
    };
    assert!(index < options.len(), "option {index} out of range at {name}");
    cand.decisions.push(Decision { name, options });
    cand.chosen.push(index);
    index
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Asks and tells `objective` up to `budget` times; the (candidate, score) pairs in order.
pub fn run(
    strategy: &mut dyn Strategy,
    space: &mut dyn Space,
    budget: usize,
    mut objective: impl FnMut(&Candidate) -> f64,
) -> Vec<(Candidate, f64)> {
    let mut trials = Vec::new();
    for _ in 0..budget {
        let Some(cand) = strategy.ask(space).unwrap() else { break };
        let score = objective(&cand);
        strategy.tell(&cand, Some(score));
        trials.push((cand, score));
    }
    trials
}

/// The best score of `trials`.
pub fn best(trials: &[(Candidate, f64)]) -> f64 {
    trials.iter().map(|(_, s)| *s).fold(f64::NEG_INFINITY, f64::max)
}

/// An easy objective on [`toy`]: one point per cell whose `op` is option 3, one for
/// `width` option 1. The optimum, 5, is depth 4 with every op 3 and width 1.
pub fn separable(cand: &Candidate) -> f64 {
    let ops = cand.decisions.iter().zip(&cand.chosen).filter(|(d, &i)| d.name.ends_with(".op") && i == 3).count();
    ops as f64 + f64::from(cand.get("width") == Some(1))
}
