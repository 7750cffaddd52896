//! Random search: every ask resolves the space with [`Rest::Sample`] under a fresh seed
//! from the strategy's seeded stream. A candidate already returned is drawn again, up to
//! [`Settings::retries`] times, before the repeat is accepted (so a space smaller than
//! the budget still gets every ask answered). Scores are ignored.

use rand_chacha::ChaCha8Rng;

use super::{draw_seed, rng, Seen, Settings, Strategy};
use crate::search::space::{Candidate, Rest, Space};

/// Independent seeded samples, avoiding repeats.
pub struct RandomSearch {
    rng: ChaCha8Rng,
    seen: Seen,
    retries: usize,
}

impl RandomSearch {
    pub fn new(settings: &Settings) -> RandomSearch {
        RandomSearch { rng: rng(settings.seed), seen: Seen::default(), retries: settings.retries }
    }
}

impl Strategy for RandomSearch {
    fn ask(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String> {
        let rng = &mut self.rng;
        let cand = self.seen.draw_unseen(self.retries, || space.resolve(&[], Rest::Sample(draw_seed(rng))))?;
        Ok(Some(cand))
    }

    fn tell(&mut self, _cand: &Candidate, _score: Option<f64>) {}

    fn asks_ahead(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::strategy::testing::{best, flat, run, toy};

    #[test]
    fn covers_a_small_space_without_repeats_and_so_finds_its_optimum() {
        let mut space = flat(3, 3);
        let mut strategy = RandomSearch::new(&Settings { seed: 7, ..Settings::default() });
        let objective = |c: &Candidate| c.chosen.iter().filter(|&&i| i == 2).count() as f64;
        let asked = run(&mut strategy, &mut space, 27, objective);
        let keys: std::collections::HashSet<String> = asked.iter().map(|(c, _)| c.key()).collect();
        assert_eq!(keys.len(), 27, "27 asks of a 27-candidate space cover it");
        assert_eq!(best(&asked), 3.0);
    }

    #[test]
    fn a_space_smaller_than_the_budget_gets_repeats_not_a_hang() {
        let mut space = flat(1, 2);
        let mut strategy = RandomSearch::new(&Settings { seed: 1, retries: 5, ..Settings::default() });
        let asked = run(&mut strategy, &mut space, 6, |_| 0.0);
        assert_eq!(asked.len(), 6);
    }

    #[test]
    fn samples_cover_conditional_decisions() {
        let mut space = toy();
        let mut strategy = RandomSearch::new(&Settings { seed: 3, ..Settings::default() });
        let asked = run(&mut strategy, &mut space, 200, |_| 0.0);
        for depth in 0..4 {
            assert!(asked.iter().any(|(c, _)| c.get("depth") == Some(depth)), "depth option {depth} never drawn");
        }
        for (c, _) in &asked {
            space.check(c);
        }
    }
}
