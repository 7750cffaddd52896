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
use archc_compiler::sema::space::{add_local_names, Failure, SpaceFile};
use archc_compiler::sema::Options;
use std::path::Path;
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
    Ok(on_big_stack(|| {
        let modules = FsModules { dir: dir.clone() };
        let file = SpaceFile::open(&name, &text, &modules);
        check_open(&file, &name, color)
    }))
}

fn check_open(file: &SpaceFile, name: &str, color: bool) -> SpaceCheck {
    let base = Options { validate_only: true, ..Options::default() };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(ENUMERATE_SECONDS);
    let walk = file.enumerate(&base, ENUMERATE_LIMIT, Some(deadline));
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
