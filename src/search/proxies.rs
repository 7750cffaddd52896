//! Training-free ("zero-cost") proxies: scores of an untrained candidate network from one
//! minibatch, used to rank the candidates of a search space without training them.
//!
//! Contract of [`score`] / [`Scorer::score`]:
//! - `program` is a candidate's inference build: `main` with one input (the data) and the
//!   logits as its first output; `params` hold a value for every parameter and buffer it
//!   reads (as `Interpreter::init_params` gives them); `loss` is the train block's loss.
//! - Every proxy evaluates the network in float64: the program's `f32` types are widened
//!   to `f64` ([`widen`]) and the parameters and data converted, so scores are
//!   reproducible and match a float64 reference (complex values stay `c64`).
//! - The network runs as built for inference: BatchNorm normalises with its running
//!   statistics (fresh ones, mean 0 and variance 1, make it nearly the identity), not with
//!   batch statistics as zero-cost-nas's training-mode scoring does.
//! - Per-weight measures (synflow, grad_norm, snip) sum over the *weights*, the trainable
//!   parameters of rank >= 2: convolution and linear weights, and also recurrent cells'
//!   matrices and embedding tables; biases and normalisation scales (rank 1) are left out,
//!   as zero-cost-nas sums over `Conv2d`/`Linear` weights only.
//! - A proxy that does not apply is an `Err` that says why, never a silent number:
//!   `naswot` on a network without `relu`, `hidden_cov` without `scan`, `jacob_cov` and
//!   `hidden_cov` on a batch of one (a correlation over one sample says nothing), a NaN or
//!   infinite input, or a NaN anywhere in the computation. `naswot` of a singular kernel
//!   (two samples with the same codes) is `-inf`, the log of `|det K| = 0`.
//!
//! The proxies (SamsungLabs zero-cost-nas, `foresight/pruners/measures`, and Mellor et
//! al. 2021 for NASWOT):
//! - `synflow`: every trainable parameter replaced by its absolute value (buffers kept),
//!   the network run on one input of ones (batch 1), `R = sum(output)`:
//!   `sum |theta * dR/dtheta|` over the weights. BatchNorm stays, with its running
//!   statistics (zero-cost-nas removes it; a fresh one is nearly the identity here).
//! - `grad_norm`: `sum ||dL/dW||_2` over the weights, `L` the loss on the minibatch.
//! - `snip`: `sum |W * dL/dW|` over the weights.
//! - `jacob_cov`: `J` = gradient of the summed output with respect to the input, one
//!   flattened row per sample; `C = corrcoef(J)` with eigenvalues `l`:
//!   `-sum(log(l + k) + 1 / (l + k))`, `k = 1e-5`.
//! - `naswot`: the binary code `x > 0` of every ReLU unit per sample (every `relu` of
//!   `main` with calls inlined whose value has the batch as its first axis; relus inside
//!   `scan`/`vmap` bodies are not seen), `K[i, j] = N_A - hamming(c_i, c_j)`:
//!   `log |det K|`.
//! - `hidden_cov`: the final carries of every `scan` of `main` (with calls inlined)
//!   whose carry has the batch as its first axis, flattened and concatenated per sample
//!   (an LSTM's carry holds its cell state too); their correlation matrix over the
//!   minibatch, scored like `jacob_cov`.
//!
//! Cost: a [`Scorer`] builds its three float64 functions (features, gradient of the
//! summed output, gradient of the loss) once, each on first use; [`score`] builds a
//! scorer per call, so a search scoring many batches or proxies of one candidate keeps a
//! `Scorer`.

use archc_compiler::autodiff::emit::Emitter;
use archc_compiler::autodiff::expand::{hoist_params, inline_calls, params_to_args};
use archc_compiler::autodiff::loss::{emit_loss, Loss};
use archc_compiler::autodiff::{gradient, FuncTable};
use archc_compiler::tir::{DType, Dim, Func, Op, Program, ReduceOp, TensorType, UnaryOp, ValueId};
use archc_runtime::{Interpreter, Tensor};
use nalgebra::DMatrix;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// One training-free proxy (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Proxy {
    Synflow,
    Naswot,
    JacobCov,
    GradNorm,
    Snip,
    HiddenCov,
}

impl Proxy {
    pub const ALL: [Proxy; 6] =
        [Proxy::Synflow, Proxy::Naswot, Proxy::JacobCov, Proxy::GradNorm, Proxy::Snip, Proxy::HiddenCov];

    pub fn name(self) -> &'static str {
        match self {
            Proxy::Synflow => "synflow",
            Proxy::Naswot => "naswot",
            Proxy::JacobCov => "jacob_cov",
            Proxy::GradNorm => "grad_norm",
            Proxy::Snip => "snip",
            Proxy::HiddenCov => "hidden_cov",
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Proxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Proxy, String> {
        Proxy::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Proxy::ALL.iter().map(|p| p.name()).collect();
            format!("unknown proxy `{s}`; the proxies: {}", names.join(", "))
        })
    }
}

/// One minibatch: the network's input and the loss target (class labels for
/// cross-entropy).
#[derive(Copy, Clone, Debug)]
pub struct Batch<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// `proxy` of `program` with `params` on `batch` (see the module docs). Builds a
/// [`Scorer`] each call.
pub fn score(
    proxy: Proxy,
    program: &Program,
    params: &HashMap<String, Tensor>,
    batch: &Batch,
    loss: &Loss,
) -> Result<f64, String> {
    Scorer::new(program, loss)?.score(proxy, params, batch)
}

/// The float64 functions the proxies run, built once per candidate (each on first use).
pub struct Scorer {
    wide: Program,
    loss: Loss,
    features: OnceLock<Result<Part, String>>,
    sum_grad: OnceLock<Result<Part, String>>,
    loss_grad: OnceLock<Result<Part, String>>,
}

/// One derived function in a program of its own.
struct Part {
    program: Program,
    /// The parameter of each `param:` argument, in argument order.
    params: Vec<String>,
    /// The parameters whose gradients follow the function's own results, in order.
    wrt: Vec<String>,
    /// How many ReLU values, then how many scan carries, `features` returns.
    relus: usize,
    carries: usize,
}

/// How a part is built from the widened program.
type Build = fn(&Program, &Loss) -> Result<Part, String>;

/// The function every part names its derived function.
const ENTRY: &str = "proxy";

impl Scorer {
    /// Checks that `program` is a classifier-shaped inference build and widens it.
    pub fn new(program: &Program, loss: &Loss) -> Result<Scorer, String> {
        let main = program.func("main").ok_or("the program has no `main`")?;
        if main.args.len() != 1 {
            return Err(format!("proxies need a network with one input; `main` has {}", main.args.len()));
        }
        let out = main.result_types().into_iter().next().ok_or("`main` has no output")?;
        if !out.dtype.is_float() || out.rank() == 0 {
            return Err(format!("the first output of `main` must be real logits with a batch axis, found {out}"));
        }
        let cell = OnceLock::new;
        Ok(Scorer { wide: widen(program), loss: loss.clone(), features: cell(), sum_grad: cell(), loss_grad: cell() })
    }

    /// The value of `proxy` with `params` on `batch`.
    pub fn score(&self, proxy: Proxy, params: &HashMap<String, Tensor>, batch: &Batch) -> Result<f64, String> {
        let x = data_f64(batch.x, "the input")?;
        let s = match proxy {
            Proxy::Synflow => self.synflow(params, &x),
            Proxy::GradNorm => self.per_weight(params, &x, batch.y, |_, g| norm(g)),
            Proxy::Snip => self.per_weight(params, &x, batch.y, abs_dot),
            Proxy::JacobCov => self.jacob_cov(params, &x),
            Proxy::Naswot => self.naswot(params, &x),
            Proxy::HiddenCov => self.hidden_cov(params, &x),
        }
        .map_err(|e| format!("{proxy}: {e}"))?;
        // Only naswot has a meaningful infinite value: the log of a zero determinant.
        match s.is_nan() || (s.is_infinite() && proxy != Proxy::Naswot) {
            true => Err(format!("{proxy}: the score is not a finite number ({s})")),
            false => Ok(s),
        }
    }

    /// The part in `cell`, built by `build` on first use.
    fn part<'a>(&'a self, cell: &'a OnceLock<Result<Part, String>>, build: Build) -> Result<&'a Part, String> {
        cell.get_or_init(|| build(&self.wide, &self.loss)).as_ref().map_err(Clone::clone)
    }

    fn synflow(&self, params: &HashMap<String, Tensor>, x: &Tensor) -> Result<f64, String> {
        let part = self.part(&self.sum_grad, build_sum_grad)?;
        let mut shape = x.shape.clone();
        shape[0] = 1;
        let ones = Tensor::ones(x.dtype(), &shape);
        let abs = |name: &str, t: Tensor| if self.trainable(name) { abs_tensor(&t) } else { t };
        let inputs = part.inputs(vec![ones], params, abs)?;
        let out = part.run(&inputs)?;
        let grads = &out[2..];
        self.sum_weights(part, grads, |name, g| Ok(abs_dot(&inputs[1 + part.arg_of(name)?], g)))
    }

    /// `sum over weights of f(W, dL/dW)`.
    fn per_weight(
        &self,
        params: &HashMap<String, Tensor>,
        x: &Tensor,
        y: &Tensor,
        f: fn(&Tensor, &Tensor) -> f64,
    ) -> Result<f64, String> {
        let part = self.part(&self.loss_grad, build_loss_grad)?;
        let y = if y.dtype() == DType::F32 { y.cast(DType::F64) } else { y.clone() };
        let inputs = part.inputs(vec![x.clone(), y], params, |_, t| t)?;
        let out = part.run(&inputs)?;
        self.sum_weights(part, &out[1..], |name, g| Ok(f(&inputs[2 + part.arg_of(name)?], g)))
    }

    fn jacob_cov(&self, params: &HashMap<String, Tensor>, x: &Tensor) -> Result<f64, String> {
        if x.dtype() != DType::F64 {
            return Err(format!("the input is {}: a Jacobian needs a real-valued input", x.type_string()));
        }
        let part = self.part(&self.sum_grad, build_sum_grad)?;
        let inputs = part.inputs(vec![x.clone()], params, |_, t| t)?;
        let out = part.run(&inputs)?;
        let rows = per_sample(&[&out[1]])?;
        eigen_score(&corrcoef(&rows, "the input gradient")?)
    }

    fn naswot(&self, params: &HashMap<String, Tensor>, x: &Tensor) -> Result<f64, String> {
        let part = self.part(&self.features, build_features)?;
        if part.relus == 0 {
            return Err("the network has no relu whose value has the batch as its first axis".into());
        }
        let inputs = part.inputs(vec![x.clone()], params, |_, t| t)?;
        let out = part.run(&inputs)?;
        let acts: Vec<&Tensor> = out[..part.relus].iter().collect();
        log_abs_det(&code_kernel(&per_sample(&acts)?))
    }

    fn hidden_cov(&self, params: &HashMap<String, Tensor>, x: &Tensor) -> Result<f64, String> {
        let part = self.part(&self.features, build_features)?;
        if part.carries == 0 {
            return Err("the network has no scan whose carry has the batch as its first axis".into());
        }
        let inputs = part.inputs(vec![x.clone()], params, |_, t| t)?;
        let out = part.run(&inputs)?;
        let states: Vec<&Tensor> = out[part.relus..part.relus + part.carries].iter().collect();
        eigen_score(&corrcoef(&per_sample(&states)?, "the final hidden state")?)
    }

    fn trainable(&self, name: &str) -> bool {
        self.wide.param(name).is_some_and(|d| d.trainable)
    }

    /// `sum over the weights (trainable, rank >= 2) of f(name, gradient)`.
    fn sum_weights(
        &self,
        part: &Part,
        grads: &[Tensor],
        f: impl Fn(&str, &Tensor) -> Result<f64, String>,
    ) -> Result<f64, String> {
        let mut total = 0.0;
        let mut any = false;
        for (name, g) in part.wrt.iter().zip(grads) {
            if self.wide.param(name).is_some_and(|d| d.ty.rank() >= 2) {
                total += f(name, g)?;
                any = true;
            }
        }
        match any {
            true => Ok(total),
            false => Err("the network has no weight (a trainable parameter of rank >= 2)".into()),
        }
    }
}

impl Part {
    /// The data inputs, then every `param:` argument from `params` (converted to f64 and
    /// passed through `map`).
    fn inputs(
        &self,
        data: Vec<Tensor>,
        params: &HashMap<String, Tensor>,
        map: impl Fn(&str, Tensor) -> Tensor,
    ) -> Result<Vec<Tensor>, String> {
        let mut inputs = data;
        for name in &self.params {
            let t = params.get(name).ok_or_else(|| format!("no value for the parameter `{name}`"))?;
            inputs.push(map(name, data_f64(t, &format!("the parameter `{name}`"))?));
        }
        Ok(inputs)
    }

    /// The position of parameter `name` among the `param:` arguments.
    fn arg_of(&self, name: &str) -> Result<usize, String> {
        self.params.iter().position(|p| p == name).ok_or_else(|| format!("internal: `{name}` is not an argument"))
    }

    /// Runs the function; every real result must be finite.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let out = Interpreter::new(&self.program).run(ENTRY, inputs).map_err(|e| e.to_string())?;
        if out.iter().any(|t| t.as_f64().is_some_and(|v| v.iter().any(|x| !x.is_finite()))) {
            return Err("the network computes a NaN or infinite value".into());
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------- building

/// `p` with every `f32` type (parameters, arguments, instruction results) made `f64`.
pub fn widen(p: &Program) -> Program {
    let mut w = p.clone();
    let widen_ty = |t: &mut TensorType| {
        if t.dtype == DType::F32 {
            t.dtype = DType::F64;
        }
    };
    w.params.iter_mut().for_each(|d| widen_ty(&mut d.ty));
    for f in &mut w.funcs {
        f.args.iter_mut().for_each(|(_, t)| widen_ty(t));
        for inst in &mut f.body {
            widen_ty(&mut inst.ty);
            inst.extra.iter_mut().for_each(|(_, t)| widen_ty(t));
        }
    }
    w
}

/// `main` with calls inlined, parameter reads hoisted out of scan/vmap bodies, and its
/// results cleared; the logits value.
fn forward(wide: &Program, table: &FuncTable) -> Result<(Func, ValueId), String> {
    let mut f = hoist_params(table, &inline_calls(wide, wide.main())?)?;
    let logits = f.results[0];
    f.results.clear();
    f.result_names.clear();
    f.name = ENTRY.into();
    Ok((f, logits))
}

/// The part whose function is `f` (`params`: its `param:` arguments), with the functions
/// `table` added; checked by the verifier in debug builds (the tests), as Cranelift
/// verifies its IR: a search scores thousands of candidates, and verifying each one's
/// gradient program took a tenth of a proxy evaluation.
fn finish(wide: &Program, table: FuncTable, mut f: Func, params: Vec<String>) -> Result<Part, String> {
    archc_compiler::passes::dead_code(&mut f);
    let mut program = wide.clone();
    program.funcs.insert(0, f);
    program.funcs.extend(table.added.into_inner());
    if !cfg!(debug_assertions) {
        return Ok(Part { program, params, wrt: Vec::new(), relus: 0, carries: 0 });
    }
    if let Err(errors) = archc_compiler::tir::verify(&program) {
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(format!("internal error: the proxy function does not verify: {}", msgs.join("; ")));
    }
    Ok(Part { program, params, wrt: Vec::new(), relus: 0, carries: 0 })
}

/// `proxy(x, param:...) -> (relu values..., final scan carries...)`.
fn build_features(wide: &Program, _loss: &Loss) -> Result<Part, String> {
    let table = FuncTable::new(wide);
    let (mut f, _) = forward(wide, &table)?;
    let batch = f.args[0].1.shape.first().cloned().ok_or("the input has no batch axis")?;
    let relus = per_sample_values(&f, &batch, |op| matches!(op, Op::Unary(UnaryOp::Relu)).then_some(1));
    let carries = per_sample_values(&f, &batch, |op| match op {
        Op::Scan { carries, .. } => Some(*carries),
        _ => None,
    });
    f.results = relus.iter().chain(&carries).copied().collect();
    f.result_names = f.results.iter().map(|v| format!("feature{}", v.0)).collect();
    let params = params_to_args(wide, &mut f);
    let part = finish(wide, table, f, params)?;
    Ok(Part { relus: relus.len(), carries: carries.len(), ..part })
}

/// The first `count(op)` results of every instruction `count` selects whose type leads
/// with the batch dim.
fn per_sample_values(f: &Func, batch: &Dim, count: impl Fn(&Op) -> Option<usize>) -> Vec<ValueId> {
    let mut out = Vec::new();
    for inst in &f.body {
        let Some(n) = count(&inst.op) else { continue };
        for (v, t) in inst.results().take(n) {
            if t.shape.first() == Some(batch) && t.dtype.is_float() {
                out.push(v);
            }
        }
    }
    out
}

/// `proxy(x, param:...) -> (R, dR/dx, dR/dtheta...)`, `R` the sum of the logits, over
/// every trainable parameter.
fn build_sum_grad(wide: &Program, _loss: &Loss) -> Result<Part, String> {
    let table = FuncTable::new(wide);
    let (f, logits) = forward(wide, &table)?;
    let x = f.args[0].0;
    let mut e = Emitter::new(f, &table);
    let rank = e.ty(logits).rank();
    let r = e.op(Op::Reduce { op: ReduceOp::Sum, axes: (0..rank).collect(), keepdim: false }, &[logits], None)?;
    let mut f = e.func;
    let params = params_to_args(wide, &mut f);
    let (wrt_names, mut wrt) = trainable_args(wide, &f, &params);
    wrt.insert(0, x);
    let mut g = gradient(&f, &table, r, &wrt)?;
    g.results.insert(0, r);
    g.result_names.insert(0, "sum".into());
    let part = finish(wide, table, g, params)?;
    Ok(Part { wrt: wrt_names, ..part })
}

/// `proxy(x, target, param:...) -> (L, dL/dtheta...)` over every trainable parameter.
fn build_loss_grad(wide: &Program, loss: &Loss) -> Result<Part, String> {
    let table = FuncTable::new(wide);
    let (mut f, logits) = forward(wide, &table)?;
    let pred = f.type_of(logits).cloned().ok_or("the logits are not defined")?;
    let target = f.next_value();
    f.args.push((target, loss.target_type(&pred)?));
    f.arg_names.push("target".into());
    let params = params_to_args(wide, &mut f);
    let mut e = Emitter::new(f, &table);
    let (l, _metrics) = emit_loss(&mut e, loss, logits, target)?;
    let f = e.func;
    let (wrt_names, wrt) = trainable_args(wide, &f, &params);
    let mut g = gradient(&f, &table, l, &wrt)?;
    g.results.insert(0, l);
    g.result_names.insert(0, "loss".into());
    let part = finish(wide, table, g, params)?;
    Ok(Part { wrt: wrt_names, ..part })
}

/// The trainable parameters among `params` (the `param:` arguments of `f`, in order),
/// with their argument values.
fn trainable_args(wide: &Program, f: &Func, params: &[String]) -> (Vec<String>, Vec<ValueId>) {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for name in params {
        if !wide.param(name).is_some_and(|d| d.trainable) {
            continue;
        }
        let label = format!("param:{name}");
        if let Some(i) = f.arg_names.iter().position(|a| *a == label) {
            names.push(name.clone());
            values.push(f.args[i].0);
        }
    }
    (names, values)
}

// ---------------------------------------------------------------- numerics

/// A real tensor as f64; a NaN or infinite value is an error naming `what`.
fn data_f64(t: &Tensor, what: &str) -> Result<Tensor, String> {
    let t = match t.dtype() {
        DType::F64 => t.clone(),
        DType::F32 => t.cast(DType::F64),
        _ => return Ok(t.clone()),
    };
    if t.as_f64().is_some_and(|v| v.iter().any(|x| !x.is_finite())) {
        return Err(format!("{what} has a NaN or infinite value"));
    }
    Ok(t)
}

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().unwrap_or(&[])
}

fn abs_tensor(t: &Tensor) -> Tensor {
    Tensor::from_f64(&t.shape, f64s(t).iter().map(|x| x.abs()).collect())
}

/// `sum |a * b|`.
fn abs_dot(a: &Tensor, b: &Tensor) -> f64 {
    f64s(a).iter().zip(f64s(b)).map(|(x, y)| (x * y).abs()).sum()
}

/// The L2 norm.
fn norm(t: &Tensor) -> f64 {
    f64s(t).iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// One row per sample: each tensor's first axis is the batch; the rest is flattened and
/// the tensors are concatenated.
fn per_sample(ts: &[&Tensor]) -> Result<Vec<Vec<f64>>, String> {
    let b = ts.first().and_then(|t| t.shape.first().copied()).ok_or("no per-sample values")?;
    let mut rows = vec![Vec::new(); b];
    for t in ts {
        if t.shape.first() != Some(&b) {
            return Err(format!("per-sample values of {} do not have the batch of {b} first", t.type_string()));
        }
        let v = f64s(t);
        let per = v.len() / b.max(1);
        for (i, row) in rows.iter_mut().enumerate() {
            row.extend_from_slice(&v[i * per..(i + 1) * per]);
        }
    }
    Ok(rows)
}

/// The correlation matrix of the rows (numpy's `corrcoef`, clipped to [-1, 1]); a batch
/// of one or a constant row is an error naming `what`.
fn corrcoef(rows: &[Vec<f64>], what: &str) -> Result<DMatrix<f64>, String> {
    let b = rows.len();
    if b < 2 {
        return Err(format!("a correlation over the batch needs at least 2 samples, the batch has {b}"));
    }
    let mut centred = Vec::with_capacity(b);
    for (i, r) in rows.iter().enumerate() {
        let mean = r.iter().sum::<f64>() / r.len().max(1) as f64;
        let c: Vec<f64> = r.iter().map(|x| x - mean).collect();
        let n = c.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n == 0.0 {
            return Err(format!("{what} of sample {i} is constant: its correlation is undefined"));
        }
        centred.push(c.into_iter().map(|x| x / n).collect::<Vec<f64>>());
    }
    Ok(DMatrix::from_fn(b, b, |i, j| {
        let d: f64 = centred[i].iter().zip(&centred[j]).map(|(x, y)| x * y).sum();
        d.clamp(-1.0, 1.0)
    }))
}

/// `-sum(log(l + k) + 1 / (l + k))` over the eigenvalues `l` of the symmetric `c`,
/// `k = 1e-5` (zero-cost-nas's `eval_score`).
fn eigen_score(c: &DMatrix<f64>) -> Result<f64, String> {
    const K: f64 = 1e-5;
    let eig = c.clone().symmetric_eigenvalues();
    if eig.iter().any(|l| l + K <= 0.0) {
        return Err("the correlation matrix has an eigenvalue below -1e-5".into());
    }
    Ok(-eig.iter().map(|l| (l + K).ln() + 1.0 / (l + K)).sum::<f64>())
}

/// NASWOT's kernel: `K[i, j]` = the number of units where samples `i` and `j` agree on
/// `x > 0`.
fn code_kernel(rows: &[Vec<f64>]) -> DMatrix<f64> {
    let codes: Vec<Vec<bool>> = rows.iter().map(|r| r.iter().map(|x| *x > 0.0).collect()).collect();
    let b = codes.len();
    DMatrix::from_fn(b, b, |i, j| codes[i].iter().zip(&codes[j]).filter(|(a, c)| a == c).count() as f64)
}

/// `log |det k|` through an LU factorisation (`-inf` when singular).
fn log_abs_det(k: &DMatrix<f64>) -> Result<f64, String> {
    let u = k.clone().lu().u();
    Ok(u.diagonal().iter().map(|d| d.abs().ln()).sum())
}
