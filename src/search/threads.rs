//! Trials evaluated on threads of this process (`archc search --threads N`): each
//! thread opens the space itself (a parsed space is not shared between threads) and
//! evaluates candidates from one shared queue (a free thread takes the next, so one slow
//! candidate does not hold back the others); a round's results come back in order. A
//! candidate's program, when the strategy built it already (resolving it), travels with
//! its job.

use super::evaluate::{Evaluator, Metrics, Settings};
use super::objective::Objective;
use super::run::{trial_dir, Built, Runner, Started};
use super::space::Candidate;
use crate::driver::FsModules;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::tir::Program;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

/// The stack of an evaluating thread (building recurses once per nested layer).
const STACK: usize = 256 << 20;

struct Job {
    slot: usize,
    cand: Candidate,
    dir: PathBuf,
    program: Option<Program>,
}

/// Worker threads: one shared job queue, one result channel.
pub struct Threads {
    jobs: Sender<Job>,
    results: Receiver<(usize, Result<Metrics, String>)>,
    out: PathBuf,
    /// Slots of the running round that no thread took.
    unsent: Vec<usize>,
    /// Programs the strategy built (taken for the jobs).
    built: Built,
}

/// What every thread needs to open the space and evaluate.
pub struct Setup<'env> {
    pub path: &'env Path,
    pub text: &'env str,
    pub settings: Settings,
    pub objectives: Vec<Objective>,
    pub out: PathBuf,
}

/// Starts `n` evaluating threads in `scope`.
pub fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    n: usize,
    setup: &'env Setup<'env>,
    built: Built,
) -> Result<Threads, String> {
    let (done, results) = channel();
    let (jobs, queue) = channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..n.max(1) {
        let (done, queue) = (done.clone(), queue.clone());
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(scope, move || work(setup, &queue, done))
            .map_err(|e| format!("cannot start an evaluating thread: {e}"))?;
    }
    Ok(Threads { jobs, results, out: setup.out.clone(), unsent: Vec::new(), built })
}

fn work(setup: &Setup, queue: &Mutex<Receiver<Job>>, done: Sender<(usize, Result<Metrics, String>)>) {
    let modules = FsModules { dir: setup.path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&setup.path.display().to_string(), setup.text, &modules);
    let mut eval = Evaluator::new(&file, setup.settings.clone());
    // The lock is held only while taking a job; a poisoned lock or a closed queue ends
    // the thread.
    while let Some(job) = queue.lock().ok().and_then(|q| q.recv().ok()) {
        if let Some(p) = job.program {
            eval.built.put(&job.cand.assignment(), p);
        }
        let r = eval.evaluate(&job.cand, &setup.objectives, &job.dir);
        if done.send((job.slot, r)).is_err() {
            break;
        }
    }
}

impl Runner for Threads {
    fn run(&mut self, first: usize, cands: &[Candidate]) -> Vec<Result<Metrics, String>> {
        let started = self.start(first, cands);
        self.wait(started)
    }

    fn start(&mut self, first: usize, cands: &[Candidate]) -> Started {
        let mut failed = Vec::new();
        for (slot, cand) in cands.iter().enumerate() {
            let program = self.built.take(&cand.assignment());
            let job = Job { slot, cand: cand.clone(), dir: trial_dir(&self.out, first + slot), program };
            if self.jobs.send(job).is_err() {
                failed.push(slot);
            }
        }
        self.unsent = failed;
        Started::Running(cands.len())
    }

    fn wait(&mut self, started: Started) -> Vec<Result<Metrics, String>> {
        let n = match started {
            Started::Done(r) => return r,
            Started::Running(n) => n,
        };
        let mut out: Vec<Option<Result<Metrics, String>>> = vec![None; n];
        let unsent = std::mem::take(&mut self.unsent);
        for _ in 0..n - unsent.len() {
            match self.results.recv() {
                Ok((slot, r)) if slot < n => out[slot] = Some(r),
                _ => break,
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err("an evaluating thread stopped".into()))).collect()
    }
}
