//! `archc fmt FILE...`: the canonical format of each file (`archc_grammar::fmt`),
//! printed, written back (`--write`) or compared (`--check`).
//!
//! Contract: a file with syntax errors is refused (it is never rewritten); with
//! `--check` nothing is written, each unformatted file is named on stderr and the
//! command fails (exit 1, no further message) if there was one.

use super::{stdout, Fail};
use clap::Args;
use std::path::{Path, PathBuf};

/// The arguments of `archc fmt`.
#[derive(Args)]
pub struct FmtArgs {
    pub files: Vec<PathBuf>,
    /// Rewrite the files in place.
    #[arg(long)]
    pub write: bool,
    /// Exit with 1 if a file is not formatted.
    #[arg(long)]
    pub check: bool,
}

/// Runs `archc fmt`.
pub fn run(args: &FmtArgs) -> Result<(), Fail> {
    let mut unformatted = 0;
    for f in &args.files {
        let text = std::fs::read_to_string(f).map_err(|e| Fail::user(format!("cannot read {}: {e}", f.display())))?;
        let formatted = format(f, &text)?;
        if args.check {
            if formatted != text {
                eprintln!("not formatted: {}", f.display());
                unformatted += 1;
            }
        } else if args.write {
            std::fs::write(f, &formatted).map_err(|e| Fail::user(format!("cannot write {}: {e}", f.display())))?;
        } else {
            stdout(&formatted)?;
        }
    }
    match unformatted {
        0 => Ok(()),
        _ => Err(Fail::User(String::new())),
    }
}

/// The canonical format of `text`, read from `f`.
fn format(f: &Path, text: &str) -> Result<String, Fail> {
    archc_grammar::fmt::format_source(text)
        .ok_or_else(|| Fail::user(format!("{} has syntax errors; run `archc check` for details", f.display())))
}
