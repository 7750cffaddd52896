//! `archc-fuzz`: runs a fuzz campaign (the default) or replays saved inputs (`--replay`).
//!
//! Contract: exits 0 when no input panicked or hung, 1 when some panicked, 2 on a hang
//! (see `harness`; a replayed input that hangs stops the replay with status 1); the last line printed is the campaign's summary,
//! `fuzz: N inputs, M built to TIR (P%), K panics, H hangs, S s`. Oversized reader
//! allocations are reported on a line of their own and saved, but do not fail the run
//! (`--strict` makes them fail it too). `--replay` exits 1 when any replayed input fails.

use archc_fuzz::alloc::Tracking;
use archc_fuzz::gen::Generator;
use archc_fuzz::harness::{self, Config};
use archc_fuzz::input::Input;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Fuzzes archc's checker, TIR text form, formatter, data readers and .archx manifests.
#[derive(Parser, Debug)]
#[command(name = "archc-fuzz")]
struct Cli {
    /// Number of inputs to run.
    #[arg(long, default_value_t = 1_000_000)]
    budget: u64,
    /// Stop after this many seconds even if the budget is not spent.
    #[arg(long)]
    seconds: Option<f64>,
    /// Campaign seed: with the same seed and tree, input N is always the same.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where failing inputs go.
    #[arg(long, default_value = "fuzz/crashes")]
    out: PathBuf,
    /// An input running longer than this is a hang.
    #[arg(long, default_value_t = 5.0)]
    hang_secs: f64,
    /// The process's address-space limit in MiB (RLIMIT_AS); 0 leaves it unset.
    #[arg(long, default_value_t = 4096)]
    max_memory_mib: u64,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 30.0)]
    progress_secs: f64,
    /// The repository root holding the seed folders.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Replay these saved inputs (files or folders) instead of fuzzing.
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
    /// With --replay: minimise each failing input into --out.
    #[arg(long)]
    minimise: bool,
    /// Fail the campaign on oversized reader allocations too, not only on panics and hangs.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = limit_memory(cli.max_memory_mib) {
        eprintln!("archc-fuzz: {e}");
        return ExitCode::from(3);
    }
    let result = if cli.replay.is_empty() { fuzz(&cli) } else { replay(&cli) };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("archc-fuzz: {e}");
            ExitCode::from(3)
        }
    }
}

/// Sets RLIMIT_AS, so that an absurd allocation fails instead of swapping the machine.
fn limit_memory(mib: u64) -> Result<(), String> {
    if mib == 0 {
        return Ok(());
    }
    let bytes = mib.saturating_mul(1 << 20) as libc::rlim_t;
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    match unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } {
        0 => Ok(()),
        _ => Err(format!("setrlimit(RLIMIT_AS, {mib} MiB): {}", std::io::Error::last_os_error())),
    }
}

fn fuzz(cli: &Cli) -> Result<bool, String> {
    let root = cli.root.clone().unwrap_or_else(archc_fuzz::repo_root);
    let jobs = cli.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    let seeds = std::env::temp_dir().join(format!("archc-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&seeds).map_err(|e| format!("{}: {e}", seeds.display()))?;
    let gen = Generator::new(&root, &seeds);
    let _ = std::fs::remove_dir_all(&seeds);
    let gen = gen?;
    eprintln!(
        "fuzz: {} seed files ({} build, {} train), {} TIR seeds, {} data seeds; {} jobs, seed {}",
        gen.corpus.files.len(),
        gen.buildable.len(),
        gen.trainable.len(),
        gen.tir.len(),
        gen.data.files.len(),
        jobs,
        cli.seed
    );
    let cfg = Config {
        budget: cli.budget,
        seconds: cli.seconds,
        seed: cli.seed,
        jobs,
        out: cli.out.clone(),
        hang: Duration::from_secs_f64(cli.hang_secs),
        progress: (cli.progress_secs > 0.0).then(|| Duration::from_secs_f64(cli.progress_secs)),
    };
    let report = harness::campaign(&gen, &cfg)?;
    for (site, (n, message)) in &report.sites {
        eprintln!("fuzz: {n} failures at {site}: {}", message.lines().next().unwrap_or(""));
    }
    eprintln!("{}", report.targets_line());
    if report.oversized > 0 {
        eprintln!(
            "fuzz: {} data files made their reader allocate more than {} MiB at once (saved as oversized-*)",
            report.oversized,
            archc_fuzz::alloc::MAX_READER_ALLOC >> 20
        );
    }
    println!("{}", report.summary());
    Ok(report.panics == 0 && report.hangs == 0 && (!cli.strict || report.oversized == 0))
}

fn replay(cli: &Cli) -> Result<bool, String> {
    let scratch = std::env::temp_dir().join(format!("archc-fuzz-replay-{}", std::process::id()));
    let mut ok = true;
    for path in saved_inputs(&cli.replay)? {
        let input = Input::from_file(&path)?;
        let hang = Duration::from_secs_f64(cli.hang_secs);
        let Some(result) = harness::run_with_timeout(&input, &scratch, hang) else {
            println!("HANG (ran past {hang:?}): {}", path.display());
            return Ok(false);
        };
        match result {
            Ok(built) => println!("ok{}: {}", if built { " (built)" } else { "" }, path.display()),
            Err(f) => {
                ok = false;
                let what = f.label().to_uppercase();
                println!("{what} at {}: {}: {}", f.site, path.display(), f.message.lines().next().unwrap_or(""));
                if cli.minimise {
                    std::fs::create_dir_all(&cli.out).map_err(|e| e.to_string())?;
                    let small = harness::minimise(&input, &scratch, Duration::from_secs(120));
                    println!("  minimised to {}", harness::save(&cli.out, "min", &small, Some(&f)).display());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ok)
}

/// The files named, and the files with a fuzz target's suffix in the folders named.
fn saved_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| is_input(f))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn is_input(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    archc_fuzz::input::Target::from_name(&name).is_some()
}
