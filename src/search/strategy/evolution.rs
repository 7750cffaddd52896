//! Regularized (aging) evolution, Real et al. 2019.
//!
//! The first [`Settings::population`] asks are random samples. Every later ask samples
//! [`Settings::sample`] distinct members of the population uniformly, takes the best as
//! parent (a failed trial, score `None`, counts as worst; ties go to the member sampled
//! first), and mutates one decision of the parent, chosen uniformly among its decisions
//! with more than one option, to a different option chosen uniformly. The child resolves
//! with the parent's assignment so modified as `fixed` and [`Rest::Sample`] for decisions
//! that become newly active (entries the child no longer meets are ignored by the
//! space). A child already asked is mutated again, up to [`Settings::retries`] times.
//!
//! Every told candidate joins the population (a queue); when it exceeds `population`
//! the oldest member leaves, whatever its score.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{draw_seed, rng, Seen, Settings, Strategy};
use crate::search::space::{Candidate, Rest, Space};

/// Aging evolution with tournament selection and single-decision mutation.
pub struct Evolution {
    rng: ChaCha8Rng,
    seen: Seen,
    population: VecDeque<(Candidate, Option<f64>)>,
    size: usize,
    sample: usize,
    retries: usize,
    asked: usize,
}

impl Evolution {
    /// `population` is raised to 1 and `sample` kept within 1..=population.
    pub fn new(settings: &Settings) -> Evolution {
        let size = settings.population.max(1);
        Evolution {
            rng: rng(settings.seed),
            seen: Seen::default(),
            population: VecDeque::new(),
            size,
            sample: settings.sample.clamp(1, size),
            retries: settings.retries,
            asked: 0,
        }
    }

    /// The tournament winner: the best of `sample` distinct members drawn uniformly.
    fn parent(&mut self) -> Candidate {
        let amount = self.sample.min(self.population.len());
        let drawn = rand::seq::index::sample(&mut self.rng, self.population.len(), amount);
        let rank = |i: usize| self.population[i].1.unwrap_or(f64::NEG_INFINITY);
        let best = drawn.iter().fold(None, |best: Option<usize>, i| match best {
            Some(b) if rank(b) >= rank(i) => Some(b),
            _ => Some(i),
        });
        self.population[best.expect("a non-empty population")].0.clone()
    }

    fn random(&mut self, space: &mut dyn Space) -> Result<Candidate, String> {
        let rng = &mut self.rng;
        self.seen.draw_unseen(self.retries, || space.resolve(&[], Rest::Sample(draw_seed(rng))))
    }
}

/// The decisions of `cand` that have more than one option.
fn mutable(cand: &Candidate) -> Vec<usize> {
    (0..cand.decisions.len()).filter(|&i| cand.decisions[i].options.len() > 1).collect()
}

/// `parent` with one of the decisions `mutable` lists moved to another option, resolved
/// with `Rest::Sample` for newly met decisions.
fn mutate(
    parent: &Candidate,
    mutable: &[usize],
    space: &mut dyn Space,
    rng: &mut ChaCha8Rng,
) -> Result<Candidate, String> {
    let at = mutable[rng.random_range(0..mutable.len())];
    let old = parent.chosen[at];
    let other = rng.random_range(0..parent.decisions[at].options.len() - 1);
    let mut fixed = parent.assignment();
    fixed[at].1 = if other >= old { other + 1 } else { other };
    space.resolve(&fixed, Rest::Sample(draw_seed(rng)))
}

impl Strategy for Evolution {
    fn ask(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String> {
        self.asked += 1;
        if self.asked <= self.size || self.population.is_empty() {
            return self.random(space).map(Some);
        }
        let parent = self.parent();
        let choices = mutable(&parent);
        if choices.is_empty() {
            return self.random(space).map(Some);
        }
        let rng = &mut self.rng;
        let child = self.seen.draw_unseen(self.retries, || mutate(&parent, &choices, space, rng))?;
        Ok(Some(child))
    }

    fn tell(&mut self, cand: &Candidate, score: Option<f64>) {
        self.population.push_back((cand.clone(), score));
        if self.population.len() > self.size {
            self.population.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::strategy::testing::{best, flat, run, separable, toy};

    fn settings(seed: u64) -> Settings {
        Settings { seed, population: 10, sample: 3, ..Settings::default() }
    }

    #[test]
    fn finds_the_optimum_of_a_separable_objective() {
        for seed in 0..5 {
            let mut space = toy();
            let trials =
                run(&mut Evolution::new(&Settings { seed, ..Settings::default() }), &mut space, 400, separable);
            assert_eq!(best(&trials), 5.0, "seed {seed}");
        }
    }

    #[test]
    fn children_differ_from_a_population_member_in_one_decision() {
        let mut space = toy();
        let mut evo = Evolution::new(&settings(4));
        let trials = run(&mut evo, &mut space, 60, separable);
        for (i, (child, _)) in trials.iter().enumerate().skip(10) {
            space.check(child);
            let earlier = &trials[i.saturating_sub(10)..i];
            let close = earlier.iter().any(|(p, _)| {
                p.assignment().iter().filter(|(n, o)| child.get(n).is_some_and(|c| c != *o)).count() == 1
            });
            assert!(close, "trial {i} ({child}) is no single mutation of the population");
        }
    }

    #[test]
    fn the_population_ages_out_its_oldest_member() {
        let mut space = flat(4, 3);
        let mut evo = Evolution::new(&settings(0));
        let trials = run(&mut evo, &mut space, 25, |_| 1.0);
        let members: Vec<&Candidate> = evo.population.iter().map(|(c, _)| c).collect();
        let last: Vec<&Candidate> = trials[15..].iter().map(|(c, _)| c).collect();
        assert_eq!(members, last);
    }

    #[test]
    fn failed_trials_are_never_parents_over_scored_ones() {
        let mut evo = Evolution::new(&Settings { seed: 2, population: 4, sample: 4, ..Settings::default() });
        let mut space = flat(3, 4);
        for n in 0..4 {
            let cand = evo.ask(&mut space).unwrap().unwrap();
            evo.tell(&cand, if n == 2 { Some(-5.0) } else { None });
        }
        let good = evo.population[2].0.clone();
        assert_eq!(evo.parent(), good);
    }
}
