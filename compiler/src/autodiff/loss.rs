//! Losses and metrics emitted into a train or eval step. Every loss is a mean over the
//! batch (axis 0); metrics are batch sums, so the loop can average over an epoch.

use super::emit::{Emitter, Res, V};
use crate::tir::{BinaryOp, DType, Dim, Func, Op, Program, ReduceOp, TensorType, UnaryOp};

#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy of logits `[B, C]` against `i64[B]` labels.
    CrossEntropy { smoothing: f64 },
    /// Mean squared error over every element.
    Mse,
    /// Mean over the batch of `||y - t|| / ||t||` (per-sample L2 norms).
    RelL2,
    /// Binary cross-entropy with logits.
    Bce,
    /// Softmax cross-entropy of logits `[B, C]` against a distribution per row
    /// (`f32[B, C]`, rows summing to 1): a supernet's in-place distillation, whose
    /// targets mix the labels with the largest subnet's probabilities. No metric.
    SoftCrossEntropy,
    /// A loss written as an expression: the program's function `func` (in a training
    /// program, `train.` + `func`) of the named model outputs and data fields `args`,
    /// returning the loss and one batch mean per metric of `metrics`
    /// (`sema::loss_expr`). [`objective`] calls it after the model.
    Func { func: String, args: Vec<String>, metrics: Vec<String> },
    /// An expression that reads these data fields, whose types are not known yet: a
    /// step cannot be built (`TrainConfig::pending`).
    Unresolved(Vec<String>),
}

impl Loss {
    /// The type of the target given the prediction's type.
    pub fn target_type(&self, pred: &TensorType) -> Res<TensorType> {
        match self {
            Loss::CrossEntropy { .. } => {
                if pred.rank() != 2 {
                    return Err(format!("cross_entropy needs logits of shape [B, C], found {pred}"));
                }
                Ok(TensorType::new(DType::I64, vec![pred.shape[0].clone()]))
            }
            _ => Ok(pred.clone()),
        }
    }
}

/// `(loss, metrics)`: the scalar loss and named batch-sum metrics.
pub fn emit_loss(e: &mut Emitter, loss: &Loss, pred: V, target: V) -> Res<(V, Vec<(String, V)>)> {
    match loss {
        Loss::Func { .. } => Err("only a built-in loss (cross_entropy, mse, rel_l2, bce) works here; \
                                  this loss is an expression"
            .into()),
        Loss::Unresolved(fields) => Err(unresolved(fields)),
        Loss::CrossEntropy { smoothing } => cross_entropy(e, pred, target, *smoothing),
        Loss::SoftCrossEntropy => {
            let logp = log_softmax(e, pred)?;
            Ok((mean_row_dot(e, target, logp)?, Vec::new()))
        }
        Loss::Mse => {
            let d = e.bin(BinaryOp::Sub, pred, target)?;
            let d2 = e.mul(d, d)?;
            let rank = e.ty(d2).rank();
            let l = e.op(Op::Reduce { op: ReduceOp::Mean, axes: (0..rank).collect(), keepdim: false }, &[d2], None)?;
            Ok((l, Vec::new()))
        }
        Loss::RelL2 => rel_l2(e, pred, target),
        Loss::Bce => bce(e, pred, target),
    }
}

fn batch_size(e: &mut Emitter, v: V, dtype: DType) -> Res<V> {
    let b = e.ty(v).shape[0].clone();
    e.dim_value(&b, dtype)
}

/// `log(softmax(logits))` along axis 1 of `[B, C]` logits, the maximum subtracted first.
fn log_softmax(e: &mut Emitter, logits: V) -> Res<V> {
    let t = e.ty(logits);
    let m = e.op(Op::Reduce { op: ReduceOp::Max, axes: vec![1], keepdim: true }, &[logits], None)?;
    let mb = e.broadcast(m, &t.shape)?;
    let z = e.bin(BinaryOp::Sub, logits, mb)?;
    let ez = e.un(UnaryOp::Exp, z)?;
    let s = e.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdim: true }, &[ez], None)?;
    let lse = e.un(UnaryOp::Log, s)?;
    let lseb = e.broadcast(lse, &t.shape)?;
    e.bin(BinaryOp::Sub, z, lseb)
}

/// `-Σ target · logp / B`: the cross-entropy of `[B, C]` log-probabilities against
/// target rows, a mean over the batch.
fn mean_row_dot(e: &mut Emitter, target: V, logp: V) -> Res<V> {
    let dtype = e.ty(logp).dtype;
    let prod = e.mul(target, logp)?;
    let total = e.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdim: false }, &[prod], None)?;
    let n = batch_size(e, logp, dtype)?;
    let mean = e.bin(BinaryOp::Div, total, n)?;
    e.neg(mean)
}

fn cross_entropy(e: &mut Emitter, logits: V, label: V, smoothing: f64) -> Res<(V, Vec<(String, V)>)> {
    let t = e.ty(logits);
    let (b, c) = (t.shape[0].clone(), t.shape[1].clone());
    let logp = log_softmax(e, logits)?;
    let onehot = one_hot(e, label, &b, &c, t.dtype)?;
    let target = if smoothing > 0.0 {
        let scaled = e.scale(onehot, 1.0 - smoothing)?;
        let cv = e.dim_value(&c, t.dtype)?;
        let eps = e.op(Op::Const(smoothing), &[], Some(TensorType::scalar(t.dtype)))?;
        let u = e.bin(BinaryOp::Div, eps, cv)?;
        let ub = e.broadcast(u, &t.shape)?;
        e.add(scaled, ub)?
    } else {
        onehot
    };
    let loss = mean_row_dot(e, target, logp)?;
    let pred = e.op(Op::ArgMax { axis: 1, keepdim: false }, &[logits], None)?;
    let hit = e.bin(BinaryOp::Eq, pred, label)?;
    let hitf = e.cast(hit, t.dtype)?;
    let correct = e.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[hitf], None)?;
    Ok((loss, vec![("correct".to_string(), correct)]))
}

/// `[B, C]` one-hot rows of `label` (i64[B]) as `dtype`.
fn one_hot(e: &mut Emitter, label: V, b: &Dim, c: &Dim, dtype: DType) -> Res<V> {
    let shape = vec![b.clone(), c.clone()];
    let classes = e.op(Op::Iota { axis: 1 }, &[], Some(TensorType::new(DType::I64, shape.clone())))?;
    let col = e.reshape(label, vec![b.clone(), Dim::constant(1)])?;
    let lb = e.broadcast(col, &shape)?;
    let eq = e.bin(BinaryOp::Eq, classes, lb)?;
    e.cast(eq, dtype)
}

fn rel_l2(e: &mut Emitter, pred: V, target: V) -> Res<(V, Vec<(String, V)>)> {
    let t = e.ty(pred);
    let axes: Vec<usize> = (1..t.rank()).collect();
    let d = e.bin(BinaryOp::Sub, pred, target)?;
    let d2 = e.mul(d, d)?;
    let num = e.op(Op::Reduce { op: ReduceOp::Sum, axes: axes.clone(), keepdim: false }, &[d2], None)?;
    let t2 = e.mul(target, target)?;
    let den = e.op(Op::Reduce { op: ReduceOp::Sum, axes, keepdim: false }, &[t2], None)?;
    let r = e.bin(BinaryOp::Div, num, den)?;
    let r = e.un(UnaryOp::Sqrt, r)?;
    let sum = e.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[r], None)?;
    let n = batch_size(e, pred, t.dtype)?;
    let l = e.bin(BinaryOp::Div, sum, n)?;
    Ok((l, vec![("rel_l2".to_string(), sum)]))
}

/// `mean(relu(z) - z t + log1p(exp(-|z|)))`, the stable form of BCE with logits.
fn bce(e: &mut Emitter, z: V, target: V) -> Res<(V, Vec<(String, V)>)> {
    let rz = e.un(UnaryOp::Relu, z)?;
    let zt = e.mul(z, target)?;
    let a = e.un(UnaryOp::Abs, z)?;
    let na = e.neg(a)?;
    let ex = e.un(UnaryOp::Exp, na)?;
    let l1 = e.un(UnaryOp::Log1p, ex)?;
    let s = e.bin(BinaryOp::Sub, rz, zt)?;
    let s = e.add(s, l1)?;
    let rank = e.ty(s).rank();
    let l = e.op(Op::Reduce { op: ReduceOp::Mean, axes: (0..rank).collect(), keepdim: false }, &[s], None)?;
    Ok((l, Vec::new()))
}

/// The model `main` followed by the loss function of `loss` (a [`Loss::Func`]), as one
/// function: its arguments are `main`'s, then the data fields the loss reads that are
/// not inputs of the model; its results are `loss`, `metric:NAME` (batch sums: the
/// function's batch means times the batch size) and `main`'s `buffer:` results. The
/// calls are left for the caller to inline.
pub fn objective(program: &Program, main: &str, loss: &Loss, sigs: &dyn crate::tir::infer::FuncSigs) -> Res<Func> {
    let (func, args, metrics) = match loss {
        Loss::Func { func, args, metrics } => (func, args, metrics),
        Loss::Unresolved(fields) => return Err(unresolved(fields)),
        _ => return Err("internal: not a loss function".into()),
    };
    let prefix = main.strip_suffix("main").unwrap_or("");
    let loss_name = format!("{prefix}{func}");
    let m = program.func(main).ok_or_else(|| format!("internal: no function `{main}`"))?;
    let lf = program.func(&loss_name).ok_or_else(|| format!("internal: no loss function `{loss_name}`"))?;
    let mut w = Func {
        name: format!("{main}+loss"),
        args: Vec::new(),
        arg_names: Vec::new(),
        body: Vec::new(),
        results: Vec::new(),
        result_names: Vec::new(),
    };
    for ((_, t), n) in m.args.iter().zip(&m.arg_names) {
        let v = w.next_value();
        w.args.push((v, t.clone()));
        w.arg_names.push(n.clone());
    }
    for ((_, t), n) in lf.args.iter().zip(args) {
        if !m.arg_names.contains(n) && !m.result_names.contains(n) {
            let v = w.next_value();
            w.args.push((v, t.clone()));
            w.arg_names.push(n.clone());
        }
    }
    let model_args: Vec<V> = w.args[..m.args.len()].iter().map(|(v, _)| *v).collect();
    let mut e = Emitter::new(w, sigs);
    let outs = e.op_multi(Op::Call(main.to_string()), &model_args)?;
    let mut loss_args = Vec::new();
    for n in args {
        let v = match m.result_names.iter().position(|r| r == n) {
            Some(i) => outs[i],
            None => {
                let i = e.func.arg_names.iter().position(|a| a == n).ok_or_else(|| format!("internal: no `{n}`"))?;
                e.func.args[i].0
            }
        };
        loss_args.push(v);
    }
    let res = e.op_multi(Op::Call(loss_name), &loss_args)?;
    let batch = batch_dim(&e.func);
    let mut results: Vec<(String, V)> = vec![("loss".into(), res[0])];
    for (name, &v) in metrics.iter().zip(&res[1..]) {
        let n = e.dim_value(&batch, DType::F32)?;
        results.push((format!("metric:{name}"), e.mul(v, n)?));
    }
    for (n, &v) in m.result_names.iter().zip(&outs) {
        if n.starts_with("buffer:") {
            results.push((n.clone(), v));
        }
    }
    let mut w = e.func;
    for (n, v) in results {
        w.results.push(v);
        w.result_names.push(n);
    }
    Ok(w)
}

/// The batch size: the first axis of the first argument with one (1 without).
fn batch_dim(f: &Func) -> Dim {
    f.args.iter().find_map(|(_, t)| t.shape.first().cloned()).unwrap_or(Dim::constant(1))
}

fn unresolved(fields: &[String]) -> String {
    format!("the loss reads data fields whose types are not known yet: {}", fields.join(", "))
}
