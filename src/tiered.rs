//! `--backend auto`: tiered execution on the CPU.
//!
//! Policy: every function starts on the Cranelift tier (compiled in milliseconds; one
//! compile serves every size). Once a function has run on Cranelift, with the same input
//! types, for as long as MLIR is expected to take to compile it ([`HOT`] times its
//! Cranelift compile time, the ratio measured on the examples' train steps), it is queued
//! for MLIR: one background thread emits and compiles its module for those types, one
//! module at a time, while the calls go on running on Cranelift. The first call after
//! that module is ready switches to it (the faster code), for those input types only. A
//! function Cranelift cannot lower runs on MLIR from its first call. A short run never
//! pays for an MLIR compile; a long one spends at most about twice the compile time
//! before it runs MLIR's code.
//!
//! Both tiers agree with the interpreter to 1e-5 (their tests), not bit for bit, and the
//! call at which a function switches depends on timing: two runs with the same seed can
//! differ in the last bits. When the executor is dropped, queued compiles are abandoned
//! and the one in flight is waited for, so the process never exits in the middle of LLVM.

use archc_clif::ClifCpu;
use archc_compiler::tir::Program;
use archc_mlir::backend::MlirCpu;
use archc_mlir::emit::{emit_module_for, Shape, Target};
use archc_mlir::jit::{Compiled, Timings};
use archc_runtime::{CompileTime, Executor, HostState, RunError, Tensor};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A function and the types of its inputs.
type Key = (String, Vec<Shape>);

/// MLIR's compile time over Cranelift's, at the low end (train steps of the examples:
/// 28 to 62).
pub const HOT: u32 = 30;

/// Where calls of one key run.
enum Tier {
    /// On Cranelift, which has spent this long running it so far.
    Cranelift(Duration),
    /// Queued for (or being compiled by) MLIR; Cranelift meanwhile.
    Queued,
    /// MLIR's module runs it.
    Mlir,
    /// MLIR failed to compile it: Cranelift for good.
    Failed,
}

/// A compiled module handed from the compile thread to the calling one.
struct Moved(Compiled);

// SAFETY: a `Compiled` owns its MLIR context and execution engine, which nothing else
// refers to; it is built on the compile thread and afterwards used only by the thread
// that owns the executor, never by two threads at once.
unsafe impl Send for Moved {}

/// A finished background compile.
struct Done {
    key: Key,
    result: Result<Moved, archc_mlir::Error>,
}

/// The background compile thread.
struct Worker {
    jobs: Option<Sender<Key>>,
    done: Receiver<Done>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(program: Arc<Program>) -> Worker {
        let (jobs, queue) = channel::<Key>();
        let (report, done) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("archc-mlir-tier".into())
            .spawn(move || {
                for key in queue {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = compile(&program, &key.0, &key.1);
                    if report.send(Done { key, result }).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Worker { jobs: Some(jobs), done, cancel, thread }
    }
}

/// Emits and compiles the MLIR module of `func` for `inputs`.
fn compile(program: &Program, func: &str, inputs: &[Shape]) -> Result<Moved, archc_mlir::Error> {
    let sig = emit_module_for(program, func, inputs, None, Target::Cpu)?;
    Compiled::new(sig).map(Moved)
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A module compiled in the background, and when it came into use: (call, time since
/// the executor was made).
struct Background {
    key: Key,
    timings: Timings,
    used: Option<(u64, Duration)>,
}

/// The tiered executor (see the module docs).
pub struct Tiered<'p> {
    program: &'p Program,
    clif: ClifCpu<'p>,
    mlir: MlirCpu<'p>,
    tiers: HashMap<Key, Tier>,
    /// Functions Cranelift cannot lower (they run on MLIR, compiled on demand).
    mlir_only: HashSet<String>,
    worker: Option<Worker>,
    start: Instant,
    calls: u64,
    background: Vec<Background>,
    /// Resident state, shared by both tiers (see `archc_runtime::resident`).
    state: HostState,
}

impl<'p> Tiered<'p> {
    pub fn new(program: &'p Program) -> Self {
        Tiered {
            program,
            clif: ClifCpu::new(program),
            mlir: MlirCpu::new(program),
            tiers: HashMap::new(),
            mlir_only: HashSet::new(),
            worker: None,
            start: Instant::now(),
            calls: 0,
            background: Vec::new(),
            state: HostState::default(),
        }
    }

    /// Takes every finished background compile: a module joins the MLIR executor, a
    /// failure keeps its key on Cranelift (and is reported once on stderr).
    fn collect(&mut self) {
        let Some(w) = &self.worker else { return };
        let finished: Vec<Done> = w.done.try_iter().collect();
        for Done { key, result } in finished {
            match result {
                Ok(Moved(compiled)) => {
                    let timings = compiled.timings.clone();
                    self.background.push(Background { key: key.clone(), timings, used: None });
                    self.mlir.adopt(&key.0, key.1.clone(), compiled);
                    self.tiers.insert(key, Tier::Mlir);
                }
                Err(e) => {
                    eprintln!("warning: the MLIR tier cannot compile @{}; it stays on Cranelift: {e}", key.0);
                    self.tiers.insert(key, Tier::Failed);
                }
            }
        }
    }

    /// Queues `key` for the background compile thread (started on first use).
    fn queue(&mut self, key: Key) {
        let program = self.program;
        let w = self.worker.get_or_insert_with(|| Worker::spawn(Arc::new(program.clone())));
        let sent = w.jobs.as_ref().is_some_and(|j| j.send(key.clone()).is_ok());
        self.tiers.insert(key, if sent { Tier::Queued } else { Tier::Failed });
    }

    /// How long Cranelift took to compile `func`.
    fn clif_compile_time(&self, func: &str) -> Duration {
        self.clif.timings.iter().find(|(f, _)| f == func).map_or(Duration::ZERO, |(_, t)| *t)
    }

    /// Whether Cranelift lowers `func` (compiling it if it is not yet).
    fn clif_lowers(&mut self, func: &str) -> bool {
        if self.mlir_only.contains(func) {
            return false;
        }
        if self.program.func(func).is_none() {
            return true; // the tier reports the unknown function
        }
        match self.clif.prepare(func) {
            Ok(_) => true,
            Err(_) => {
                self.mlir_only.insert(func.to_string());
                false
            }
        }
    }
}

impl Executor for Tiered<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        self.calls += 1;
        self.collect();
        if !self.clif_lowers(func) {
            return self.mlir.run_func(func, inputs, seed);
        }
        let key: Key = (func.to_string(), inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect());
        if matches!(self.tiers.get(&key), Some(Tier::Mlir)) {
            let (call, at) = (self.calls, self.start.elapsed());
            if let Some(b) = self.background.iter_mut().find(|b| b.key == key && b.used.is_none()) {
                b.used = Some((call, at));
            }
            return self.mlir.run_func(func, inputs, seed);
        }
        let t0 = Instant::now();
        let out = self.clif.run_func(func, inputs, seed)?;
        let spent = t0.elapsed();
        let total = match self.tiers.get_mut(&key) {
            Some(Tier::Cranelift(total)) => {
                *total += spent;
                *total
            }
            Some(_) => return Ok(out),
            None => {
                self.tiers.insert(key.clone(), Tier::Cranelift(spent));
                spent
            }
        };
        if total >= HOT * self.clif_compile_time(func) {
            self.queue(key);
        }
        Ok(out)
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        self.clif.set_param_value(name, value.clone())?;
        self.mlir.set_param_value(name, value)
    }

    fn compile_times(&self) -> Vec<CompileTime> {
        let mut all = self.clif.compile_times();
        for (func, t) in self.mlir.timings.iter().filter(|(f, _)| self.mlir_only.contains(f)) {
            let mut c = archc_mlir::backend::compile_time("mlir-cpu", func, t);
            c.detail = format!("{}; on demand, Cranelift cannot lower it", c.detail);
            all.push(c);
        }
        for b in &self.background {
            let mut c = archc_mlir::backend::compile_time("mlir-cpu", &b.key.0, &b.timings);
            let used = match b.used {
                Some((call, at)) => format!("in use from call {call} at {:.2} s", at.as_secs_f64()),
                None => "ready, not used before the run ended".into(),
            };
            c.detail = format!("{}; background, {}, {used}", c.detail, shapes(&b.key.1));
            all.push(c);
        }
        all
    }

    fn host_state(&mut self) -> Option<&mut HostState> {
        Some(&mut self.state)
    }
}

/// `inputs f32[32,64], i64[32]`, the first two of many with their count.
fn shapes(inputs: &[Shape]) -> String {
    let one = |(d, s): &Shape| {
        let dims: Vec<String> = s.iter().map(usize::to_string).collect();
        format!("{d}[{}]", dims.join(","))
    };
    let shown: Vec<String> = inputs.iter().take(2).map(one).collect();
    match inputs.len() {
        0 => "no inputs".into(),
        1 | 2 => format!("inputs {}", shown.join(", ")),
        n => format!("inputs {}, ... ({n} in all)", shown.join(", ")),
    }
}
