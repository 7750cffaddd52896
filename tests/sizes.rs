//! Absurd sizes are user errors, never wrong answers, aborts or segfaults: shape products
//! are checked at build time, a run whose estimated peak memory exceeds `--max-memory` is
//! refused before anything is allocated, and an allocation the system refuses anyway
//! ends in a one-line error with exit code 1. Programs live in `tests/sizes/`.

mod common;

use common::archc;

/// `archc args` must fail with exit code 1 (no signal, no internal error); its stderr.
fn user_error(args: &[&str]) -> String {
    let o = archc(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "archc {args:?}: expected exit 1, got {}:\n{err}", o.status);
    err
}

const BACKENDS: [&str; 2] = ["interp", "mlir-cpu"];

#[test]
fn element_counts_that_would_wrap_are_errors_with_a_span() {
    let err = user_error(&["check", "tests/sizes/huge_param.arch"]);
    assert!(err.contains("f32[65536, 65536, 65536, 65536] has more than 9007199254740992 elements"), "{err}");
    assert!(err.contains("huge_param.arch:4:5"), "the parameter's span: {err}");
    for b in BACKENDS {
        let err = user_error(&["run", "tests/sizes/huge_param.arch", "--backend", b]);
        assert!(err.contains("more than 9007199254740992 elements"), "{b}: {err}");
    }
}

#[test]
fn runs_above_the_memory_limit_are_refused_before_they_start() {
    for b in BACKENDS {
        let err = user_error(&["run", "tests/sizes/huge_product.arch", "--backend", b]);
        assert!(err.contains("needs at least 111.8 GiB"), "{b}: {err}");
        assert!(err.contains("the largest tensor, f32[100000, 100000], takes 37.3 GiB"), "{b}: {err}");
        assert!(err.contains("above the memory limit"), "{b}: {err}");
        let err = user_error(&["run", "tests/sizes/huge_input.arch", "--backend", b]);
        assert!(err.contains("f32[B, 1000000000000]"), "{b}: {err}");
        let err = user_error(&["run", "examples/mlp.arch", "--backend", b, "--dim", "B=10000000000000"]);
        assert!(err.contains("at B=10000000000000 needs at least"), "{b}: {err}");
    }
}

#[test]
fn a_batch_near_the_integer_limit_is_a_user_error() {
    for b in BACKENDS {
        let err = user_error(&["run", "examples/mlp.arch", "--backend", b, "--dim", "B=4611686018427387904"]);
        assert!(err.contains("needs at least") && !err.contains("panicked"), "{b}: {err}");
    }
}

#[test]
fn the_limit_is_a_flag() {
    let err = user_error(&["run", "examples/mlp.arch", "--backend", "interp", "--max-memory", "10K"]);
    assert!(err.contains("above the memory limit of 10.0 KiB"), "{err}");
    let err = user_error(&["run", "examples/mlp.arch", "--max-memory", "lots"]);
    assert!(err.contains("--max-memory lots"), "{err}");
    let o = archc(&["run", "examples/mlp.arch", "--backend", "interp", "--max-memory", "1G"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn failed_allocations_end_in_an_error_not_an_abort() {
    for b in BACKENDS {
        let err = user_error(&["run", "tests/sizes/huge_broadcast.arch", "--backend", b, "--max-memory", "none"]);
        assert!(err.contains("error: out of memory: cannot allocate"), "{b}: {err}");
    }
}

#[test]
fn ranks_are_bounded() {
    let dir = std::env::temp_dir().join(format!("archc-sizes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for rank in [3000usize, 100_000] {
        let dims = vec!["1"; rank].join(", ");
        let path = dir.join(format!("rank{rank}.arch"));
        std::fs::write(&path, format!("network R {{\n    input x: f32[{dims}]\n    output y = x\n}}\n"))
            .expect("write");
        let t = std::time::Instant::now();
        let err = user_error(&["check", path.to_str().expect("utf-8")]);
        assert!(err.contains(&format!("a tensor of rank {rank} is above the limit of 64")), "{err}");
        assert!(t.elapsed().as_secs() < 20, "rank {rank} took {:?}", t.elapsed());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn long_pipe_chains_are_not_nesting() {
    let dir = std::env::temp_dir().join(format!("archc-chains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let chain = |n: usize| {
        let path = dir.join(format!("chain{n}.arch"));
        let body = "|> relu ".repeat(n);
        std::fs::write(&path, format!("network C {{\n    input x: f32[B, 4]\n    output y = x {body}\n}}\n"))
            .expect("write");
        path
    };
    let ok = archc(&["check", chain(300).to_str().expect("utf-8")]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let err = user_error(&["check", chain(5000).to_str().expect("utf-8")]);
    assert!(err.contains("a chain of more than 4096 `|>` stages"), "{err}");
    assert_eq!(err.matches("Error: syntax error: a chain").count(), 1, "reported once");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A layer of 2^20 applications used by 100 networks: the evaluation budget is the
/// file's, so checking stops after a few builds instead of running 100 of them.
#[test]
fn the_evaluation_budget_is_per_file() {
    let mut src = vec!["layer L0 { fn (x: f32[B, 4]) -> f32[B, 4] { relu(x) } }".to_string()];
    for i in 1..=20 {
        src.push(format!("layer L{i} {{ fn (x: f32[B, 4]) -> f32[B, 4] {{ x |> L{} |> L{} }} }}", i - 1, i - 1));
    }
    for j in 0..100 {
        src.push(format!("network N{j} {{\n    input x: f32[B, 4]\n    output y = x |> L20\n}}"));
    }
    let path = std::env::temp_dir().join(format!("archc-budget-{}.arch", std::process::id()));
    std::fs::write(&path, src.join("\n")).expect("write");
    let t = std::time::Instant::now();
    let err = user_error(&["check", path.to_str().expect("utf-8")]);
    assert!(t.elapsed().as_secs() < 30, "checking took {:?}", t.elapsed());
    assert!(err.contains("items were not checked: this file spent its whole evaluation budget"), "{err}");
    assert!(err.matches("evaluation budget exhausted").count() <= 8, "a few builds, not 100: {err}");
    let _ = std::fs::remove_file(&path);
}
