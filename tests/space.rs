//! `archc check` of search spaces (`tests/space/*.arch`): a file with `// expect-count: N`
//! must be proven valid by enumeration with exactly N candidates; a file with
//! `// expect: TEXT` must fail, naming the combination in TEXT, and its report is
//! snapshot-tested.

use archc::search::check::check_space;
use std::path::PathBuf;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/space")
        .expect("tests/space")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    v.sort();
    v
}

#[test]
fn spaces_are_counted_and_proven_or_refused() {
    let files = cases();
    assert!(files.len() >= 3, "expected space cases, found {}", files.len());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let header = |key: &str| text.lines().filter_map(|l| l.trim().strip_prefix(key)).map(str::trim).collect();
        let counts: Vec<&str> = header("// expect-count:");
        let expects: Vec<&str> = header("// expect:");
        let got = check_space(&path, false).expect("readable");
        if let Some(n) = counts.first() {
            let want = format!("a search space of {n} candidates");
            if !got.ok || !got.text.contains(&want) || !got.text.contains("proven by enumeration") {
                failures.push(format!("{}: expected `{want}`, proven; got:\n{}", path.display(), got.text));
            }
            continue;
        }
        assert!(!expects.is_empty(), "{}: no `// expect:` or `// expect-count:` header", path.display());
        if got.ok {
            failures.push(format!("{}: the space was accepted: {}", path.display(), got.text));
        }
        for e in expects.iter().filter(|e| !got.text.contains(*e)) {
            failures.push(format!("{}: the report does not mention `{e}`:\n{}", path.display(), got.text));
        }
        let name = path.file_stem().expect("name").to_string_lossy().to_string();
        insta::with_settings!({ snapshot_path => "space/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, got.text);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
