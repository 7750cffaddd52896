//! Every input the fuzz campaign (`make fuzz`) ever found failing, replayed through the
//! campaign's own harness (`archc_fuzz::harness::run_one`): none may panic.
//!
//! A case is a file in `tests/fuzz_regressions/` whose name ends in a fuzz target's
//! suffix (`.check.arch`, `.build-<seed>.arch`, `.train.arch`, `.tir`, `.manifest`,
//! `.npy`, `.npz`, `.safetensors`, `.pt`, `.csv`, `.csv.gz`); adding a case means adding
//! a file. A case whose fix has not landed yet is listed in `tests/fuzz_regressions/KNOWN`
//! (`<file name> <reason>` per line): the main test skips it with a note, and the ignored
//! test `known_failures_are_fixed` replays those (`cargo test -p archc-fuzz --test
//! fuzz_regressions -- --ignored`), to be un-listed with the fix.

use archc_fuzz::gen::Generator;
use archc_fuzz::harness::{self, Config};
use archc_fuzz::input::{Input, Target};
use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOC: archc_fuzz::alloc::Tracking = archc_fuzz::alloc::Tracking;

/// A case running longer than this hangs (the campaign's limit; a known hang grows its
/// memory by a few hundred MiB a second until then).
const HANG: Duration = Duration::from_secs(5);

fn cases_dir() -> PathBuf {
    archc_fuzz::repo_root().join("tests/fuzz_regressions")
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archc-fuzz-regressions-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `(file name, reason)` of the listed known failures.
fn known() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(cases_dir().join("KNOWN")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(char::is_whitespace).unwrap_or((l, "")))
        .map(|(n, r)| (n.to_string(), r.trim().to_string()))
        .collect()
}

/// Every case file, sorted.
fn cases() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/fuzz_regressions exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| Target::from_name(n).is_some()))
        .collect();
    files.sort();
    files
}

/// Replays `files`, each under a time limit; returns `(file, site, message)` of every
/// failure (a panic, an oversized reader allocation, a hang: the last one replayed).
fn replay(files: &[PathBuf], test: &str) -> Vec<(String, String, String)> {
    let dir = scratch(test);
    let mut failures = Vec::new();
    for path in files {
        let input = Input::from_file(path).unwrap();
        match harness::run_with_timeout(&input, &dir.join("data"), HANG) {
            Some(Ok(_)) => {}
            Some(Err(f)) => failures.push((path.display().to_string(), f.site, f.message)),
            None => {
                // The hung thread cannot be stopped: report at once, replay no more.
                failures.push((path.display().to_string(), "(hang)".into(), format!("ran past {HANG:?}")));
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    failures
}

#[test]
fn no_saved_input_panics() {
    let known = known();
    let (skipped, files): (Vec<PathBuf>, Vec<PathBuf>) = cases().into_iter().partition(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        known.iter().any(|(k, _)| *k == name)
    });
    for p in &skipped {
        eprintln!("note: skipping known failure {} (tests/fuzz_regressions/KNOWN)", p.display());
    }
    let failures = replay(&files, "main");
    let listing: Vec<String> = failures.iter().map(|(p, s, m)| format!("{p}: fails at {s}: {m}")).collect();
    assert!(failures.is_empty(), "{} saved inputs panic:\n{}", failures.len(), listing.join("\n"));
}

#[test]
fn known_failures_name_existing_cases() {
    let names: Vec<String> = cases().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for (k, reason) in known() {
        assert!(names.contains(&k), "KNOWN lists {k}, which is not a case file");
        assert!(!reason.is_empty(), "KNOWN gives no reason for {k}");
    }
}

#[test]
#[ignore = "replays the known failures listed in tests/fuzz_regressions/KNOWN, whose fixes have not landed"]
fn known_failures_are_fixed() {
    // A known hang grows memory until an allocation fails: bound it (the process aborts).
    let limit = libc::rlimit { rlim_cur: 4 << 30, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads the struct passed and nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let known = known();
    let files: Vec<PathBuf> = cases()
        .into_iter()
        .filter(|p| known.iter().any(|(k, _)| p.file_name().is_some_and(|n| n.to_string_lossy() == k.as_str())))
        .collect();
    let failures = replay(&files, "known");
    let listing: Vec<String> = failures.iter().map(|(p, s, m)| format!("{p}: fails at {s}: {m}")).collect();
    assert!(failures.is_empty(), "{} known failures still panic:\n{}", failures.len(), listing.join("\n"));
}

/// The harness itself: a short campaign runs its whole budget, builds programs, and
/// leaves no per-worker files behind.
#[test]
fn a_short_campaign_runs_and_builds() {
    let out = scratch("campaign");
    let gen = Generator::new(&archc_fuzz::repo_root(), &out).unwrap();
    assert!(gen.buildable.len() >= 10, "only {} seed files build", gen.buildable.len());
    let cfg = Config {
        budget: 300,
        seconds: None,
        seed: 1,
        jobs: 2,
        out: out.clone(),
        hang: Duration::from_secs(60),
        progress: None,
    };
    let report = harness::campaign(&gen, &cfg).unwrap();
    assert_eq!(report.inputs, 300, "{}", report.summary());
    assert!(report.built >= 30, "{}", report.summary());
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("current-") || n.starts_with("scratch-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&out);
}
