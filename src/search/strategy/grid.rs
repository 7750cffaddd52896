//! Grid search: every candidate of the space exactly once, depth first over the
//! decisions in the order builds meet them, options in order; then `None`.
//!
//! The first candidate resolves the empty assignment with [`Rest::First`]. After a
//! candidate, the next one keeps its decisions before the last decision that still has
//! a later option, advances that decision by one, and resolves with `Rest::First` for the
//! rest. Decisions that a choice disables are never met, so each distinct candidate of a
//! conditional space comes exactly once. Scores are ignored.

use super::Strategy;
use crate::search::space::{Candidate, Rest, Space};

/// Exhaustive, deterministic enumeration.
#[derive(Default)]
pub struct Grid {
    last: Option<Candidate>,
    done: bool,
}

impl Grid {
    pub fn new() -> Grid {
        Grid::default()
    }

    /// The number of candidates of `space`, or `None` when there are more than `limit`
    /// (the count enumerates them, one resolve each).
    pub fn size(space: &mut dyn Space, limit: usize) -> Result<Option<usize>, String> {
        let mut grid = Grid::new();
        let mut count = 0;
        while grid.ask(space)?.is_some() {
            count += 1;
            if count > limit {
                return Ok(None);
            }
        }
        Ok(Some(count))
    }
}

/// The assignment the candidate after `cand` resolves (with `Rest::First`); `None` after
/// the last candidate.
fn successor(cand: &Candidate) -> Option<Vec<(String, usize)>> {
    let at = (0..cand.decisions.len()).rev().find(|&j| cand.chosen[j] + 1 < cand.decisions[j].options.len())?;
    let mut prefix = cand.assignment();
    prefix.truncate(at + 1);
    prefix[at].1 += 1;
    Some(prefix)
}

impl Strategy for Grid {
    fn ask(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String> {
        if self.done {
            return Ok(None);
        }
        let fixed = match &self.last {
            None => Vec::new(),
            Some(last) => match successor(last) {
                Some(fixed) => fixed,
                None => {
                    self.done = true;
                    return Ok(None);
                }
            },
        };
        let cand = space.resolve(&fixed, Rest::First)?;
        self.last = Some(cand.clone());
        Ok(Some(cand))
    }

    fn tell(&mut self, _cand: &Candidate, _score: Option<f64>) {}

    fn asks_ahead(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::search::strategy::testing::{flat, run, toy, Toy};

    fn enumerate(space: &mut Toy) -> Vec<Candidate> {
        run(&mut Grid::new(), space, usize::MAX, |_| 0.0).into_iter().map(|(c, _)| c).collect()
    }

    #[test]
    fn enumerates_a_conditional_space_exactly_once() {
        let mut space = toy();
        let all = enumerate(&mut space);
        assert_eq!(all.len(), 3 * (5 + 25 + 125 + 625));
        assert_eq!(all.len(), space.size());
        let keys: HashSet<String> = all.iter().map(Candidate::key).collect();
        assert_eq!(keys.len(), all.len(), "a candidate came twice");
        for cand in &all {
            space.check(cand);
            let cells = space.cells(cand);
            assert_eq!(cand.decisions.len(), cells + 2, "{cand}");
            assert!(cand.get(&format!("cell_{}.op", cells)).is_none(), "a disabled cell's choice was met: {cand}");
        }
    }

    #[test]
    fn the_order_is_depth_first_and_stops_with_none() {
        let mut space = flat(2, 2);
        let mut grid = Grid::new();
        let keys: Vec<String> = run(&mut grid, &mut space, 10, |_| 0.0).iter().map(|(c, _)| c.key()).collect();
        let want =
            ["00", "01", "10", "11"].map(|b| format!("depth=0,cell_0.x={},cell_1.x={},width=0", &b[..1], &b[1..]));
        assert_eq!(keys, want);
        assert_eq!(grid.ask(&mut space).unwrap(), None);
    }

    #[test]
    fn several_decisions_per_cell_are_counted_exactly() {
        let mut space = Toy { depths: vec![0, 1, 2], cell: vec![("op", 3), ("skip", 2)], widths: 2, resolves: 0 };
        assert_eq!(enumerate(&mut space).len(), 2 * (1 + 6 + 36));
    }

    #[test]
    fn size_counts_up_to_a_limit() {
        assert_eq!(Grid::size(&mut toy(), 10_000).unwrap(), Some(2340));
        assert_eq!(Grid::size(&mut toy(), 100).unwrap(), None);
    }
}
