//! `archc check` of a search space: how many candidates it has, and whether every one
//! of them builds (the checker's proof that its shapes are valid).
//!
//! Spaces of up to [`ENUMERATE_LIMIT`] candidates are walked completely (every candidate
//! built once; the count exact, the space proven). A larger space, or one that takes
//! longer than [`ENUMERATE_SECONDS`], is counted by structure and checked on
//! [`SAMPLES`] seeded random candidates, and reported as sampled, never as proven. The
//! first candidate that fails is shown with the `choose` of every decision involved and
//! the option it took there.

use crate::driver::FsModules;
use crate::render::render;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::modules::on_big_stack;
use archc_compiler::sema::space::{add_local_names, Enumeration, Failure, SpaceFile};
use archc_compiler::sema::Options;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces with at most this many candidates are enumerated.
pub const ENUMERATE_LIMIT: u128 = 1_000_000;
/// The time an enumeration may take before the check falls back to sampling.
pub const ENUMERATE_SECONDS: u64 = 60;
/// Candidates a sampled check builds.
pub const SAMPLES: u64 = 2000;

/// The result of checking one space: what to print, and whether it holds.
pub struct SpaceCheck {
    pub ok: bool,
    /// The line for `ok: FILE ...` or the rendered error.
    pub text: String,
}

/// Checks the space of `path` (a file that checked without errors and has choices).
pub fn check_space(path: &Path, color: bool) -> Result<SpaceCheck, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.display().to_string();
    let open = |f: &dyn Fn(&SpaceFile) -> SpaceCheck| {
        let modules = FsModules { dir: dir.clone() };
        f(&SpaceFile::open(&name, &text, &modules))
    };
    Ok(on_big_stack(|| open(&|file| check_open(file, &name, &open_on_thread(&name, &text, &dir), color))))
}

/// Opens the space again on each thread that walks part of it (a `SpaceFile` is not
/// shared between threads).
fn open_on_thread<'a>(
    name: &'a str,
    text: &'a str,
    dir: &'a Path,
) -> impl Fn(&[Vec<(String, usize)>], &Options, Instant) -> Vec<Enumeration> + Sync + 'a {
    move |prefixes, base, deadline| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(prefixes.len()).max(1);
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, Enumeration)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                let worker = std::thread::Builder::new().stack_size(CHECK_STACK);
                let run = || {
                    let modules = FsModules { dir: dir.to_path_buf() };
                    let file = SpaceFile::open(name, text, &modules);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(prefix) = prefixes.get(i) else { break };
                        let e = file.enumerate_from(base, prefix, ENUMERATE_LIMIT, Some(deadline));
                        let stop = e.failure.is_some() || !e.complete;
                        results.lock().map(|mut r| r.push((i, e))).ok();
                        if stop {
                            next.store(prefixes.len(), Ordering::Relaxed);
                        }
                    }
                };
                if worker.spawn_scoped(s, run).is_err() {
                    // Without a thread, the caller's walk finds what is left.
                    break;
                }
            }
        });
        let mut r = results.into_inner().unwrap_or_default();
        r.sort_by_key(|(i, _)| *i);
        r.into_iter().map(|(_, e)| e).collect()
    }
}

/// The stack each walking thread gets (building recurses once per nested layer).
const CHECK_STACK: usize = 256 << 20;

type Walker<'a> = dyn Fn(&[Vec<(String, usize)>], &Options, Instant) -> Vec<Enumeration> + Sync + 'a;

fn check_open(file: &SpaceFile, name: &str, walk_parts: &Walker, color: bool) -> SpaceCheck {
    let base = Options { validate_only: true, ..Options::default() };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(ENUMERATE_SECONDS);
    let prefixes = file.subtrees(&base, 64);
    let parts = walk_parts(&prefixes, &base, deadline);
    let walk = combine(parts, prefixes.len());
    if let Some(f) = walk.failure {
        return failed(file, name, &f, color);
    }
    if walk.complete {
        let names = walk.names.join(", ");
        let secs = t0.elapsed().as_secs_f64();
        return SpaceCheck {
            ok: true,
            text: format!(
                "ok: {name}: a search space of {} candidates over {names}; every candidate builds \
                 (proven by enumeration, {secs:.1} s)",
                walk.count
            ),
        };
    }
    sampled(file, name, &base, color)
}

/// The walks of every subtree as one: counts added, the first failure in walk order,
/// complete only when every subtree was walked completely.
fn combine(parts: Vec<Enumeration>, subtrees: usize) -> Enumeration {
    let complete = parts.len() == subtrees && parts.iter().all(|e| e.complete);
    let mut out = Enumeration { count: 0, complete, failure: None, names: Vec::new() };
    for e in parts {
        out.count += e.count;
        for n in e.names {
            if !out.names.contains(&n) {
                out.names.push(n);
            }
        }
        if out.failure.is_none() {
            out.failure = e.failure;
        }
    }
    out.complete &= out.count <= ENUMERATE_LIMIT;
    out
}

/// The check of a space too large to enumerate.
fn sampled(file: &SpaceFile, name: &str, base: &Options, color: bool) -> SpaceCheck {
    let count = file.count_by_structure(base, Some(Instant::now() + Duration::from_secs(ENUMERATE_SECONDS)));
    let mut names = Vec::new();
    for seed in 0..SAMPLES {
        let b = file.build_assigned(base, &[], Some(seed));
        add_local_names(&mut names, &b.decisions);
        if let Err(diagnostics) = b.program {
            let involved = file.involved(base, &b.decisions);
            return failed(file, name, &Failure { decisions: b.decisions, diagnostics, involved }, color);
        }
    }
    let size = match count {
        Some(n) => format!("{n} candidates (counted by structure)"),
        None => "more candidates than can be counted".to_string(),
    };
    let names = names.join(", ");
    SpaceCheck {
        ok: true,
        text: format!(
            "ok: {name}: a search space of {size} over {names}; checked by sampling {SAMPLES} candidates, \
             not proven (too many to enumerate)"
        ),
    }
}

/// The error of a candidate that does not build: the combination, each decision
/// involved at its `choose`, then the build's own errors.
fn failed(file: &SpaceFile, name: &str, f: &Failure, color: bool) -> SpaceCheck {
    let shown = |i: usize| {
        let d = &f.decisions[i];
        format!("{} = {}", d.name, d.options[d.chosen])
    };
    let involved: Vec<usize> =
        if f.involved.is_empty() { (0..f.decisions.len()).collect() } else { f.involved.clone() };
    let combo: Vec<String> = involved.iter().map(|&i| shown(i)).collect();
    let mut diags = Vec::new();
    if let Some((&first, rest)) = involved.split_first() {
        let mut d = Diagnostic::error(
            format!("this combination of choices does not build: {}", combo.join(", ")),
            f.decisions[first].span,
        )
        .with_label(shown(first))
        .with_help("every candidate of a space must build; restrict the options, or make them compatible");
        for &i in rest {
            d = d.with_related(f.decisions[i].span, shown(i));
        }
        diags.push(d);
    }
    diags.extend(f.diagnostics.iter().cloned());
    let all: Vec<String> = (0..f.decisions.len()).map(shown).collect();
    let text = format!(
        "{}error: {name}: a candidate of this space does not build\nthe candidate: {}",
        render(&diags, file.sources(), color),
        all.join(", ")
    );
    SpaceCheck { ok: false, text }
}
