//! Runs one input through its target and checks the promises archc makes about it.
//!
//! Contract: [`run`] returns whether the input reached TIR (an entry or train program was
//! built); everything else that is allowed (diagnostics, parse errors, reader errors) is
//! a plain return. A data reader whose largest single allocation passes
//! [`crate::alloc::MAX_READER_ALLOC`] (measured when the tracking allocator is installed)
//! is an [`Oversized`] error: not a crash, but more memory than a small file justifies.
//! A broken promise is a panic, like a crash inside archc:
//! - `.arch`: when the text parses without errors, `fmt` output parses and is a fixed
//!   point (`fmt(fmt(x)) == fmt(x)`); a built program's TIR prints, parses back and
//!   prints the same;
//! - TIR text: see [`crate::tir`].

use crate::alloc;
use crate::data;
use crate::input::{ArchMode, DataKind, Input, Target};
use crate::manifest;
use crate::tir;
use archc_compiler::autodiff::train_step::build_train_program;
use archc_compiler::sema::{check_file, train_file, ChoiceMode, NoModules, Options};
use archc_grammar::fmt::format_source;
use std::path::Path;

/// The name the main file is checked under.
const MAIN: &str = "main.arch";

/// A data reader allocated more than [`alloc::MAX_READER_ALLOC`] bytes at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversized {
    pub kind: DataKind,
    pub bytes: usize,
}

/// Runs `input`: whether it built to TIR. `scratch` is a file path (without extension)
/// this thread may overwrite.
pub fn run(input: &Input, scratch: &Path) -> Result<bool, Oversized> {
    match input.target {
        Target::Arch(mode) => Ok(run_arch(&input.text(), mode)),
        Target::Tir => {
            tir::check_text(&input.text());
            Ok(false)
        }
        Target::Data(kind) => {
            alloc::reset_peak();
            let _ = data::read(kind, &input.bytes, scratch);
            match alloc::peak() {
                bytes if bytes > alloc::MAX_READER_ALLOC => Err(Oversized { kind, bytes }),
                _ => Ok(false),
            }
        }
        Target::Manifest => {
            manifest::parse(&input.text());
            Ok(false)
        }
    }
}

/// The formatter's promises, then the checker in `mode`.
pub fn run_arch(text: &str, mode: ArchMode) -> bool {
    check_fmt(text);
    match mode {
        ArchMode::Check => {
            let opts = Options { check_all: true, ..Options::default() };
            check_file(MAIN, text, &NoModules, &opts);
            false
        }
        ArchMode::Build(seed) => {
            let opts = Options { training: seed % 2 == 1, choices: ChoiceMode::Sample(seed), ..Options::default() };
            let out = check_file(MAIN, text, &NoModules, &opts);
            out.program.as_ref().map(tir::round_trip).is_some()
        }
        ArchMode::Train => build_train(text).is_some(),
    }
}

/// The train program of `text`'s `train` block, checked to round-trip as TIR.
pub fn build_train(text: &str) -> Option<archc_compiler::tir::Program> {
    let out = train_file(MAIN, text, &NoModules, &Options::default());
    let cfg = out.config?;
    let program = build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec).ok()?;
    tir::round_trip(&program);
    Some(program)
}

/// `fmt` output parses and is a fixed point, for any text that parses.
fn check_fmt(text: &str) {
    let Some(once) = format_source(text) else { return };
    let twice = format_source(&once).unwrap_or_else(|| panic!("fmt output does not parse:\n{once}"));
    assert!(twice == once, "fmt is not idempotent:\n--- fmt(x)\n{once}\n--- fmt(fmt(x))\n{twice}");
}
