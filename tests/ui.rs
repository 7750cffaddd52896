//! Diagnostics of deliberately broken programs (`tests/ui/*.arch`).
//!
//! Each file starts with `// expect: TEXT` lines; checking it must fail, the rendered
//! diagnostics must contain every TEXT (and exactly once for `// expect-once: TEXT`),
//! and they are snapshot-tested (`cargo insta review` after an intended change). Adding
//! a case means adding a file.

mod common;

use archc_compiler::sema::Options;

#[test]
fn ui_diagnostics() {
    common::assert_no_orphan_snapshots("tests/ui/snapshots", "tests/ui");
    let files = common::arch_files("tests/ui");
    assert!(files.len() >= 40, "expected at least 40 ui cases, found {}", files.len());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let expects: Vec<&str> =
            text.lines().filter_map(|l| l.trim().strip_prefix("// expect:")).map(str::trim).collect();
        let once: Vec<&str> =
            text.lines().filter_map(|l| l.trim().strip_prefix("// expect-once:")).map(str::trim).collect();
        assert!(!expects.is_empty() || !once.is_empty(), "{}: no `// expect:` header", path.display());
        let opts = Options { check_all: true, ..Options::default() };
        let out = common::check(&path, &opts);
        let shown = common::rendered(&out);
        if out.diagnostics.is_empty() {
            failures.push(format!("{}: checking succeeded but should fail", path.display()));
        }
        for e in expects.iter().filter(|e| !shown.contains(*e)) {
            failures.push(format!("{}: diagnostics do not mention `{e}`:\n{shown}", path.display()));
        }
        for e in once.iter().filter(|e| count_errors(&shown, e) != 1) {
            let n = count_errors(&shown, e);
            failures.push(format!("{}: `{e}` is reported {n} times, not once:\n{shown}", path.display()));
        }
        let name = path.file_stem().expect("file name").to_string_lossy().to_string();
        insta::with_settings!({ snapshot_path => "ui/snapshots", prepend_module_to_snapshot => false, description => text.clone(), omit_expression => true }, {
            insta::assert_snapshot!(name, shown);
        });
    }
    assert!(failures.is_empty(), "{} ui case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// How many rendered errors have `message` as their headline.
fn count_errors(shown: &str, message: &str) -> usize {
    shown.lines().filter(|l| l.strip_prefix("Error: ") == Some(message)).count()
}
