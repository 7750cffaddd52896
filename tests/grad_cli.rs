//! `archc grad` end to end, through the built binary:
//!
//! - Acceptance: every whole-model fixture of `tests/fixtures/grad/` (see
//!   tests/grad_fixtures.rs: PyTorch's output `output.y` and gradients of `sum(y * r)`)
//!   is split into `.npy` inputs, the cotangent `r` of `y` and a weights file, run through
//!   `archc grad` on each CPU backend (`interp`, `cranelift`, `auto`, and `mlir-cpu` when
//!   archc is built with MLIR), and every tensor the fixture holds is compared with the
//!   file it writes: `max |ours - torch| / max |torch| <= 1e-5` (a gradient that is zero
//!   in exact arithmetic is measured against the fixture's largest gradient, as in
//!   tests/grad_fixtures.rs). Every param must get a gradient and every fixture gradient
//!   must be compared. Errors are printed (`-- --nocapture`).
//! - Finite differences: a small network with two float outputs, an integer output and
//!   a buffer; a few gradient entries of `archc grad` against central differences of
//!   `Σ sum(out * cot)` computed with the interpreter.
//! - Errors: each diagnostic of the command, with its exit code and message.

mod common;

use archc_compiler::sema::Options;
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The bound on `max |ours - torch| / max |torch|`.
const TOL: f64 = 1e-5;

/// As in tests/grad_fixtures.rs: a fixture gradient whose largest magnitude is at most
/// `ZERO` times the fixture's largest gradient is zero in exact arithmetic, and its
/// error is measured against that largest gradient.
const ZERO: f64 = 1e-12;

/// The CPU backends `archc grad` must run on.
fn backends() -> Vec<&'static str> {
    let mut v = vec!["interp", "cranelift", "auto"];
    if cfg!(feature = "mlir") {
        v.push("mlir-cpu");
    }
    v
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

/// `archc args`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let o = common::archc(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "archc {args:?} failed ({}):\n{out}\n{err}", o.status);
    out
}

/// `archc args`, which must fail with exit code 1 (a user error); its stderr.
fn user_error(args: &[&str]) -> String {
    let o = common::archc(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "archc {args:?}: expected exit 1:\n{out}\n{err}");
    assert!(!err.contains("panicked"), "archc {args:?} panicked:\n{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// A fixture split into the files `archc grad` reads, in a fresh folder.
struct Split {
    dir: tempfile::TempDir,
    fixture: BTreeMap<String, Tensor>,
    /// `--input NAME=PATH` for every `input.NAME`.
    inputs: Vec<String>,
    /// `--cotangent y=PATH` (the fixture's `r`).
    cotangent: String,
    weights: PathBuf,
}

fn split(name: &str) -> Split {
    let data = common::repo().join(format!("tests/fixtures/grad/{name}.safetensors"));
    let fixture = io::read_safetensors(&data).unwrap_or_else(|e| panic!("{e} (run `make fixtures`)"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = Vec::new();
    let mut params: BTreeMap<String, Tensor> = BTreeMap::new();
    for (k, t) in &fixture {
        if let Some(arg) = k.strip_prefix("input.") {
            let p = dir.path().join(format!("input_{arg}.npy"));
            io::write_npy(&p, t).expect("write npy");
            inputs.push(format!("{arg}={}", p.display()));
        } else if !(k.starts_with("grad.") || k.starts_with("output.") || k == "r") {
            params.insert(k.clone(), t.clone());
        }
    }
    let cot = dir.path().join("r.npy");
    io::write_npy(&cot, &fixture["r"]).expect("write npy");
    let weights = dir.path().join("weights.safetensors");
    io::write_safetensors(&weights, params.iter().map(|(k, t)| (k.as_str(), t))).expect("write weights");
    Split { dir, fixture, inputs, cotangent: format!("y={}", cot.display()), weights }
}

/// `archc grad` on a fixture's files with `backend`, extra flags appended; the tensors
/// it wrote to `OUT/grad.safetensors`.
fn grad_of(name: &str, arch: &Path, sp: &Split, backend: &str) -> BTreeMap<String, Tensor> {
    let out = sp.dir.path().join(format!("out-{backend}"));
    let mut args: Vec<&str> = vec!["grad", s(arch), "--backend", backend, "--weights", s(&sp.weights)];
    for i in &sp.inputs {
        args.extend(["--input", i.as_str()]);
    }
    args.extend(["--cotangent", sp.cotangent.as_str(), "--out", s(&out)]);
    let stdout = ok(&args);
    assert!(stdout.contains("grad.param.") && stdout.contains("max|g|"), "{name}/{backend}: summary:\n{stdout}");
    io::read_safetensors(out.join("grad.safetensors")).expect("archc grad wrote grad.safetensors")
}

/// The error of `got` against `want`, or a failure message.
fn compare(what: &str, got: Option<&Tensor>, want: &Tensor, zero_scale: f64) -> Result<f64, String> {
    let got = got.ok_or_else(|| format!("{what}: not in the output of archc grad"))?;
    let diff = got.compare(want).map_err(|e| format!("{what}: {e}"))?;
    let own = max_abs(&want.to_f64_vec().expect("real"));
    let structural_zero = own <= ZERO * zero_scale;
    let scale = if structural_zero { zero_scale } else { own };
    if scale == 0.0 {
        return Err(format!("{what}: the expected value is all zeros; a useless fixture"));
    }
    let rel = diff.max_abs / scale;
    if rel.is_nan() || rel > TOL {
        return Err(format!("{what}: max|err|/max|torch| = {rel:e} > {TOL:e} (max|err| {:e})", diff.max_abs));
    }
    Ok(rel)
}

fn run_fixture(name: &str) {
    run_fixture_with(name, &common::repo().join(format!("tests/fixtures/grad/{name}.arch")));
}

/// [`run_fixture`] with the program `arch` on fixture `name`'s data and references.
fn run_fixture_with(name: &str, arch: &Path) {
    let checked = common::check(&arch, &Options::default());
    let program = checked.program.expect("the fixture builds");
    let sp = split(name);
    let largest = sp
        .fixture
        .iter()
        .filter(|(k, _)| k.starts_with("grad."))
        .map(|(_, t)| max_abs(&t.to_f64_vec().expect("real")))
        .fold(0.0f64, f64::max);
    let mut failures = Vec::new();
    for backend in backends() {
        let got = grad_of(name, arch, &sp, backend);
        let mut worst = 0.0f64;
        let mut checked: BTreeSet<&str> = BTreeSet::new();
        for (k, want) in sp.fixture.iter().filter(|(k, _)| k.starts_with("grad.") || k.starts_with("output.")) {
            let zero_scale = if k.starts_with("grad.") { largest } else { 0.0 };
            match compare(&format!("{name}/{backend}: {k}"), got.get(k), want, zero_scale) {
                Ok(rel) => {
                    eprintln!("{name}/{backend}: {k}: {} max|err|/max|torch| = {rel:.3e}", want.type_string());
                    worst = worst.max(rel);
                }
                Err(m) => failures.push(m),
            }
            checked.insert(k);
        }
        for p in program.params.iter().filter(|p| p.trainable) {
            if !got.contains_key(&format!("grad.param.{}", p.name)) {
                failures.push(format!("{name}/{backend}: param {} gets no gradient", p.name));
            }
        }
        for k in got.keys().filter(|k| !checked.contains(k.as_str())) {
            failures.push(format!("{name}/{backend}: {k} was written but the fixture has no reference for it"));
        }
        eprintln!("{name}/{backend}: worst max|err|/max|torch| = {worst:.3e}");
    }
    assert!(failures.is_empty(), "{name}: archc grad disagrees with PyTorch:\n  {}", failures.join("\n  "));
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

common::with_grad_fixtures!(fixtures);

/// The spectral fixture with its transformed axis of length 4 symbolic (`N`): the DFT
/// matrices are built when the program runs, and agree with PyTorch as the constant ones.
#[test]
fn spectral_of_symbolic_length() {
    let source = std::fs::read_to_string(common::repo().join("tests/fixtures/grad/spectral.arch")).expect("fixture");
    let symbolic = source.replace("input x: f32[B, 4, 6]", "input x: f32[B, N, 6]");
    assert_ne!(symbolic, source, "the fixture's input line changed");
    let dir = tempfile::tempdir().expect("temp dir");
    let arch = dir.path().join("spectral.arch");
    std::fs::write(&arch, symbolic).expect("write");
    run_fixture_with("spectral", &arch);
}

/// Every gradient fixture program has a test above.
#[test]
fn every_grad_fixture_is_tested() {
    common::assert_fixture_list("tests/fixtures/grad", FIXTURES, "tests/grad_cli.rs");
}

// ---- finite differences -------------------------------------------------------------

/// Two float outputs (one a function of the other), an integer output and BatchNorm's
/// buffers (read in inference mode, never differentiated).
const SMALL: &str = "use nn.{Linear, BatchNorm1d}

network Small {
    input x: f32[B, 3]
    let fc = Linear(3, 4)
    let bn = BatchNorm1d(4)
    let h = x |> fc |> bn |> tanh
    output y = h
    output s = h * h
    output k = argmax(h, axis = 1)
}
";

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

#[test]
fn gradients_agree_with_central_differences_of_the_forward_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let arch = dir.path().join("small.arch");
    std::fs::write(&arch, SMALL).expect("write");
    let program = common::check(&arch, &Options::default()).program.expect("builds");
    let mut params: BTreeMap<String, Tensor> = BTreeMap::new();
    for (i, p) in program.params.iter().enumerate() {
        let shape: Vec<usize> = p.ty.shape.iter().map(|d| d.as_const().expect("constant") as usize).collect();
        let n = shape.iter().product();
        let v = values(n, 10 + i as u64);
        // Running variances stay positive.
        let v = if p.name.ends_with("running_var") { v.iter().map(|x| 1.0 + x.abs()).collect() } else { v };
        params.insert(p.name.clone(), Tensor::from_f32(&shape, v));
    }
    let x = Tensor::from_f32(&[2, 3], values(6, 1).iter().map(|v| 2.0 * v).collect());
    let cy = Tensor::from_f32(&[2, 4], values(8, 2));
    let cs = Tensor::from_f32(&[2, 4], values(8, 3));
    let weights = dir.path().join("w.safetensors");
    io::write_safetensors(&weights, params.iter().map(|(k, t)| (k.as_str(), t))).expect("weights");
    for (n, t) in [("x", &x), ("cy", &cy), ("cs", &cs)] {
        io::write_npy(dir.path().join(format!("{n}.npy")), t).expect("npy");
    }
    let p = |n: &str| dir.path().join(n).display().to_string();
    let (xi, yc, sc) = (format!("x={}", p("x.npy")), format!("y={}", p("cy.npy")), format!("s={}", p("cs.npy")));
    let out = dir.path().join("g.safetensors");

    // The loss Σ sum(out * cot) in f64, from the interpreter's forward pass.
    let loss = |params: &BTreeMap<String, Tensor>, x: &Tensor| -> f64 {
        let mut interp = Interpreter::new(&program);
        for (n, t) in params {
            interp.set_param(n, t.clone()).expect("param");
        }
        let outs = interp.run("main", std::slice::from_ref(x)).expect("forward");
        let dot = |a: &Tensor, b: &Tensor| -> f64 {
            let (a, b) = (a.to_f64_vec().expect("real"), b.to_f64_vec().expect("real"));
            a.iter().zip(&b).map(|(p, q)| p * q).sum()
        };
        dot(&outs[0], &cy) + dot(&outs[1], &cs)
    };
    // Central difference along entry `i` of a tensor; `h` is the step actually taken in f32.
    let central = |t: &Tensor, i: usize, f: &dyn Fn(&Tensor) -> f64| -> f64 {
        let v = t.as_f32().expect("f32").to_vec();
        let step = 1e-2f32 * v[i].abs().max(1.0);
        let (mut up, mut down) = (v.clone(), v.clone());
        up[i] += step;
        down[i] -= step;
        let h = f64::from(up[i]) - f64::from(down[i]);
        (f(&Tensor::from_f32(&t.shape, up)) - f(&Tensor::from_f32(&t.shape, down))) / h
    };

    for backend in ["interp", "cranelift"] {
        let args = ["grad", s(&arch), "--backend", backend, "--weights", s(&weights), "--input", &xi];
        ok(&[&args[..], &["--cotangent", &yc, "--cotangent", &sc, "--out", s(&out)]].concat());
        let g = io::read_safetensors(&out).expect("archc grad wrote the file");
        let names: BTreeSet<&str> = g.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = [
            "output.y",
            "output.s",
            "output.k",
            "grad.input.x",
            "grad.param.fc.w",
            "grad.param.fc.b",
            "grad.param.bn.weight",
            "grad.param.bn.bias",
        ]
        .into();
        assert_eq!(names, want, "{backend}: buffers get no gradient, every other param and float input does");

        let mut checks: Vec<(String, f64, f64)> = Vec::new();
        for i in [0, 4] {
            let fd = central(&x, i, &|t| loss(&params, t));
            checks.push((format!("grad.input.x[{i}]"), g["grad.input.x"].to_f64_vec().unwrap()[i], fd));
        }
        for (name, entries) in
            [("fc.w", vec![0, 5, 11]), ("fc.b", vec![2]), ("bn.weight", vec![1]), ("bn.bias", vec![3])]
        {
            let got = g[&format!("grad.param.{name}")].to_f64_vec().unwrap();
            for i in entries {
                let fd = central(&params[name], i, &|t| {
                    let mut q = params.clone();
                    q.insert(name.to_string(), t.clone());
                    loss(&q, &x)
                });
                checks.push((format!("grad.param.{name}[{i}]"), got[i], fd));
            }
        }
        let scale = checks.iter().map(|(_, _, fd)| fd.abs()).fold(0.0f64, f64::max);
        assert!(scale > 0.1, "{backend}: the differences are too small to test anything: {checks:?}");
        for (what, got, fd) in &checks {
            let err = (got - fd).abs() / scale;
            eprintln!("{backend}: {what}: archc grad {got:.6}, central difference {fd:.6}, error/scale {err:.2e}");
            assert!(err < 5e-4, "{backend}: {what}: archc grad gives {got}, central differences {fd}");
        }
    }
}

// ---- errors ---------------------------------------------------------------------------

/// The mlp fixture's files, and the arguments up to (not including) the cotangent.
fn mlp_args(sp: &Split) -> Vec<String> {
    let mut v: Vec<String> = ["grad", "tests/fixtures/grad/mlp.arch", "--backend", "interp", "--weights"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(sp.weights.display().to_string());
    for i in &sp.inputs {
        v.extend(["--input".to_string(), i.clone()]);
    }
    v
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    let mut v = base.to_vec();
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn every_float_output_needs_a_cotangent_and_names_must_exist() {
    let sp = split("mlp");
    let base = mlp_args(&sp);
    let out = sp.dir.path().join("out");
    let o = s(&out);

    let err = user_error(&strs(&with(&base, &["--out", o])));
    assert!(err.contains("output `y` (f32[B, 4]) has no cotangent") && err.contains("--cotangent y="), "{err}");

    let err = user_error(&strs(&with(&base, &["--cotangent", &sp.cotangent, "--cotangent", "nope=c.npy", "--out", o])));
    assert!(err.contains("--cotangent nope: the network has no output `nope`; float outputs: y"), "{err}");

    let bad_input = format!("nope={}", sp.inputs[0].split_once('=').unwrap().1);
    let err = user_error(&strs(&with(&base, &["--input", &bad_input, "--cotangent", &sp.cotangent, "--out", o])));
    assert!(err.contains("the network has no input `nope`; inputs: x"), "{err}");

    let err = user_error(&strs(&with(&base, &["--cotangent", "y", "--out", o])));
    assert!(err.contains("--cotangent expects NAME=PATH, found `y`"), "{err}");
    assert!(!out.exists(), "nothing is written on an error");
}

#[test]
fn a_cotangent_of_the_wrong_shape_or_dtype_is_refused() {
    let sp = split("mlp");
    let base = mlp_args(&sp);
    let o = sp.dir.path().join("out");
    let wide = sp.dir.path().join("wide.npy");
    io::write_npy(&wide, &Tensor::from_f32(&[3, 5], vec![0.5; 15])).unwrap();
    let err = user_error(&strs(&with(&base, &["--cotangent", &format!("y={}", wide.display()), "--out", s(&o)])));
    assert!(err.contains("the cotangent of `y`") && err.contains("is f32[3, 5], but output `y` is f32[3, 4]"), "{err}");

    let flat = sp.dir.path().join("flat.npy");
    io::write_npy(&flat, &Tensor::from_f32(&[12], vec![0.5; 12])).unwrap();
    let err = user_error(&strs(&with(&base, &["--cotangent", &format!("y={}", flat.display()), "--out", s(&o)])));
    assert!(err.contains("is f32[12], but output `y` is f32[B, 4]"), "{err}");

    let double = sp.dir.path().join("double.npy");
    io::write_npy(&double, &Tensor::from_f64(&[3, 4], vec![0.5; 12])).unwrap();
    let err = user_error(&strs(&with(&base, &["--cotangent", &format!("y={}", double.display()), "--out", s(&o)])));
    assert!(err.contains("is f64[3, 4], but output `y` is f32[B, 4]"), "{err}");
    assert!(!o.exists(), "nothing is written on an error");
}

#[test]
fn inputs_must_match_the_network_and_each_other() {
    let sp = split("mlp");
    let o = sp.dir.path().join("out");
    let wrong = sp.dir.path().join("x7.npy");
    io::write_npy(&wrong, &Tensor::from_f32(&[3, 7], vec![0.5; 21])).unwrap();
    let mut base = mlp_args(&sp);
    let at = base.iter().position(|a| a.starts_with("x=")).unwrap();
    base[at] = format!("x={}", wrong.display());
    let err = user_error(&strs(&with(&base, &["--cotangent", &sp.cotangent, "--out", s(&o)])));
    assert!(err.contains("input `x`") && err.contains("is f32[3, 7], but the network's is f32[3, 6]"), "{err}");
}

#[test]
fn an_integer_output_takes_no_cotangent() {
    let dir = tempfile::tempdir().unwrap();
    let arch = dir.path().join("k.arch");
    std::fs::write(&arch, SMALL).unwrap();
    let c = dir.path().join("c.npy");
    io::write_npy(&c, &Tensor::from_f32(&[2, 4], vec![1.0; 8])).unwrap();
    let cot = format!("k={}", c.display());
    let out = dir.path().join("o");
    let err = user_error(&["grad", s(&arch), "--backend", "interp", "--cotangent", &cot, "--out", s(&out)]);
    assert!(err.contains("--cotangent k: output `k` is not a float tensor; it takes no cotangent"), "{err}");
}

#[test]
fn weights_must_hold_every_parameter_unless_missing_ones_are_allowed() {
    let sp = split("mlp");
    let mut w = io::read_safetensors(&sp.weights).unwrap();
    w.remove("fc2.b");
    let partial = sp.dir.path().join("partial.safetensors");
    io::write_safetensors(&partial, w.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
    let mut base = mlp_args(&sp);
    let at = base.iter().position(|a| a == "--weights").unwrap() + 1;
    base[at] = partial.display().to_string();
    let out = sp.dir.path().join("g.safetensors");
    let full = with(&base, &["--cotangent", &sp.cotangent, "--out", s(&out)]);
    let err = user_error(&strs(&full));
    assert!(err.contains("are not in the file: `fc2.b`") && err.contains("--allow-missing"), "{err}");
    ok(&strs(&with(&full, &["--allow-missing"])));
    let g = io::read_safetensors(&out).expect("--out FILE.safetensors is written as named");
    assert!(g.contains_key("grad.param.fc2.b"), "{:?}", g.keys());
}

#[cfg(unix)]
#[test]
fn the_output_is_never_written_through_a_symbolic_link() {
    let sp = split("mlp");
    let base = with(&mlp_args(&sp), &["--cotangent", &sp.cotangent]);
    let victim = sp.dir.path().join("victim.txt");
    std::fs::write(&victim, "keep").unwrap();
    let link = sp.dir.path().join("link.safetensors");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = user_error(&strs(&with(&base, &["--out", s(&link)])));
    assert!(err.contains("is a symbolic link"), "{err}");
    let folder = sp.dir.path().join("real");
    std::fs::create_dir(&folder).unwrap();
    let dir_link = sp.dir.path().join("dirlink");
    std::os::unix::fs::symlink(&folder, &dir_link).unwrap();
    let err = user_error(&strs(&with(&base, &["--out", s(&dir_link)])));
    assert!(err.contains("is a symbolic link"), "{err}");
    let inner = folder.join("grad.safetensors");
    std::os::unix::fs::symlink(&victim, &inner).unwrap();
    let err = user_error(&strs(&with(&base, &["--out", s(&folder)])));
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn weights_of_the_wrong_shape_and_runs_above_the_memory_limit_are_refused() {
    let sp = split("mlp");
    let mut w = io::read_safetensors(&sp.weights).unwrap();
    w.insert("fc1.w".into(), Tensor::from_f32(&[10, 6], vec![0.5; 60]));
    let bad = sp.dir.path().join("transposed.safetensors");
    io::write_safetensors(&bad, w.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
    let mut base = mlp_args(&sp);
    let at = base.iter().position(|a| a == "--weights").unwrap() + 1;
    base[at] = bad.display().to_string();
    let out = sp.dir.path().join("out");
    let err = user_error(&strs(&with(&base, &["--cotangent", &sp.cotangent, "--out", s(&out)])));
    assert!(err.contains("parameter `fc1.w` is f32[10, 6], but the network's is f32[6, 10]"), "{err}");

    let good = with(&mlp_args(&sp), &["--cotangent", &sp.cotangent, "--out", s(&out)]);
    let err = user_error(&strs(&with(&["--max-memory".to_string(), "1K".to_string()], &strs(&good))));
    assert!(err.contains("running `vjp` at B=3 needs at least") && err.contains("--max-memory"), "{err}");
    assert!(!out.exists(), "nothing is written on an error");
}

/// A program printed as TIR (`build --emit tir`) is differentiated like its source.
#[test]
fn a_printed_tir_program_gives_the_same_gradients() {
    let sp = split("cnn");
    let tir = sp.dir.path().join("cnn.tir");
    ok(&["build", "tests/fixtures/grad/cnn.arch", "-o", s(&tir)]);
    let from_source = grad_of("cnn", Path::new("tests/fixtures/grad/cnn.arch"), &sp, "interp");
    let out = sp.dir.path().join("from-tir.safetensors");
    let mut args = vec!["grad".to_string(), tir.display().to_string(), "--backend".into(), "interp".into()];
    args.extend(["--weights".to_string(), sp.weights.display().to_string()]);
    for i in &sp.inputs {
        args.extend(["--input".to_string(), i.clone()]);
    }
    ok(&strs(&with(&args, &["--cotangent", &sp.cotangent, "--out", s(&out)])));
    let from_tir = io::read_safetensors(&out).unwrap();
    assert_eq!(from_source, from_tir);
    let err = user_error(&strs(&with(&args, &["--sample", "1", "--cotangent", &sp.cotangent, "--out", s(&out)])));
    assert!(err.contains("apply to .arch sources"), "{err}");
}

/// An `f32` and an `f64` output: the inner product is summed in `f64`, and the `f64`
/// input's gradient is exact: `d sum(d * d * c) / d d = 2 d c`.
#[test]
fn outputs_of_mixed_float_types_are_differentiated_together() {
    let dir = tempfile::tempdir().unwrap();
    let arch = dir.path().join("mix.arch");
    let src = "use nn.Linear\n\nnetwork Mix {\n    input x: f32[B, 3]\n    input d: f64[B, 2]\n    \
               let fc = Linear(3, 2)\n    output y = tanh(x |> fc)\n    output z = d * d\n}\n";
    std::fs::write(&arch, src).unwrap();
    let d: Vec<f64> = values(4, 7).iter().map(|v| f64::from(*v) * 3.0).collect();
    let c: Vec<f64> = values(4, 8).iter().map(|v| f64::from(*v)).collect();
    let files = [
        ("x", Tensor::from_f32(&[2, 3], values(6, 5))),
        ("d", Tensor::from_f64(&[2, 2], d.clone())),
        ("cy", Tensor::from_f32(&[2, 2], values(4, 6))),
        ("cz", Tensor::from_f64(&[2, 2], c.clone())),
    ];
    for (n, t) in &files {
        io::write_npy(dir.path().join(format!("{n}.npy")), t).unwrap();
    }
    let p = |n: &str| dir.path().join(format!("{n}.npy")).display().to_string();
    for backend in backends() {
        let out = dir.path().join(format!("{backend}.safetensors"));
        let (x, dd, cy, cz) =
            (format!("x={}", p("x")), format!("d={}", p("d")), format!("y={}", p("cy")), format!("z={}", p("cz")));
        let args = ["grad", s(&arch), "--backend", backend, "--input", &x, "--input", &dd];
        ok(&[&args[..], &["--cotangent", &cy, "--cotangent", &cz, "--out", s(&out)]].concat());
        let g = io::read_safetensors(&out).unwrap();
        let gd = g["grad.input.d"].as_f64().expect("f64 gradient").to_vec();
        for i in 0..4 {
            let want = 2.0 * d[i] * c[i];
            assert!((gd[i] - want).abs() <= 1e-12 * want.abs().max(1.0), "{backend}: d[{i}]: {} vs {want}", gd[i]);
        }
        assert_eq!(g["grad.input.x"].type_string(), "f32[2, 3]", "{backend}");
        assert!(g.contains_key("grad.param.fc.w") && g.contains_key("grad.param.fc.b"), "{backend}: {:?}", g.keys());
    }
}
