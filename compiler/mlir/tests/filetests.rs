//! Filetests of archc's MLIR passes, in the style of MLIR's `lit` tests: every
//! `filetests/<pass>/<case>.mlir` starts with a header line naming the pass and its
//! options, `// RUN: <pass> [key=value ...]`, followed by the input module. The runner
//! runs that pass alone on the input (verified before and after) and compares the printed
//! result with the case's snapshot (`filetests/<pass>/snapshots/`). A case whose header
//! says `// RUN-FAIL:` must make the pass fail instead; its error is the snapshot.
//!
//! `INSTA_UPDATE=always cargo test -p archc-mlir --test filetests` writes new snapshots;
//! review them with `git diff` before committing.

#![cfg(feature = "llvm")]

use archc_mlir::passes::{run_on_text, ArchcPass};
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests");
    let mut out = Vec::new();
    for pass in std::fs::read_dir(&root).expect("tests/filetests") {
        let dir = pass.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for case in std::fs::read_dir(&dir).expect("a pass's folder") {
            let path = case.expect("entry").path();
            if path.extension().is_some_and(|e| e == "mlir") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(pass, must fail)` from the case's header line.
fn header(path: &Path, text: &str) -> (ArchcPass, bool) {
    let first = text.lines().next().unwrap_or_default();
    let (rest, fails) = match (first.strip_prefix("// RUN:"), first.strip_prefix("// RUN-FAIL:")) {
        (Some(r), _) => (r, false),
        (_, Some(r)) => (r, true),
        _ => panic!("{}: the first line must be `// RUN: <pass> [options]`", path.display()),
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (name, options) = words.split_first().unwrap_or_else(|| panic!("{}: no pass named", path.display()));
    let pass = ArchcPass::parse(name, options).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (pass, fails)
}

#[test]
fn every_pass_has_filetests() {
    let all = cases();
    for pass in ArchcPass::all() {
        let name = pass.name();
        let n = all.iter().filter(|p| p.parent().and_then(|d| d.file_name()).is_some_and(|d| d == name)).count();
        assert!(n >= 3, "{name}: {n} filetests (at least 3 wanted)");
    }
    for path in &all {
        let folder = path.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()).unwrap_or_default();
        let text = std::fs::read_to_string(path).expect("read case");
        let (pass, _) = header(path, &text);
        assert_eq!(pass.name(), folder, "{}: runs a pass other than its folder's", path.display());
    }
}

#[test]
fn filetests() {
    let all = cases();
    assert!(!all.is_empty(), "no filetests found");
    for path in all {
        let text = std::fs::read_to_string(&path).expect("read case");
        let (pass, fails) = header(&path, &text);
        let out = run_on_text(&pass, &text);
        let shown = match (out, fails) {
            (Ok(module), false) => module,
            (Err(e), true) => e.to_string(),
            (Ok(module), true) => panic!("{}: the pass should have failed, printed:\n{module}", path.display()),
            (Err(e), false) => panic!("{}: {e}", path.display()),
        };
        let dir = path.parent().expect("folder").join("snapshots");
        let name = path.file_stem().and_then(|s| s.to_str()).expect("case name").to_string();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(&path);
        settings.bind(|| insta::assert_snapshot!(name, shown));
    }
}
