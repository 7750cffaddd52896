//! `archc train` keeps a run directory safe: it refuses to start afresh over an existing
//! run without `--overwrite`, refuses a learning rate that is not a positive finite
//! number, resumes past a torn `metrics.jsonl` line, refuses checkpoint counters that do
//! not fit the data, says when a resumed run is already complete, and mentions a kept
//! checkpoint after a NaN only when there is one, and starts from the parameters an
//! `--init` file names (refusing a file that names none, or a wrong shape). The data set is a small `digits` file
//! written by each test (`ARCHC_DATA` points at it).

mod common;

use archc_runtime::train::TrainState;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test, holding a 50-row `digits.csv.gz` (plain text: the
/// reader detects gzip by its magic bytes).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archc-train-safety-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows: Vec<String> = (0..50)
        .map(|i| {
            let mut row: Vec<String> = (0..64).map(|j| ((i * 7 + j * 3) % 17).to_string()).collect();
            row.push((i % 10).to_string());
            row.join(",")
        })
        .collect();
    std::fs::write(dir.join("digits.csv.gz"), rows.join("\n") + "\n").unwrap();
    dir
}

/// Runs `archc train examples/train_digits.arch --quiet --out DIR/run ARGS...` with the
/// test's data; returns the exit code and stderr.
fn train(dir: &Path, args: &[&str]) -> (i32, String) {
    let example = common::repo().join("examples/train_digits.arch");
    let out = dir.join("run");
    let output = Command::new(env!("CARGO_BIN_EXE_archc"))
        .arg("train")
        .arg(&example)
        .args(["--quiet", "--backend", "interp", "--out"])
        .arg(&out)
        .args(args)
        .env("ARCHC_DATA", dir)
        .current_dir(dir)
        .output()
        .expect("archc runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!stderr.contains("panicked"), "archc panicked:\n{stderr}");
    (output.status.code().unwrap_or(-1), stderr)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, stderr) = train(dir, args);
    assert_eq!(code, 0, "archc train {args:?} failed:\n{stderr}");
    stderr
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let (code, stderr) = train(dir, args);
    assert_eq!(code, 1, "archc train {args:?} should fail with a user error:\n{stderr}");
    stderr
}

#[test]
fn an_existing_run_is_kept_unless_resumed_or_overwritten() {
    let dir = scratch("existing");
    ok(&dir, &["--epochs", "1"]);
    let ckpt = dir.join("run/checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let err = refused(&dir, &["--epochs", "1"]);
    assert!(err.contains("already holds a run"), "{err}");
    assert!(err.contains(&*dir.join("run").to_string_lossy()), "names the folder: {err}");
    assert!(err.contains("--resume") && err.contains("--overwrite") && err.contains("--out"), "{err}");
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the checkpoint is untouched");
    assert!(dir.join("run/metrics.jsonl").exists() && dir.join("run/curves.svg").exists());
    ok(&dir, &["--epochs", "1", "--overwrite"]);
    let (code, err) = train(&dir, &["--epochs", "1", "--overwrite", "--resume"]);
    assert!(code != 0 && err.contains("cannot be used with"), "{err}");
}

#[test]
fn learning_rates_that_are_not_positive_and_finite_are_refused() {
    let dir = scratch("lr");
    for lr in ["nan", "inf", "-inf", "-0.1", "0"] {
        let err = refused(&dir, &["--epochs", "1", &format!("--lr={lr}")]);
        assert!(err.contains("the learning rate must be a positive finite number"), "{lr}: {err}");
    }
    assert!(!dir.join("run").exists(), "nothing was written");
}

#[test]
fn a_torn_metrics_line_is_dropped_on_resume() {
    let dir = scratch("torn");
    ok(&dir, &["--epochs", "1"]);
    let metrics = dir.join("run/metrics.jsonl");
    let whole = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, format!("{whole}{{\"epoch\": 2, \"step\": 2, \"train_lo")).unwrap();
    let err = ok(&dir, &["--epochs", "2", "--resume"]);
    assert!(err.contains("dropped a partial last line"), "{err}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.starts_with(&whole), "the complete line is kept");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.starts_with('{') && l.ends_with('}')), "{text}");
}

/// Rewrites the run's checkpoint counters.
fn set_counters(dir: &Path, epoch: u64, batch_in_epoch: u64, step: u64) {
    let path = dir.join("run/checkpoint.safetensors");
    let mut st = TrainState::load(&path).unwrap();
    (st.epoch, st.batch_in_epoch, st.step) = (epoch, batch_in_epoch, step);
    st.save(&path).unwrap();
}

#[test]
fn checkpoint_counters_must_fit_the_data_and_a_complete_run_trains_nothing() {
    let dir = scratch("counters");
    ok(&dir, &["--epochs", "1", "--batch", "8"]); // 40 training rows: 5 batches per epoch
    let metrics = dir.join("run/metrics.jsonl");
    let after_one = std::fs::read_to_string(&metrics).unwrap();
    let err = ok(&dir, &["--epochs", "1", "--batch", "8", "--resume"]);
    assert!(err.contains("is already complete (1 epochs done, --epochs 1): nothing to train"), "{err}");
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), after_one, "no empty epoch was logged");
    // Past every batch of the epoch in progress: an empty epoch with loss 0 before.
    set_counters(&dir, 1, 9, 14);
    let err = refused(&dir, &["--epochs", "2", "--batch", "8", "--resume"]);
    assert!(err.contains("inconsistent checkpoint counters"), "{err}");
    set_counters(&dir, 1, 0, 3);
    let err = refused(&dir, &["--epochs", "2", "--batch", "8", "--resume"]);
    assert!(err.contains("inconsistent checkpoint counters"), "{err}");
    // Consistent counters beyond --epochs: complete, nothing trained or logged.
    set_counters(&dir, 7, 0, 35);
    let err = ok(&dir, &["--epochs", "2", "--batch", "8", "--resume"]);
    assert!(err.contains("already complete (7 epochs done, --epochs 2)"), "{err}");
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), after_one);
}

#[test]
fn the_nan_hint_mentions_a_kept_checkpoint_only_when_there_is_one() {
    let dir = scratch("nan");
    let blow_up = ["--batch", "8", "--lr", "1e30", "--detect-anomaly"];
    let err = refused(&dir, &[&["--epochs", "1"][..], &blow_up].concat());
    assert!(err.contains("not finite"), "{err}");
    assert!(err.contains("first produced by") && err.contains("no checkpoint was saved yet"), "{err}");
    assert!(!err.contains("checkpoint was kept"), "no checkpoint exists yet: {err}");
    assert!(!dir.join("run/checkpoint.safetensors").exists());
    ok(&dir, &["--epochs", "1", "--batch", "8", "--overwrite"]);
    let err = refused(&dir, &[&["--epochs", "2", "--resume"][..], &blow_up].concat());
    assert!(err.contains("first produced by") && err.contains("the last good checkpoint was kept"), "{err}");
}

/// Writes `tensors` (name, shape, every element `v`) to `DIR/NAME`.
fn weights_file(dir: &Path, name: &str, tensors: &[(&str, Vec<usize>, f32)]) -> PathBuf {
    use archc_runtime::tensor::{Data, Tensor};
    let path = dir.join(name);
    let values: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, shape, v)| {
            (n.to_string(), Tensor::new(shape.clone(), Data::F32(vec![*v; shape.iter().product()])).unwrap())
        })
        .collect();
    archc_runtime::io::write_safetensors(&path, values.iter().map(|(n, t)| (n, t))).unwrap();
    path
}

#[test]
fn init_starts_from_the_parameters_a_file_names_and_lists_the_rest() {
    let dir = scratch("init");
    let file = weights_file(&dir, "pre.safetensors", &[("linear_0.b", vec![128], 0.25), ("head.w", vec![3], 1.0)]);
    let err = ok(&dir, &["--epochs", "1", "--batch", "8", "--lr", "1e-30", "--init", file.to_str().unwrap()]);
    assert!(err.contains("starting from 1 of the program's 4 parameters in"), "{err}");
    assert!(err.contains("not parameters of this program, not loaded: head.w"), "{err}");
    let st = TrainState::load(&dir.join("run/checkpoint.safetensors")).unwrap();
    let b = st.params["linear_0.b"].as_f32().unwrap().to_vec();
    assert!(b.iter().all(|v| *v == 0.25), "linear_0.b did not start from the file: {b:?}");
    let w = st.params["linear_1.b"].as_f32().unwrap().to_vec();
    assert!(w.iter().any(|v| *v != 0.25), "the other parameters keep their initialisers");

    let wrong = weights_file(&dir, "wrong.safetensors", &[("linear_0.b", vec![7], 0.0)]);
    let err = refused(&dir, &["--epochs", "1", "--overwrite", "--init", wrong.to_str().unwrap()]);
    assert!(err.contains("initial value of linear_0.b is f32[7], the parameter is f32[128]"), "{err}");
    let none = weights_file(&dir, "none.safetensors", &[("encoder.w", vec![2], 0.0)]);
    let err = refused(&dir, &["--epochs", "1", "--overwrite", "--init", none.to_str().unwrap()]);
    assert!(err.contains("none of its tensors is a parameter of this program (the file has `encoder.w`"), "{err}");
    let (code, err) = train(&dir, &["--epochs", "1", "--resume", "--init", none.to_str().unwrap()]);
    assert_eq!(code, 2, "--init and --resume together are a usage error: {err}");
}
