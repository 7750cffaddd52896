//! From an input file and a selection to a program: `.arch` sources checked (their
//! diagnostics rendered), printed TIR read back, and the program a build compiles.
//!
//! Contract: a file with diagnostics is a user error naming the file and the error
//! count (and, for a picked candidate, its choices); `--choices` names are checked
//! against the space; a `.tir` input refuses the flags that only apply to sources.

use super::select::{options, Selection};
use super::{train_block, Fail};
use crate::driver::check_path;
use crate::render::render;
use archc_compiler::sema::{CheckOutput, ChoiceMode, Options};
use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use std::path::Path;

/// `path` checked with `opts`; diagnostics are rendered and make it a user error.
pub fn checked(path: &Path, opts: &Options, color: bool) -> Result<CheckOutput, Fail> {
    let out = check_path(path, opts).map_err(Fail::user)?;
    if !out.diagnostics.is_empty() {
        eprint!("{}", render(&out.diagnostics, &out.sources, color));
        return Err(failed(path, opts, &out));
    }
    if let ChoiceMode::Explicit(given) = &opts.choices {
        let declared = crate::choices::declared(&out.sources);
        crate::choices::check_names(given, &out.choices, &declared).map_err(Fail::user)?;
    }
    Ok(out)
}

/// The error of a file that failed with diagnostics: their count and the candidate.
fn failed(path: &Path, opts: &Options, out: &CheckOutput) -> Fail {
    let n = out.diagnostics.len();
    let candidate = match &opts.choices {
        ChoiceMode::First => String::new(),
        _ if out.choices.is_empty() => String::new(),
        ChoiceMode::Sample(seed) => {
            format!("\nthe candidate drawn with --sample {seed}: {}", crate::choices::summary(&out.choices))
        }
        ChoiceMode::Explicit(_) | ChoiceMode::Assign { .. } => {
            format!("\nthe candidate: {}", crate::choices::summary(&out.choices))
        }
    };
    Fail::user(format!("{} failed with {n} error{}{candidate}", path.display(), if n == 1 { "" } else { "s" }))
}

/// The entry network of `file` (`.arch` or `.tir`); a candidate's choices are printed.
pub fn compile(file: &Path, sel: &Selection, color: bool) -> Result<Program, Fail> {
    if crate::tirfile::is_tir(file) {
        return tir_program(file, sel);
    }
    let out = checked(file, &options(sel, false)?, color)?;
    for (name, value) in &out.choices {
        eprintln!("choice {name} = {value}");
    }
    built(out.program)
}

/// A program from printed TIR (`archc build --emit tir`); selection flags that only
/// apply to `.arch` sources are refused.
pub fn tir_program(file: &Path, sel: &Selection) -> Result<Program, Fail> {
    if sel.flags.any() || sel.train {
        return Err(Fail::user(format!(
            "{}: a .tir file is one built program; --entry, --args, --choices, --sample and --train apply to .arch sources",
            file.display()
        )));
    }
    crate::tirfile::read(file).map_err(Fail::user)
}

/// The program a checked build produced.
fn built(program: Option<Program>) -> Result<Program, Fail> {
    program.ok_or_else(|| Fail::Internal("no program was built".into()))
}

/// What `build` compiles (a stage or an artifact): the checked file's entry, or with
/// `--train` and a `train` block the train step ([`train_block::train_step_for`]).
pub struct Built {
    pub program: Program,
    /// Whether `program` is the train step (`train_step`, `eval_step`) or the entry (`main`).
    pub train_step: bool,
    /// The checked file and the modules it uses.
    pub sources: SourceMap,
}

/// [`Built`] for `file` (`.arch`): the file is checked once; the train step, if any,
/// is read from the `train` block of the checked syntax tree.
pub fn build_program(file: &Path, sel: &Selection, color: bool) -> Result<Built, Fail> {
    let out = checked(file, &options(sel, false)?, color)?;
    match train_block::train_step_for(file, sel, out.ast.as_ref(), color)? {
        Some(program) => Ok(Built { program, train_step: true, sources: out.sources }),
        None => Ok(Built { program: built(out.program)?, train_step: false, sources: out.sources }),
    }
}
