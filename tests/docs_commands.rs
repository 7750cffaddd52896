//! `docs/what-runs-today.md` stays true: every `archc ...` line of its `sh` blocks runs,
//! in order, from the repository root with the release binary, `$TMP` a fresh
//! directory, and exits 0.

mod common;

/// The `archc` command lines of the page's `sh` blocks.
fn commands(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in page.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && l.starts_with("archc ") => out.push(l.to_string()),
            _ => {}
        }
    }
    out
}

#[test]
fn every_command_of_what_runs_today_runs() {
    let page = std::fs::read_to_string(common::repo().join("docs/what-runs-today.md")).expect("the page");
    let cmds = commands(&page);
    assert!(cmds.len() >= 15, "expected the page to show at least 15 commands, found {}", cmds.len());
    let tmp = std::env::temp_dir().join(format!("archc-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).expect("a fresh directory");
    let bin = env!("CARGO_BIN_EXE_archc");
    let mut failures = Vec::new();
    for cmd in &cmds {
        let script = format!("archc() {{ \"{bin}\" \"$@\"; }}\n{cmd}");
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(common::repo())
            .env("TMP", &tmp)
            .output()
            .expect("bash runs");
        if !out.status.success() {
            failures.push(format!("`{cmd}`: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        failures.is_empty(),
        "{} command(s) of docs/what-runs-today.md failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
