//! Helpers of the Cranelift tier's tests: examples checked as the CLI checks them (user
//! modules beside the file), their train steps, random inputs, and the comparison with
//! the interpreter (integers and bools equal; floats within a scaled error).

#![allow(dead_code)]

use archc_compiler::autodiff::build_train_program;
use archc_compiler::autodiff::optim::Optimizer;
use archc_compiler::sema::{check_file, train_file, ModuleSource, Options};
use archc_compiler::tir::{DType, Func, Program};
use archc_runtime::interp::random::init_param;
use archc_runtime::{Data, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every example, sorted.
pub fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    v.sort();
    v
}

pub fn stem(p: &Path) -> String {
    p.file_stem().expect("name").to_string_lossy().to_string()
}

struct Dir(PathBuf);

impl ModuleSource for Dir {
    fn load(&self, name: &str) -> Option<(String, String)> {
        let path = self.0.join(format!("{}.arch", name.replace('.', "/")));
        Some((path.display().to_string(), std::fs::read_to_string(&path).ok()?))
    }
}

/// The forward program of an example.
pub fn forward(path: &Path) -> Program {
    let text = std::fs::read_to_string(path).expect("readable");
    let dir = Dir(path.parent().expect("dir").to_path_buf());
    let out = check_file(&path.display().to_string(), &text, &dir, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}: {:?}", path.display(), out.diagnostics);
    out.program.expect("program")
}

/// The train step of an example with a `train` block, rebuilt with plain SGD at learning
/// rate 1 (so `param - updated param` is the gradient); `None` without one.
pub fn sgd_train_step(path: &Path) -> Option<Program> {
    train_step(path, true)
}

/// The train step of an example with a `train` block (`sgd`: with its optimizer replaced
/// as [`sgd_train_step`] does); `None` without one.
pub fn train_step(path: &Path, sgd: bool) -> Option<Program> {
    let text = std::fs::read_to_string(path).expect("readable");
    if !text.contains("train ") && !text.contains("train{") {
        return None;
    }
    let dir = Dir(path.parent().expect("dir").to_path_buf());
    let out = train_file(&path.display().to_string(), &text, &dir, &Options::default());
    let mut cfg = out.config?;
    if !cfg.pending.is_empty() {
        // The loss reads data fields typed from the data, which this test does not read.
        return None;
    }
    if !sgd {
        return Some(build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("train step builds"));
    }
    cfg.spec.optimizer = Optimizer::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 };
    cfg.spec.clip = None;
    cfg.spec.noise = None;
    Some(build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("train step builds"))
}

/// Concrete shapes of `f`'s arguments: `B` at `batch`, other symbols 16 unless given.
pub fn shapes(f: &Func, dims: &HashMap<String, i64>) -> Vec<Vec<usize>> {
    let mut env = dims.clone();
    for (_, t) in &f.args {
        for d in &t.shape {
            for s in d.symbols() {
                env.entry(s.clone()).or_insert(if s == "B" { 2 } else { 16 });
            }
        }
    }
    f.args.iter().map(|(_, t)| t.shape.iter().map(|d| d.eval(&env).expect("sized") as usize).collect()).collect()
}

/// A deterministic tensor: normal-ish floats, ints in [0, 2), alternating bools.
pub fn random(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut unit = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let data = match dtype {
        DType::F32 => Data::F32((0..n).map(|_| (unit() * 4.0 - 2.0) as f32).collect()),
        DType::F64 => Data::F64((0..n).map(|_| unit() * 4.0 - 2.0).collect()),
        DType::I64 => Data::I64((0..n).map(|_| (unit() * 2.0) as i64).collect()),
        DType::Bool => Data::Bool((0..n).map(|_| unit() < 0.5).collect()),
        DType::C64 => Data::C64((0..n).map(|_| num_complex::Complex::new(unit() as f32, unit() as f32)).collect()),
    };
    Tensor { shape: shape.to_vec(), data }
}

/// Inputs of a function: parameters (`param:NAME`) at their initial values, `lr` 1,
/// optimizer state zeros, everything else random.
pub fn inputs(p: &Program, func: &str, dims: &HashMap<String, i64>) -> Vec<Tensor> {
    let f = p.func(func).expect("function");
    let shapes = shapes(f, dims);
    f.args
        .iter()
        .zip(&shapes)
        .enumerate()
        .map(|(i, ((_, t), s))| {
            let name = f.arg_names.get(i).map(String::as_str).unwrap_or("");
            if let Some(param) = name.strip_prefix("param:") {
                init_param(p.param(param).expect("declared"), 0).expect("init")
            } else if name == "lr" {
                Tensor::full(t.dtype, s, 1.0)
            } else if name.starts_with("state:") {
                Tensor::zeros(t.dtype, s)
            } else {
                random(t.dtype, s, i as u64 + 1)
            }
        })
        .collect()
}

/// `max |a - b| / max(max |b|, 1e-6)` over `want`'s finite elements.
pub fn scaled_error(got: &Tensor, want: &Tensor) -> f64 {
    let d = got.compare(want).expect("shapes checked first");
    let scale = (0..want.numel()).map(|i| want.data.get_c128(i).norm()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    d.max_abs / scale.max(1e-6)
}

/// Every disagreement of `got` with `want` (tolerance `tol` for inexact dtypes).
pub fn mismatches(label: &str, names: &[String], got: &[Tensor], want: &[Tensor], tol: f64) -> Vec<String> {
    if got.len() != want.len() {
        return vec![format!("{label}: {} outputs, the interpreter gives {}", got.len(), want.len())];
    }
    let mut out = Vec::new();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let name = names.get(i).map(String::as_str).unwrap_or("?");
        let what = format!("{label}: output {i} `{name}`");
        if g.dtype() != w.dtype() || g.shape() != w.shape() {
            out.push(format!("{what}: {} but the interpreter gives {}", g.type_string(), w.type_string()));
            continue;
        }
        match w.dtype() {
            DType::I64 | DType::Bool => {
                if g.data != w.data {
                    out.push(format!("{what}: differs\n   got: {g}\n  want: {w}"));
                }
            }
            _ => {
                let e = scaled_error(g, w);
                if e.is_nan() || e >= tol {
                    out.push(format!("{what}: scaled error {e:.3e}\n   got: {g}\n  want: {w}"));
                }
            }
        }
    }
    out
}
