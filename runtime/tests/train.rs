//! The training loop end to end on a hand-written train step: linear regression
//! `y = x @ w + b` with an MSE loss, hand-derived gradients, a little gradient noise
//! (`rand.normal`, so per-step seeds matter) and SGD with momentum, all in TIR.

use archc_compiler::tir::testutil::{ty, FuncBuilder};
use archc_compiler::tir::{BinaryOp, Init, Op, ParamDecl, Program, ReduceOp, UnaryOp, ValueId};
use archc_runtime::data::Dataset;
use archc_runtime::train::{
    read_metrics, train, train_with, write_source, LoopSpec, Record, Schedule, TrainData, TrainError, TrainState, Value,
};
use archc_runtime::{Bindings, Executor, HostState, Interpreter, RunError, Tensor};
use std::path::{Path, PathBuf};

const FEATURES: usize = 3;

/// Shorthands over a builder and its program's signatures.
struct B<'a> {
    b: FuncBuilder,
    p: &'a Program,
}

impl B<'_> {
    fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        self.b.op(self.p, op, args)
    }
    fn op_as(&mut self, op: Op, args: &[ValueId], t: &str) -> ValueId {
        self.b.op_as(self.p, op, args, t)
    }
    fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        self.op(Op::Binary(op), &[a, b])
    }
    fn un(&mut self, op: UnaryOp, a: ValueId) -> ValueId {
        self.op(Op::Unary(op), &[a])
    }
    /// A scalar constant broadcast to `t`.
    fn fill(&mut self, v: f64, t: &str) -> ValueId {
        let c = self.op_as(Op::Const(v), &[], "f32[]");
        self.op_as(Op::Broadcast, &[c], t)
    }
    fn sum(&mut self, a: ValueId, axes: &[usize], t: &str) -> ValueId {
        self.op_as(Op::Reduce { op: ReduceOp::Sum, axes: axes.to_vec(), keepdim: false }, &[a], t)
    }
    fn mean(&mut self, a: ValueId, axes: &[usize], t: &str) -> ValueId {
        self.op_as(Op::Reduce { op: ReduceOp::Mean, axes: axes.to_vec(), keepdim: false }, &[a], t)
    }
}

/// `(diff, loss, correct)` of the model on `x`, `y`: `diff = x @ w + b - y`, loss the mean
/// squared error (or, with `bad_log`, `mean(log(-diff^2))` computed by `@badloss`, which is
/// NaN/-inf), `correct` the number of rows with `|diff| < 0.5`.
fn forward(b: &mut B, x: ValueId, y: ValueId, w: ValueId, bias: ValueId, bad_log: bool) -> [ValueId; 3] {
    let xw = b.op(Op::MatMul, &[x, w]);
    let bb = b.op_as(Op::Broadcast, &[bias], "f32[B, 1]");
    let pred = b.bin(BinaryOp::Add, xw, bb);
    let diff = b.bin(BinaryOp::Sub, pred, y);
    let sq = b.bin(BinaryOp::Mul, diff, diff);
    let loss = match bad_log {
        true => b.op_as(Op::Call("badloss".into()), &[sq], "f32[]"),
        false => b.mean(sq, &[0, 1], "f32[]"),
    };
    let abs = b.un(UnaryOp::Abs, diff);
    let half = b.fill(0.5, "f32[B, 1]");
    let hit = b.bin(BinaryOp::Lt, abs, half);
    let hit = b.op_as(Op::Cast, &[hit], "f32[B, 1]");
    let correct = b.sum(hit, &[0, 1], "f32[]");
    [diff, loss, correct]
}

/// `v' = 0.9 v + g; p' = p - lr * v'` for a param of type `t`.
fn momentum(b: &mut B, p: ValueId, v: ValueId, g: ValueId, lr: ValueId, t: &str) -> (ValueId, ValueId) {
    let mu = b.fill(0.9, t);
    let mv = b.bin(BinaryOp::Mul, mu, v);
    let v2 = b.bin(BinaryOp::Add, mv, g);
    let lrb = b.op_as(Op::Broadcast, &[lr], t);
    let step = b.bin(BinaryOp::Mul, lrb, v2);
    (b.bin(BinaryOp::Sub, p, step), v2)
}

/// The train-step program (see the file docs).
fn program(bad_log: bool) -> Program {
    let mut p = Program {
        name: "LinReg".into(),
        params: vec![
            ParamDecl {
                name: "w".into(),
                ty: ty("f32[3, 1]"),
                init: Init::Uniform { low: -0.5, high: 0.5 },
                trainable: true,
            },
            ParamDecl { name: "b".into(), ty: ty("f32[1]"), init: Init::Zeros, trainable: true },
        ],
        funcs: Vec::new(),
    };
    let mut bl = B { b: FuncBuilder::new("badloss"), p: &p };
    let s = bl.b.arg("f32[N, 1]", "sq");
    let neg = bl.un(UnaryOp::Neg, s);
    let log = bl.un(UnaryOp::Log, neg);
    let m = bl.mean(log, &[0, 1], "f32[]");
    let badloss = bl.b.finish(&[(m, "loss")]);
    p.funcs.push(badloss);

    let mut t = B { b: FuncBuilder::new("train_step"), p: &p };
    let x = t.b.arg("f32[B, 3]", "x");
    let y = t.b.arg("f32[B, 1]", "y");
    let w = t.b.arg("f32[3, 1]", "param:w");
    let bias = t.b.arg("f32[1]", "param:b");
    let vw = t.b.arg("f32[3, 1]", "state:w.v");
    let vb = t.b.arg("f32[1]", "state:b.v");
    let lr = t.b.arg("f32[]", "lr");
    let [diff, loss, correct] = forward(&mut t, x, y, w, bias, bad_log);
    // d loss / d pred = 2 diff / B.
    let ones = t.fill(1.0, "f32[B, 1]");
    let n = t.sum(ones, &[0, 1], "f32[]");
    let two = t.op_as(Op::Const(2.0), &[], "f32[]");
    let scale = t.bin(BinaryOp::Div, two, n);
    let scale = t.op_as(Op::Broadcast, &[scale], "f32[B, 1]");
    let g = t.bin(BinaryOp::Mul, diff, scale);
    let xt = t.op(Op::Permute(vec![1, 0]), &[x]);
    let gw = t.op(Op::MatMul, &[xt, g]);
    let noise = t.op_as(Op::RandNormal { seed: 7 }, &[], "f32[3, 1]");
    let eps = t.fill(1e-3, "f32[3, 1]");
    let noise = t.bin(BinaryOp::Mul, noise, eps);
    let gw = t.bin(BinaryOp::Add, gw, noise);
    let gb = t.sum(g, &[0], "f32[1]");
    let (w2, vw2) = momentum(&mut t, w, vw, gw, lr, "f32[3, 1]");
    let (b2, vb2) = momentum(&mut t, bias, vb, gb, lr, "f32[1]");
    let train_step = t.b.finish(&[
        (loss, "loss"),
        (correct, "metric:correct"),
        (w2, "param:w"),
        (b2, "param:b"),
        (vw2, "state:w.v"),
        (vb2, "state:b.v"),
    ]);

    let mut e = B { b: FuncBuilder::new("eval_step"), p: &p };
    let x = e.b.arg("f32[B, 3]", "x");
    let y = e.b.arg("f32[B, 1]", "target");
    let w = e.b.arg("f32[3, 1]", "param:w");
    let bias = e.b.arg("f32[1]", "param:b");
    let [_, loss, correct] = forward(&mut e, x, y, w, bias, bad_log);
    let eval_step = e.b.finish(&[(loss, "loss"), (correct, "metric:correct")]);
    p.funcs.push(train_step);
    p.funcs.push(eval_step);
    p
}

/// `n` rows of `y = x @ [1, -2, 0.5] + 0.3 + noise`, from a fixed LCG.
fn dataset(n: usize, seed: u64) -> Dataset {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let row: Vec<f64> = (0..FEATURES).map(|_| next() * 1.5).collect();
        y.push((row[0] - 2.0 * row[1] + 0.5 * row[2] + 0.3 + 0.05 * next()) as f32);
        x.extend(row.iter().map(|v| *v as f32));
    }
    Dataset::new(
        vec![("x".into(), Tensor::from_f32(&[n, FEATURES], x))],
        vec![("y".into(), Tensor::from_f32(&[n, 1], y))],
    )
    .unwrap()
}

/// 40 training rows (5 batches of 8) and 13 test rows; the eval step's target arg is
/// called `target`, fed from `y` by a name mapping.
fn data() -> TrainData {
    let mut d = TrainData::new(dataset(40, 1), Some(dataset(13, 2)));
    d.input_names.insert("y".into(), "target".into());
    d
}

fn spec(epochs: u64, schedule: Schedule) -> LoopSpec {
    LoopSpec::new(epochs, 8, 42, schedule)
}

fn cosine() -> Schedule {
    Schedule::Cosine { lr: 0.05, warmup: 3, total: None, min_lr: 0.001 }
}

/// A fresh, empty directory for one test.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Metrics lines without the timing fields, for comparing runs.
fn untimed(dir: &Path) -> Vec<Record> {
    let mut rs = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    for r in &mut rs {
        r.fields.retain(|(k, _)| k != "seconds" && k != "samples_per_s");
    }
    rs
}

fn checkpoint(dir: &Path) -> TrainState {
    TrainState::load(&dir.join("checkpoint.safetensors")).unwrap()
}

/// Bitwise equality of two states' tensors (and counters).
fn assert_same_state(a: &TrainState, b: &TrainState) {
    let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(a.params.keys().collect::<Vec<_>>(), b.params.keys().collect::<Vec<_>>());
    for (name, t) in a.params.iter().chain(&a.slots) {
        let u = b.params.get(name).or_else(|| b.slots.get(name)).unwrap();
        assert_eq!(bits(t), bits(u), "{name}");
    }
    assert_eq!((a.step, a.epoch, a.batch_in_epoch), (b.step, b.epoch, b.batch_in_epoch));
}

#[test]
fn loss_decreases_and_the_run_directory_is_written() {
    let dir = out_dir("basic");
    let program = program(false);
    let src = write_source(&dir, "linreg.arch", "// the experiment\n").unwrap();
    assert_eq!(std::fs::read_to_string(src).unwrap(), "// the experiment\n");
    assert!(write_source(&dir, "../x.arch", "").is_err());

    let report = train(&program, &spec(10, cosine()), &data(), &dir, false, true).unwrap();
    assert_eq!((report.epochs, report.steps), (10, 50));
    assert!(!report.resumed && !report.stopped_early);

    let lines = std::fs::read_to_string(&report.metrics).unwrap();
    assert_eq!(lines.lines().count(), 10);
    let records: Vec<Record> = lines.lines().map(|l| Record::parse(l).unwrap()).collect();
    let keys: Vec<&str> = records[0].fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s"]
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.epoch(), Some(i as u64 + 1));
        assert_eq!(r.get("step"), Some(&Value::Int(5 * (i as i64 + 1))));
        for k in ["train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s"] {
            assert!(r.f64(k).is_some_and(f64::is_finite), "epoch {}: {k}", i + 1);
        }
    }
    let first = records[0].f64("train_loss").unwrap();
    let last = report.train_loss.unwrap();
    assert!(last < first / 10.0, "loss {first} -> {last}");
    assert!(report.test_loss.unwrap() < records[0].f64("test_loss").unwrap());
    assert!(report.train_acc.unwrap() > records[0].f64("train_acc").unwrap());
    // The last step's learning rate: cosine at step 49 of 50.
    assert_eq!(records[9].f64("lr"), Some(cosine().lr(49, 50)));

    let svg = std::fs::read_to_string(&report.curves).unwrap();
    for text in ["train loss", "test loss", "train accuracy", "test accuracy", "epoch"] {
        assert!(svg.contains(text), "curves.svg lacks {text}");
    }
    let saved = checkpoint(&dir);
    assert_eq!(saved, report.state);
    assert_eq!((saved.epoch, saved.batch_in_epoch, saved.step), (10, 0, 50));
    assert_eq!(saved.slots.keys().collect::<Vec<_>>(), ["b.v", "w.v"]);
    // Close to the generating weights.
    let w = saved.params["w"].as_f32().unwrap();
    assert!((w[0] - 1.0).abs() < 0.25 && (w[1] + 2.0).abs() < 0.25 && (w[2] - 0.5).abs() < 0.25, "{w:?}");
    assert!(!dir.join(".checkpoint.safetensors.tmp").exists());
}

#[test]
fn resume_at_an_epoch_boundary_is_bit_identical() {
    let program = program(false);
    // A schedule with its own total, so a 2-epoch run and a 4-epoch run agree.
    let schedule = Schedule::Cosine { lr: 0.05, warmup: 3, total: Some(20), min_lr: 0.0 };
    let full = out_dir("boundary_full");
    let whole = train(&program, &spec(4, schedule.clone()), &data(), &full, false, false).unwrap();

    let split = out_dir("boundary_split");
    let first = train(&program, &spec(2, schedule.clone()), &data(), &split, false, false).unwrap();
    assert_eq!((first.epochs, first.steps), (2, 10));
    // A write killed half-way leaves only a temporary file beside the good checkpoint.
    std::fs::write(split.join(".checkpoint.safetensors.tmp"), b"half a checkpoi").unwrap();
    let rest = train(&program, &spec(4, schedule.clone()), &data(), &split, true, false).unwrap();
    assert!(rest.resumed);
    assert_same_state(&whole.state, &rest.state);
    assert_eq!(untimed(&full), untimed(&split));
    assert_eq!(whole.test_loss, rest.test_loss);

    // Resuming a finished run does nothing and reports the last epoch.
    let again = train(&program, &spec(4, schedule), &data(), &split, true, false).unwrap();
    assert_eq!((again.steps, again.train_loss), (20, whole.train_loss));
    assert_eq!(untimed(&split).len(), 4);
}

#[test]
fn resume_mid_epoch_is_bit_identical() {
    let program = program(false);
    let schedule = Schedule::one_cycle(0.05);
    let full = out_dir("mid_full");
    let whole = train(&program, &spec(4, schedule.clone()), &data(), &full, false, false).unwrap();

    let split = out_dir("mid_split");
    // Stop in epoch 2 (batch 2 of 5), then again just after epoch 3's last batch (before
    // its metrics line), then finish.
    for (stop, epoch, batch) in [(7, 1, 2), (15, 2, 5)] {
        let mut s = spec(4, schedule.clone());
        s.stop_after_steps = Some(stop);
        let r = train(&program, &s, &data(), &split, stop != 7, false).unwrap();
        assert!(r.stopped_early);
        let saved = checkpoint(&split);
        assert_eq!((saved.step, saved.epoch, saved.batch_in_epoch), (stop, epoch, batch));
        assert_eq!(saved.partial.samples, 8 * batch);
        assert_eq!(untimed(&split).len() as u64, epoch);
    }
    let rest = train(&program, &spec(4, schedule), &data(), &split, true, false).unwrap();
    assert_same_state(&whole.state, &rest.state);
    // The interrupted epochs report the same metrics as the uninterrupted run.
    assert_eq!(untimed(&full), untimed(&split));
}

#[test]
fn a_resumed_checkpoint_must_match_the_run() {
    let program = program(false);
    let dir = out_dir("mismatch");
    train(&program, &spec(1, cosine()), &data(), &dir, false, false).unwrap();
    let mut other = spec(2, cosine());
    other.seed = 7;
    let err = train(&program, &other, &data(), &dir, true, false).unwrap_err();
    assert!(matches!(err, TrainError::Spec(ref m) if m.contains("seed 42")), "{err}");
}

#[test]
fn a_non_finite_step_stops_and_keeps_the_last_checkpoint() {
    let program = program(false);
    let dir = out_dir("nan");
    train(&program, &spec(2, Schedule::Constant { lr: 0.05 }), &data(), &dir, false, false).unwrap();
    let ckpt = dir.join("checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();

    let err = train(&program, &spec(4, Schedule::Constant { lr: f64::NAN }), &data(), &dir, true, false).unwrap_err();
    match &err {
        // The loss of the step is computed before the update; the first bad result is `w`.
        TrainError::NonFinite { step, what, anomaly } => {
            assert_eq!((*step, what.as_str()), (10, "param:w"));
            assert!(anomaly.is_none());
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("step 10: param:w is not finite"), "{err}");
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the last good checkpoint stays");
    assert_eq!(untimed(&dir).len(), 2);

    // With anomaly detection, the culprit is the `lr` argument itself.
    let mut s = spec(4, Schedule::Constant { lr: f64::NAN });
    s.detect_anomaly = true;
    let err = train(&program, &s, &data(), &dir, true, false).unwrap_err();
    let TrainError::NonFinite { anomaly: Some(a), .. } = &err else { panic!("{err}") };
    assert_eq!(a.func, "train_step");
    assert!(a.inst.starts_with("argument ") && a.inst.ends_with("\"lr\""), "{a}");
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
}

#[test]
fn anomaly_detection_names_the_first_non_finite_instruction() {
    let program = program(true);
    let dir = out_dir("anomaly");
    let mut s = spec(2, cosine());
    let err = train(&program, &s, &data(), &dir, false, false).unwrap_err();
    assert!(matches!(&err, TrainError::NonFinite { step: 0, what, anomaly: None } if what == "loss"), "{err}");
    assert!(!dir.join("checkpoint.safetensors").exists());

    s.detect_anomaly = true;
    let err = train(&program, &s, &data(), &dir, false, false).unwrap_err();
    let TrainError::NonFinite { step: 0, anomaly: Some(a), .. } = &err else { panic!("{err}") };
    // `log(-diff^2)` inside @badloss, reached through the `call` in @train_step.
    assert_eq!(a.func, "badloss");
    assert!(a.inst.contains(" = log(%1)"), "{a}");
    assert_eq!(a.via.len(), 1);
    assert!(a.via[0].starts_with("@train_step: ") && a.via[0].contains("call"), "{a}");
    assert!(err.to_string().contains("first non-finite value: in @badloss"), "{err}");
}

#[test]
fn programs_outside_the_abi_are_rejected() {
    let dir = out_dir("abi");
    let mut p = program(false);
    p.funcs.retain(|f| f.name != "train_step");
    let err = train(&p, &spec(1, cosine()), &data(), &dir, false, false).unwrap_err();
    assert!(err.to_string().contains("no @train_step"), "{err}");

    // A data arg without a data set tensor.
    let mut d = data();
    d.input_names.clear();
    let err = train(&program(false), &spec(1, cosine()), &d, &dir, false, false).unwrap_err();
    assert!(matches!(&err, TrainError::Abi(m) if m.contains("\"target\"")), "{err}");

    // A param arg without its update.
    let mut p = program(false);
    let f = p.funcs.iter_mut().find(|f| f.name == "train_step").unwrap();
    let i = f.result_names.iter().position(|n| n == "state:b.v").unwrap();
    f.results.remove(i);
    f.result_names.remove(i);
    let err = train(&p, &spec(1, cosine()), &data(), &dir, false, false).unwrap_err();
    assert!(err.to_string().contains("\"state:b.v\" has no updated result"), "{err}");

    let mut s = spec(1, cosine());
    s.batch = 0;
    assert!(matches!(train(&program(false), &s, &data(), &dir, false, false), Err(TrainError::Spec(_))));
}

/// The interpreter, recording what crosses the executor's boundary on each bound call:
/// (function, given inputs, returned results).
struct Watch<'p> {
    program: &'p Program,
    inner: Interpreter<'p>,
    calls: Vec<(String, Vec<String>, usize)>,
}

impl Executor for Watch<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        self.calls.push((func.to_string(), vec!["(all)".into(); inputs.len()], usize::MAX));
        self.inner.run_func(func, inputs, seed)
    }
    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        self.inner.set_param_value(name, value)
    }
    fn host_state(&mut self) -> Option<&mut HostState> {
        self.inner.host_state()
    }
    fn run_bound(&mut self, func: &str, b: &Bindings, given: Vec<Tensor>, seed: u64) -> Result<Vec<Tensor>, RunError> {
        let f = self.program.func(func).unwrap();
        let names = f.arg_names.iter().zip(&b.args).filter(|(_, s)| s.is_none()).map(|(n, _)| n.clone()).collect();
        let out = self.inner.run_bound(func, b, given, seed)?;
        self.calls.push((func.to_string(), names, out.len()));
        Ok(out)
    }
}

#[test]
fn parameters_and_slots_stay_in_the_executor_between_steps() {
    let program = program(false);
    let dir = out_dir("resident");
    let mut watch = Watch { program: &program, inner: Interpreter::new(&program), calls: Vec::new() };
    let s = spec(2, cosine());
    let watched = train_with(&program, &s, &data(), &dir, false, false, &mut watch).unwrap();
    // Steps are given their batch and learning rate only, and return the loss and the
    // metric; evaluation is given its batch. Nothing runs unbound.
    let steps: Vec<_> = watch.calls.iter().filter(|c| c.0 == "train_step").collect();
    assert_eq!(steps.len() as u64, watched.steps);
    for (_, given, returned) in &steps {
        assert_eq!(given, &["x", "y", "lr"]);
        assert_eq!(*returned, 2);
    }
    let evals: Vec<_> = watch.calls.iter().filter(|c| c.0 == "eval_step").collect();
    assert!(!evals.is_empty());
    assert!(evals.iter().all(|(_, given, returned)| given == &["x", "target"] && *returned == 2), "{evals:?}");
    assert_eq!(watch.calls.len(), steps.len() + evals.len());
    // The state the executor holds is what the checkpoint saved.
    for (name, t) in &watched.state.params {
        assert_eq!(&watch.inner.read_state(&format!("param:{name}")).unwrap(), t);
    }
    // The same run through the plain interpreter ends in the same state.
    let plain = train(&program, &s, &data(), &out_dir("resident-plain"), false, false).unwrap();
    assert_same_state(&watched.state, &plain.state);
}

#[test]
fn a_run_starts_from_given_parameters() {
    let program = program(false);
    let first = train(&program, &spec(2, cosine()), &data(), &out_dir("init_first"), false, false).unwrap();
    // At learning rate 0 a run ends with exactly the values it started from.
    let mut s = spec(1, Schedule::Constant { lr: 0.0 });
    s.init_params = Some(first.state.params.clone());
    let r = train(&program, &s, &data(), &out_dir("init_given"), false, false).unwrap();
    assert_eq!(r.state.params, first.state.params);
    // Training on from them is a different run from training from the initialisers.
    let mut s = spec(2, cosine());
    s.init_params = Some(first.state.params.clone());
    let on = train(&program, &s, &data(), &out_dir("init_on"), false, false).unwrap();
    let fresh = train(&program, &spec(2, cosine()), &data(), &out_dir("init_fresh"), false, false).unwrap();
    assert_ne!(on.state.params, fresh.state.params);
    assert!(on.test_loss.unwrap() < fresh.test_loss.unwrap(), "four epochs in all should beat two");
    // A value of another shape is refused before training.
    let mut bad = first.state.params.clone();
    let name = bad.keys().next().unwrap().clone();
    bad.insert(name.clone(), Tensor::zeros(archc_compiler::tir::DType::F32, &[7]));
    s.init_params = Some(bad);
    let err = train(&program, &s, &data(), &out_dir("init_bad"), false, false).unwrap_err().to_string();
    assert!(err.contains(&name) && err.contains("f32[7]"), "{err}");
}
