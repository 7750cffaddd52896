//! TIR of every example (`examples/*.arch`): snapshot, verification, and the text
//! round trip (print -> parse -> print is identical).

mod common;

use archc_compiler::sema::Options;
use archc_compiler::tir::{parse_program, verify};

#[test]
fn examples_tir_snapshots_and_round_trip() {
    common::assert_no_orphan_snapshots("tests/tir/snapshots", "examples");
    let files = common::arch_files("examples");
    assert!(!files.is_empty());
    for path in files {
        let out = common::check(&path, &Options::default());
        assert!(out.diagnostics.is_empty(), "{}:\n{}", path.display(), common::rendered(&out));
        let program = out.program.expect("program built");
        verify(&program).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let text = program.to_string();
        let reparsed = parse_program(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(reparsed.to_string(), text, "{}: TIR text does not round-trip", path.display());
        let name = path.file_stem().expect("file name").to_string_lossy().to_string();
        insta::with_settings!({ snapshot_path => "tir/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

/// The whole train step (`archc build --emit tir --train`) of the digits experiment:
/// verified, round-tripped and snapshot-tested like the forward programs.
#[test]
fn train_step_snapshot() {
    let path = common::repo().join("examples/train_digits.arch");
    let (out, _) = archc::training::read_config(&path, &Options::default()).expect("readable");
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let cfg = out.config.expect("train config");
    let program = archc::training::train_program(&cfg).expect("train step builds");
    verify(&program).unwrap_or_else(|e| panic!("{e:?}"));
    let text = program.to_string();
    let reparsed = parse_program(&text).expect("parses");
    assert_eq!(reparsed.to_string(), text, "train step TIR does not round-trip");
    insta::with_settings!({ snapshot_path => "tir/train_snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("train_digits_step", text);
    });
}
