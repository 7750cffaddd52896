//! A file's `train` block as the commands read it: the block's configuration with its
//! sources, the train step built from it, and the one rule of `--train`: when the main
//! file has a `train` block, a build for training is its whole train step, otherwise
//! the network in training mode.
//!
//! Contract: the block's diagnostics are rendered and make a user error naming the
//! file; a data set that cannot be used is a diagnostic at the block's data source;
//! a run folder defaults to `runs/NAME`, NAME the file's stem.

use super::select::{train_options, Selection};
use super::Fail;
use crate::render::render;
use crate::training;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_grammar::ast::{Item, Module};
use archc_grammar::span::SourceMap;
use std::path::{Path, PathBuf};

/// A `train` block read for one candidate.
pub struct TrainBlock {
    pub cfg: TrainConfig,
    /// The main file's text, as read.
    pub text: String,
    pub sources: SourceMap,
}

/// The `train` block of `file` (the one whose model is `opts.entry`, else the first).
pub fn read(file: &Path, opts: &Options, color: bool) -> Result<TrainBlock, Fail> {
    let (out, text) = training::read_config(file, opts).map_err(Fail::user)?;
    if !out.diagnostics.is_empty() {
        eprint!("{}", render(&out.diagnostics, &out.sources, color));
        return Err(Fail::user(format!("{} failed", file.display())));
    }
    let cfg = out.config.ok_or_else(|| Fail::Internal("no train configuration".into()))?;
    Ok(TrainBlock { cfg, text, sources: out.sources })
}

/// With `--train` and a `train` block in `main` (the main file's syntax tree), the
/// block's train step for the candidate `sel` selects; otherwise `None`: the entry
/// network is built.
pub fn train_step_for(
    file: &Path,
    sel: &Selection,
    main: Option<&Module>,
    color: bool,
) -> Result<Option<Program>, Fail> {
    if !(sel.train && main.is_some_and(has_train_block)) {
        return Ok(None);
    }
    let block = read(file, &train_options(sel)?, color)?;
    training::train_program(&block.cfg).map(Some).map_err(|e| Fail::user(format!("cannot build the train step: {e}")))
}

/// The syntax tree of `file` (parsed only, not checked); `None` if it cannot be read.
pub fn parse(file: &Path) -> Option<Module> {
    let text = std::fs::read_to_string(file).ok()?;
    Some(archc_grammar::parse(archc_grammar::span::FileId(0), &text).0)
}

/// Whether the module defines a `train` block.
fn has_train_block(main: &Module) -> bool {
    main.items.iter().any(|i| matches!(i, Item::Train(_)))
}

/// A data set that cannot be loaded or does not fit the network: a diagnostic at the
/// `train` block's data source.
pub fn data_failure(cfg: &TrainConfig, e: String, sources: &SourceMap, color: bool) -> Fail {
    let d = Diagnostic::error(e, cfg.data.span);
    eprint!("{}", render(&[d], sources, color));
    Fail::User("error: the data set cannot be used (see above)".into())
}

/// The run folder of `file`: `out`, else `runs/NAME`.
pub fn run_dir(file: &Path, out: Option<&Path>) -> PathBuf {
    out.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from("runs").join(file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default())
    })
}
