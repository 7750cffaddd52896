//! One fuzz input: which target it goes to and its bytes, and how it is stored on disk.
//!
//! Contract: [`Input::file_name`] and [`Input::from_file`] are inverse, so every saved
//! input (a crash, a hang, a committed regression case) replays through the same target
//! and mode it failed in. The name is `<label>-<hash>.<suffix>`, the suffix naming the
//! target: `check.arch`, `build-<seed>.arch`, `train.arch`, `tir`, `manifest`, or a data
//! file's own extension (`npy`, `npz`, `safetensors`, `pt`, `csv`, `csv.gz`).

use std::path::Path;

/// How an `.arch` input is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchMode {
    /// `archc check`: every item of the file.
    Check,
    /// The entry, with choices drawn with this seed (training mode when the seed is odd).
    Build(u64),
    /// The file's `train` block, then autodiff's train program.
    Train,
}

/// A data file format and its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    Npy,
    Npz,
    Safetensors,
    Pt,
    Csv,
    CsvGz,
}

impl DataKind {
    pub const ALL: [DataKind; 6] =
        [DataKind::Npy, DataKind::Npz, DataKind::Safetensors, DataKind::Pt, DataKind::Csv, DataKind::CsvGz];

    /// The file extension the reader is given.
    pub fn ext(self) -> &'static str {
        match self {
            DataKind::Npy => "npy",
            DataKind::Npz => "npz",
            DataKind::Safetensors => "safetensors",
            DataKind::Pt => "pt",
            DataKind::Csv => "csv",
            DataKind::CsvGz => "csv.gz",
        }
    }
}

/// Which part of archc an input exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `.arch` source: the formatter, then the checker in one mode (and the TIR text of
    /// what it builds).
    Arch(ArchMode),
    /// TIR text: the parser, the verifier and the printer.
    Tir,
    /// A data file for one reader.
    Data(DataKind),
    /// An `.archx` manifest (`manifest.txt`).
    Manifest,
}

impl Target {
    /// The file-name suffix that stores this target.
    pub fn suffix(self) -> String {
        match self {
            Target::Arch(ArchMode::Check) => "check.arch".into(),
            Target::Arch(ArchMode::Build(seed)) => format!("build-{seed}.arch"),
            Target::Arch(ArchMode::Train) => "train.arch".into(),
            Target::Tir => "tir".into(),
            Target::Data(kind) => kind.ext().into(),
            Target::Manifest => "manifest".into(),
        }
    }

    /// The target a saved file's name stands for; a plain `.arch` file is checked.
    pub fn from_name(name: &str) -> Option<Target> {
        if let Some(stem) = name.strip_suffix(".arch") {
            return Some(Target::Arch(arch_mode(stem)));
        }
        if name.ends_with(".tir") {
            return Some(Target::Tir);
        }
        if name.ends_with(".manifest") {
            return Some(Target::Manifest);
        }
        let kind = DataKind::ALL.iter().rev().find(|k| name.ends_with(&format!(".{}", k.ext())))?;
        Some(Target::Data(*kind))
    }

    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Target::Arch(ArchMode::Check) => "check",
            Target::Arch(ArchMode::Build(_)) => "build",
            Target::Arch(ArchMode::Train) => "train",
            Target::Tir => "tir",
            Target::Data(_) => "data",
            Target::Manifest => "manifest",
        }
    }
}

fn arch_mode(stem: &str) -> ArchMode {
    if stem.ends_with(".train") {
        return ArchMode::Train;
    }
    let seed = stem.rsplit_once(".build-").and_then(|(_, s)| s.parse().ok());
    seed.map_or(ArchMode::Check, ArchMode::Build)
}

/// One input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub target: Target,
    pub bytes: Vec<u8>,
}

impl Input {
    pub fn new(target: Target, bytes: Vec<u8>) -> Input {
        Input { target, bytes }
    }

    /// The bytes as text (invalid UTF-8 replaced), for the text targets.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// FNV-1a of the bytes and the suffix: equal inputs get equal names.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.bytes.iter().chain(self.target.suffix().as_bytes()) {
            h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    /// `<label>-<hash>.<suffix>`.
    pub fn file_name(&self, label: &str) -> String {
        format!("{label}-{:016x}.{}", self.hash(), self.target.suffix())
    }

    /// Reads a saved input; its target comes from the file name.
    pub fn from_file(path: &Path) -> Result<Input, String> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target =
            Target::from_name(&name).ok_or_else(|| format!("{}: no fuzz target has this suffix", path.display()))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Input { target, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let targets = [
            Target::Arch(ArchMode::Check),
            Target::Arch(ArchMode::Build(17)),
            Target::Arch(ArchMode::Train),
            Target::Tir,
            Target::Manifest,
        ];
        let data = DataKind::ALL.map(Target::Data);
        for t in targets.into_iter().chain(data) {
            let name = Input::new(t, b"x".to_vec()).file_name("panic");
            assert_eq!(Target::from_name(&name), Some(t), "{name}");
        }
        assert_eq!(Target::from_name("plain.arch"), Some(Target::Arch(ArchMode::Check)));
        assert_eq!(Target::from_name("x.gz"), None);
    }
}
