//! Helpers shared by the integration tests: checking a file as the CLI does, with
//! diagnostics rendered without colour and with paths made relative to the repository.

#![allow(dead_code)]

use archc::driver::check_path;
use archc::render::render;
use archc_compiler::sema::{CheckOutput, Options};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Checks `path` (relative to the repository) with `opts`.
pub fn check(path: &Path, opts: &Options) -> CheckOutput {
    let rel = path.strip_prefix(repo()).unwrap_or(path);
    let _guard = CwdGuard::enter(&repo());
    check_path(rel, opts).expect("readable test file")
}

/// Rendered diagnostics, colour off.
pub fn rendered(out: &CheckOutput) -> String {
    render(&out.diagnostics, &out.sources, false)
}

/// Random inputs for `f`'s arguments (symbolic dims at `archc run`'s defaults, `B = 2`,
/// others 16), argument `i` drawn with seed `i`.
pub fn random_inputs(f: &archc_compiler::tir::Func) -> Vec<archc_runtime::Tensor> {
    random_inputs_with(f, &std::collections::HashMap::new())
}

/// [`random_inputs`] with the given symbol values (others at their defaults).
#[allow(dead_code)] // not every test crate sizes its inputs
pub fn random_inputs_with(
    f: &archc_compiler::tir::Func,
    dims: &std::collections::HashMap<String, i64>,
) -> Vec<archc_runtime::Tensor> {
    let shapes = archc::inputs::arg_shapes(f, dims).expect("input shapes");
    f.args
        .iter()
        .zip(&shapes)
        .enumerate()
        .map(|(i, ((_, t), s))| archc::inputs::random_tensor(t.dtype, s, i as u64))
        .collect()
}

/// `max |got - want| / max(max |want|, 1e-6)`.
#[allow(dead_code)] // not every test crate compares tensors
pub fn scaled_error(got: &archc_runtime::Tensor, want: &archc_runtime::Tensor) -> f64 {
    let d = got.compare(want).expect("same shape");
    let scale = want.to_f64_vec().map(|v| v.iter().fold(0.0f64, |m, x| m.max(x.abs()))).unwrap_or(1.0);
    d.max_abs / scale.max(1e-6)
}

/// Every `.arch` file in a directory of the repository, sorted.
pub fn arch_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .expect("directory exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    v.sort();
    v
}

struct CwdGuard;

impl CwdGuard {
    fn enter(dir: &Path) -> CwdGuard {
        std::env::set_current_dir(dir).expect("repo dir");
        CwdGuard
    }
}

/// Fails when a snapshot in `snap_dir` has no input file in `input_dir` (stale goldens).
pub fn assert_no_orphan_snapshots(snap_dir: &str, input_dir: &str) {
    let Ok(entries) = std::fs::read_dir(repo().join(snap_dir)) else { return };
    for e in entries {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "snap") {
            let stem = p.file_stem().expect("name").to_string_lossy().to_string();
            let input = repo().join(input_dir).join(format!("{stem}.arch"));
            assert!(input.exists(), "snapshot {} has no input {}; delete it", p.display(), input.display());
        }
    }
}

/// Calls macro `$m` with the name of every gradient fixture of `tests/fixtures/grad`
/// (`tests/grad_fixtures.rs` and `tests/grad_cli.rs` make one test of each; both check the
/// list against the directory).
#[allow(unused_macros)]
macro_rules! with_grad_fixtures {
    ($m:ident) => {
        $m!(
            mlp,
            cnn,
            lstm,
            attention,
            fno,
            hypernet,
            sorting,
            resample,
            spectral,
            pooling,
            einsum,
            stacking,
            elementwise
        );
    };
}
#[allow(unused_imports)]
pub(crate) use with_grad_fixtures;

/// Fails unless the `.arch` programs in fixture directory `dir` are exactly `listed`,
/// each with its `.safetensors` data beside it.
pub fn assert_fixture_list(dir: &str, listed: &[&str], list_file: &str) {
    let on_disk: std::collections::BTreeSet<String> =
        arch_files(dir).iter().map(|p| p.file_stem().expect("file name").to_string_lossy().to_string()).collect();
    let listed: std::collections::BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, listed, "{dir}/*.arch and the fixtures! list in {list_file} differ");
    for name in &on_disk {
        let data = repo().join(dir).join(format!("{name}.safetensors"));
        assert!(data.exists(), "{} is missing (run `make fixtures`)", data.display());
    }
}

/// Runs the `archc` binary with `args` in the repository.
pub fn archc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_archc")).args(args).current_dir(repo()).output().expect("archc runs")
}
