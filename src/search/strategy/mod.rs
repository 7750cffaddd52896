//! Search strategies: what `archc search` evaluates next.
//!
//! A [`Strategy`] proposes candidates of a [`Space`] one at a time (`ask`) and learns the
//! score of each (`tell`). Every strategy is seeded and deterministic: the same
//! [`Settings`] and the same sequence of asks and tells give the same candidates, so a
//! resumed search replays its recorded trials (ask, then tell the recorded score) and
//! continues exactly where it stopped. An `Err` from the space (a candidate that does not
//! build) is passed on by `ask` unchanged.
//!
//! - [`Kind::Random`]: independent samples, avoiding repeats ([`random`]).
//! - [`Kind::Evolution`]: regularized (aging) evolution ([`evolution`]).
//! - [`Kind::Mcts`]: Monte Carlo tree search with UCT over the decisions ([`mcts`]).
//! - [`Kind::Grid`]: every candidate once, in a fixed order ([`grid`]).

pub mod evolution;
pub mod grid;
pub mod mcts;
pub mod random;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::space::{Candidate, Space};

/// A search strategy over a [`Space`].
pub trait Strategy {
    /// The next candidate to evaluate; `Ok(None)` when the strategy has nothing left
    /// (grid exhausted).
    fn ask(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String>;
    /// The score of the candidate `ask` last returned (higher is better); `None` for a
    /// failed trial.
    fn tell(&mut self, cand: &Candidate, score: Option<f64>);
    /// Whether `ask` ignores every `tell` (random, grid): the loop may then ask the next
    /// round while the current one is evaluated, without changing what is asked.
    fn asks_ahead(&self) -> bool {
        false
    }
}

/// The strategies `archc search --strategy` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Random,
    Evolution,
    Mcts,
    Grid,
}

impl Kind {
    /// Every strategy, in the order help texts list them.
    pub const ALL: [Kind; 4] = [Kind::Random, Kind::Evolution, Kind::Mcts, Kind::Grid];

    /// The name `--strategy` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::Evolution => "evolution",
            Kind::Mcts => "mcts",
            Kind::Grid => "grid",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown search strategy `{s}` (expected one of: {})", names.join(", "))
        })
    }
}

/// The knobs of every strategy; each strategy reads the ones it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Seeds every random draw.
    pub seed: u64,
    /// Evolution: the size of the aging population, and the number of random asks
    /// before mutation starts (at least 1).
    pub population: usize,
    /// Evolution: the tournament size, members sampled to pick a parent (1 to
    /// `population`).
    pub sample: usize,
    /// MCTS: the UCT exploration constant `c` in `Q/n + c*sqrt(ln N / n)` (`Q/n` in
    /// [0, 1]). Smaller values (0.5) exploit more, which suits budgets far smaller than
    /// the space.
    pub exploration: f64,
    /// Random, evolution and MCTS: how many further draws an ask makes to avoid
    /// returning a candidate it already returned, before it accepts a repeat.
    pub retries: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { seed: 0, population: 20, sample: 5, exploration: std::f64::consts::SQRT_2, retries: 100 }
    }
}

/// The strategy `kind` with `settings`.
pub fn make(kind: Kind, settings: &Settings) -> Box<dyn Strategy> {
    match kind {
        Kind::Random => Box::new(random::RandomSearch::new(settings)),
        Kind::Evolution => Box::new(evolution::Evolution::new(settings)),
        Kind::Mcts => Box::new(mcts::Mcts::new(settings)),
        Kind::Grid => Box::new(grid::Grid::new()),
    }
}

/// The random stream every strategy draws from.
fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A fresh seed for [`super::space::Rest::Sample`].
fn draw_seed(rng: &mut ChaCha8Rng) -> u64 {
    rng.random()
}

/// The candidates a strategy has returned, by [`Candidate::key`].
#[derive(Default)]
struct Seen(HashSet<String>);

impl Seen {
    fn contains(&self, cand: &Candidate) -> bool {
        self.0.contains(&cand.key())
    }

    /// Records `cand`; false when it was already there.
    fn insert(&mut self, cand: &Candidate) -> bool {
        self.0.insert(cand.key())
    }

    /// The first of `1 + retries` calls of `draw` that gives a candidate not seen yet, or
    /// the last one drawn when all repeat; the result is recorded as seen.
    fn draw_unseen(
        &mut self,
        retries: usize,
        mut draw: impl FnMut() -> Result<Candidate, String>,
    ) -> Result<Candidate, String> {
        let mut cand = draw()?;
        for _ in 0..retries {
            if !self.contains(&cand) {
                break;
            }
            cand = draw()?;
        }
        self.insert(&cand);
        Ok(cand)
    }
}
