//! Optimizer updates emitted into the train step, with PyTorch's update rules.
//! Each optimizer declares its state slots per parameter (`m`, `v`, `buf`); a global
//! `step` counter (f32) is shared. The learning rate is an argument (`lr`), so schedules
//! live in the loop.

use super::emit::{Emitter, Res, V};
use crate::tir::{BinaryOp, DType, Op, ReduceOp, TensorType, UnaryOp};

#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    Sgd {
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl Optimizer {
    /// The state slots kept per parameter.
    pub fn slots(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd { momentum, .. } if *momentum != 0.0 => &["buf"],
            Optimizer::Sgd { .. } => &[],
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => &["m", "v"],
            Optimizer::RmsProp { .. } => &["v"],
        }
    }
}

/// The values an update needs besides the parameter itself.
pub struct UpdateCtx {
    pub lr: V,
    /// The step number after this update (1 for the first update), f32[].
    pub t: V,
}

/// Returns the updated parameter and its updated slots (in `slots()` order).
pub fn update(e: &mut Emitter, opt: &Optimizer, ctx: &UpdateCtx, p: V, g: V, slots: &[V]) -> Res<(V, Vec<V>)> {
    let lr = spread(e, ctx.lr, p)?;
    match opt {
        Optimizer::Sgd { momentum, nesterov, weight_decay } => {
            let g = l2(e, g, p, *weight_decay)?;
            if *momentum == 0.0 {
                return Ok((step(e, p, lr, g)?, vec![]));
            }
            // buf = momentum * buf + g; d = g + momentum * buf (Nesterov) or buf
            let mb = e.scale(slots[0], *momentum)?;
            let buf = e.add(mb, g)?;
            let d = if *nesterov {
                let mbuf = e.scale(buf, *momentum)?;
                e.add(g, mbuf)?
            } else {
                buf
            };
            Ok((step(e, p, lr, d)?, vec![buf]))
        }
        Optimizer::Adam { beta1, beta2, eps, weight_decay } => {
            let g = l2(e, g, p, *weight_decay)?;
            adam(e, ctx, p, g, lr, slots, (*beta1, *beta2, *eps))
        }
        Optimizer::AdamW { beta1, beta2, eps, weight_decay } => {
            // p = p - lr * wd * p, then Adam
            let decay = e.mul(lr, p)?;
            let decay = e.scale(decay, *weight_decay)?;
            let p1 = e.bin(BinaryOp::Sub, p, decay)?;
            adam(e, ctx, p1, g, lr, slots, (*beta1, *beta2, *eps))
        }
        Optimizer::RmsProp { alpha, eps, weight_decay } => {
            let g = l2(e, g, p, *weight_decay)?;
            // v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps)
            let av = e.scale(slots[0], *alpha)?;
            let g2 = e.mul(g, g)?;
            let g2 = e.scale(g2, 1.0 - alpha)?;
            let v = e.add(av, g2)?;
            let sv = e.un(UnaryOp::Sqrt, v)?;
            let epsv = e.fill(*eps, &e.ty(sv))?;
            let den = e.add(sv, epsv)?;
            let d = e.bin(BinaryOp::Div, g, den)?;
            Ok((step(e, p, lr, d)?, vec![v]))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn adam(
    e: &mut Emitter,
    ctx: &UpdateCtx,
    p: V,
    g: V,
    lr: V,
    slots: &[V],
    (b1, b2, eps): (f64, f64, f64),
) -> Res<(V, Vec<V>)> {
    // m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2
    let m1 = e.scale(slots[0], b1)?;
    let gm = e.scale(g, 1.0 - b1)?;
    let m = e.add(m1, gm)?;
    let v1 = e.scale(slots[1], b2)?;
    let g2 = e.mul(g, g)?;
    let g2 = e.scale(g2, 1.0 - b2)?;
    let v = e.add(v1, g2)?;
    // m_hat = m / (1 - b1^t); v_hat = v / (1 - b2^t)
    let c1 = bias_correction(e, b1, ctx.t)?;
    let c2 = bias_correction(e, b2, ctx.t)?;
    let c1 = spread(e, c1, p)?;
    let c2 = spread(e, c2, p)?;
    let mh = e.bin(BinaryOp::Div, m, c1)?;
    let vh = e.bin(BinaryOp::Div, v, c2)?;
    let sv = e.un(UnaryOp::Sqrt, vh)?;
    let epsv = e.fill(eps, &e.ty(sv))?;
    let den = e.add(sv, epsv)?;
    let d = e.bin(BinaryOp::Div, mh, den)?;
    Ok((step(e, p, lr, d)?, vec![m, v]))
}

/// `1 - beta^t` as a scalar.
fn bias_correction(e: &mut Emitter, beta: f64, t: V) -> Res<V> {
    let dt = e.ty(t).dtype;
    let b = e.op(Op::Const(beta), &[], Some(TensorType::scalar(dt)))?;
    let bt = e.bin(BinaryOp::Pow, b, t)?;
    let one = e.op(Op::Const(1.0), &[], Some(TensorType::scalar(dt)))?;
    e.bin(BinaryOp::Sub, one, bt)
}

/// `g + wd * p` (L2 penalty folded into the gradient).
fn l2(e: &mut Emitter, g: V, p: V, wd: f64) -> Res<V> {
    if wd == 0.0 {
        return Ok(g);
    }
    let d = e.scale(p, wd)?;
    e.add(g, d)
}

/// `p - lr * d`
fn step(e: &mut Emitter, p: V, lr: V, d: V) -> Res<V> {
    let s = e.mul(lr, d)?;
    e.bin(BinaryOp::Sub, p, s)
}

/// A scalar broadcast to `like`'s shape, cast to its dtype.
fn spread(e: &mut Emitter, s: V, like: V) -> Res<V> {
    let t = e.ty(like);
    let c = e.cast(s, t.dtype)?;
    e.broadcast(c, &t.shape)
}

/// Scales every gradient so that their global L2 norm is at most `max_norm`
/// (`g * min(1, max_norm / (norm + 1e-6))`, as torch.nn.utils.clip_grad_norm_).
pub fn clip_global_norm(e: &mut Emitter, grads: &[V], max_norm: f64) -> Res<Vec<V>> {
    let mut total: Option<V> = None;
    for &g in grads {
        let g2 = e.mul(g, g)?;
        let r = e.ty(g2).rank();
        let s = e.op(Op::Reduce { op: ReduceOp::Sum, axes: (0..r).collect(), keepdim: false }, &[g2], None)?;
        let s = e.cast(s, DType::F32)?;
        total = Some(match total {
            None => s,
            Some(t) => e.add(t, s)?,
        });
    }
    let Some(total) = total else { return Ok(Vec::new()) };
    let norm = e.un(UnaryOp::Sqrt, total)?;
    let eps = e.op(Op::Const(1e-6), &[], Some(TensorType::scalar(DType::F32)))?;
    let den = e.add(norm, eps)?;
    let mx = e.op(Op::Const(max_norm), &[], Some(TensorType::scalar(DType::F32)))?;
    let ratio = e.bin(BinaryOp::Div, mx, den)?;
    let one = e.op(Op::Const(1.0), &[], Some(TensorType::scalar(DType::F32)))?;
    let scale = e.bin(BinaryOp::Min, ratio, one)?;
    grads
        .iter()
        .map(|&g| {
            let s = spread(e, scale, g)?;
            e.mul(g, s)
        })
        .collect()
}

/// Adds annealed Gaussian noise with variance `eta / (1 + t)^gamma` to each gradient
/// (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very Deep
/// Networks"). `seed` makes each gradient's noise stream distinct.
pub fn add_noise(e: &mut Emitter, grads: &[V], t: V, eta: f64, gamma: f64, seed: u64) -> Res<Vec<V>> {
    let one = e.op(Op::Const(1.0), &[], Some(TensorType::scalar(DType::F32)))?;
    let tp = e.add(one, t)?;
    let gm = e.op(Op::Const(gamma), &[], Some(TensorType::scalar(DType::F32)))?;
    let den = e.bin(BinaryOp::Pow, tp, gm)?;
    let et = e.op(Op::Const(eta), &[], Some(TensorType::scalar(DType::F32)))?;
    let var = e.bin(BinaryOp::Div, et, den)?;
    let sd = e.un(UnaryOp::Sqrt, var)?;
    let mut out = Vec::new();
    for (i, &g) in grads.iter().enumerate() {
        let ty = e.ty(g);
        let z = e.op(Op::RandNormal { seed: seed + i as u64 }, &[], Some(ty))?;
        let s = spread(e, sd, g)?;
        let n = e.mul(z, s)?;
        out.push(e.add(g, n)?);
    }
    Ok(out)
}
