//! Successive halving of a search's finalists (`archc search --halving ETA`): the trials
//! train for `--train-epochs` epochs each; then the best 1/η of them (by accuracy) train
//! on, from their own checkpoints, to η times as many epochs, the best 1/η of those to η²
//! times, and so on until one is left. Weak candidates stop early, so a search can try
//! many candidates briefly and still rank its finalists on longer training.
//!
//! Each promotion is a line of `halving.jsonl` (`{"rung": 1, "trial": 27, "epochs": 30,
//! "accuracy": 0.97}`, or `"error"`); a resumed search reuses the lines it finds.

use super::evaluate::Evaluator;
use super::run::{trial_dir, FileSpace};
use super::space::{Rest, Space};
use super::trials::Trial;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// One promoted trial's result at one rung.
#[derive(Clone, Debug, PartialEq)]
pub struct Promotion {
    pub rung: usize,
    pub trial: usize,
    pub epochs: u64,
    pub accuracy: Result<f64, String>,
}

impl Promotion {
    fn to_json(&self) -> String {
        let mut v = json!({ "rung": self.rung, "trial": self.trial, "epochs": self.epochs });
        match &self.accuracy {
            Ok(a) => v["accuracy"] = json!(a),
            Err(e) => v["error"] = json!(e),
        }
        v.to_string()
    }

    fn parse(line: &str) -> Option<Promotion> {
        let v: Value = serde_json::from_str(line).ok()?;
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        let accuracy = match (v.get("accuracy").and_then(Value::as_f64), v.get("error").and_then(Value::as_str)) {
            (Some(a), _) => Ok(a),
            (None, Some(e)) => Err(e.to_string()),
            _ => return None,
        };
        Some(Promotion { rung: n("rung")? as usize, trial: n("trial")? as usize, epochs: n("epochs")?, accuracy })
    }
}

/// The trials to promote: the best `ceil(n / eta)` of `pool` by `score`.
pub fn promote(pool: &[(usize, f64)], eta: usize) -> Vec<(usize, f64)> {
    let mut sorted = pool.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted.truncate(pool.len().div_ceil(eta.max(2)));
    sorted
}

/// Runs the rungs after a search; returns every promotion, the last rung's last.
pub fn run(
    eval: &mut Evaluator,
    space: &mut FileSpace,
    trials: &[Trial],
    eta: usize,
    first_epochs: u64,
    out: &Path,
) -> Result<Vec<Promotion>, String> {
    let log = out.join("halving.jsonl");
    let done: Vec<Promotion> =
        std::fs::read_to_string(&log).map(|t| t.lines().filter_map(Promotion::parse).collect()).unwrap_or_default();
    let mut pool: Vec<(usize, f64)> =
        trials.iter().filter_map(|t| t.metric("accuracy").map(|a| (t.index, a))).collect();
    let (mut all, mut rung, mut epochs) = (Vec::new(), 1, first_epochs);
    while pool.len() > 1 {
        epochs = epochs.checked_mul(eta as u64).ok_or("too many epochs")?;
        let mut next = Vec::new();
        for (trial, _) in promote(&pool, eta) {
            let p = match done.iter().find(|p| p.rung == rung && p.trial == trial && p.epochs == epochs) {
                Some(p) => p.clone(),
                None => {
                    let p =
                        Promotion { rung, trial, epochs, accuracy: train_on(eval, space, &trials[trial], epochs, out) };
                    append(&log, &p)?;
                    p
                }
            };
            if let Ok(a) = p.accuracy {
                next.push((trial, a));
            }
            all.push(p);
        }
        pool = next;
        rung += 1;
    }
    Ok(all)
}

fn train_on(eval: &mut Evaluator, space: &mut FileSpace, t: &Trial, epochs: u64, out: &Path) -> Result<f64, String> {
    let cand = space.resolve(&t.assignment, Rest::First)?;
    eval.train_on(&cand, &trial_dir(out, t.index), epochs)
}

fn append(path: &Path, p: &Promotion) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
    f.write_all(format!("{}\n", p.to_json()).as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_third_is_promoted_and_ties_keep_trial_order() {
        let pool = [(0, 0.5), (1, 0.9), (2, 0.7), (3, 0.9), (4, 0.1), (5, 0.2), (6, 0.3)];
        assert_eq!(promote(&pool, 3), vec![(1, 0.9), (3, 0.9), (2, 0.7)]);
        assert_eq!(promote(&pool[..2], 3), vec![(1, 0.9)]);
    }

    #[test]
    fn promotions_round_trip() {
        for p in [
            Promotion { rung: 1, trial: 27, epochs: 30, accuracy: Ok(0.97) },
            Promotion { rung: 2, trial: 3, epochs: 90, accuracy: Err("diverged".into()) },
        ] {
            assert_eq!(Promotion::parse(&p.to_json()), Some(p));
        }
    }
}
