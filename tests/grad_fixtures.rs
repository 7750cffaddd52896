//! Whole-model gradients against PyTorch: every `tests/fixtures/grad/NAME.arch` is a small
//! model (MLP, CNN, LSTM, attention block, FNO layer, hypernetwork, sorting and
//! selection: topk, sort, argmin, argsort, take_along, stop_gradient; resampling:
//! transposed convolutions, padding modes, reversal, upsampling; complex FFTs; pooling
//! with `ceil_mode` and without counting the padding; numpy's einsum; elementwise
//! functions and predicates: log, log1p, sqrt, sign, the comparisons `== != <= >`, `!` and
//! `||` under `where`, a row minimum and scatter_add), and
//! `tests/fixtures/grad/NAME.safetensors` (written by `scripts/gen_fixtures.py`, see there;
//! `make fixtures`) holds its inputs `input.<arg>`, every param under its TIR name (our
//! layout), PyTorch's output `output.y`, the loss weights `r`, and PyTorch's gradients of
//! the loss `sum(y * r)`: `grad.param.<name>` (our layout) and `grad.input.<arg>` for every
//! float input. The tests need neither Python nor torch.
//!
//! Each test builds the loss function the way the train step does
//! (`archc_compiler::autodiff::train_step`): `main` with calls inlined
//! (`expand::inline_calls`), every param read turned into an argument `param:NAME`
//! (`expand::params_to_args`), an argument `r` and `loss = sum(y * r)` in f32. It
//! differentiates that with `autodiff::gradient` with respect to every `param:` argument and
//! every float input, runs it in the interpreter, and compares each gradient (and the
//! forward output) with the fixture. Every param of the program must get a gradient, and
//! every gradient in the fixture must be checked.
//!
//! Metric, as in tests/numeric.rs: `max |ours - torch| / max |torch|` at most 1e-5 (the
//! reference is float64 on the same f32 values, so this measures our f32 error).
//! Element-wise relative errors are printed only (`cargo test --test grad_fixtures --
//! --nocapture`); they are ill-defined where a gradient is near zero.

mod common;

use archc_compiler::autodiff::emit::Emitter;
use archc_compiler::autodiff::expand::{hoist_params, inline_calls, params_to_args};
use archc_compiler::autodiff::{gradient, FuncTable};
use archc_compiler::sema::Options;
use archc_compiler::tir::{Op, Program, ReduceOp, ValueId};
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::{BTreeMap, BTreeSet};

/// The bound on `max |ours - torch| / max |torch|`.
const TOL: f64 = 1e-5;

/// A gradient whose largest PyTorch magnitude is at most `ZERO` times the largest of all
/// the fixture's gradients is zero in exact arithmetic (attention's key bias `bk`: softmax
/// ignores a shift shared by every key, so torch's float64 value is ~1e-17 noise). Ours
/// is then f32 rounding noise, and relative to itself the metric is meaningless, so its
/// error is measured against that largest gradient instead (still at most `TOL`).
const ZERO: f64 = 1e-12;

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// A fixture's gradient program and the arguments that run it.
struct Prepared {
    /// `grad_loss`: y, the loss, then one gradient per label.
    gp: Program,
    /// `grad_loss`'s arguments, from the fixture.
    inputs: Vec<Tensor>,
    /// `input.<arg>` or `param.<name>` per gradient result, in order.
    labels: Vec<String>,
    /// The program's params.
    declared: BTreeSet<String>,
    /// The params that are arguments of the differentiated function.
    params: Vec<String>,
    fixture: BTreeMap<String, Tensor>,
}

/// Builds fixture `name`'s loss `sum(y * r)` and its gradient program.
fn prepare(name: &str) -> Prepared {
    prepare_from(name, &common::repo().join(format!("tests/fixtures/grad/{name}.arch")))
}

/// [`prepare`] for the program `arch` on fixture `name`'s data.
fn prepare_from(name: &str, arch: &std::path::Path) -> Prepared {
    let data = common::repo().join(format!("tests/fixtures/grad/{name}.safetensors"));
    let out = common::check(&arch, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}:\n{}", arch.display(), common::rendered(&out));
    let program = out.program.expect("program built");
    let fixture: BTreeMap<String, Tensor> =
        io::read_safetensors(&data).unwrap_or_else(|e| panic!("{e} (run `make fixtures`)"));

    // Every param has a value and an expected gradient; every expected gradient is a param's
    // or a float input's.
    let declared: BTreeSet<String> = program.params.iter().map(|p| p.name.clone()).collect();
    for p in &declared {
        assert!(fixture.contains_key(p), "{name}: param @{p} has no value in {}", data.display());
        assert!(
            fixture.contains_key(&format!("grad.param.{p}")),
            "{name}: param @{p} has no grad.param.{p} in the fixture"
        );
    }
    for k in fixture.keys() {
        if let Some(p) = k.strip_prefix("grad.param.") {
            assert!(declared.contains(p), "{name}: fixture {k} is not a param of the program (declared: {declared:?})");
        }
    }

    // The loss function: main inlined, params as arguments, `r`, loss = sum(y * r).
    let inlined = inline_calls(&program, program.main()).unwrap_or_else(|e| panic!("{name}: inline: {e}"));
    let hoisting = FuncTable::new(&program);
    let mut f = hoist_params(&hoisting, &inlined).unwrap_or_else(|e| panic!("{name}: hoist: {e}"));
    f.name = "grad_loss".into();
    let mut base = program.clone();
    base.funcs.extend(hoisting.added.into_inner());
    assert_eq!(f.result_names, ["y"], "{name}: the fixture networks have one output `y`");
    let y = f.results[0];
    let n_data = f.args.len();
    let params = params_to_args(&base, &mut f);
    let yt = f.type_of(y).expect("y defined").clone();
    let r = f.next_value();
    f.args.push((r, yt.clone()));
    f.arg_names.push("r".into());
    let table = FuncTable::new(&base);
    let mut e = Emitter::new(f, &table);
    let prod = e.mul(y, r).unwrap();
    let sum = Op::Reduce { op: ReduceOp::Sum, axes: (0..yt.rank()).collect(), keepdim: false };
    let loss = e.op(sum, &[prod], None).unwrap();
    let mut f = e.func;
    f.results = vec![y, loss];
    f.result_names = vec!["y".into(), "loss".into()];

    // Differentiate w.r.t. every float data input and every param argument.
    let mut wrt: Vec<ValueId> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (i, ((v, t), an)) in f.args.iter().zip(&f.arg_names).enumerate() {
        if i < n_data && t.dtype.is_float() {
            wrt.push(*v);
            labels.push(format!("input.{an}"));
        } else if let Some(p) = an.strip_prefix("param:") {
            wrt.push(*v);
            labels.push(format!("param.{p}"));
        }
    }
    let g = gradient(&f, &table, loss, &wrt).unwrap_or_else(|e| panic!("{name}: gradient: {e}"));
    let mut funcs = vec![g.clone()];
    funcs.extend(base.funcs.iter().cloned());
    funcs.extend(table.added.into_inner());
    let gp = Program { funcs, ..base.clone() };
    if let Err(errs) = archc_compiler::tir::verify(&gp) {
        panic!("{name}: the gradient program does not verify: {errs:?}\n{gp}");
    }

    let inputs: Vec<Tensor> = g
        .arg_names
        .iter()
        .map(|a| {
            let key = match a.strip_prefix("param:") {
                Some(p) => p.to_string(),
                None if a == "r" => "r".to_string(),
                None => format!("input.{a}"),
            };
            fixture.get(&key).cloned().unwrap_or_else(|| panic!("{name}: no {key} in the fixture"))
        })
        .collect();
    Prepared { gp, inputs, labels, declared, params, fixture }
}

/// `grad_loss` of a prepared fixture on `inputs` (params set from the fixture: a body
/// the gradient did not rewrite may still read them).
fn run_grad_loss(p: &Prepared, inputs: &[Tensor]) -> Vec<Tensor> {
    let mut interp = Interpreter::new(&p.gp);
    for name in &p.declared {
        interp.set_param(name, p.fixture[name].clone()).unwrap_or_else(|e| panic!("{e}"));
    }
    interp.run("grad_loss", inputs).unwrap_or_else(|e| panic!("{e}"))
}

fn run_fixture(name: &str) {
    let prepared = prepare(name);
    let results = run_grad_loss(&prepared, &prepared.inputs);
    let Prepared { labels, declared, params, mut fixture, .. } = prepared;

    let mut failures: Vec<String> = Vec::new();
    let want_y = fixture.remove("output.y").expect("output.y in the fixture");
    failures.extend(compare(name, "output y", &results[0], &want_y, 0.0));
    let largest_gradient = fixture
        .iter()
        .filter(|(k, _)| k.starts_with("grad."))
        .map(|(_, t)| max_abs(&t.to_f64_vec().expect("real gradient")))
        .fold(0.0f64, f64::max);
    let mut checked: BTreeSet<String> = BTreeSet::new();
    for (label, got) in labels.iter().zip(&results[2..]) {
        let key = format!("grad.{label}");
        match fixture.get(&key) {
            Some(want) => failures.extend(compare(name, &format!("d loss / d {label}"), got, want, largest_gradient)),
            None => failures.push(format!("{key} is not in the fixture")),
        }
        checked.insert(key);
    }
    for p in &declared {
        if !params.iter().any(|q| q == p) {
            failures.push(format!(
                "param @{p} gets no gradient: it is not an argument `param:{p}` of the differentiated function \
                 (expand::params_to_args only rewrites param reads in the inlined main)"
            ));
            checked.insert(format!("grad.param.{p}"));
        }
    }
    let unchecked: Vec<&String> = fixture.keys().filter(|k| k.starts_with("grad.") && !checked.contains(*k)).collect();
    if !unchecked.is_empty() {
        failures
            .push(format!("fixture gradients {unchecked:?} were not compared (an input that is not differentiated?)"));
    }
    assert!(failures.is_empty(), "{name}: gradients disagree with PyTorch:\n  {}", failures.join("\n  "));
}

/// The worst disagreement, relative to `max(1, |difference|)`, between the gradient
/// program of `arch` on fixture `name`'s data and central differences of its forward
/// pass (the loss `sum(y * r)` summed in f64 from the f32 output `y`), over every entry
/// of every input and param.
fn central_differences(name: &str, arch: &std::path::Path, step: f32) -> (f64, String) {
    let p = prepare_from(name, arch);
    let base = run_grad_loss(&p, &p.inputs);
    let names = &p.gp.func("grad_loss").expect("grad_loss").arg_names;
    let r = p.fixture["r"].to_f64_vec().expect("real");
    let loss = |inputs: &[Tensor]| -> f64 {
        let y = run_grad_loss(&p, inputs)[0].to_f64_vec().expect("real");
        y.iter().zip(&r).map(|(a, b)| a * b).sum()
    };
    let mut worst = (0.0f64, String::new());
    for (k, label) in p.labels.iter().enumerate() {
        let arg = match label.strip_prefix("input.") {
            Some(a) => a.to_string(),
            None => format!("param:{}", label.trim_start_matches("param.")),
        };
        let at = names.iter().position(|n| *n == arg).unwrap_or_else(|| panic!("no argument {arg}"));
        let got = base[2 + k].to_f64_vec().expect("real");
        let v = p.inputs[at].as_f32().expect("f32").to_vec();
        for i in 0..v.len() {
            let (mut up, mut down) = (p.inputs.clone(), p.inputs.clone());
            let step = step * v[i].abs().max(1.0);
            let (hi, lo) = (v[i] + step, v[i] - step);
            up[at] = Tensor::from_f32(&p.inputs[at].shape, {
                let mut w = v.clone();
                w[i] = hi;
                w
            });
            down[at] = Tensor::from_f32(&p.inputs[at].shape, {
                let mut w = v.clone();
                w[i] = lo;
                w
            });
            let fd = (loss(&up) - loss(&down)) / (f64::from(hi) - f64::from(lo));
            let err = (got[i] - fd).abs() / fd.abs().max(1.0);
            if err > worst.0 {
                worst = (err, format!("d loss / d {label}[{i}]: gradient {}, central difference {fd}", got[i]));
            }
        }
    }
    worst
}

/// Sorting and selection are piecewise linear: away from ties (the fixture's inputs are
/// fixed and have none within the step), central differences agree with the gradient
/// program. Differences see through `stop_gradient`, so here the mean is taken out
/// without it (the fixture's own test checks `stop_gradient` against PyTorch's `detach`).
#[test]
fn sorting_gradients_match_central_differences() {
    let source = std::fs::read_to_string(common::repo().join("tests/fixtures/grad/sorting.arch")).expect("fixture");
    let plain = source.replace("stop_gradient(mean(h, axis = 1, keepdim = true))", "mean(h, axis = 1, keepdim = true)");
    assert_ne!(plain, source, "the fixture's stop_gradient line changed");
    let dir = tempfile::tempdir().expect("temp dir");
    let arch = dir.path().join("sorting.arch");
    std::fs::write(&arch, plain).expect("write");
    let (err, what) = central_differences("sorting", &arch, 1e-3);
    eprintln!("sorting: worst disagreement with central differences {err:.2e} ({what})");
    assert!(err < 2e-3, "{what}");
}

/// Transposed convolutions, padding modes, reversal and upsampling are linear maps:
/// central differences agree with the gradient program up to f32 rounding.
#[test]
fn resampling_gradients_match_central_differences() {
    let (err, what) = central_differences("resample", &common::repo().join("tests/fixtures/grad/resample.arch"), 1e-2);
    eprintln!("resample: worst disagreement with central differences {err:.2e} ({what})");
    assert!(err < 2e-3, "{what}");
}

/// Complex FFTs are linear in their input and the model multiplies two of them at most,
/// so the loss is quadratic in each entry: central differences with a large step (less
/// f32 rounding) are exact up to that rounding.
#[test]
fn spectral_gradients_match_central_differences() {
    let (err, what) = central_differences("spectral", &common::repo().join("tests/fixtures/grad/spectral.arch"), 1e-2);
    eprintln!("spectral: worst disagreement with central differences {err:.2e} ({what})");
    assert!(err < 2e-3, "{what}");
}

/// The einsum model is a polynomial of degree three in each entry: central differences
/// agree with the gradient program up to the step's square.
#[test]
fn einsum_gradients_match_central_differences() {
    let (err, what) = central_differences("einsum", &common::repo().join("tests/fixtures/grad/einsum.arch"), 1e-3);
    eprintln!("einsum: worst disagreement with central differences {err:.2e} ({what})");
    assert!(err < 2e-3, "{what}");
}

/// Pooling (max over windows, dilated or not, and averages) is piecewise linear: away
/// from ties within the step, central differences agree with the gradient program. The
/// 1x1 convolution's weights move every pooled value at once, so the step is small
/// (1e-3 moves one window's maximum across a near tie).
#[test]
fn pooling_gradients_match_central_differences() {
    let (err, what) = central_differences("pooling", &common::repo().join("tests/fixtures/grad/pooling.arch"), 2e-4);
    eprintln!("pooling: worst disagreement with central differences {err:.2e} ({what})");
    assert!(err < 2e-3, "{what}");
}

/// Prints the errors of `got` against `want`; a failure message when they disagree.
/// `zero_scale`: when `max |want|` is at most `ZERO * zero_scale`, the gradient is zero in
/// exact arithmetic (the float64 reference holds rounding noise only), and the error is
/// measured against `zero_scale` instead (see [`ZERO`]).
fn compare(name: &str, what: &str, got: &Tensor, want: &Tensor, zero_scale: f64) -> Option<String> {
    let diff = match got.compare(want) {
        Ok(d) => d,
        Err(e) => return Some(format!("{what}: {e}")),
    };
    let want_v = want.to_f64_vec().expect("real");
    let got_v = got.to_f64_vec().expect("real");
    let own = max_abs(&want_v);
    let structural_zero = own <= ZERO * zero_scale;
    let scale = if structural_zero { zero_scale } else { own };
    let mean_abs = want_v.iter().zip(&got_v).map(|(a, b)| (a - b).abs()).sum::<f64>() / want_v.len().max(1) as f64;
    let rel = if scale > 0.0 { diff.max_abs / scale } else { f64::INFINITY };
    let metric = if structural_zero {
        "max|err|/max|any torch gradient| (zero in exact arithmetic)"
    } else {
        "max|err|/max|torch|"
    };
    eprintln!(
        "{name}: {what}: {}  {metric} = {rel:.3e}  max|err| = {:.3e}  mean|err| = {mean_abs:.3e}  max elementwise rel = {:.3e}",
        got.type_string(),
        diff.max_abs,
        diff.max_rel
    );
    if scale == 0.0 {
        Some(format!("{what}: the expected value is all zeros; a useless fixture"))
    } else if rel.is_nan() || rel > TOL {
        Some(format!(
            "{what}: {metric} = {rel:e} > {TOL:e} (max|err| {:e} at {:?}; ours {}, torch {})",
            diff.max_abs,
            archc_runtime::tensor::unravel(diff.worst, &want.shape),
            got_v[diff.worst],
            want_v[diff.worst],
        ))
    } else {
        None
    }
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_fixture(stringify!($name));
            }
        )*
    };
}

// `lstm`: the cell params are read inside the `scan` body; `expand::hoist_params` passes
// them to the scan as invariants, as the train step does.
common::with_grad_fixtures!(fixtures);

/// Every gradient fixture program has a test above and its data file beside it.
#[test]
fn every_grad_fixture_is_tested() {
    common::assert_fixture_list("tests/fixtures/grad", FIXTURES, "tests/grad_fixtures.rs");
}
