//! The campaign: worker threads run generated inputs under `catch_unwind` and a watchdog,
//! count what built, and save what failed.
//!
//! Contract:
//! - [`run_one`] runs one input on the calling thread and turns a panic into a
//!   [`Failure`] (message and `file:line` of the panic); a panic hook installed once keeps
//!   panics from printing and records their location.
//! - [`campaign`] runs inputs `0..budget` (each made from `(seed, index)` alone) on `jobs`
//!   threads until the budget or the time is spent. Before each input a worker writes it
//!   to `<out>/current-<worker>.<suffix>`, so an abort (stack overflow, allocation
//!   failure) leaves the input behind; these files and the data readers' scratch files
//!   (`scratch-<worker>.<ext>`) are removed when the campaign ends.
//!   Every panicking input is saved as `<out>/panic-<hash>.<suffix>` with its message in
//!   `....txt` (at most [`KEEP_PER_SITE`] per panic site), a data file that made its
//!   reader allocate too much as `oversized-<hash>.<suffix>` (counted apart from panics),
//!   and the first input of each site is minimised ([`minimise`]) to
//!   `min-<hash>.<suffix>`.
//! - The watchdog: an input that runs longer than the hang limit is saved as
//!   `hang-<hash>.<suffix>`, the report is printed, and the process exits with status 2
//!   (a hung thread cannot be stopped).

use crate::gen::Generator;
use crate::input::{DataKind, Input};
use crate::rng::Rng;
use crate::targets;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The most inputs saved per panic site.
pub const KEEP_PER_SITE: usize = 5;

/// A panic caught while running an input, or a reader's oversized allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `file:line:col` of the panic, or `<Kind> reader allocation`.
    pub site: String,
    pub message: String,
    /// True for an oversized allocation ([`targets::Oversized`]), false for a panic.
    pub oversized: bool,
}

impl Failure {
    /// The label saved inputs of this failure get.
    pub fn label(&self) -> &'static str {
        if self.oversized {
            "oversized"
        } else {
            "panic"
        }
    }
}

static LAST_SITE: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook (once) with one that records the panic's location silently.
pub fn install_hook() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        panic::set_hook(Box::new(|info| {
            let site = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            *LAST_SITE.lock().unwrap_or_else(|e| e.into_inner()) = site;
        }))
    });
}

/// Runs `input` on this thread: `Ok(built)`, or the panic or oversized allocation.
pub fn run_one(input: &Input, scratch: &Path) -> Result<bool, Failure> {
    install_hook();
    match panic::catch_unwind(AssertUnwindSafe(|| targets::run(input, scratch))) {
        Ok(Ok(built)) => Ok(built),
        Ok(Err(o)) => Err(Failure {
            site: format!("{:?} reader allocation", o.kind),
            message: format!("the {:?} reader allocated {} bytes at once", o.kind, o.bytes),
            oversized: true,
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let site = LAST_SITE.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| "?".into());
            Err(Failure { site, message, oversized: false })
        }
    }
}

/// [`run_one`] on a fresh thread, given up after `limit`: `None` means the input hung (its
/// thread is left running: nothing can stop it; exit the process soon).
pub fn run_with_timeout(input: &Input, scratch: &Path, limit: Duration) -> Option<Result<bool, Failure>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (input, scratch) = (input.clone(), scratch.to_path_buf());
    std::thread::Builder::new()
        .name("archc-fuzz-replay".into())
        .spawn(move || {
            let _ = tx.send(run_one(&input, &scratch));
        })
        .ok()?;
    rx.recv_timeout(limit).ok()
}

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub budget: u64,
    pub seconds: Option<f64>,
    pub seed: u64,
    pub jobs: usize,
    pub out: PathBuf,
    pub hang: Duration,
    /// Print a progress line this often (none when `None`).
    pub progress: Option<Duration>,
}

/// What a campaign did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub inputs: u64,
    pub built: u64,
    pub panics: u64,
    pub hangs: u64,
    /// Data-reader inputs that allocated more than [`crate::alloc::MAX_READER_ALLOC`].
    pub oversized: u64,
    pub seconds: f64,
    /// Inputs and builds per target label.
    pub by_target: BTreeMap<&'static str, (u64, u64)>,
    /// Panic sites with their count and first message.
    pub sites: BTreeMap<String, (u64, String)>,
}

impl Report {
    /// `fuzz: 1000000 inputs, 231000 built to TIR (23.1%), 0 panics, 0 hangs, 412 s`.
    pub fn summary(&self) -> String {
        let pct = if self.inputs == 0 { 0.0 } else { 100.0 * self.built as f64 / self.inputs as f64 };
        format!(
            "fuzz: {} inputs, {} built to TIR ({pct:.1}%), {} panics, {} hangs, {:.0} s",
            self.inputs, self.built, self.panics, self.hangs, self.seconds
        )
    }

    /// One line per target: inputs and builds.
    pub fn targets_line(&self) -> String {
        let parts: Vec<String> = self.by_target.iter().map(|(k, (n, b))| format!("{k} {n} ({b} built)")).collect();
        format!("fuzz: by target: {}", parts.join(", "))
    }

    fn merge(&mut self, other: Report) {
        self.inputs += other.inputs;
        self.built += other.built;
        self.panics += other.panics;
        self.oversized += other.oversized;
        for (k, (n, b)) in other.by_target {
            let e = self.by_target.entry(k).or_default();
            e.0 += n;
            e.1 += b;
        }
        for (k, (n, m)) in other.sites {
            self.sites.entry(k).or_insert((0, m)).0 += n;
        }
    }
}

/// The state workers share with the watchdog.
struct Shared {
    next: AtomicU64,
    stop: AtomicBool,
    /// Per worker: the input it runs and since when.
    running: Vec<Mutex<Option<(Instant, Input)>>>,
    /// Per panic site: how many inputs were saved, and the first one.
    saved: Mutex<BTreeMap<String, (usize, Input)>>,
    /// Inputs run, built and panicked so far, for the watchdog's lines.
    done: [AtomicU64; 3],
}

impl Shared {
    fn snapshot(&self, start: Instant) -> Report {
        let [inputs, built, panics] = [0, 1, 2].map(|i| self.done[i].load(Ordering::SeqCst));
        Report { inputs, built, panics, seconds: start.elapsed().as_secs_f64(), ..Report::default() }
    }
}

/// Runs a campaign (see the module docs).
pub fn campaign(gen: &Generator, cfg: &Config) -> Result<Report, String> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    install_hook();
    let start = Instant::now();
    let shared = Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        running: (0..cfg.jobs).map(|_| Mutex::new(None)).collect(),
        saved: Mutex::new(BTreeMap::new()),
        done: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    };
    let mut report = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.jobs)
            .map(|w| {
                s.spawn({
                    let shared = &shared;
                    move || worker(gen, cfg, shared, w, start)
                })
            })
            .collect();
        s.spawn(|| watchdog(cfg, &shared, start));
        let mut total = Report::default();
        for w in workers {
            total.merge(w.join().unwrap_or_default());
        }
        shared.stop.store(true, Ordering::SeqCst);
        total
    });
    report.seconds = start.elapsed().as_secs_f64();
    for w in 0..cfg.jobs {
        remove_current(cfg, w);
    }
    let firsts: Vec<Input> =
        shared.saved.lock().unwrap_or_else(|e| e.into_inner()).values().map(|v| v.1.clone()).collect();
    for input in firsts {
        let scratch = cfg.out.join("minimise");
        let small = minimise(&input, &scratch, Duration::from_secs(60));
        save(&cfg.out, "min", &small, run_one(&small, &scratch).err().as_ref());
        for kind in DataKind::ALL {
            let _ = std::fs::remove_file(scratch.with_extension(kind.ext()));
        }
    }
    Ok(report)
}

fn worker(gen: &Generator, cfg: &Config, shared: &Shared, w: usize, start: Instant) -> Report {
    let scratch = cfg.out.join(format!("scratch-{w}"));
    let mut report = Report::default();
    loop {
        let i = shared.next.fetch_add(1, Ordering::SeqCst);
        let out_of_time = cfg.seconds.is_some_and(|s| start.elapsed().as_secs_f64() >= s);
        if i >= cfg.budget || out_of_time || shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let input = gen.input(&mut Rng::for_input(cfg.seed, i));
        let current = cfg.out.join(format!("current-{w}.{}", input.target.suffix()));
        let _ = std::fs::write(&current, &input.bytes);
        *lock(&shared.running[w]) = Some((Instant::now(), input.clone()));
        let result = run_one(&input, &scratch);
        *lock(&shared.running[w]) = None;
        let _ = std::fs::remove_file(&current);
        count(&mut report, &input, &result);
        let outcome = match &result {
            Ok(built) => *built as usize,
            Err(f) => {
                record_failure(cfg, shared, &input, f);
                if f.oversized {
                    0
                } else {
                    2
                }
            }
        };
        shared.done[0].fetch_add(1, Ordering::SeqCst);
        if outcome > 0 {
            shared.done[outcome].fetch_add(1, Ordering::SeqCst);
        }
    }
    for kind in DataKind::ALL {
        let _ = std::fs::remove_file(scratch.with_extension(kind.ext()));
    }
    report
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn count(report: &mut Report, input: &Input, result: &Result<bool, Failure>) {
    let e = report.by_target.entry(input.target.label()).or_default();
    e.0 += 1;
    report.inputs += 1;
    match result {
        Ok(true) => {
            e.1 += 1;
            report.built += 1;
        }
        Ok(false) => {}
        Err(f) => {
            match f.oversized {
                true => report.oversized += 1,
                false => report.panics += 1,
            }
            report.sites.entry(f.site.clone()).or_insert((0, f.message.clone())).0 += 1;
        }
    }
}

fn record_failure(cfg: &Config, shared: &Shared, input: &Input, f: &Failure) {
    let mut saved = lock(&shared.saved);
    let entry = saved.entry(f.site.clone()).or_insert((0, input.clone()));
    if entry.0 < KEEP_PER_SITE {
        entry.0 += 1;
        let path = save(&cfg.out, f.label(), input, Some(f));
        if entry.0 == 1 {
            eprintln!("fuzz: {} at {}: {} (saved {})", f.label(), f.site, first_line(&f.message), path.display());
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Writes `input` (and the failure's message beside it) into `out`; returns the path.
pub fn save(out: &Path, label: &str, input: &Input, failure: Option<&Failure>) -> PathBuf {
    let path = out.join(input.file_name(label));
    let _ = std::fs::write(&path, &input.bytes);
    if let Some(f) = failure {
        let mut note = path.clone().into_os_string();
        note.push(".txt");
        let _ = std::fs::write(note, format!("site: {}\nmessage: {}\n", f.site, f.message));
    }
    path
}

fn remove_current(cfg: &Config, w: usize) {
    let Ok(entries) = std::fs::read_dir(&cfg.out) else { return };
    let prefix = format!("current-{w}.");
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Checks the workers every 100 ms (printing progress lines); on a hang, saves the input, reports and exits.
fn watchdog(cfg: &Config, shared: &Shared, start: Instant) {
    let mut last_line = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if cfg.progress.is_some_and(|every| last_line.elapsed() >= every) {
            last_line = Instant::now();
            eprintln!("{} (so far)", shared.snapshot(start).summary());
        }
        for slot in &shared.running {
            let hung = lock(slot).as_ref().filter(|(t, _)| t.elapsed() > cfg.hang).map(|(_, i)| i.clone());
            if let Some(input) = hung {
                let path = save(&cfg.out, "hang", &input, None);
                let report = Report { hangs: 1, ..shared.snapshot(start) };
                eprintln!("fuzz: hang: an input ran past {:?} (saved {})", cfg.hang, path.display());
                println!("{}", report.summary());
                std::process::exit(2);
            }
        }
    }
}

/// A smaller input failing at the same site: chunks of bytes removed, halving the chunk
/// size down to one byte, within `limit`. `scratch` is the data readers' scratch path.
pub fn minimise(input: &Input, scratch: &Path, limit: Duration) -> Input {
    let start = Instant::now();
    let Err(goal) = run_one(input, scratch) else { return input.clone() };
    let mut best = input.clone();
    let mut chunk = (best.bytes.len() / 2).max(1);
    loop {
        let mut i = 0;
        while i < best.bytes.len() && start.elapsed() < limit {
            let mut candidate = best.clone();
            candidate.bytes.drain(i..(i + chunk).min(best.bytes.len()));
            match run_one(&candidate, scratch) {
                Err(f) if f.site == goal.site => best = candidate,
                _ => i += chunk,
            }
        }
        if chunk == 1 || start.elapsed() >= limit {
            return best;
        }
        chunk /= 2;
    }
}
