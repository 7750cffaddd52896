//! `archc import`: PyTorch state dicts (tests/fixtures/import/, written by
//! scripts/gen_import_fixtures.py) imported, run by the interpreter and compared with
//! PyTorch's output on the same input; and the refusals (exit 1, names listed).

use archc_runtime::{io, Tensor};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/import").join(name)
}

fn archc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archc")).args(args).current_dir(repo()).output().expect("archc runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A case: the model, the state dict, the input's name, the output's name, and mapping
/// lines expected (archc parameter, PyTorch source, words of the conversion).
struct Case<'a> {
    model: &'a str,
    state: &'a str,
    input: &'a str,
    output: &'a str,
    lines: &'a [(&'a str, &'a str, &'a str)],
}

/// Imports, runs with the interpreter and returns max|ours - torch| / max|torch|.
fn import_and_run(case: &Case, stem: &str, extra: &[&str]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    let state = fixture(case.state);
    let mut args = vec!["import", case.model, path(&state), "-o", path(&weights)];
    args.extend(extra);
    let out = archc(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "import {}:\n{stdout}\n{stderr}", case.state);
    let tir = archc(&["build", case.model, "--emit", "tir"]);
    let params = String::from_utf8_lossy(&tir.stdout)
        .lines()
        .filter(|l| l.starts_with("param @") || l.starts_with("buffer @"))
        .count();
    let mapped = stdout.lines().filter(|l| l.contains(" <- ")).count();
    assert_eq!(mapped, params, "one mapping line per parameter:\n{stdout}");
    for (arch, torch, how) in case.lines {
        let ok = stdout
            .lines()
            .any(|l| l.starts_with(&format!("{arch} ")) && l.contains(&format!("<- {torch} ")) && l.contains(how));
        assert!(ok, "no line `{arch} <- {torch} ... {how}` in:\n{stdout}");
    }
    let x = fixture(&format!("{stem}.x.npy"));
    let input = format!("{}={}", case.input, path(&x));
    let outdir = dir.path().join("out");
    let run = archc(&[
        "run",
        case.model,
        "--weights",
        path(&weights),
        "--input",
        &input,
        "--out",
        path(&outdir),
        "--backend",
        "interp",
    ]);
    let (o, e) = text(&run);
    assert!(run.status.success(), "run {}:\n{o}\n{e}", case.model);
    let ours = io::read_npy(outdir.join(format!("{}.npy", case.output))).unwrap();
    let torch = io::read_npy(fixture(&format!("{stem}.y.npy"))).unwrap();
    relative_error(&ours, &torch)
}

fn relative_error(ours: &Tensor, torch: &Tensor) -> f64 {
    assert_eq!(ours.shape, torch.shape);
    let (a, b) = (ours.to_f64_vec().unwrap(), torch.to_f64_vec().unwrap());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

/// f32 interpreter against a float64 reference rounded once to f32.
const TOLERANCE: f64 = 1e-5;

fn check(case: Case, stem: &str) {
    check_with(case, stem, &[]);
}

fn check_with(case: Case, stem: &str, extra: &[&str]) {
    let err = import_and_run(&case, stem, extra);
    eprintln!("{}: max|ours - torch| / max|torch| = {err:.2e}", case.state);
    assert!(err <= TOLERANCE, "{}: relative error {err:e}", case.state);
}

#[test]
fn mlp_from_pt_and_safetensors() {
    let lines = [
        ("linear_0.w", "fc1.weight", "transposed from [128, 64]"),
        ("linear_0.b", "fc1.bias", "as is"),
        ("linear_1.w", "fc2.weight", "transposed from [10, 128]"),
    ];
    for state in ["mlp.pt", "mlp.safetensors"] {
        check(Case { model: "examples/mlp.arch", state, input: "x", output: "logits", lines: &lines }, "mlp");
    }
}

#[test]
fn cnn_from_pt() {
    let lines = [
        ("conv1d_0.w", "net.0.weight", "as is (convolution"),
        ("conv1d_1.w", "net.2.weight", "as is"),
        ("conv1d_2.b", "net.4.bias", "as is"),
        ("linear_0.w", "fc.weight", "transposed from [10, 125]"),
    ];
    let case = Case {
        model: "examples/cnn_mnist1d.arch",
        state: "cnn_mnist1d.pt",
        input: "x",
        output: "logits",
        lines: &lines,
    };
    check(case, "cnn_mnist1d");
}

#[test]
fn batch_norm_statistics_are_imported_and_the_counter_dropped() {
    let lines = [
        ("batchnorm1d_0.running_mean", "bn.running_mean", "as is"),
        ("batchnorm1d_0.running_var", "bn.running_var", "as is"),
        ("batchnorm1d_0.weight", "bn.weight", "as is"),
        ("linear_0.w", "head.weight", "transposed"),
    ];
    let model = "tests/fixtures/import/cnn_bn.arch";
    let case = Case { model, state: "cnn_bn.pt", input: "x", output: "logits", lines: &lines };
    check(case, "cnn_bn");
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let (stdout, _) = text(&archc(&["import", model, path(&fixture("cnn_bn.pt")), "-o", path(&w)]));
    assert!(stdout.contains("dropped bn.num_batches_tracked"), "{stdout}");
}

#[test]
fn lstm_weights_are_transposed_with_gates_and_biases_as_pytorch() {
    let lines = [
        ("lstm_0.cell.w_ih", "lstm.weight_ih_l0", "transposed from [128, 1]"),
        ("lstm_0.cell.w_hh", "lstm.weight_hh_l0", "transposed from [128, 32]"),
        ("lstm_0.cell.b_ih", "lstm.bias_ih_l0", "as is"),
        ("lstm_0.cell.b_hh", "lstm.bias_hh_l0", "as is"),
    ];
    let case = Case {
        model: "examples/lstm_classifier.arch",
        state: "lstm_classifier.pt",
        input: "x",
        output: "logits",
        lines: &lines,
    };
    check(case, "lstm_classifier");
}

#[test]
fn gru_weights_are_transposed_with_gates_r_z_n_as_pytorch() {
    let lines = [
        ("gru_0.cell.w_ih", "gru.weight_ih_l0", "transposed from [96, 1]"),
        ("gru_0.cell.w_hh", "gru.weight_hh_l0", "transposed from [96, 32]"),
        ("gru_0.cell.b_hh", "gru.bias_hh_l0", "as is"),
    ];
    let case = Case {
        model: "examples/gru_classifier.arch",
        state: "gru_classifier.pt",
        input: "x",
        output: "logits",
        lines: &lines,
    };
    check(case, "gru_classifier");
}

#[test]
fn the_layers_of_a_two_layer_lstm_go_to_two_lstms() {
    let lines = [
        ("lstm_0.cell.w_ih", "rnn.weight_ih_l0", "transposed from [64, 3]"),
        ("lstm_1.cell.w_ih", "rnn.weight_ih_l1", "transposed from [64, 16]"),
        ("lstm_1.cell.b_hh", "rnn.bias_hh_l1", "as is"),
    ];
    let model = "tests/fixtures/import/lstm2.arch";
    check(Case { model, state: "lstm2.pt", input: "x", output: "logits", lines: &lines }, "lstm2");
}

#[test]
fn transformer_attention_is_unpacked_from_pt_and_safetensors() {
    let lines = [
        ("repeat_0.0.attn.wq", "encoder.layers.0.self_attn.in_proj_weight", "rows 0..32 of [96, 32], transposed"),
        ("repeat_0.1.attn.wv", "encoder.layers.1.self_attn.in_proj_weight", "rows 64..96"),
        ("repeat_0.1.attn.bk", "encoder.layers.1.self_attn.in_proj_bias", "elements 32..64"),
        ("repeat_0.0.attn.wo", "encoder.layers.0.self_attn.out_proj.weight", "transposed"),
        ("repeat_0.1.norm2.weight", "encoder.layers.1.norm2.weight", "as is"),
        ("repeat_0.0.linear1.w", "encoder.layers.0.linear1.weight", "transposed from [64, 32]"),
    ];
    for state in ["transformer.pt", "transformer.safetensors"] {
        let case = Case { model: "examples/transformer.arch", state, input: "x", output: "logits", lines: &lines };
        check(case, "transformer");
    }
}

#[test]
fn fno_spectral_weights_split_from_real_pairs() {
    let lines = [
        ("repeat_0.0.spectralconv1d_0.w_re", "spectral.0.weights", "last axis [re, im] split"),
        ("repeat_0.3.spectralconv1d_0.w_im", "spectral.3.weights", "last axis [re, im] split"),
        ("repeat_0.2.conv1d_0.w", "pointwise.2.weight", "as is"),
        ("linear_2.w", "proj2.weight", "transposed from [1, 64]"),
    ];
    let case = Case { model: "examples/fno1d.arch", state: "fno1d.pt", input: "a", output: "y", lines: &lines };
    check(case, "fno1d");
}

#[test]
fn fno_complex_spectral_weights_from_safetensors_matched_by_names() {
    let lines = [
        ("repeat_0.1.spectralconv1d_0.w_re", "spectral.1.weights", "complex split in real and imaginary parts"),
        ("repeat_0.1.conv1d_0.w", "pointwise.1.weight", "as is"),
    ];
    let case = Case {
        model: "examples/fno1d.arch",
        state: "fno1d_complex.safetensors",
        input: "a",
        output: "y",
        lines: &lines,
    };
    check(case, "fno1d");
}

/// Runs `import` on a state dict written here; returns (stdout, stderr), asserting exit 1.
fn refused(model: &str, tensors: &[(String, Tensor)], extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.safetensors");
    io::write_safetensors(&state, tensors.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
    let w = dir.path().join("w.safetensors");
    let mut args = vec!["import", model, path(&state), "-o", path(&w)];
    args.extend(extra);
    let out = archc(&args);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(!w.exists(), "nothing is written on a refusal");
    text(&out)
}

fn mlp_state() -> Vec<(String, Tensor)> {
    io::read_safetensors(fixture("mlp.safetensors")).unwrap().into_iter().collect()
}

#[test]
fn an_extra_tensor_is_refused_by_name() {
    let mut state = mlp_state();
    state.push(("extra.weight".into(), Tensor::zeros(archc_compiler::tir::DType::F32, &[3, 4])));
    let (_, err) = refused("examples/mlp.arch", &state, &[]);
    assert!(err.contains("PyTorch tensors that fit no archc parameter (1)"), "{err}");
    assert!(err.contains("extra.weight [3, 4]"), "{err}");
}

#[test]
fn a_missing_tensor_is_refused_by_name() {
    let state: Vec<_> = mlp_state().into_iter().filter(|(n, _)| n != "fc2.bias").collect();
    let (_, err) = refused("examples/mlp.arch", &state, &[]);
    assert!(err.contains("archc parameters no PyTorch tensor fits (2)"), "{err}");
    assert!(err.contains("linear_1.w [128, 10]") && err.contains("linear_1.b [10]"), "{err}");
    assert!(err.contains("fc2.weight [10, 128]"), "{err}");
}

#[test]
fn equal_layers_without_order_or_telling_names_are_ambiguous_until_mapped() {
    let state = fixture("cnn_mnist1d.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let out = archc(&["import", "examples/cnn_mnist1d.arch", path(&state), "-o", path(&w)]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ambiguous: the archc layers `conv1d_1`, `conv1d_2` and the PyTorch modules `net.2`, `net.4`"),
        "{err}"
    );
    // A map naming one of them settles both.
    let map = dir.path().join("map.json");
    std::fs::write(&map, r#"{"net.2.weight": "conv1d_1.w", "net.2.bias": "conv1d_1.b"}"#).unwrap();
    let lines = [("conv1d_1.w", "net.2.weight", "as is (--map)"), ("conv1d_2.w", "net.4.weight", "as is")];
    let case = Case {
        model: "examples/cnn_mnist1d.arch",
        state: "cnn_mnist1d.safetensors",
        input: "x",
        output: "logits",
        lines: &lines,
    };
    check_with(case, "cnn_mnist1d", &["--map", path(&map)]);
}

#[test]
fn a_map_entry_naming_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.json");
    std::fs::write(&map, r#"{"nope.weight": "linear_0.w", "fc1.weight": "linear_9.w"}"#).unwrap();
    let (_, err) = refused("examples/mlp.arch", &mlp_state(), &["--map", path(&map)]);
    assert!(err.contains("2 bad entries"), "{err}");
    assert!(err.contains("the state dict has no tensor `nope.weight`"), "{err}");
    assert!(err.contains("the program has no parameter `linear_9.w`"), "{err}");
}

#[test]
fn hostile_files_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    for (name, bytes) in
        [("bad.pt", &b"PK\x03\x04 not a zip"[..]), ("bad.safetensors", &b"\xff\xff\xff\xff\xff\xff\xff\x7f{"[..])]
    {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = archc(&["import", "examples/mlp.arch", path(&p), "-o", path(&w)]);
        assert_eq!(out.status.code(), Some(1), "{name}: {:?}", text(&out));
    }
}
