//! Convolution and pooling as `linalg` ops: pointwise convolutions by the runtime's
//! `gemm` in place, others as im2col products or generic windows.

use super::builder::{ds, fixed, product, Builder, Iter, Operand, V};
use super::contract::{at_least, dyn_view, LONG_GEMM};
use super::lower::FnLower;
use super::reshape::dims;
use super::scalar;
use super::types::tensor;
use super::{EmitResult, Ty};
use archc_compiler::tir::{pattern, BinaryOp, DType, Dim, PoolOp};

/// The attributes of a `conv` op.
pub struct ConvSpec<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
    pub dilation: &'a [i64],
    pub groups: i64,
}

/// Whether a convolution is a per-position product over channels that the runtime's
/// `gemm` can run in place: a window of one, unit stride, no padding, one group, an f32
/// or f64 sum short enough to stay in its dtype (see [`LONG_GEMM`]).
pub(super) fn pointwise(x: &V, w: &V, spec: &ConvSpec) -> bool {
    let short = x.dtype == DType::F64 || (x.dtype == DType::F32 && !at_least(&x.shape[1], LONG_GEMM));
    short && pattern::pointwise_conv(spec.stride, spec.padding, spec.groups, &w.shape[2..])
}

impl FnLower<'_, '_, '_> {
    /// Cross-correlation with groups. Floats go through im2col and the runtime's batched
    /// matmul ([`Self::conv_gemm`]); other dtypes through one `linalg.generic`.
    pub fn conv(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> EmitResult<V> {
        if pointwise(x, w, spec) {
            return Ok(self.conv_pointwise(x, w, out));
        }
        if x.dtype.is_float() {
            return self.conv_gemm(x, w, spec, out);
        }
        self.conv_generic(x, w, spec, out)
    }

    /// A pointwise convolution ([`pointwise`]): `y[b] = w @ x[b]` for every batch entry, one
    /// batched product whose weight operand is a stride-0 view; no copies (the spatial
    /// axes are flattened in place).
    pub(super) fn conv_pointwise(&mut self, x: &V, w: &V, out: &Ty) -> V {
        let nd = x.rank() - 2;
        let (bsz, c) = (x.shape[0].clone(), x.shape[1].clone());
        let s_all = product(&x.shape[2..]);
        let flat_groups = [vec![0], vec![1], (2..2 + nd).collect()];
        let x3 = match nd {
            1 => x.clone(),
            _ => self.regroup(x, &[bsz.clone(), c, s_all.clone()], &flat_groups, false),
        };
        let dyn_ty = dyn_view(3, x.dtype);
        let cw = self.batch_broadcast_view(w, &bsz, &dyn_ty);
        let cx = self.matmul_operand(&x3, &dyn_ty);
        let y = self.library_call(&cw, &cx, &(x.dtype, vec![bsz, w.shape[0].clone(), s_all]));
        match nd {
            1 => y,
            _ => self.regroup(&y, &out.1, &flat_groups, true),
        }
    }

    /// im2col: the padded input gathered into `col[G, C/G * K, B * S]` (`K` the window,
    /// `S` the output positions), then `y[G, O/G, B * S] = w[G, O/G, C/G * K] @ col` as
    /// one batched matmul, then moved to `[B, O, S]`.
    pub(super) fn conv_gemm(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> EmitResult<V> {
        let ConvSpec { stride, dilation, .. } = *spec;
        let nd = stride.len();
        let dt = x.dtype;
        let g = spec.groups as usize;
        let bsz = x.shape[0].clone();
        let (cg, og) = group_sizes(x, w, g)?;
        let win: Vec<usize> = w.shape[2..].iter().map(fixed).collect::<Result<_, _>>()?;
        let spatial: Vec<Dim> = out.1[2..].to_vec();
        let k_all: usize = win.iter().product();
        let s_all = product(&spatial);
        let xg = self.padded_groups(x, spec)?;
        // col loops: g, c, k_1..k_nd, b, s_1..s_nd (all parallel).
        let col_shape = [ds(&[g]), vec![cg.clone()], ds(&win), vec![bsz.clone()], spatial.clone()].concat();
        let b_loop = 2 + nd;
        let xmap: Vec<String> = [
            vec![format!("d{b_loop}"), "d0".into(), "d1".into()],
            (0..nd).map(|i| format!("d{} * {} + d{} * {}", b_loop + 1 + i, stride[i], 2 + i, dilation[i])).collect(),
        ]
        .concat();
        let init = self.b.empty(dt, &col_shape);
        let iters = vec![Iter::Par; col_shape.len()];
        let col = self
            .b
            .generic(&[Operand::new(&xg, xmap)], &[Operand::identity(&init)], &iters, |_, a| vec![a[0].clone()])
            .remove(0);
        let bs = bsz.mul(&s_all);
        let ck = cg.mul(&Dim::constant(k_all as i64));
        let gd = Dim::constant(g as i64);
        let col = self.regroup(
            &col,
            &[gd.clone(), ck.clone(), bs.clone()],
            &[vec![0], (1..2 + nd).collect(), (2 + nd..3 + 2 * nd).collect()],
            false,
        );
        let w_split: Vec<Vec<usize>> = [vec![vec![0, 1]], (2..3 + nd).map(|i| vec![i]).collect()].concat();
        let wg = self.regroup(w, &[vec![gd.clone(), og.clone(), cg], ds(&win)].concat(), &w_split, true);
        let wg = self.regroup(&wg, &[gd.clone(), og.clone(), ck], &[vec![0], vec![1], (2..3 + nd).collect()], false);
        let y = self.matmul(&wg, &col, &(dt, vec![gd.clone(), og.clone(), bs]));
        let y = self.regroup(
            &y,
            &[vec![gd, og, bsz], spatial.clone()].concat(),
            &[vec![0], vec![1], (2..3 + nd).collect()],
            true,
        );
        let perm: Vec<usize> = [vec![2, 0, 1], (3..3 + nd).collect()].concat();
        let y = self.permute(&y, &perm);
        let groups: Vec<Vec<usize>> = [vec![vec![0], vec![1, 2]], (3..3 + nd).map(|i| vec![i]).collect()].concat();
        Ok(self.regroup(&y, &out.1, &groups, false))
    }

    /// `tensor.expand_shape` (`expand`: `groups[i]` lists the axes of `shape` that axis `i`
    /// of `x` becomes) or `tensor.collapse_shape` (`groups[i]` lists the axes of `x` that
    /// become axis `i` of `shape`).
    pub(super) fn regroup(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], expand: bool) -> V {
        let list = |g: &Vec<usize>| format!("[{}]", g.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
        let reassoc = format!("[{}]", groups.iter().map(list).collect::<Vec<_>>().join(", "));
        let ty = tensor(x.dtype, shape);
        let name = if expand {
            for g in groups {
                self.one_dynamic_size(g.iter().map(|&i| &shape[i]));
            }
            let dims = self.b.mixed(shape);
            self.b.assign(format!(
                "tensor.expand_shape {} {reassoc} output_shape [{}] : {} into {ty}",
                x.name,
                dims.join(", "),
                x.ty()
            ))
        } else {
            self.b.assign(format!("tensor.collapse_shape {} {reassoc} : {} into {ty}", x.name, x.ty()))
        };
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// `x` padded and with its channels split `[B, G, C/G, S...]`.
    pub(super) fn padded_groups(&mut self, x: &V, spec: &ConvSpec) -> EmitResult<V> {
        let g = spec.groups as usize;
        let full_pad: Vec<(i64, i64)> = [vec![(0, 0); 2], spec.padding.to_vec()].concat();
        let xp = self.pad_value(x, &full_pad, 0.0);
        let cg = match g {
            1 => x.shape[1].clone(),
            _ => Dim::constant((x.fixed(1)? / g) as i64),
        };
        let xs = [vec![x.shape[0].clone(), Dim::constant(g as i64), cg], xp.shape[2..].to_vec()].concat();
        Ok(self.expand(&xp, &xs, &[vec![0, 1]], 1))
    }

    /// The whole convolution as one `linalg.generic` (non-float dtypes).
    pub(super) fn conv_generic(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> EmitResult<V> {
        let ConvSpec { stride, dilation, .. } = *spec;
        let nd = stride.len();
        let g = spec.groups as usize;
        let (bsz, cin) = (x.shape[0].clone(), x.fixed(1)?);
        let cout = w.fixed(0)?;
        let xg = self.padded_groups(x, spec)?;
        let ws = [ds(&[g, cout / g]), w.shape[1..].to_vec()].concat();
        let wg = self.expand(w, &ws, &[vec![0, 1]], 0);
        let os = [vec![bsz], ds(&[g, cout / g]), out.1[2..].to_vec()].concat();
        let red = Dim::constant((cin / g) as i64).mul(&product(&w.shape[2..]));
        // Loops: b, g, o, s_1..s_nd, c, k_1..k_nd.
        let s0 = 3;
        let c = 3 + nd;
        let k0 = 4 + nd;
        let xmap: Vec<String> = [
            vec!["d0".into(), "d1".into(), format!("d{c}")],
            (0..nd).map(|i| format!("d{} * {} + d{} * {}", s0 + i, stride[i], k0 + i, dilation[i])).collect(),
        ]
        .concat();
        let wmap = [vec!["d1".to_string(), "d2".into(), format!("d{c}")], dims(k0..k0 + nd)].concat();
        let omap = dims(0..3 + nd);
        let iters: Vec<Iter> = (0..4 + 2 * nd).map(|i| if i < 3 + nd { Iter::Par } else { Iter::Red }).collect();
        let y = self.contract(&[Operand::new(&xg, xmap), Operand::new(&wg, wmap)], out.0, &os, omap, &iters, &red);
        Ok(self.collapse(&y, &out.1, &[vec![0, 1]], 1))
    }

    /// Max or average pooling over the trailing `window.len()` axes.
    pub fn pool(
        &mut self,
        op: PoolOp,
        x: &V,
        window: &[i64],
        stride: &[i64],
        padding: &[(i64, i64)],
        out: &Ty,
    ) -> EmitResult<V> {
        let nd = window.len();
        let lead = x.rank() - nd;
        let fill = match (op, x.dtype) {
            (PoolOp::Avg, _) => 0.0,
            (PoolOp::Max, DType::I64) => i64::MIN as f64,
            (PoolOp::Max, _) => f64::NEG_INFINITY,
        };
        let full_pad: Vec<(i64, i64)> = [vec![(0, 0); lead], padding.to_vec()].concat();
        let xp = self.pad_value(x, &full_pad, fill);
        let win_shape: Vec<Dim> = window.iter().map(|&k| Dim::constant(k)).collect();
        let win = self.b.empty(DType::F32, &win_shape);
        let init = self.b.filled(fill, x.dtype, &out.1);
        let k0 = lead + nd;
        let xmap: Vec<String> =
            [dims(0..lead), (0..nd).map(|i| format!("d{} * {} + d{}", lead + i, stride[i], k0 + i)).collect()].concat();
        let iters: Vec<Iter> = (0..lead + 2 * nd).map(|i| if i < k0 { Iter::Par } else { Iter::Red }).collect();
        let dt = x.dtype;
        let comb = if op == PoolOp::Max { BinaryOp::Max } else { BinaryOp::Add };
        let ins = [Operand::new(&xp, xmap), Operand::new(&win, dims(k0..k0 + nd))];
        let mut r = self.b.generic(&ins, &[Operand::new(&init, dims(0..k0))], &iters, |b: &mut Builder, a| {
            vec![scalar::binary(b, comb, dt, &a[2], &a[0]).expect("numeric pooling")]
        });
        let v = r.remove(0);
        if op == PoolOp::Max {
            return Ok(v);
        }
        let n = window.iter().product::<i64>() as f64;
        Ok(self.b.map(&[&v], dt, |b, a| {
            let c = b.scalar(n, dt);
            scalar::binary(b, BinaryOp::Div, dt, &a[0], &c).expect("float")
        }))
    }
}

/// The input and output channels per group of a convolution: any sizes with one group,
/// constants with several.
pub(super) fn group_sizes(x: &V, w: &V, g: usize) -> EmitResult<(Dim, Dim)> {
    if g == 1 {
        return Ok((x.shape[1].clone(), w.shape[0].clone()));
    }
    Ok((Dim::constant((x.fixed(1)? / g) as i64), Dim::constant((w.fixed(0)? / g) as i64)))
}
