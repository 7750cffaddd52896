//! Tests across strategies: reproducibility and resume, `make` and `Kind`, and guided
//! search against random search on a deceptive landscape.

use super::testing::{best, run, toy, Toy};
use super::*;

/// A score, or a failed trial for a few candidates (depth 1 with the first width).
fn sometimes_failing(cand: &Candidate) -> Option<f64> {
    let failed = cand.get("depth") == Some(0) && cand.get("width") == Some(0);
    (!failed).then(|| cand.chosen.iter().map(|&i| i as f64).sum::<f64>() - cand.chosen.len() as f64)
}

/// Asks and tells `n` times; the trials in order.
fn trials(strategy: &mut dyn Strategy, space: &mut Toy, n: usize) -> Vec<(Candidate, Option<f64>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let cand = strategy.ask(space).unwrap().expect("the space has more candidates");
        let score = sometimes_failing(&cand);
        strategy.tell(&cand, score);
        out.push((cand, score));
    }
    out
}

fn settings(seed: u64) -> Settings {
    Settings { seed, population: 8, sample: 3, ..Settings::default() }
}

#[test]
fn the_same_seed_gives_the_same_asks_and_another_seed_other_ones() {
    for kind in Kind::ALL {
        let first = trials(make(kind, &settings(11)).as_mut(), &mut toy(), 60);
        let again = trials(make(kind, &settings(11)).as_mut(), &mut toy(), 60);
        assert_eq!(first, again, "{kind}");
        if kind != Kind::Grid {
            let other = trials(make(kind, &settings(12)).as_mut(), &mut toy(), 60);
            assert_ne!(first, other, "{kind} ignores its seed");
        }
    }
}

#[test]
fn replaying_recorded_trials_resumes_where_the_search_stopped() {
    for kind in Kind::ALL {
        let mut space = toy();
        let mut original = make(kind, &settings(5));
        let recorded = trials(original.as_mut(), &mut space, 40);
        let mut resumed = make(kind, &settings(5));
        for (cand, score) in &recorded {
            assert_eq!(&resumed.ask(&mut space).unwrap().unwrap(), cand, "{kind} replays differently");
            resumed.tell(cand, *score);
        }
        let next = trials(original.as_mut(), &mut space, 20);
        assert_eq!(trials(resumed.as_mut(), &mut space, 20), next, "{kind} continues differently");
    }
}

#[test]
fn make_builds_every_kind() {
    for kind in Kind::ALL {
        let mut strategy = make(kind, &Settings::default());
        let mut space = toy();
        let cand = strategy.ask(&mut space).unwrap().unwrap();
        space.check(&cand);
        strategy.tell(&cand, None);
        assert!(strategy.ask(&mut space).unwrap().is_some(), "{kind}");
    }
}

#[test]
fn kinds_parse_from_and_display_as_their_names() {
    let names: Vec<String> = Kind::ALL.iter().map(Kind::to_string).collect();
    assert_eq!(names, ["random", "evolution", "mcts", "grid"]);
    for kind in Kind::ALL {
        assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
    }
    let err = "bayes".parse::<Kind>().unwrap_err();
    assert_eq!(err, "unknown search strategy `bayes` (expected one of: random, evolution, mcts, grid)");
    assert!("Random".parse::<Kind>().is_err(), "names are lower case");
}

#[test]
fn extreme_settings_are_kept_in_range() {
    let odd = Settings { population: 0, sample: 0, retries: 0, ..Settings::default() };
    for kind in Kind::ALL {
        let trials = trials(make(kind, &odd).as_mut(), &mut toy(), 30);
        assert_eq!(trials.len(), 30, "{kind}");
    }
}

/// The deceptive landscape's space: `depth` of 2, 4 or 6 cells, each cell three binary
/// decisions `a`, `b`, `c`, then `width` of 4 options (1,062,912 candidates).
fn trap_space() -> Toy {
    Toy { depths: vec![2, 4, 6], cell: vec![("a", 2), ("b", 2), ("c", 2)], widths: 4, resolves: 0 }
}

/// Concatenated order-3 traps: a cell with `u` of its three decisions on option 1 scores
/// 3 when u = 3, else 2 - u, so every single step away from all-zero loses locally while
/// all-one is the cell's optimum; plus 0.25 per `width` option. Deeper is better (more
/// cells), width is a plain gradient. Optimum 6 * 3 + 0.75 = 18.75 (6 cells all one,
/// last width); the deceptive local optimum, 6 cells all zero, scores 12.75.
fn trap(cand: &Candidate) -> f64 {
    let mut ones = std::collections::BTreeMap::<&str, usize>::new();
    for (d, &i) in cand.decisions.iter().zip(&cand.chosen) {
        if let Some((cell, _)) = d.name.split_once('.') {
            *ones.entry(cell).or_default() += i;
        }
    }
    let cells: f64 = ones.values().map(|&u| if u == 3 { 3.0 } else { 2.0 - u as f64 }).sum();
    cells + 0.25 * cand.get("width").unwrap() as f64
}

/// The mean over seeds 0..20 of the best score `kind` finds in `budget` trials.
fn mean_best(kind: Kind, budget: usize) -> f64 {
    let total: f64 = (0..20)
        .map(|seed| {
            let mut strategy = make(kind, &Settings { seed, ..Settings::default() });
            best(&run(strategy.as_mut(), &mut trap_space(), budget, trap))
        })
        .sum();
    total / 20.0
}

#[test]
fn guided_search_beats_random_search_on_a_deceptive_landscape() {
    let random = mean_best(Kind::Random, 300);
    let evolution = mean_best(Kind::Evolution, 300);
    let mcts = mean_best(Kind::Mcts, 300);
    let summary = format!("mean best of 20 seeds, 300 trials: random {random}, evolution {evolution}, mcts {mcts}");
    eprintln!("{summary}");
    assert!(evolution > random, "{summary}");
    assert!(mcts > random, "{summary}");
}
