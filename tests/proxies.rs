//! The training-free search proxies (`archc::search::proxies`) against PyTorch, and their
//! refusals.
//!
//! Every `tests/fixtures/proxies/NAME.arch` is a small network (a 1-d CNN with
//! BatchNorm, an MLP, a GRU) and `NAME.safetensors` (written by
//! `scripts/gen_proxy_fixtures.py`, see there) holds its params under their TIR names,
//! one minibatch `input.x` with labels `label`, and PyTorch's float64 value `proxy.P` of
//! every proxy P that applies. Each value must agree within 1e-4 relative; a proxy the
//! fixture lacks does not apply and must be an `Err`. The tests need neither Python nor
//! torch.

mod common;

use archc::search::proxies::{score, Batch, Proxy, Scorer};
use archc_compiler::autodiff::loss::Loss;
use archc_compiler::sema::Options;
use archc_compiler::tir::{DType, Program};
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

const TOL: f64 = 1e-4;
const FIXTURES: [&str; 3] = ["cnn", "mlp", "gru"];

fn cross_entropy() -> Loss {
    Loss::CrossEntropy { smoothing: 0.0 }
}

/// The program, its params and the rest of the fixture (`input.x`, `label`, `proxy.*`).
fn load(name: &str) -> (Program, HashMap<String, Tensor>, BTreeMap<String, Tensor>) {
    let dir = common::repo().join("tests/fixtures/proxies");
    let arch = dir.join(format!("{name}.arch"));
    let out = common::check(&arch, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}:\n{}", arch.display(), common::rendered(&out));
    let program = out.program.expect("program built");
    let mut fixture = io::read_safetensors(dir.join(format!("{name}.safetensors"))).expect("fixture reads");
    let mut params = HashMap::new();
    for p in &program.params {
        let v = fixture.remove(&p.name).unwrap_or_else(|| panic!("{name}: no value for @{}", p.name));
        params.insert(p.name.clone(), v);
    }
    (program, params, fixture)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_f64_vec().expect("real")[0]
}

#[test]
fn every_proxy_of_every_fixture_matches_pytorch() {
    let mut failures = Vec::new();
    for name in FIXTURES {
        let (program, params, fixture) = load(name);
        let scorer = Scorer::new(&program, &cross_entropy()).expect("scorer");
        let batch = Batch { x: &fixture["input.x"], y: &fixture["label"] };
        for proxy in Proxy::ALL {
            let got = scorer.score(proxy, &params, &batch);
            match (fixture.get(&format!("proxy.{proxy}")), got) {
                (Some(want), Ok(got)) => {
                    let want = scalar(want);
                    let rel = (got - want).abs() / want.abs();
                    eprintln!("{name}: {proxy}: ours {got:.10e}, torch {want:.10e}, relative error {rel:.2e}");
                    if rel.is_nan() || rel > TOL {
                        failures.push(format!("{name}: {proxy}: {got} vs torch {want} (relative {rel:.2e})"));
                    }
                }
                (Some(_), Err(e)) => failures.push(format!("{name}: {proxy} fails: {e}")),
                (None, Ok(v)) => failures.push(format!("{name}: {proxy} does not apply but gives {v}")),
                (None, Err(e)) => eprintln!("{name}: {proxy}: refused: {e}"),
            }
        }
    }
    assert!(failures.is_empty(), "proxies disagree with PyTorch:\n  {}", failures.join("\n  "));
}

#[test]
fn proxies_that_do_not_apply_say_why() {
    let (program, params, fixture) = load("cnn");
    let batch = Batch { x: &fixture["input.x"], y: &fixture["label"] };
    let e = score(Proxy::HiddenCov, &program, &params, &batch, &cross_entropy()).unwrap_err();
    assert!(e.contains("hidden_cov") && e.contains("no scan"), "{e}");
    let (program, params, fixture) = load("gru");
    let batch = Batch { x: &fixture["input.x"], y: &fixture["label"] };
    let e = score(Proxy::Naswot, &program, &params, &batch, &cross_entropy()).unwrap_err();
    assert!(e.contains("naswot") && e.contains("no relu"), "{e}");
}

/// The first `n` samples of a batch (and labels).
fn first(t: &Tensor, n: usize) -> Tensor {
    let per = t.numel() / t.shape[0];
    let mut shape = t.shape.clone();
    shape[0] = n;
    match t.dtype() {
        DType::I64 => Tensor::from_i64(&shape, t.as_i64().unwrap()[..n * per].to_vec()),
        _ => Tensor::from_f32(&shape, t.as_f32().unwrap()[..n * per].to_vec()),
    }
}

#[test]
fn a_batch_of_one() {
    let (program, params, fixture) = load("cnn");
    let (x, y) = (first(&fixture["input.x"], 1), first(&fixture["label"], 1));
    let batch = Batch { x: &x, y: &y };
    let scorer = Scorer::new(&program, &cross_entropy()).unwrap();
    // One sample: K = [N_A], the number of ReLU units: 8 x 19 + 4 x 10.
    let naswot = scorer.score(Proxy::Naswot, &params, &batch).unwrap();
    assert!((naswot - 192f64.ln()).abs() < 1e-12, "{naswot}");
    let e = scorer.score(Proxy::JacobCov, &params, &batch).unwrap_err();
    assert!(e.contains("at least 2 samples"), "{e}");
    let (program, params, fixture) = load("gru");
    let (x, y) = (first(&fixture["input.x"], 1), first(&fixture["label"], 1));
    let e = score(Proxy::HiddenCov, &program, &params, &Batch { x: &x, y: &y }, &cross_entropy()).unwrap_err();
    assert!(e.contains("at least 2 samples"), "{e}");
}

#[test]
fn a_nan_input_is_an_error() {
    let (program, params, fixture) = load("mlp");
    let mut x = fixture["input.x"].clone();
    if let archc_runtime::Data::F32(v) = &mut x.data {
        v[5] = f32::NAN;
    }
    let batch = Batch { x: &x, y: &fixture["label"] };
    let scorer = Scorer::new(&program, &cross_entropy()).unwrap();
    for proxy in [Proxy::Naswot, Proxy::JacobCov, Proxy::GradNorm, Proxy::Snip, Proxy::Synflow] {
        let e = scorer.score(proxy, &params, &batch).unwrap_err();
        assert!(e.contains("NaN"), "{proxy}: {e}");
    }
    let mut bad = params.clone();
    if let archc_runtime::Data::F32(v) = &mut bad.get_mut("fc2.w").unwrap().data {
        v[0] = f32::NAN;
    }
    let batch = Batch { x: &fixture["input.x"], y: &fixture["label"] };
    let e = scorer.score(Proxy::Snip, &bad, &batch).unwrap_err();
    assert!(e.contains("NaN"), "{e}");
}

#[test]
fn identical_samples_make_the_naswot_kernel_singular() {
    let (program, params, fixture) = load("mlp");
    let one = first(&fixture["input.x"], 1);
    let x = Tensor::from_f32(&[2, 12], [one.as_f32().unwrap(), one.as_f32().unwrap()].concat());
    let y = first(&fixture["label"], 2);
    let s = score(Proxy::Naswot, &program, &params, &Batch { x: &x, y: &y }, &cross_entropy()).unwrap();
    assert_eq!(s, f64::NEG_INFINITY);
}

#[test]
fn proxy_names_round_trip() {
    for p in Proxy::ALL {
        assert_eq!(p.to_string().parse::<Proxy>(), Ok(p));
    }
    assert_eq!("jacob_cov".parse::<Proxy>(), Ok(Proxy::JacobCov));
    let e = "fisher".parse::<Proxy>().unwrap_err();
    assert!(e.contains("fisher") && e.contains("hidden_cov"), "{e}");
}

/// Initial values from the interpreter score too, and a scorer reused across calls gives
/// what a fresh one gives. Prints the time of each proxy on the CNN.
#[test]
fn initial_params_score_and_a_scorer_is_reused() {
    let (program, _, fixture) = load("cnn");
    let mut interp = Interpreter::new(&program);
    interp.init_params(0).unwrap();
    let params = interp.params().clone();
    let batch = Batch { x: &fixture["input.x"], y: &fixture["label"] };
    let scorer = Scorer::new(&program, &cross_entropy()).unwrap();
    for proxy in [Proxy::Synflow, Proxy::Naswot, Proxy::JacobCov, Proxy::GradNorm, Proxy::Snip] {
        let t = Instant::now();
        let fresh = score(proxy, &program, &params, &batch, &cross_entropy()).unwrap();
        let once = t.elapsed();
        let first = scorer.score(proxy, &params, &batch).unwrap();
        let t = Instant::now();
        let reused = scorer.score(proxy, &params, &batch).unwrap();
        let again = t.elapsed();
        assert!(fresh.is_finite(), "{proxy}: {fresh}");
        assert_eq!(fresh.to_bits(), first.to_bits(), "{proxy}");
        assert_eq!(first.to_bits(), reused.to_bits(), "{proxy}");
        eprintln!("cnn: {proxy} = {fresh:.6e}: {once:?} with a new scorer, {again:?} with a built one");
    }
}

/// `tir::cost` on the CNN fixture as the checker builds it (hand-counted).
#[test]
fn the_cnn_fixture_costs() {
    use archc_compiler::tir::cost::{flops, param_count};
    let (program, _, _) = load("cnn");
    // c1 40 + 8, bn 8 + 8 (its running statistics are buffers), c2 96 + 4, fc 400 + 10.
    assert_eq!(param_count(&program), 574);
    // Per sample: conv1 2 * 8 * 19 * 5 = 1520, its bias 152, BatchNorm 3 * 152, relu 152,
    // conv2 2 * 4 * 10 * 24 = 1920, its bias 40, relu 40, linear 2 * 10 * 40 = 800, its
    // bias 10: 5090. Once per batch: BatchNorm's scale from its statistics, 3 * 8.
    let sizes = HashMap::from([("B".to_string(), 8)]);
    assert_eq!(flops(&program, "main", &sizes), Ok(8 * 5090 + 24));
}
