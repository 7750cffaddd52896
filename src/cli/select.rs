//! Which network a command builds: the selection flags (`--entry`, `--args`,
//! `--sample`, `--choices`), the checker's options made from them, and the selection an
//! artifact (`*.archx`) recorded when it was built.
//!
//! Contract: malformed `NAME=VALUE` lists are user errors; an artifact's recorded
//! selection replaces the flags, after its target is checked against `--backend` and
//! `--device`.

use super::Fail;
use crate::backend::{self, Backend};
use crate::choices::EntryFlags;

use archc_compiler::sema::Options;
use clap::Args;
use std::path::{Path, PathBuf};

/// Which concrete network to build.
#[derive(Args, Clone, Default)]
pub struct Selection {
    #[command(flatten)]
    pub flags: EntryFlags,
    /// Set by the commands that build for training (`build --train`, `run --train`).
    #[arg(skip)]
    pub train: bool,
}

/// The checker's options for `sel` (`check_all`: check every item, not only the entry).
pub fn options(sel: &Selection, check_all: bool) -> Result<Options, Fail> {
    let opts = sel.flags.options().map_err(Fail::user)?;
    Ok(Options { training: sel.train, check_all, ..opts })
}

/// The options of a `train` block's build for the candidate `sel` selects (the block
/// builds both the inference and the training program itself).
pub fn train_options(sel: &Selection) -> Result<Options, Fail> {
    Ok(Options { training: false, ..options(sel, false)? })
}

/// A command's input file after [`resolve`].
pub struct Resolved {
    /// The file to read: the input itself, or an artifact's extracted main source.
    pub file: PathBuf,
    /// The selection given, or the one the artifact was built with.
    pub sel: Selection,
    /// The opened artifact (which removes the sources when dropped).
    pub art: Option<crate::artifact::Opened>,
}

impl Resolved {
    pub fn artifact(&self) -> Option<&archc_mlir::aot::Artifact> {
        self.art.as_ref().map(|a| &a.artifact)
    }
}

/// For an artifact (`*.archx`): the path of its extracted main source, the selection it
/// was built with, and the opened artifact, after checking that `backend` and `device`,
/// if given, agree with its target; other files are passed through.
pub fn resolve(file: &Path, sel: Selection, backend: Option<Backend>, device: Option<&str>) -> Result<Resolved, Fail> {
    if !crate::artifact::is_artifact(file) {
        backend::check_device(backend, device).map_err(Fail::user)?;
        return Ok(Resolved { file: file.to_path_buf(), sel, art: None });
    }
    let opened = crate::artifact::open(file).map_err(Fail::user)?;
    crate::artifact::check_backend(&opened.artifact, backend, device).map_err(Fail::user)?;
    Ok(Resolved { file: opened.main.clone(), sel: recorded(&opened.artifact.options), art: Some(opened) })
}

/// The selection an artifact recorded.
fn recorded(options: &[(String, String)]) -> Selection {
    let mut sel = Selection::default();
    for (k, v) in options {
        match k.as_str() {
            "entry" => sel.flags.entry = Some(v.clone()),
            "args" => sel.flags.args = Some(v.clone()),
            "sample" => sel.flags.sample = v.parse().ok(),
            "choices" => sel.flags.choices = Some(v.clone()),
            "train" => sel.train = v == "true",
            _ => {}
        }
    }
    sel
}

/// The options an artifact records for `sel`, read back by [`resolve`].
pub fn record(sel: &Selection) -> Vec<(String, String)> {
    let mut options = Vec::new();
    let fields =
        [("entry", sel.flags.entry.clone()), ("args", sel.flags.args.clone()), ("choices", sel.flags.choices.clone())];
    for (k, v) in fields {
        if let Some(v) = v {
            options.push((k.to_string(), v));
        }
    }
    if let Some(seed) = sel.flags.sample {
        options.push(("sample".into(), seed.to_string()));
    }
    options.push(("train".into(), sel.train.to_string()));
    options
}
