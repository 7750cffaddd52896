//! `archc supernet search DIR`: a search over the subnets of a trained supernet, each
//! scored with the shared weights (Once-for-All's search phase): no subnet is trained.
//!
//! Contract:
//! - The strategies are `archc search`'s (`--strategy`, seeded), over the supernet's
//!   enumerated subnets ([`Subnets`] as a `search::space::Space`).
//! - A subnet's accuracy is its test accuracy with the supernet's weights, its buffers
//!   recalibrated first (`train::Run::calibrate`; the supernet's own are put back
//!   after). With `latency` among the objectives, or `--max-latency`, its forward is
//!   timed as `archc search` times candidates (the train block's batch, `--backend`); a
//!   subnet over the budget is recorded and not scored.
//! - Every evaluated subnet is a line of `DIR/search.jsonl` (its `--choices`, accuracy,
//!   latency); the best is printed with the `archc supernet extract` command that writes it.

use super::space::Subnets;
use super::train::Run;
use crate::search::space::{Candidate, Decision, Rest, Space};
use crate::search::strategy::{self, Kind, Settings};
use archc_runtime::train::TrainData;
use std::hash::{Hash, Hasher};

/// The subnets as a space the search strategies ask from.
pub(super) struct View<'a>(pub &'a Subnets);

impl Space for View<'_> {
    fn resolve(&mut self, fixed: &[(String, usize)], rest: Rest) -> Result<Candidate, String> {
        let subnets = self.0;
        let mut alive: Vec<usize> = (0..subnets.leaves.len()).collect();
        let (mut decisions, mut chosen) = (Vec::new(), Vec::new());
        for depth in 0.. {
            let Some((name, _)) = alive.first().and_then(|&l| subnets.leaves[l].assignment.get(depth)).cloned() else {
                break;
            };
            let mut opts: Vec<usize> = alive.iter().map(|&l| subnets.leaves[l].assignment[depth].1).collect();
            opts.sort_unstable();
            opts.dedup();
            let wanted = fixed.iter().find(|(n, _)| *n == name).map(|(_, i)| *i).filter(|i| opts.contains(i));
            let pick = match (wanted, rest) {
                (Some(i), _) => i,
                (None, Rest::First) => opts[0],
                (None, Rest::Sample(seed)) => {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (seed, &name).hash(&mut h);
                    opts[(h.finish() % opts.len() as u64) as usize]
                }
            };
            alive.retain(|&l| subnets.leaves[l].assignment[depth].1 == pick);
            decisions.push(Decision { name: name.clone(), options: subnets.options[&name].clone() });
            chosen.push(pick);
        }
        Ok(Candidate { decisions, chosen })
    }
}

/// One evaluated subnet.
#[derive(Clone, Debug)]
pub struct Scored {
    pub candidate: Candidate,
    pub accuracy: Option<f64>,
    pub latency: Option<f64>,
}

/// How the search runs.
pub struct SearchSpec {
    pub kind: Kind,
    pub budget: usize,
    pub seed: u64,
    /// A latency budget (ms): a subnet over it is recorded, not scored.
    pub max_latency: Option<f64>,
}

/// Times a subnet's forward (ms).
pub type Measure<'a> = &'a mut dyn FnMut(&Candidate) -> Result<f64, String>;

/// Runs the search; `latency` times a candidate (when asked for), `report` sees each
/// scored subnet in order.
pub fn search(
    run: &mut Run,
    data: &TrainData,
    spec: &SearchSpec,
    mut latency: Option<Measure>,
    mut report: impl FnMut(&Scored) -> Result<(), String>,
) -> Result<Vec<Scored>, String> {
    let test = data.test.as_ref().ok_or("the train block's data has no test part to score subnets on")?;
    let batch = run.built.cfg.batch as usize;
    let calibration = super::train::calibration_batches(&data.train, batch, run.built.cfg.seed, 0)?;
    let settings = Settings { seed: spec.seed, ..Settings::default() };
    let mut strategy = strategy::make(spec.kind, &settings);
    let mut space = View(run.space);
    let mut out = Vec::new();
    for _ in 0..spec.budget {
        let Some(candidate) = strategy.ask(&mut space)? else { break };
        let leaf = run.space.find(&candidate.assignment()).ok_or("internal: a subnet outside the supernet")?;
        let latency = match latency.as_mut() {
            Some(measure) => Some(measure(&candidate)?),
            None => None,
        };
        let over = matches!((latency, spec.max_latency), (Some(l), Some(max)) if l > max);
        let accuracy = match over {
            true => None,
            false => {
                let saved = run.calibrate(leaf, &calibration)?;
                let (_, acc) = run.evaluate(leaf, test, batch)?;
                run.restore(saved)?;
                Some(acc)
            }
        };
        strategy.tell(&candidate, accuracy);
        let scored = Scored { candidate, accuracy, latency };
        report(&scored)?;
        out.push(scored);
    }
    Ok(out)
}
