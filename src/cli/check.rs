//! `archc check FILE...`: parse, resolve names and check shapes of every buildable item
//! of each file; a file with `choose` decisions is checked as a space (every candidate,
//! or a sample of them).
//!
//! Contract: every file is checked even after one fails; each prints `ok: FILE`, its
//! space report or its diagnostics on stderr; the command fails (exit 1, no further
//! message) when one did. A space that cannot be checked at all stops the command.

use super::program::checked;
use super::Fail;
use archc_compiler::sema::Options;
use clap::Args;
use std::path::{Path, PathBuf};

/// The arguments of `archc check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The .arch files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `archc check`.
pub fn run(args: &CheckArgs, color: bool) -> Result<(), Fail> {
    let mut failed = 0;
    for f in &args.files {
        if !check_one(f, color)? {
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        _ => Err(Fail::User(String::new())),
    }
}

/// Checks one file and prints its result; whether it passed.
fn check_one(f: &Path, color: bool) -> Result<bool, Fail> {
    let opts = Options { check_all: true, ..Options::default() };
    match checked(f, &opts, color) {
        Ok(out) if crate::choices::declared(&out.sources).is_empty() => {
            eprintln!("ok: {}", f.display());
            Ok(true)
        }
        Ok(_) => {
            let space = crate::search::check::check_space(f, color).map_err(Fail::user)?;
            eprintln!("{}", space.text);
            Ok(space.ok)
        }
        Err(Fail::User(msg)) => {
            eprintln!("{msg}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
