//! The candidate of a search space that `train` trains and `eval` evaluates:
//! `--sample`/`--choices`, shown as `build` and `run` show it, recorded in the run
//! folder, and read back from that record when a checkpoint is evaluated.
//!
//! Contract: the default candidate (the first option of every choice) prints nothing
//! and leaves no record; an artifact, built for one candidate, refuses both flags.

use super::program::checked;
use super::select::Selection;
use super::Fail;
use crate::choices;
use crate::choices::EntryFlags;
use archc_compiler::sema::{ChoiceMode, Options};
use clap::Args;
use std::path::Path;

/// Which candidate of a search space a `train` block trains or a checkpoint evaluates.
#[derive(Args, Clone, Default)]
pub struct Candidate {
    /// Draw every search-space choice at random with this seed.
    #[arg(long, conflicts_with = "choices")]
    pub sample: Option<u64>,
    /// Fix choices: `--choices depth=3,op=1` (ints by value, other options by index).
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub choices: Option<String>,
}

impl Candidate {
    pub fn selection(self) -> Selection {
        Selection {
            flags: EntryFlags { sample: self.sample, choices: self.choices, ..EntryFlags::default() },
            ..Selection::default()
        }
    }

    fn given(&self) -> bool {
        self.sample.is_some() || self.choices.is_some()
    }
}

/// For a candidate picked with `--choices`/`--sample`: checks the names and prints the
/// choices, as `build` and `run` do.
pub fn show(file: &Path, opts: &Options, color: bool) -> Result<(), Fail> {
    if matches!(opts.choices, ChoiceMode::First) {
        return Ok(());
    }
    for (name, value) in &checked(file, opts, color)?.choices {
        eprintln!("choice {name} = {value}");
    }
    Ok(())
}

/// Writes (or, for the default candidate, removes) the run folder's candidate record.
pub fn record(dir: &Path, opts: &Options) -> Result<(), String> {
    let path = dir.join(choices::RECORD_FILE);
    match choices::record(&opts.choices) {
        Some(text) => {
            std::fs::write(&path, format!("{text}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", path.display())),
            _ => Ok(()),
        },
    }
}

/// The candidate to evaluate a checkpoint with: the one given, else the one its run
/// recorded beside it (a note says which); a given one that differs from the record is
/// noted too.
pub fn of_run(ckpt: &Path, given: ChoiceMode) -> Result<ChoiceMode, String> {
    let path = ckpt.parent().unwrap_or(Path::new(".")).join(choices::RECORD_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(given) };
    let recorded = choices::parse_record(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match (&given, choices::record(&given)) {
        (ChoiceMode::First, _) => {
            eprintln!("the candidate its run trained ({}): --{}", path.display(), text.trim());
            Ok(recorded)
        }
        (_, Some(g)) if g != text.trim() => {
            eprintln!("note: this checkpoint's run trained another candidate ({}): --{}", path.display(), text.trim());
            Ok(given)
        }
        _ => Ok(given),
    }
}

/// An artifact holds one candidate, fixed when it was built.
pub fn refuse_for_artifact(file: &Path, cand: &Candidate) -> Result<(), Fail> {
    if cand.given() && crate::artifact::is_artifact(file) {
        return Err(Fail::user(format!(
            "{} was built for one candidate of its space; --choices and --sample apply to `.arch` files",
            file.display()
        )));
    }
    Ok(())
}
