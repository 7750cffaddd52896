//! Defects a new user met, each pinned by the command that showed it: search-space
//! candidates (choices named, printed, drawn, trained, initialised alike), checkpoints
//! loaded wherever weights are accepted, regression metrics, `eval --split`, `.tir` files
//! as input, and help texts that say what a flag does. Programs live in `tests/defects/`.
//! Tests that train need the data sets (`make data`) and say so when skipping.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::archc;

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

/// Runs `archc args`, which must succeed; its stdout and stderr.
fn ok(args: &[&str]) -> (String, String) {
    let o = archc(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "archc {args:?} failed ({}):\n{out}\n{err}", o.status);
    (out, err)
}

/// Runs `archc args`, which must fail with exit code 1 (a user error); its stderr.
fn user_error(args: &[&str]) -> String {
    let o = archc(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "archc {args:?}: expected exit 1:\n{out}\n{err}");
    err
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("archc-defects-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn have(data_file: &str) -> bool {
    let there = archc_runtime::data::data_dir().join(data_file).exists();
    if !there {
        eprintln!("skipped: {data_file} not fetched (run `make data`)");
    }
    there
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// 1, 14, 16: a candidate of a space with a `shared` width and BatchNorm trains from the
// command line; its running statistics keep the largest width's shape.
#[test]
fn a_shared_width_candidate_with_batch_norm_trains() {
    if !have("mnist1d.npz") {
        return;
    }
    let dir = fresh_dir("nas");
    let args = ["train", "examples/nas_space.arch", "--choices", "depth=2,width=16,op=1", "--epochs", "1", "--quiet"];
    let (out, err) = ok(&[&args[..], &["--backend", "interp", "--out", s(&dir)]].concat());
    assert!(out.contains("test loss") && out.contains("accuracy"), "{out}");
    assert!(err.contains("choice width = 16"), "the candidate is shown: {err}");
    let ckpt = archc_runtime::io::read_safetensors(dir.join("checkpoint.safetensors")).expect("checkpoint");
    let mean = &ckpt["param/repeat_0.0.norm.running_mean"];
    assert_eq!(mean.shape, vec![64], "elastic buffers keep the largest width");
    let v = mean.as_f32().expect("f32");
    assert!(v[..16].iter().any(|x| *x != 0.0), "the chosen part was updated");
    assert!(v[16..].iter().all(|x| *x == 0.0), "the rest keeps its initial value");
    let (evaluated, _) = ok(&[
        "eval",
        "examples/nas_space.arch",
        "--choices",
        "depth=2,width=16,op=1",
        "--backend",
        "interp",
        "--checkpoint",
        s(&dir.join("checkpoint.safetensors")),
    ]);
    assert!(evaluated.contains("1000 test samples") && evaluated.contains("accuracy"), "{evaluated}");
    // Without --choices, eval builds the candidate the run recorded beside its checkpoint.
    let o = archc(&["eval", "examples/nas_space.arch", "--backend", "interp", "--checkpoint", s(&ckpt_path(&dir))]);
    let (recorded, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("the candidate its run trained") && err.contains("--choices depth=2,width=16,op=1"), "{err}");
    assert_eq!(recorded, evaluated, "the recorded candidate is the trained one");
    let _ = std::fs::remove_dir_all(&dir);
}

fn ckpt_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

// 14: every candidate starts from the same weights: initialisers come from the largest
// option of every shared choice, not from the chosen width.
#[test]
fn candidates_share_initialisers() {
    let params = |w: &str| -> Vec<String> {
        let (tir, _) = ok(&["build", "examples/nas_space.arch", "--choices", &format!("width={w},depth=2")]);
        tir.lines().filter(|l| l.starts_with("param @")).map(str::to_string).collect()
    };
    let (small, large) = (params("16"), params("64"));
    assert!(!small.is_empty());
    assert_eq!(small, large, "a narrow and a wide candidate declare the same parameters and initialisers");
}

// 2 and 7: a layer used only under `if training` trains, and the checkpoint then loads
// for inference (the training-only parameters are reported, not refused), in `run` and
// in `eval`.
#[test]
fn training_only_layers_train_and_checkpoints_load_for_inference() {
    if !have("digits.csv.gz") {
        return;
    }
    let dir = fresh_dir("trainonly");
    let file = "tests/defects/train_only_layer.arch";
    ok(&["train", file, "--backend", "interp", "--quiet", "--out", s(&dir)]);
    let ckpt = dir.join("checkpoint.safetensors");
    let (out, err) = ok(&["run", file, "--backend", "interp", "--weights", s(&ckpt)]);
    assert!(out.contains("logits: f32[2, 10]"), "{out}");
    assert!(err.contains("not used by this program (training only): extra.b, extra.w"), "{err}");
    let (evaluated, _) = ok(&["eval", file, "--backend", "interp", "--checkpoint", s(&ckpt)]);
    assert!(evaluated.contains("(epoch 1)") && evaluated.contains("accuracy"), "{evaluated}");
    // `eval` names the file as `run` does, too.
    let (same, _) = ok(&["eval", file, "--backend", "interp", "--weights", s(&ckpt)]);
    assert_eq!(same, evaluated);
    // An artifact of the program takes the checkpoint as well.
    let art = dir.join("net.archx");
    ok(&["build", file, "--target", "cpu", "-o", s(&art)]);
    let (from_artifact, err) = ok(&["run", s(&art), "--weights", s(&ckpt)]);
    assert!(from_artifact.contains("logits: f32[2, 10]"), "{from_artifact}");
    assert!(err.contains("not used by this program (training only)"), "{err}");
    // A checkpoint of another program is refused, naming the missing parameter.
    let err = user_error(&["run", "examples/mlp.arch", "--backend", "interp", "--weights", s(&ckpt)]);
    assert!(err.contains("the checkpoint has no parameter"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 7: the digits demo's checkpoint runs through `run --weights`.
#[test]
fn the_demo_checkpoint_runs() {
    if !have("digits.csv.gz") {
        return;
    }
    let dir = fresh_dir("demo");
    let file = "examples/train_digits.arch";
    ok(&["train", file, "--epochs", "1", "--backend", "interp", "--quiet", "--out", s(&dir)]);
    let ckpt = dir.join("checkpoint.safetensors");
    let (out, _) = ok(&["run", file, "--backend", "interp", "--weights", s(&ckpt), "--dim", "B=3"]);
    assert!(out.contains("f32[3, 10]"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 3: `check` of a space says what was checked: every candidate, counted.
#[test]
fn check_of_a_space_says_what_was_checked() {
    let (_, err) = ok(&["check", "examples/nas_space.arch"]);
    assert!(err.contains("a search space of 36 candidates") && err.contains("proven by enumeration"), "{err}");
    let (_, err) = ok(&["check", "examples/mlp.arch"]);
    assert!(!err.contains("search space"), "{err}");
}

// 4: a misspelt choice is an error with a suggestion.
#[test]
fn a_misspelt_choice_is_an_error() {
    let err = user_error(&["build", "examples/nas_space.arch", "--choices", "dept=3"]);
    assert!(err.contains("no choice `dept`") && err.contains("did you mean `depth`?"), "{err}");
    let err = user_error(&["build", "examples/mlp.arch", "--choices", "depth=3"]);
    assert!(err.contains("has no choices"), "{err}");
}

// A string option is picked by its text, with or without quotes, or by its index.
#[test]
fn a_string_option_is_picked_by_its_text() {
    let file = "examples/train_multi_hypernet.arch";
    for pick in ["mode=alone", "mode=\"alone\"", "mode=1"] {
        let (_, err) = ok(&["build", file, "--choices", pick]);
        assert!(err.contains("choice mode = \"alone\""), "{pick}: {err}");
    }
    let err = user_error(&["build", file, "--choices", "mode=together"]);
    assert!(err.contains("is not an option of `mode`"), "{err}");
}

// 5: options that differ only in keyword arguments are told apart.
#[test]
fn chosen_layers_show_their_keyword_arguments() {
    let (_, plain) = ok(&["build", "examples/nas_space.arch", "--choices", "op=0"]);
    let (_, depthwise) = ok(&["build", "examples/nas_space.arch", "--choices", "op=2"]);
    assert!(plain.contains("choice op = Conv1d(16, 16, 3, padding = 1)"), "{plain}");
    assert!(depthwise.contains("choice op = Conv1d(16, 16, 3, padding = 1, groups = 16)"), "{depthwise}");
}

// 6: a failing drawn candidate says which choices were drawn.
#[test]
fn a_failing_sample_names_its_choices() {
    let err = user_error(&["build", "tests/defects/failing_space.arch", "--sample", "1"]);
    assert!(err.contains("the candidate drawn with --sample 1: hidden = "), "{err}");
    let err = user_error(&["build", "tests/defects/failing_space.arch", "--choices", "out=10"]);
    assert!(err.contains("the candidate: hidden = 8, out = 10"), "{err}");
}

// 9 and 13: a regression run reports its relative L2, and `eval --split` evaluates on
// another part (zero-shot at 32x32 for an operator trained at 16x16).
#[test]
fn regression_runs_report_rel_l2_and_eval_picks_a_split() {
    if !have("darcy_train_16.pt") {
        return;
    }
    let dir = fresh_dir("regression");
    let file = "tests/defects/regression.arch";
    let (out, _) = ok(&["train", file, "--backend", "interp", "--quiet", "--out", s(&dir)]);
    assert!(out.contains("train loss") && out.contains(" rel_l2 "), "{out}");
    assert!(!out.contains("accuracy -"), "{out}");
    let ckpt = dir.join("checkpoint.safetensors");
    let (evaluated, _) = ok(&["eval", file, "--backend", "interp", "--checkpoint", s(&ckpt), "--split", "test_32"]);
    assert!(evaluated.contains("50 test samples (part `test_32`)") && evaluated.contains("rel_l2: "), "{evaluated}");
    let err = user_error(&["eval", file, "--backend", "interp", "--checkpoint", s(&ckpt), "--split", "nope"]);
    assert!(err.contains("darcy has no part `nope`; its parts: test_16, test_32, train_16"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 11: `run --help` says what `--train` does when running.
#[test]
fn help_texts_describe_each_command_s_train_flag() {
    let (run_help, _) = ok(&["run", "--help"]);
    assert!(!run_help.contains("print the whole train step"), "{run_help}");
    assert!(run_help.contains("Run the network in training mode"), "{run_help}");
    let (build_help, _) = ok(&["build", "--help"]);
    assert!(build_help.contains("the whole train step"), "{build_help}");
}

// 16: an artifact holds one candidate: `--choices` with an artifact is refused.
#[test]
fn candidates_of_artifacts_are_refused() {
    let err = user_error(&["train", "missing.archx", "--choices", "depth=2"]);
    assert!(err.contains("was built for one candidate"), "{err}");
}

// 18: printed TIR is an input of `run` and `build`.
#[test]
fn printed_tir_runs_like_its_source() {
    let dir = fresh_dir("tir");
    let tir = dir.join("mlp.tir");
    ok(&["build", "examples/mlp.arch", "--emit", "tir", "-o", s(&tir)]);
    let (from_source, _) = ok(&["run", "examples/mlp.arch", "--backend", "interp", "--dim", "B=3"]);
    let (from_tir, _) = ok(&["run", s(&tir), "--backend", "interp", "--dim", "B=3"]);
    assert_eq!(from_source, from_tir);
    let (again, _) = ok(&["build", s(&tir), "--emit", "tir"]);
    assert_eq!(again, std::fs::read_to_string(&tir).expect("tir"), "printing a read program round-trips");
    std::fs::write(dir.join("bad.tir"), "program p {\n  nonsense\n}\n").expect("write");
    let err = user_error(&["run", s(&dir.join("bad.tir"))]);
    assert!(err.contains("TIR syntax error at line"), "{err}");
    let err = user_error(&["run", s(&tir), "--choices", "a=1"]);
    assert!(err.contains("apply to .arch sources"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 20: out-of-range gather indices are refused on every backend (not clamped); negative
// ones count from the end. On the GPU (where one is present) the check runs in a kernel
// and its record is read after the step.
#[test]
fn gathers_refuse_out_of_range_indices_on_every_backend() {
    let dir = fresh_dir("gather");
    let write = |name: &str, v: Vec<i64>| {
        let p = dir.join(name);
        let t = archc_runtime::Tensor::new(vec![v.len()], archc_runtime::Data::I64(v)).expect("tensor");
        archc_runtime::io::write_npy(&p, &t).expect("npy");
        format!("i={}", p.display())
    };
    let (bad, good) = (write("bad.npy", vec![-1, 5]), write("good.npy", vec![-1, 4]));
    let mut backends = vec!["interp", "mlir-cpu", "cranelift"];
    match archc_cuda::cuda() {
        Ok(_) => backends.push("mlir-gpu"),
        Err(e) => eprintln!("mlir-gpu skipped: no CUDA device ({e})"),
    }
    for b in backends {
        let err = user_error(&["run", "tests/defects/gather.arch", "--backend", b, "--input", &bad]);
        assert!(err.contains("index 5 out of range [-5, 5) on axis 0"), "{b}: {err}");
        let (out, _) = ok(&["run", "tests/defects/gather.arch", "--backend", b, "--input", &good]);
        assert!(out.contains("y: f32[2, 3]"), "{b}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// 24: a slice starting before the axis is clamped like one ending after it, and trains.
#[test]
fn slices_before_the_start_are_clamped_and_train() {
    let (tir, _) = ok(&["build", "tests/defects/negative_slice.arch"]);
    assert!(tir.contains("start=[0, 0], end=[B, 3]"), "{tir}");
    if !have("digits.csv.gz") {
        return;
    }
    let dir = fresh_dir("negslice");
    let (out, _) =
        ok(&["train", "tests/defects/negative_slice.arch", "--backend", "interp", "--quiet", "--out", s(&dir)]);
    assert!(out.contains("test loss"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

// Results piped into a reader that closes early (`| head`) end quietly, exit 0.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(["build", "examples/transformer.arch", "--emit", "tir"])
        .current_dir(common::repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("archc runs");
    let mut first = [0u8; 16];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("some output");
    let out = child.wait_with_output().expect("archc ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(["run", "examples/mlp.arch", "--backend", "interp"])
        .current_dir(common::repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("archc runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("archc ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

// A plain weights file must hold every parameter `run` needs: the missing ones are
// listed, unless `--allow-missing` keeps their initial values.
#[test]
fn run_refuses_weights_that_miss_parameters_unless_allowed() {
    let dir = fresh_dir("missing");
    let path = common::repo().join("examples/mlp.arch");
    let program = common::check(&path, &archc_compiler::sema::Options::default()).program.expect("builds");
    let first = &program.params[0];
    let shape: Vec<usize> = first.ty.shape.iter().map(|d| d.as_const().expect("a fixed size") as usize).collect();
    let zeros = archc_runtime::Tensor::zeros(first.ty.dtype, &shape);
    let file = dir.join("partial.safetensors");
    archc_runtime::io::write_safetensors(&file, [(first.name.as_str(), &zeros)]).expect("written");
    let err = user_error(&["run", "examples/mlp.arch", "--backend", "interp", "--weights", s(&file)]);
    let missing = program.params.len() - 1;
    assert!(
        err.contains(&format!("{missing} of the program's {} parameters are not in the file", missing + 1)),
        "{err}"
    );
    assert!(err.contains(&format!("`{}`", program.params[1].name)) && err.contains("--allow-missing"), "{err}");
    let (out, _) = ok(&["run", "examples/mlp.arch", "--backend", "interp", "--weights", s(&file), "--allow-missing"]);
    assert!(out.contains("f32["), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

// `eval --out`: the network's outputs on every test sample, in the data's order, as
// `.npy`; their argmax gives the accuracy `eval` reports.
#[test]
fn eval_writes_predictions() {
    if !have("digits.csv.gz") {
        return;
    }
    let dir = fresh_dir("preds");
    let file = "examples/train_digits.arch";
    ok(&["train", file, "--epochs", "1", "--backend", "interp", "--quiet", "--out", s(&dir)]);
    let ckpt = dir.join("checkpoint.safetensors");
    let preds = dir.join("preds.npy");
    let (said, _) = ok(&["eval", file, "--backend", "interp", "--checkpoint", s(&ckpt), "--out", s(&preds)]);
    let logits = archc_runtime::io::read_npy(&preds).expect("preds.npy");
    let rows: usize = said.split_whitespace().next().and_then(|n| n.parse().ok()).expect("the sample count");
    assert_eq!(logits.shape(), &[rows, 10], "{said}");
    let accuracy: f64 = said
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("an accuracy line");
    let (read, _) = archc::training::read_config(&common::repo().join(file), &archc_compiler::sema::Options::default())
        .expect("readable");
    let cfg = read.config.expect("a train block");
    let step = archc::training::train_program(&cfg).expect("the train step");
    let test = archc::training::train_data(&cfg, &step).expect("the data").test.expect("a test part");
    let labels = test.get("label").expect("labels").tensor().expect("read").to_f64_vec().expect("ints");
    let values = logits.to_f64_vec().expect("real");
    let correct = (0..rows)
        .filter(|&r| {
            let row = &values[r * 10..(r + 1) * 10];
            let best = (0..10).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            best as f64 == labels[r]
        })
        .count();
    assert!((correct as f64 / rows as f64 - accuracy).abs() < 6e-5, "{correct}/{rows} vs {accuracy}");
    // A folder gets NAME.npy per output.
    let (said, _) = ok(&["eval", file, "--backend", "interp", "--checkpoint", s(&ckpt), "--out", s(&dir.join("out"))]);
    assert!(dir.join("out").join("logits.npy").exists(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
