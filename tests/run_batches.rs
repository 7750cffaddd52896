//! `archc run --batch N` (`archc::batches`): whole input files run N rows at a time give
//! the outputs of one run on the whole files, on several backends; `--max-memory` is
//! checked for one chunk; the refusals (rows that differ, `--batch 0`, no `--input`,
//! `--repeat`, scalars, constant batches) exit 1 with their messages.

use archc_runtime::{io, Tensor};
use std::path::{Path, PathBuf};
use std::process::Output;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    repo().join("examples").join(name).display().to_string()
}

fn archc(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_archc")).args(args).output().expect("archc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "archc failed: {}", stderr(o));
}

/// Exit code 1 and `needle` in stderr.
fn assert_refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "expected exit 1; stderr: {}", stderr(o));
    assert!(stderr(o).contains(needle), "expected `{needle}` in stderr: {}", stderr(o));
}

/// Deterministic, varied values in [-1, 1).
fn values(n: usize, salt: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let z = (i.wrapping_add(salt).wrapping_mul(0x9e3779b97f4a7c15)) >> 40;
            (z as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn write(dir: &Path, name: &str, t: &Tensor) -> String {
    let p = dir.join(name);
    io::write_npy(&p, t).expect("write npy");
    p.display().to_string()
}

fn input(path: &str, name: &str) -> String {
    format!("{name}={path}")
}

fn read(dir: &Path, name: &str) -> Tensor {
    io::read_npy(dir.join(name)).expect("output written")
}

/// Runs `file` on `inputs` with `--batch` (if given) into a fresh folder of `tmp`.
fn run_to(tmp: &Path, out: &str, file: &str, inputs: &[String], backend: &str, batch: Option<&str>) -> PathBuf {
    let dir = tmp.join(out);
    let d = dir.display().to_string();
    let mut args = vec!["run", file, "--backend", backend, "--out", &d];
    for i in inputs {
        args.extend(["--input", i.as_str()]);
    }
    if let Some(b) = batch {
        args.extend(["--batch", b]);
    }
    assert_ok(&archc(&args));
    dir
}

/// mlp.arch (`x: f32[B, 64]`) on 10 rows: chunks of 3 (3, 3, 3, 1) give one whole run's
/// logits, exactly on the interpreter.
#[test]
fn chunks_join_to_the_whole_run_interp() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[10, 64], values(640, 1)));
    let file = example("mlp.arch");
    let inputs = [input(&x, "x")];
    let d1 = run_to(tmp.path(), "d1", &file, &inputs, "interp", Some("3"));
    let d2 = run_to(tmp.path(), "d2", &file, &inputs, "interp", None);
    let (a, b) = (read(&d1, "logits.npy"), read(&d2, "logits.npy"));
    assert_eq!(a.shape, vec![10, 10]);
    assert_eq!(a, b, "batched and whole runs differ on the interpreter");
}

/// The same on Cranelift (one compile for every chunk size): equal to 1e-6 relative.
#[test]
fn chunks_join_to_the_whole_run_cranelift() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[10, 64], values(640, 2)));
    let file = example("mlp.arch");
    let inputs = [input(&x, "x")];
    let d1 = run_to(tmp.path(), "d1", &file, &inputs, "cranelift", Some("3"));
    let d2 = run_to(tmp.path(), "d2", &file, &inputs, "cranelift", None);
    let (a, b) = (read(&d1, "logits.npy"), read(&d2, "logits.npy"));
    assert_eq!(a.shape, vec![10, 10]);
    assert!(a.allclose(&b, 1e-6, 1e-6), "batched and whole runs differ: {:?}", a.compare(&b));
    // And against the interpreter's whole run.
    let d3 = run_to(tmp.path(), "d3", &file, &inputs, "interp", None);
    let c = read(&d3, "logits.npy");
    assert!(a.allclose(&c, 1e-5, 1e-5), "cranelift chunks vs interpreter: {:?}", a.compare(&c));
}

/// MLIR on the CPU: compiled for the first chunk's shapes, then once with the batch
/// dynamic for the short last chunk; equal to 1e-6 relative.
#[cfg(feature = "mlir")]
#[test]
fn chunks_join_to_the_whole_run_mlir_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[10, 64], values(640, 13)));
    let file = example("mlp.arch");
    let inputs = [input(&x, "x")];
    let d1 = run_to(tmp.path(), "d1", &file, &inputs, "mlir-cpu", Some("3"));
    let d2 = run_to(tmp.path(), "d2", &file, &inputs, "mlir-cpu", None);
    let (a, b) = (read(&d1, "logits.npy"), read(&d2, "logits.npy"));
    assert_eq!(a.shape, vec![10, 10]);
    assert!(a.allclose(&b, 1e-6, 1e-6), "batched and whole runs differ: {:?}", a.compare(&b));
}

/// Two inputs of different dtypes (hypernet.arch: `x: f32[B, 64]`, `task: i64[B]`) cut
/// into the same chunks; a batch larger than the file is one chunk.
#[test]
fn two_inputs_are_cut_together() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[7, 64], values(448, 3)));
    let task = write(tmp.path(), "task.npy", &Tensor::from_i64(&[7], (0..7).map(|i| i % 4).collect()));
    let file = example("hypernet.arch");
    let inputs = [input(&x, "x"), input(&task, "task")];
    let whole = read(&run_to(tmp.path(), "whole", &file, &inputs, "interp", None), "logits.npy");
    for b in ["2", "7", "100"] {
        let got = read(&run_to(tmp.path(), &format!("b{b}"), &file, &inputs, "interp", Some(b)), "logits.npy");
        assert_eq!(got.shape, vec![7, 10]);
        assert_eq!(got, whole, "--batch {b}");
    }
}

/// Without --out the joined outputs are summarised like a plain run's.
#[test]
fn summary_without_out() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[5, 64], values(320, 4)));
    let o = archc(&["run", &example("mlp.arch"), "--backend", "interp", "--input", &input(&x, "x"), "--batch", "2"]);
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("logits: f32[5, 10]"), "stdout: {out}");
}

#[test]
fn rows_that_differ_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[8, 64], values(512, 5)));
    let task = write(tmp.path(), "task.npy", &Tensor::from_i64(&[10], vec![0; 10]));
    let o = archc(&[
        "run",
        &example("hypernet.arch"),
        "--backend",
        "interp",
        "--input",
        &input(&x, "x"),
        "--input",
        &input(&task, "task"),
        "--batch",
        "3",
    ]);
    assert_refused(&o, "inputs `x` (8 rows) and `task` (10 rows) differ in rows");
}

#[test]
fn batch_zero_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[4, 64], values(256, 6)));
    let o = archc(&["run", &example("mlp.arch"), "--input", &input(&x, "x"), "--batch", "0"]);
    assert_refused(&o, "--batch 0: a chunk needs at least one row");
}

#[test]
fn batch_without_input_files_is_refused() {
    let o = archc(&["run", &example("mlp.arch"), "--batch", "3"]);
    assert_refused(&o, "--batch needs --input files");
}

#[test]
fn batch_with_an_input_missing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[4, 64], values(256, 7)));
    let o = archc(&["run", &example("hypernet.arch"), "--input", &input(&x, "x"), "--batch", "2"]);
    assert_refused(&o, "--batch needs an --input file for every input of the network; missing: task");
}

#[test]
fn repeat_with_batch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[4, 64], values(256, 8)));
    let o = archc(&["run", &example("mlp.arch"), "--input", &input(&x, "x"), "--batch", "2", "--repeat", "3"]);
    assert_refused(&o, "--repeat times repeated runs of one input");
}

#[test]
fn scalar_input_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::scalar_f32(1.0));
    let o = archc(&["run", &example("mlp.arch"), "--input", &input(&x, "x"), "--batch", "2"]);
    assert_refused(&o, "input `x`");
    assert_refused(&o, "is a scalar: --batch cuts every input along axis 0");
}

/// A tiny program in the temp dir.
fn arch(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn scalar_and_non_batch_outputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[9, 3], values(27, 9)));
    let total = arch(tmp.path(), "total.arch", "network Total {\n    input x: f32[B, 3]\n    output s = sum(x)\n}\n");
    let o = archc(&["run", &total, "--backend", "interp", "--input", &input(&x, "x"), "--batch", "3"]);
    assert_refused(&o, "output `s` is a scalar");
    // A mean over the batch is f32[3]: with chunks of 3 rows its size would match, but
    // it is not per-row, so it is refused by its type.
    let mean =
        arch(tmp.path(), "mean.arch", "network Mean {\n    input x: f32[B, 3]\n    output m = mean(x, axis = 0)\n}\n");
    let o = archc(&["run", &mean, "--backend", "interp", "--input", &input(&x, "x"), "--batch", "3"]);
    assert_refused(&o, "output `m` is f32[3]: its axis 0 is not the inputs' batch (`B`)");
}

/// A constant batch (`x: f32[4, 3]`): only chunks of 4 rows.
#[test]
fn constant_batch_needs_chunks_of_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let fixed = arch(tmp.path(), "fixed.arch", "network Fixed {\n    input x: f32[4, 3]\n    output y = relu(x)\n}\n");
    let x8 = write(tmp.path(), "x8.npy", &Tensor::from_f32(&[8, 3], values(24, 10)));
    let o = archc(&["run", &fixed, "--backend", "interp", "--input", &input(&x8, "x"), "--batch", "3"]);
    assert_refused(&o, "use --batch 4");
    let x10 = write(tmp.path(), "x10.npy", &Tensor::from_f32(&[10, 3], values(30, 11)));
    let o = archc(&["run", &fixed, "--backend", "interp", "--input", &input(&x10, "x"), "--batch", "4"]);
    assert_refused(&o, "every chunk must have 4 rows, and the files' 10 rows are not a multiple of 4");
    // Fewer rows than the constant: no chunk can have 4 rows, whatever --batch says.
    let x2 = write(tmp.path(), "x2.npy", &Tensor::from_f32(&[2, 3], values(6, 14)));
    let o = archc(&["run", &fixed, "--backend", "interp", "--input", &input(&x2, "x"), "--batch", "4"]);
    assert_refused(&o, "the files' 2 rows are not a multiple of 4");
    // A batch larger than a file of exactly 4 rows is one chunk of 4: it runs.
    let x4 = write(tmp.path(), "x4.npy", &Tensor::from_f32(&[4, 3], values(12, 15)));
    run_to(tmp.path(), "d4", &fixed, &[input(&x4, "x")], "interp", Some("100"));
    let d = run_to(tmp.path(), "d", &fixed, &[input(&x8, "x")], "interp", Some("4"));
    let y = read(&d, "y.npy");
    let want: Vec<f32> = values(24, 10).into_iter().map(|v| v.max(0.0)).collect();
    assert_eq!(y, Tensor::from_f32(&[8, 3], want));
}

/// `--max-memory` holds one chunk: the whole file is refused, chunks of 100 rows fit.
#[test]
fn max_memory_is_checked_per_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let x = write(tmp.path(), "x.npy", &Tensor::from_f32(&[2000, 64], values(128_000, 12)));
    let file = example("mlp.arch");
    let xi = input(&x, "x");
    let whole = archc(&["run", &file, "--backend", "interp", "--input", &xi, "--max-memory", "600K"]);
    assert_refused(&whole, "above the memory limit");
    let o = archc(&["run", &file, "--backend", "interp", "--input", &xi, "--max-memory", "600K", "--batch", "100"]);
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("logits: f32[2000, 10]"));
    let o = archc(&["run", &file, "--backend", "interp", "--input", &xi, "--max-memory", "600K", "--batch", "2000"]);
    assert_refused(&o, "running `main` at B=2000 needs at least");
}

/// A complex output is written as numpy's complex64 (`<c8`): the spectrum `rfft(x)` of
/// a file of rows, whole and in chunks, on each CPU backend, equal to the interpreter's
/// transform of the same rows.
#[test]
fn complex_outputs_are_written_as_complex64() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = tmp.path().join("spectrum.arch");
    std::fs::write(&arch, "network Spectrum {\n    input x: f32[B, 8]\n    output z = rfft(x)\n}\n").unwrap();
    let file = arch.display().to_string();
    let x = Tensor::from_f32(&[5, 8], values(40, 7));
    let xs = vec![input(&write(tmp.path(), "x.npy", &x), "x")];
    let want = archc_runtime::interp::rfft(&x, 1).expect("the interpreter's transform");
    let mut backends = vec!["interp", "cranelift"];
    if cfg!(feature = "mlir") {
        backends.push("mlir-cpu");
    }
    for backend in backends {
        for (out, batch) in [(format!("{backend}-whole"), None), (format!("{backend}-chunks"), Some("2"))] {
            let z = read(&run_to(tmp.path(), &out, &file, &xs, backend, batch), "z.npy");
            assert_eq!(z.type_string(), "c64[5, 5]", "{out}");
            let d = z.compare(&want).expect("same shape");
            assert!(d.max_abs < 1e-5, "{out}: max |difference| {}", d.max_abs);
        }
    }
}
