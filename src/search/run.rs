//! The search loop: ask the strategy, evaluate, record, tell; `budget` trials in all
//! (candidates over the latency budget are recorded but not counted).
//!
//! Trials are asked in rounds of `workers` candidates (one per round without workers;
//! [`AHEAD`] times as many for strategies whose asks ignore the results),
//! evaluated (in this process, on threads, or each in an `archc search-trial` process of
//! its own), appended to `trials.jsonl` in order, then told to the strategy in order. A
//! strategy whose asks ignore the results (random, grid) is asked for the next round
//! while a round runs on threads. The same
//! seed, strategy and space give the same asks, so `--resume` replays the recorded
//! trials through the strategy (asking, checking each ask is the recorded candidate,
//! telling its recorded score) and continues where the log ends.

use super::evaluate::{Evaluator, Metrics};
use super::objective::Objective;
use super::space::{Candidate, Decision, Rest, Space};
use super::strategy::{self, Strategy};
use super::trials::{self, Trial};
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Programs of candidates built while resolving, by their sorted assignment, so that
/// evaluating a candidate a strategy just resolved does not build it again.
#[derive(Clone, Default)]
pub struct Built(std::rc::Rc<std::cell::RefCell<std::collections::HashMap<String, Program>>>);

impl Built {
    /// The most programs kept (the cache is emptied when full).
    const MAX: usize = 256;

    pub fn key(assignment: &[(String, usize)]) -> String {
        let mut a = assignment.to_vec();
        a.sort();
        a.iter().map(|(n, i)| format!("{n}={i}")).collect::<Vec<_>>().join(",")
    }

    pub fn put(&self, assignment: &[(String, usize)], p: Program) {
        let mut m = self.0.borrow_mut();
        if m.len() >= Self::MAX {
            m.clear();
        }
        m.insert(Self::key(assignment), p);
    }

    pub fn take(&self, assignment: &[(String, usize)]) -> Option<Program> {
        self.0.borrow_mut().remove(&Self::key(assignment))
    }
}

/// A space file as the strategies see it.
pub struct FileSpace<'a, 's> {
    pub file: &'a SpaceFile<'s>,
    /// Where resolved candidates' programs are left for the evaluator.
    pub built: Built,
    /// Resolve with builds that only check (when candidates are evaluated elsewhere, in
    /// processes that build them again): the decisions are all a strategy needs.
    pub validate_only: bool,
}

impl Space for FileSpace<'_, '_> {
    fn resolve(&mut self, fixed: &[(String, usize)], rest: Rest) -> Result<Candidate, String> {
        let seed = match rest {
            Rest::First => None,
            Rest::Sample(s) => Some(s),
        };
        let base = Options { validate_only: self.validate_only, ..Options::default() };
        let b = self.file.build_assigned(&base, fixed, seed);
        if let Err(ds) = &b.program {
            return Err(ds.first().map(|d| d.message.clone()).unwrap_or_else(|| "the candidate does not build".into()));
        }
        let decisions = b.decisions.iter().map(|d| Decision { name: d.name.clone(), options: d.options.clone() });
        let cand = Candidate { decisions: decisions.collect(), chosen: b.decisions.iter().map(|d| d.chosen).collect() };
        match b.program {
            Ok(p) if !self.validate_only => self.built.put(&cand.assignment(), p),
            _ => {}
        }
        Ok(cand)
    }
}

/// Evaluates one round of candidates (index of the first, candidates) into metrics.
pub trait Runner {
    fn run(&mut self, first: usize, cands: &[Candidate]) -> Vec<Result<Metrics, String>>;
    /// Starts a round without waiting for it where the runner can (threads); [`Runner::wait`]
    /// gives its results. By default the round runs here.
    fn start(&mut self, first: usize, cands: &[Candidate]) -> Started {
        Started::Done(self.run(first, cands))
    }
    /// The results of a started round, in order.
    fn wait(&mut self, started: Started) -> Vec<Result<Metrics, String>> {
        match started {
            Started::Done(r) => r,
            Started::Running(n) => vec![Err("the round was not started".into()); n],
        }
    }
}

/// A round handed to [`Runner::start`]: evaluated already, or running (this many).
pub enum Started {
    Done(Vec<Result<Metrics, String>>),
    Running(usize),
}

/// Runs trials in this process.
pub struct InProcess<'e, 'a, 's> {
    pub eval: &'e mut Evaluator<'a, 's>,
    pub objectives: Vec<Objective>,
    pub out: PathBuf,
}

impl Runner for InProcess<'_, '_, '_> {
    fn run(&mut self, first: usize, cands: &[Candidate]) -> Vec<Result<Metrics, String>> {
        cands
            .iter()
            .enumerate()
            .map(|(i, c)| self.eval.evaluate(c, &self.objectives, &trial_dir(&self.out, first + i)))
            .collect()
    }
}

/// The folder a trial trains in.
pub fn trial_dir(out: &Path, index: usize) -> PathBuf {
    out.join("trials").join(format!("{index:05}"))
}

/// Candidates per thread in the rounds of a strategy whose asks ignore the results
/// ([`Loop::ahead`]): a round ends when its slowest candidate does, so a worker that
/// finishes early idles until then; longer rounds spread that wait over more candidates.
pub const AHEAD: usize = 8;

/// A search stops after this many candidates over the latency budget per trial of
/// `--budget` (a budget almost nothing meets).
pub const MAX_REJECTED: usize = 10;

/// What the loop needs to know.
pub struct Loop {
    pub budget: usize,
    /// Candidates evaluated at a time (processes or threads).
    pub workers: usize,
    /// Rounds of a strategy whose asks ignore the results hold this many candidates per
    /// worker (threads take [`AHEAD`]; processes 1: each candidate of a round is a
    /// process started at once).
    pub ahead: usize,
    pub objectives: Vec<Objective>,
    pub log: PathBuf,
    pub resume: bool,
}

/// What the search did.
pub struct Outcome {
    pub trials: Vec<Trial>,
    /// Trials replayed from the log.
    pub replayed: usize,
    /// The grid ran out before the budget.
    pub exhausted: bool,
}

/// Runs the search; `progress` is told after every recorded trial.
pub fn search(
    space: &mut dyn Space,
    strat: &mut dyn Strategy,
    runner: &mut dyn Runner,
    lp: &Loop,
    progress: &mut dyn FnMut(&Trial, &[Trial]),
) -> Result<Outcome, String> {
    let recorded = if lp.resume { trials::read(&lp.log)? } else { Vec::new() };
    if lp.resume {
        trials::rewrite(&lp.log, &recorded)?;
    }
    let mut done: Vec<Trial> = Vec::new();
    let mut exhausted = false;
    let primary = lp.objectives[0];
    let counted = |done: &[Trial]| done.iter().filter(|t| !t.over_budget()).count();
    let more = |done: &[Trial]| counted(done) < lp.budget && done.len() - counted(done) < MAX_REJECTED * lp.budget;
    let per_round = match strat.asks_ahead() {
        true => lp.workers.max(1) * lp.ahead.max(1),
        false => lp.workers.max(1),
    };
    let mut next: Option<Vec<Candidate>> = None;
    while more(&done) && (next.is_some() || !exhausted) {
        let round = match next.take() {
            Some(r) => r,
            None => ask_round(strat, space, per_round.min(lp.budget - counted(&done)), &mut exhausted)?,
        };
        if round.is_empty() {
            break;
        }
        let first = done.len();
        let fresh: Vec<Candidate> =
            round.iter().enumerate().filter(|(i, _)| first + i >= recorded.len()).map(|(_, c)| c.clone()).collect();
        let start = Instant::now();
        let started = runner.start(first + round.len() - fresh.len(), &fresh);
        // While it runs, ask the next round where asks ignore results (random, grid):
        // the same candidates in the same order as asking afterwards.
        let needed = lp.budget.saturating_sub(counted(&done) + round.len());
        if strat.asks_ahead() && needed > 0 && !exhausted {
            next = Some(ask_round(strat, space, per_round.min(needed), &mut exhausted)?);
        }
        let mut results = runner.wait(started).into_iter();
        let per = start.elapsed().as_secs_f64() / fresh.len().max(1) as f64;
        for (i, cand) in round.iter().enumerate() {
            let index = first + i;
            let trial = match recorded.get(index) {
                Some(t) if same(t, cand) => t.clone(),
                Some(t) => return Err(mismatch(&lp.log, t, cand)),
                None => {
                    let t = new_trial(index, cand, results.next().unwrap_or(Err("no result".into())), per);
                    trials::append(&lp.log, &t)?;
                    t
                }
            };
            strat.tell(cand, trial.metric(primary.name()).map(|v| primary.score(v)));
            done.push(trial);
            progress(done.last().expect("pushed"), &done);
        }
    }
    let replayed = recorded.len().min(done.len());
    Ok(Outcome { trials: done, replayed, exhausted })
}

/// Up to `want` candidates from the strategy (fewer when it runs out: `exhausted`).
fn ask_round(
    strat: &mut dyn Strategy,
    space: &mut dyn Space,
    want: usize,
    exhausted: &mut bool,
) -> Result<Vec<Candidate>, String> {
    let mut round = Vec::new();
    while round.len() < want {
        match strat.ask(space)? {
            Some(c) => round.push(c),
            None => {
                *exhausted = true;
                break;
            }
        }
    }
    Ok(round)
}

/// Whether a recorded trial is this candidate (JSON keeps no order of its keys).
fn same(t: &Trial, cand: &Candidate) -> bool {
    let mut a = t.assignment.clone();
    let mut b = cand.assignment();
    a.sort();
    b.sort();
    a == b
}

fn new_trial(index: usize, cand: &Candidate, result: Result<Metrics, String>, seconds: f64) -> Trial {
    let (metrics, error) = match result {
        Ok(m) => (m.into_iter().map(|(o, v)| (o.name().to_string(), v)).collect(), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Trial { index, choices: cand.labels(), assignment: cand.assignment(), metrics, error, seconds }
}

fn mismatch(log: &Path, t: &Trial, cand: &Candidate) -> String {
    format!(
        "{} does not belong to this search: its trial {} is `{}`, but this search asks `{}` there \
         (was it written with another --strategy, --seed or space file?)",
        log.display(),
        t.index,
        t.key(),
        cand.key()
    )
}

/// The best trial by the primary objective (failed trials never are).
pub fn best(trials: &[Trial], primary: Objective) -> Option<&Trial> {
    trials
        .iter()
        .filter_map(|t| t.metric(primary.name()).map(|v| (t, primary.score(v))))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t)
}

/// Builds a strategy (re-exported for the CLI).
pub fn make_strategy(kind: strategy::Kind, settings: &strategy::Settings) -> Box<dyn Strategy> {
    strategy::make(kind, settings)
}
