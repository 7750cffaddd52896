//! The training results of `examples/train_*.arch`, reproduced end to end: each test
//! reads a `train` block, trains with the library (`archc::training` and
//! `archc_runtime::train::train`, into a temporary run directory), prints what it
//! measured and fails when a goal is missed. The goals sit a little below the PyTorch
//! and published numbers quoted in each example.
//!
//! Slow (minutes each) and in need of the real data (`make data`), so every test is
//! `#[ignore]`d: run them with `make reproduce`, i.e. `ARCHC_BACKEND=mlir-cpu cargo test
//! --release --test reproduce -- --ignored --test-threads=1 --nocapture`.
//! `ARCHC_BACKEND` picks what trains and evaluates: `mlir-cpu` (what `make reproduce`
//! uses), `cranelift`, or `interp`, the reference interpreter (the default when unset).

use archc::backend::{executor, Backend};
use archc::training;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::{ChoiceMode, Options};
use archc_compiler::tir::Program;
use archc_runtime::data::Frame;
use archc_runtime::train::{TrainData, TrainReport};
use archc_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// The backend named by `ARCHC_BACKEND` (default: the interpreter).
fn backend() -> Backend {
    match std::env::var("ARCHC_BACKEND").as_deref() {
        Ok("mlir-cpu") => Backend::MlirCpu,
        Ok("cranelift") => Backend::Cranelift,
        Ok("interp") | Err(_) => Backend::Interp,
        Ok(other) => panic!("ARCHC_BACKEND={other}: expected interp, mlir-cpu or cranelift"),
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A trained example: its configuration, train program, data and report.
struct Trained {
    cfg: TrainConfig,
    program: Program,
    data: TrainData,
    report: TrainReport,
    seconds: f64,
}

fn config(example: &str, choices: &[(&str, &str)]) -> TrainConfig {
    let path = repo().join("examples").join(example);
    let pairs = choices.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let opts = Options { choices: ChoiceMode::Explicit(pairs), ..Options::default() };
    let (out, _) = training::read_config(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.diagnostics.is_empty(), "{example}: {:?}", out.diagnostics);
    out.config.expect("a train block")
}

/// Trains `examples/{example}` as `archc train` would, into a fresh temporary directory.
fn train(example: &str) -> Trained {
    train_with(example, &[])
}

/// What a run of `examples/{example}` with `choices` starts from: its configuration,
/// train program and data, and a fresh temporary directory named after `tag`.
fn prepared(example: &str, choices: &[(&str, &str)], tag: &str) -> (TrainConfig, Program, TrainData, PathBuf) {
    let cfg = config(example, choices);
    let program = training::train_program(&cfg).unwrap_or_else(|e| panic!("{example}: {e}"));
    let data = training::train_data(&cfg, &program).unwrap_or_else(|e| panic!("{example}: {e}"));
    let dir = std::env::temp_dir().join(format!("archc-reproduce-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (cfg, program, data, dir)
}

/// [`train`] with choices fixed as `--choices name=value` fixes them.
fn train_with(example: &str, choices: &[(&str, &str)]) -> Trained {
    let (cfg, program, data, dir) = prepared(example, choices, example.trim_end_matches(".arch"));
    let spec = training::loop_spec(&cfg, data.train.len());
    println!(
        "{example}: {} on {} ({} train / {} test), {} epochs, batch {}, lr {}, {:?}",
        cfg.program.name,
        cfg.data.name,
        data.train.len(),
        data.test.as_ref().map_or(0, Frame::len),
        cfg.epochs,
        cfg.batch,
        cfg.lr,
        cfg.schedule
    );
    let start = Instant::now();
    let report = {
        let mut exec = executor(&program, Some(backend()), None).unwrap_or_else(|e| panic!("{e}"));
        archc_runtime::train::train_with(&program, &spec, &data, &dir, false, false, exec.as_mut())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Trained { cfg, program, data, report, seconds }
}

/// Mean test metrics of the trained parameters on `test` (see `training::evaluate`).
/// (`metric:correct` is the accuracy of a classifier, bare or written `accuracy(logits,
/// label)`; a per-token accuracy is `metric:accuracy`.)
fn evaluate(t: &Trained, test: &Frame, name: &str) -> f64 {
    let mut exec = executor(&t.program, Some(backend()), None).unwrap_or_else(|e| panic!("{e}"));
    let metrics = training::evaluate(&t.program, &t.report.state.params, test, t.cfg.batch as usize, exec.as_mut())
        .unwrap_or_else(|e| panic!("{e}"));
    metrics.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {metrics:?}")).1
}

fn accuracy_at_least(example: &str, goal: f64) {
    let t = train(example);
    let acc = t.report.test_acc.expect("test accuracy");
    println!(
        "{example}: test accuracy {acc:.4} (goal >= {goal}), train accuracy {:.4}, {:.1} s",
        t.report.train_acc.unwrap_or(f64::NAN),
        t.seconds
    );
    assert!(acc >= goal, "{example}: test accuracy {acc:.4} < {goal}");
}

#[test]
#[ignore = "trains for ~30 s; run with `make reproduce`"]
fn mnist1d_mlp() {
    accuracy_at_least("train_mnist1d_mlp.arch", 0.65);
}

#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn mnist1d_cnn() {
    accuracy_at_least("train_mnist1d_cnn.arch", 0.92);
}

#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn mnist1d_gru() {
    accuracy_at_least("train_mnist1d_gru.arch", 0.85);
}

#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn mnist5k_mlp() {
    accuracy_at_least("train_mnist5k_mlp.arch", 0.92);
}

/// FNO-2d trained at 16x16; the same weights evaluated at 16x16 and zero-shot at 32x32.
#[test]
#[ignore = "trains for ~20 minutes; run with `make reproduce`"]
fn darcy_fno() {
    let t = train("train_darcy_fno.arch");
    let at16 = t.report.test_loss.expect("test loss");
    let mut cfg32 = t.cfg.clone();
    cfg32.data.test_part = Some("test_32".into());
    let data32 = training::train_data(&cfg32, &t.program).unwrap_or_else(|e| panic!("{e}"));
    let test32 = data32.test.as_ref().expect("test_32");
    assert_eq!(test32.get("a").map(|x| x.shape().to_vec()), Some(vec![50, 32, 32, 1]));
    let at32 = evaluate(&t, test32, "metric:rel_l2");
    let check16 = evaluate(&t, t.data.test.as_ref().expect("test_16"), "metric:rel_l2");
    println!(
        "train_darcy_fno.arch: test relative L2 {at16:.4} at 16x16 (goal <= 0.10; re-evaluated {check16:.4}), \
         {at32:.4} zero-shot at 32x32 (goal <= 0.14), train {:.4}, {:.1} s",
        t.report.train_loss.unwrap_or(f64::NAN),
        t.seconds
    );
    assert!((at16 - check16).abs() < 1e-4, "the run's test loss {at16} and its re-evaluation {check16} differ");
    assert!(at16 <= 0.10, "relative L2 {at16:.4} at 16x16 > 0.10");
    assert!(at32 <= 0.14, "relative L2 {at32:.4} at 32x32 > 0.14");
}

/// One hypernetwork for four permuted-digits tasks: the mean of the per-task test
/// accuracies.
#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn hypernet_permuted_digits() {
    let t = train("train_hypernet_permuted.arch");
    let test = t.data.test.as_ref().expect("a test split");
    let task = test.get("task").and_then(|x| x.tensor().ok()?.as_i64().map(<[i64]>::to_vec)).expect("task ids");
    let tasks = archc_runtime::data::sets::PERMUTED_DIGITS_TASKS as i64;
    let mut accs = Vec::new();
    for k in 0..tasks {
        let rows: Vec<usize> = (0..task.len()).filter(|&i| task[i] == k).collect();
        assert!(!rows.is_empty(), "task {k} has no test rows");
        let acc = evaluate(&t, &test.view(&rows), "metric:correct");
        println!("  task {k}: {} test rows, accuracy {acc:.4}", rows.len());
        accs.push(acc);
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    println!(
        "train_hypernet_permuted.arch: mean test accuracy over {tasks} tasks {mean:.4} (goal >= 0.90), \
         overall {:.4}, min {:.4}, {:.1} s",
        t.report.test_acc.unwrap_or(f64::NAN),
        accs.iter().cloned().fold(f64::INFINITY, f64::min),
        t.seconds
    );
    assert!(mean >= 0.90, "mean test accuracy {mean:.4} < 0.90");
}

#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn activator_mnist1d() {
    accuracy_at_least("train_activator.arch", 0.93);
}

#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn softplus_attention_mnist1d() {
    accuracy_at_least("train_softplus_attention.arch", 0.93);
}

#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn routing_attention_mnist1d() {
    accuracy_at_least("train_routing_attention.arch", 0.93);
}

#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn tcnca_mnist1d() {
    accuracy_at_least("train_tcnca.arch", 0.955);
}

#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn batchformer_mnist1d() {
    let t = train("train_batchformer.arch");
    let acc = evaluate(&t, t.data.test.as_ref().expect("a test split"), "metric:correct");
    println!("train_batchformer.arch: test accuracy {acc:.4} (goal >= 0.91), {:.1} s", t.seconds);
    assert!(acc >= 0.91, "test accuracy {acc:.4} < 0.91");
}

/// The pointer network sorts 8 numbers: per-position accuracy and whole sequences right.
#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn pointer_network_sorts() {
    let t = train("train_pointer_sort.arch");
    let test = t.data.test.as_ref().expect("a test split");
    let (token, exact) = (evaluate(&t, test, "metric:accuracy"), evaluate(&t, test, "metric:exact"));
    println!(
        "train_pointer_sort.arch: per-token accuracy {token:.4} (goal >= 0.94), exact {exact:.4} (goal >= 0.79), {:.1} s",
        t.seconds
    );
    assert!(token >= 0.94 && exact >= 0.79, "per-token {token:.4} < 0.94 or exact {exact:.4} < 0.79");
}

/// Maestro: the factorised MLP reaches the dense MLP's accuracy at a learned rank.
#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn maestro_mnist5k() {
    let t = train("train_maestro.arch");
    let test = t.data.test.as_ref().expect("a test split");
    let (full, learned) = (evaluate(&t, test, "metric:correct"), evaluate(&t, test, "metric:accuracy_learned"));
    let (r1, r2) = (evaluate(&t, test, "metric:rank_fc1"), evaluate(&t, test, "metric:rank_fc2"));
    println!(
        "train_maestro.arch: test accuracy {full:.4} at full rank, {learned:.4} at the learned ranks {r1} and {r2} \
         (goal >= 0.92, rank of fc1 <= 80), {:.1} s",
        t.seconds
    );
    assert!(full >= 0.92 && learned >= 0.92, "accuracy {full:.4} / {learned:.4} < 0.92");
    assert!(r1 <= 80.0, "fc1 keeps rank {r1} > 80");
}

/// The Tucker-factorised FNO: the dense FNO's goals with 6.5x fewer parameters.
#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn tfno_darcy() {
    let t = train("train_tfno_darcy.arch");
    let at16 = t.report.test_loss.expect("test loss");
    let mut cfg32 = t.cfg.clone();
    cfg32.data.test_part = Some("test_32".into());
    let data32 = training::train_data(&cfg32, &t.program).unwrap_or_else(|e| panic!("{e}"));
    let at32 = evaluate(&t, data32.test.as_ref().expect("test_32"), "metric:rel_l2");
    println!(
        "train_tfno_darcy.arch: test relative L2 {at16:.4} at 16x16 (goal <= 0.105), {at32:.4} zero-shot at \
         32x32 (goal <= 0.135), {:.1} s",
        t.seconds
    );
    assert!(at16 <= 0.105, "relative L2 {at16:.4} at 16x16 > 0.105");
    assert!(at32 <= 0.135, "relative L2 {at32:.4} at 32x32 > 0.135");
}

/// NoProp: T blocks trained without back-propagation between them, within 3 points of
/// the 784-256-10 MLP of `train_mnist5k_mlp.arch` trained by back-propagation on the same
/// split (one block's image path with a classifier head).
#[test]
#[ignore = "trains for minutes; run with `make reproduce`"]
fn noprop_mnist5k() {
    let noprop = train("train_noprop.arch");
    let mlp = train("train_mnist5k_mlp.arch");
    let (a, b) = (noprop.report.test_acc.expect("accuracy"), mlp.report.test_acc.expect("accuracy"));
    println!(
        "train_noprop.arch: NoProp test accuracy {a:.4} ({:.1} s), back-propagation (MLP) {b:.4} (goal: within 0.03)",
        noprop.seconds
    );
    assert!(a >= b - 0.03, "NoProp {a:.4} is more than 3 points below back-propagation's {b:.4}");
}

/// One generator for an MLP and a CNN: each target at least 0.9 of its accuracy when
/// trained alone (`mode = alone`).
#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn multi_target_hypernet_digits() {
    let hyper = train("train_multi_hypernet.arch");
    let alone = train_with("train_multi_hypernet.arch", &[("mode", "alone")]);
    for target in ["mlp", "cnn"] {
        let metric = format!("metric:{target}_accuracy");
        let test = |t: &Trained| evaluate(t, t.data.test.as_ref().expect("a test split"), &metric);
        let (h, a) = (test(&hyper), test(&alone));
        println!("train_multi_hypernet.arch: {target} generated {h:.4}, alone {a:.4} (goal: >= 0.9 x alone)");
        assert!(h >= 0.9 * a, "{target}: generated {h:.4} < 0.9 x {a:.4} alone");
        assert!(a >= 0.9, "{target} alone: {a:.4} < 0.9");
    }
}

/// Trains the task sequence (`tasks:`) of `example` with choice `mode`, starting from
/// `init` (as `archc train --init`); prints the table.
fn tasks_run(example: &str, mode: &str, init: Option<&BTreeMap<String, Tensor>>) -> archc::tasks::TasksReport {
    let (cfg, program, data, dir) = prepared(example, &[("mode", mode)], &format!("tasks-{mode}"));
    let init = init.map(|m| m.iter().filter(|(n, _)| program.param(n).is_some()).map(|(n, t)| (n.clone(), t.clone())));
    let mut exec = executor(&program, Some(backend()), None).unwrap_or_else(|e| panic!("{e}"));
    let report =
        archc::tasks::train_tasks(&cfg, (&program, init.map(Iterator::collect)), &data, &dir, false, exec.as_mut())
            .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    println!("{example}, mode {mode}:\n{}", report.table());
    report
}

/// Class-incremental digits (five tasks of two classes) on an encoder pretrained on
/// mnist_5k: the key-value bottleneck keeps what earlier tasks learned; a linear
/// classifier on the same frozen features forgets.
#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn kv_bottleneck_class_incremental_digits() {
    let pretrained = train("pretrain_digit_encoder.arch");
    let acc = pretrained.report.test_acc.expect("test accuracy");
    println!("pretrain_digit_encoder.arch: mnist_5k test accuracy {acc:.4}");
    assert!(acc >= 0.9, "the pretrained encoder: mnist_5k test accuracy {acc:.4} < 0.9");
    let init = Some(&pretrained.report.state.params);
    let example = "train_kv_bottleneck.arch";
    let (kv, linear) = (tasks_run(example, "kv", init), tasks_run(example, "linear", init));
    assert!(kv.mean_accuracy >= 0.8, "key-value bottleneck: mean accuracy {:.4} < 0.8", kv.mean_accuracy);
    assert!(kv.forgetting <= 0.18, "key-value bottleneck: forgetting {:.4} > 0.18", kv.forgetting);
    assert!(
        kv.forgetting < linear.forgetting - 0.5,
        "forgetting {:.4} is not far below fine-tuning's {:.4}",
        kv.forgetting,
        linear.forgetting
    );
}

/// Task-incremental digits with a recurrent hypernetwork: its output regulariser keeps
/// the earlier tasks' weights, and forgets less than the same network fine-tuned.
#[test]
#[ignore = "trains for ~1 minute; run with `make reproduce`"]
fn hypernet_continual_digits() {
    let (kept, tuned) = (
        tasks_run("train_hypernet_cl.arch", "regularised", None),
        tasks_run("train_hypernet_cl.arch", "finetune", None),
    );
    assert!(kept.mean_accuracy >= 0.95, "regularised: mean accuracy {:.4} < 0.95", kept.mean_accuracy);
    assert!(kept.forgetting <= 0.02, "regularised: forgetting {:.4} > 0.02", kept.forgetting);
    assert!(
        kept.forgetting < tuned.forgetting,
        "forgetting {:.4} not below fine-tuning's {:.4}",
        kept.forgetting,
        tuned.forgetting
    );
}

/// The data-set wiring of every example, without training (fast; not ignored): the
/// configs read, the train programs build, and the data fit the step's arguments.
#[test]
fn reproduce_examples_build_and_fit_their_data() {
    for example in [
        "train_mnist1d_mlp.arch",
        "train_mnist1d_cnn.arch",
        "train_mnist1d_gru.arch",
        "train_mnist5k_mlp.arch",
        "train_darcy_fno.arch",
        "train_hypernet_permuted.arch",
        "train_noprop.arch",
        "train_multi_hypernet.arch",
        "pretrain_digit_encoder.arch",
        "train_kv_bottleneck.arch",
        "train_hypernet_cl.arch",
        "train_activator.arch",
        "train_softplus_attention.arch",
        "train_routing_attention.arch",
        "train_maestro.arch",
        "train_tfno_darcy.arch",
        "train_tcnca.arch",
        "train_batchformer.arch",
        "train_pointer_sort.arch",
    ] {
        let cfg = config(example, &[]);
        let program = training::train_program(&cfg).unwrap_or_else(|e| panic!("{example}: {e}"));
        match training::train_data(&cfg, &program) {
            Ok(data) => assert!(data.test.is_some(), "{example}: no test data"),
            Err(e) if e.contains("make data") => eprintln!("{example}: skipped, {e}"),
            Err(e) => panic!("{example}: {e}"),
        }
    }
}
