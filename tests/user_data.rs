//! Training on the user's own files (`file(...)` in a `train` block) with losses and
//! metrics written as expressions: every file format reads the same fields, data
//! convert to the network's dtypes only where no value changes, an expression loss
//! gives the built-in loss's step and differentiates parameter paths, bad data are
//! diagnostics at the data source, and the diabetes example lands within 5% of the
//! same model trained by PyTorch (`scripts/diabetes_torch.py`, its result committed as
//! `tests/fixtures/diabetes_torch.json`).

mod common;

use archc::training::{read_config, train_data, train_program};
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const NET: &str = "use nn.Linear

network Reg {
    input  x: f32[B, 3]
    let fc = Linear(3, 1)
    output pred = x |> fc
}
";

/// Six rows: `x` f32[6, 3], `y` f32[6, 1], `label` (integral floats) f32[6].
fn rows() -> (Tensor, Tensor, Tensor) {
    let x: Vec<f32> = (0..18).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    let label: Vec<f32> = (0..6).map(|i| (i % 3) as f32).collect();
    (Tensor::from_f32(&[6, 3], x), Tensor::from_f32(&[6, 1], y), Tensor::from_f32(&[6], label))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn config(path: &Path) -> TrainConfig {
    let (out, _) = read_config(path, &Options::default()).expect("readable");
    let shown = archc::render::render(&out.diagnostics, &out.sources, false);
    assert!(out.diagnostics.is_empty(), "{shown}");
    out.config.expect("config")
}

fn train_block(source: &str, loss: &str) -> String {
    format!("{NET}\ntrain Reg on {source} {{\n    loss: {loss}\n    optimizer: sgd(lr = 0.1)\n    batch: 6\n}}\n")
}

/// The training part's fields, by name.
fn loaded(path: &Path) -> HashMap<String, Tensor> {
    let cfg = config(path);
    let program = train_program(&cfg).expect("train step");
    let data = train_data(&cfg, &program).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.train.load().expect("read").tensors().map(|(n, t)| (n.to_string(), t.clone())).collect()
}

#[test]
fn every_file_format_reads_the_same_fields() {
    let d = tempfile::tempdir().expect("tempdir");
    let (x, y, _) = rows();
    io::write_npz(d.path().join("d.npz"), [("features", &x), ("y", &y)]).expect("npz");
    io::write_safetensors(d.path().join("d.safetensors"), [("features", &x), ("y", &y)]).expect("st");
    std::fs::create_dir(d.path().join("shards")).expect("dir");
    io::write_npy(d.path().join("shards/features.0.npy"), &archc_runtime::data::gather_rows(&x, &[0, 1, 2, 3]))
        .expect("npy");
    io::write_npy(d.path().join("shards/features.1.npy"), &archc_runtime::data::gather_rows(&x, &[4, 5])).expect("npy");
    io::write_npy(d.path().join("shards/y.npy"), &y).expect("npy");
    io::write_npy(d.path().join("x.npy"), &x).expect("npy");
    io::write_npy(d.path().join("y.npy"), &y).expect("npy");
    let xs = x.to_f64_vec().expect("floats");
    let mut csv = String::from("a,b,c,target\n");
    for r in 0..6 {
        let yv = y.to_f64_vec().expect("floats")[r];
        csv.push_str(&format!("{},{},{},{}\n", xs[3 * r], xs[3 * r + 1], xs[3 * r + 2], yv));
    }
    write(d.path(), "d.csv", &csv);
    let sources = [
        "file(\"d.npz\", x = \"features\")",
        "file(\"d.safetensors\", x = \"features\")",
        "file(\"shards\", x = \"features\")",
        "file(x = \"x.npy\", y = \"y.npy\")",
        "file(\"d.csv\", x = [\"a\", \"b\", \"c\"], y = [\"target\"])",
    ];
    for (i, source) in sources.iter().enumerate() {
        let path = write(d.path(), &format!("t{i}.arch"), &train_block(source, "mse(pred, y)"));
        let fields = loaded(&path);
        assert_eq!(fields.len(), 2, "{source}: {:?}", fields.keys());
        assert_eq!(fields["x"], x, "{source}");
        assert_eq!(fields["y"], y, "{source}");
    }
}

#[test]
fn a_test_file_has_the_same_fields_or_its_own() {
    let d = tempfile::tempdir().expect("tempdir");
    let (x, y, _) = rows();
    let (xt, yt) = (archc_runtime::data::gather_rows(&x, &[5, 4]), archc_runtime::data::gather_rows(&y, &[5, 4]));
    io::write_npz(d.path().join("both.npz"), [("x_train", &x), ("y_train", &y), ("x_test", &xt), ("y_test", &yt)])
        .expect("npz");
    io::write_npz(d.path().join("test.npz"), [("x_train", &xt), ("y_train", &yt)]).expect("npz");
    let sources = [
        "file(\"both.npz\", x = \"x_train\", y = \"y_train\", test = file(\"both.npz\", x = \"x_test\", y = \"y_test\"))",
        "file(\"both.npz\", x = \"x_train\", y = \"y_train\", test = \"test.npz\")",
    ];
    for (i, source) in sources.iter().enumerate() {
        let path = write(d.path(), &format!("t{i}.arch"), &train_block(source, "mse(pred, y)"));
        let cfg = config(&path);
        let data = train_data(&cfg, &train_program(&cfg).expect("step")).expect("data");
        assert_eq!(data.train.load().expect("read").get("x"), Some(&x), "{source}");
        let test = data.test.expect("a test part").load().expect("read");
        assert_eq!((test.get("x"), test.get("y")), (Some(&xt), Some(&yt)), "{source}");
    }
}

#[test]
fn data_convert_where_no_value_changes() {
    let d = tempfile::tempdir().expect("tempdir");
    let (x, _, label) = rows();
    let x64 = x.cast(archc_compiler::tir::DType::F64);
    io::write_npz(d.path().join("d.npz"), [("x", &x64), ("label", &label)]).expect("npz");
    let net = NET.replace("Linear(3, 1)", "Linear(3, 3)");
    let text = format!(
        "{net}\ntrain Reg on file(\"d.npz\") {{\n    loss: cross_entropy(pred, label)\n    optimizer: sgd(lr = 0.1)\n}}\n"
    );
    let path = write(d.path(), "t.arch", &text);
    let fields = loaded(&path);
    assert_eq!(fields["x"], x, "f64 data read as the network's f32");
    let want: Vec<i64> = (0..6).map(|i| i % 3).collect();
    assert_eq!(fields["label"], Tensor::from_i64(&[6], want), "integral floats as i64 labels");
    let half = Tensor::from_f32(&[6], vec![0.0, 1.0, 2.5, 0.0, 1.0, 2.0]);
    io::write_npz(d.path().join("d.npz"), [("x", &x), ("label", &half)]).expect("npz");
    let cfg = config(&path);
    let e = train_data(&cfg, &train_program(&cfg).expect("step")).err().expect("refused");
    assert!(e.contains("data for `label` holds 2.5 (element 2)") && e.contains("integers"), "{e}");
}

/// One SGD step of `loss` on the six rows from the same initial weights: the new `fc.w`.
fn stepped_weights(dir: &Path, name: &str, loss: &str) -> Tensor {
    let path = write(dir, name, &train_block("file(\"d.npz\")", loss));
    let cfg = config(&path);
    let program = train_program(&cfg).expect("train step");
    let data = train_data(&cfg, &program).expect("data");
    let f = program.func("train_step").expect("train_step");
    let mut interp = Interpreter::new(&program);
    interp.init_params(0).expect("init");
    let inputs: Vec<Tensor> = f
        .arg_names
        .iter()
        .zip(&f.args)
        .map(|(n, (_, t))| match n.strip_prefix("param:") {
            Some(p) => interp.param(p).expect("param").clone(),
            None if n == "lr" => Tensor::scalar_f32(0.1),
            None if n.starts_with("state:") => Tensor::zeros(t.dtype, &[]),
            None => data.train.get(n).unwrap_or_else(|| panic!("no field {n}")).tensor().expect("read"),
        })
        .collect();
    let out = interp.run("train_step", &inputs).expect("step");
    let i = f.result_names.iter().position(|r| r == "param:fc.w").expect("fc.w result");
    out[i].clone()
}

#[test]
fn an_expression_loss_is_the_builtin_step_and_differentiates_parameter_paths() {
    let d = tempfile::tempdir().expect("tempdir");
    let (x, y, _) = rows();
    io::write_npz(d.path().join("d.npz"), [("x", &x), ("y", &y)]).expect("npz");
    let builtin = stepped_weights(d.path(), "a.arch", "mse(pred, y)");
    let written = stepped_weights(d.path(), "b.arch", "mean((pred - y) * (pred - y))");
    let decayed = stepped_weights(d.path(), "c.arch", "mse(pred, y) + 0.5 * sum(fc.w * fc.w)");
    let diff = written.compare(&builtin).expect("same shape");
    assert!(diff.max_abs < 1e-6, "expression vs built-in mse: {diff:?}");
    // d/dw 0.5 * sum(w^2) = w, so one SGD step at lr 0.1 subtracts 0.1 * w0 more.
    let mut interp_prog = config(&d.path().join("a.arch")).program;
    interp_prog.funcs.truncate(1);
    let mut interp = Interpreter::new(&interp_prog);
    interp.init_params(0).expect("init");
    let w0 = interp.param("fc.w").expect("fc.w").to_f64_vec().expect("floats");
    let (b, c) = (builtin.to_f64_vec().expect("f"), decayed.to_f64_vec().expect("f"));
    for ((b, c), w) in b.iter().zip(&c).zip(&w0) {
        assert!((b - c - 0.1 * w).abs() < 1e-6, "weight decay through `fc.w`: {b} - {c} vs 0.1 * {w}");
    }
}

fn archc(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_archc")).args(args).current_dir(dir).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

#[test]
fn bad_data_are_diagnostics_at_the_data_source() {
    let d = tempfile::tempdir().expect("tempdir");
    let (x, y, _) = rows();
    io::write_npz(d.path().join("d.npz"), [("x", &x), ("y", &y)]).expect("npz");
    let y2 = Tensor::from_f32(&[6, 2], vec![0.0; 12]);
    io::write_npz(d.path().join("wide.npz"), [("x", &x), ("y", &y2)]).expect("npz");
    let cases = [
        ("file(\"nothere.npz\")", "mse(pred, y)", "nothere.npz does not exist"),
        ("file(\"d.npz\", y = \"price\")", "mse(pred, y)", "has no `price` (for field `y`); its arrays: x, y"),
        ("file(\"d.npz\")", "mse(pred, yy)", "d.npz has no `yy`; its arrays: x, y"),
        ("file(\"d.npz\")", "mean(abs(pred - yy))", "`yy` is not an output, an input or a parameter of the network"),
        ("file(\"wide.npz\")", "mse(pred, y)", "data for `y` has shape [6, 2], which does not fit f32[B, 1]"),
        ("file(\"d.npz\", test = \"gone.npz\")", "mse(pred, y)", "the test file"),
    ];
    for (i, (source, loss, want)) in cases.iter().enumerate() {
        let name = format!("e{i}.arch");
        write(d.path(), &name, &train_block(source, loss));
        let (ok, text) = archc(d.path(), &["train", &name, "--out", "run", "--overwrite", "--epochs", "1"]);
        assert!(!ok, "{source}: should fail:\n{text}");
        assert!(text.contains(want), "{source}: no `{want}` in:\n{text}");
        assert!(text.contains(&format!("╭─[ {name}:")), "no span:\n{text}");
    }
}

#[test]
fn the_diabetes_example_is_within_five_percent_of_pytorch() {
    let data = archc_runtime::data::data_dir();
    if !data.join("diabetes_train.npz").is_file() {
        panic!("{} has no diabetes_train.npz: run `make data`", data.display());
    }
    let json = std::fs::read_to_string(common::repo().join("tests/fixtures/diabetes_torch.json")).expect("fixture");
    let torch: serde_json::Value = serde_json::from_str(&json).expect("json");
    let torch_mse = torch["test_mse_mean"].as_f64().expect("test_mse_mean");
    let seeds = torch["test_mse"].as_array().expect("per seed").len();
    let d = tempfile::tempdir().expect("tempdir");
    let example = common::repo().join("examples/train_diabetes.arch");
    let mut ours = Vec::new();
    for seed in 0..seeds {
        let out = d.path().join(format!("s{seed}"));
        let args = ["train", example.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")];
        let seed_arg = seed.to_string();
        let (ok, text) =
            archc(d.path(), &[&args[..], &["--seed", &seed_arg, "--backend", "cranelift", "--quiet"]].concat());
        assert!(ok, "{text}");
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
        let last: serde_json::Value = serde_json::from_str(metrics.lines().last().expect("a record")).expect("json");
        ours.push(last["test_mse"].as_f64().expect("test_mse"));
    }
    let mean = ours.iter().sum::<f64>() / ours.len() as f64;
    let rel = (mean - torch_mse).abs() / torch_mse;
    eprintln!("diabetes test mse: archc {mean:.4} ({ours:?}), PyTorch {torch_mse:.4}: {:.1}% apart", 100.0 * rel);
    assert!(rel <= 0.05, "archc {mean} vs PyTorch {torch_mse}: {:.1}% apart", 100.0 * rel);
}

#[test]
fn search_trains_candidates_on_a_file_with_an_expression_loss() {
    let d = tempfile::tempdir().expect("tempdir");
    let x: Vec<f32> = (0..160).map(|i| (i as f32 * 0.731).sin()).collect();
    let label: Vec<i64> = (0..40).map(|r| i64::from(x[4 * r] > 0.0)).collect();
    let (x, label) = (Tensor::from_f32(&[40, 4], x), Tensor::from_i64(&[40], label));
    io::write_npz(d.path().join("d.npz"), [("x", &x), ("label", &label)]).expect("npz");
    let text = "use nn.Linear

network Space {
    input  x: f32[B, 4]
    choose width in [4, 8]
    let fc = Linear(4, width)
    let out = Linear(width, 2)
    output logits = x |> fc |> relu |> out
}

train Space on file(\"d.npz\", split = [0.75, 0.25]) {
    loss: cross_entropy(logits, label) + 1e-4 * sum(fc.w * fc.w)
    optimizer: adam(lr = 1e-2)
    batch: 10
    metrics: [accuracy(logits, label)]
}
";
    write(d.path(), "space.arch", text);
    let args = ["search", "space.arch", "--strategy", "grid", "--budget", "2", "--objective", "accuracy"];
    let (ok, out) = archc(d.path(), &[&args[..], &["--train-epochs", "2", "--out", "s", "--quiet"]].concat());
    assert!(ok, "{out}");
    let trials = std::fs::read_to_string(d.path().join("s/trials.jsonl")).expect("trials");
    assert_eq!(trials.lines().count(), 2, "{trials}");
    for line in trials.lines() {
        let t: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(t["status"], "ok", "{line}");
        let acc = t["metrics"]["accuracy"].as_f64().expect("accuracy");
        assert!((0.0..=1.0).contains(&acc), "{line}");
    }
    // best.arch, written into the run folder, reads the same data file.
    let best = std::fs::read_to_string(d.path().join("s/best.arch")).expect("best.arch");
    assert!(best.contains(&format!("{}", d.path().canonicalize().expect("dir").join("d.npz").display())), "{best}");
    let (ok, out) = archc(d.path(), &["train", "s/best.arch", "--epochs", "1", "--out", "again", "--quiet"]);
    assert!(ok, "{out}");
    // A supernet does not read data fields for such a loss yet: a clear refusal.
    let (ok, out) = archc(d.path(), &["supernet", "train", "space.arch", "--epochs", "1", "--out", "sn"]);
    assert!(!ok && out.contains("a supernet cannot yet train a loss written as an expression"), "{out}");
}

/// Per-token cross-entropy (logits `[B, S, C]`, labels `[B, S]`, as a pointer network or
/// a sequence tagger has them): the built-in form `cross_entropy(logits, label)` and the
/// bare metric `accuracy` average over every position, and a model that can learn the
/// labels (each token's class is its largest feature) does.
#[test]
fn cross_entropy_over_positions_trains() {
    let d = tempfile::tempdir().expect("tempdir");
    let (rows, s, c) = (64, 5, 3);
    let x: Vec<f32> = (0..rows * s * c).map(|i| ((i as f32) * 0.917).sin()).collect();
    let label: Vec<i64> =
        x.chunks(c).map(|t| (0..c).fold(0, |best, k| if t[k] > t[best] { k } else { best }) as i64).collect();
    let (x, label) = (Tensor::from_f32(&[rows, s, c], x), Tensor::from_i64(&[rows, s], label));
    io::write_npz(d.path().join("tokens.npz"), [("x", &x), ("label", &label)]).expect("npz");
    let text = "use nn.Linear

network Tagger {
    input x: f32[B, 5, 3]
    let fc = Linear(3, 3)
    output logits = x |> fc
}

train Tagger on file(\"tokens.npz\", split = [0.75, 0.25]) {
    loss: cross_entropy(logits, label)
    optimizer: adam(lr = 5e-2)
    batch: 16
    epochs: 30
    metrics: [accuracy]
}
";
    write(d.path(), "tagger.arch", text);
    let (ok, out) = archc(d.path(), &["train", "tagger.arch", "--backend", "interp", "--out", "run", "--quiet"]);
    assert!(ok, "{out}");
    let metrics = std::fs::read_to_string(d.path().join("run/metrics.jsonl")).expect("metrics");
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().expect("a line")).expect("json");
    let acc = last["test_accuracy"].as_f64().expect("a test accuracy");
    assert!(acc > 0.9, "per-token accuracy {acc}: {last}");
}
