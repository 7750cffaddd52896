//! Data movement as `tensor` and `linalg` ops: reshape, permute, broadcast, slice,
//! concat, pad, gather and scatter-add.

use super::builder::{ds, product, Builder, Iter, Operand, V};
use super::lower::FnLower;
use super::scalar;
use super::types::{elem, tensor};
use super::{EmitError, EmitResult, Ty};
use crate::runtime::rt::Failure;
use archc_compiler::tir::{BinaryOp, DType, Dim};

fn list<T: ToString>(xs: &[T]) -> String {
    xs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

impl FnLower<'_, '_, '_> {
    /// Row-major reshape: collapse to one axis, expand to the target.
    pub fn reshape(&mut self, x: &V, shape: &[Dim]) -> EmitResult<V> {
        if x.shape == shape {
            return Ok(x.clone());
        }
        let rows_of_swapped = x.rank() == 3 && shape.len() == 2 && shape[1] == x.shape[2];
        let swapped = self.swapped.get(&x.name).filter(|_| rows_of_swapped).cloned();
        let y = self.reshape_row_major(x, shape)?;
        if let Some(source) = swapped {
            self.swapped_rows.insert(y.name.clone(), source);
        }
        Ok(y)
    }

    fn reshape_row_major(&mut self, x: &V, shape: &[Dim]) -> EmitResult<V> {
        let n = product(&x.shape);
        let flat = match x.rank() {
            1 => x.clone(),
            0 => self.expand_from_scalar(x),
            r => self.collapse(x, &[n], &[(0..r).collect()], 0),
        };
        Ok(match shape.len() {
            0 => {
                let name = self.b.assign(format!(
                    "tensor.collapse_shape {} [] : {} into {}",
                    flat.name,
                    flat.ty(),
                    tensor(x.dtype, &[] as &[usize])
                ));
                V { name, dtype: x.dtype, shape: vec![] }
            }
            1 => self.cast_to(&flat, shape),
            _ if shape.iter().filter(|d| d.as_const().is_none()).count() > 1 => self.reshape_by_sizes(&flat, shape),
            r => {
                let flat = self.cast_to(&flat, &[product(shape)]);
                self.expand(&flat, shape, &[(0..r).collect()], 0)
            }
        })
    }

    /// `tensor.reshape` of a rank-1 `flat` to `shape` with sizes given as a tensor. Used
    /// where one `tensor.expand_shape` group would hold several dynamic sizes, which
    /// MLIR 22's `expand-strided-metadata` crashes on.
    fn reshape_by_sizes(&mut self, flat: &V, shape: &[Dim]) -> V {
        let sizes: Vec<String> = shape.iter().map(|d| self.b.size(d)).collect();
        let st = format!("tensor<{}xindex>", shape.len());
        let t = self.b.assign(format!("tensor.from_elements {} : {st}", sizes.join(", ")));
        let ty = tensor(flat.dtype, shape);
        let name = self.b.assign(format!("tensor.reshape {}({t}) : ({}, {st}) -> {ty}", flat.name, flat.ty()));
        V { name, dtype: flat.dtype, shape: shape.to_vec() }
    }

    /// `x` with the sizes `shape` (equal at run time): a `tensor.cast` where one is
    /// constant and the other dynamic.
    pub fn cast_to(&mut self, x: &V, shape: &[Dim]) -> V {
        let v = V { shape: shape.to_vec(), ..x.clone() };
        if v.ty() == x.ty() {
            return v;
        }
        V { name: self.b.assign(format!("tensor.cast {} : {} to {}", x.name, x.ty(), v.ty())), ..v }
    }

    fn expand_from_scalar(&mut self, x: &V) -> V {
        let shape = ds(&[1]);
        let name = self.b.assign(format!(
            "tensor.expand_shape {} [] output_shape [1] : {} into {}",
            x.name,
            x.ty(),
            tensor(x.dtype, &shape)
        ));
        V { name, dtype: x.dtype, shape }
    }

    pub fn permute(&mut self, x: &V, perm: &[usize]) -> V {
        let shape: Vec<Dim> = perm.iter().map(|&p| x.shape[p].clone()).collect();
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return x.clone();
        }
        let init = self.b.empty(x.dtype, &shape);
        let ty = init.ty();
        let name = self.b.assign(format!(
            "linalg.transpose ins({} : {}) outs({} : {ty}) permutation = [{}]",
            x.name,
            x.ty(),
            init.name,
            list(perm)
        ));
        let r = perm.len();
        if r >= 2 && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p) && perm[r - 2..] == [r - 1, r - 2] {
            self.swapped.insert(name.clone(), x.clone());
        }
        V { name, dtype: x.dtype, shape }
    }

    /// Numpy broadcasting: leading axes added, size-1 axes stretched.
    pub fn broadcast(&mut self, x: &V, shape: &[Dim]) -> EmitResult<V> {
        if x.shape == shape {
            return Ok(x.clone());
        }
        let lead = shape.len() - x.rank();
        let mut map = Vec::new();
        for (i, d) in x.shape.iter().enumerate() {
            let to = &shape[lead + i];
            map.push(match (d.as_const(), to.as_const()) {
                (Some(1), t) if t != Some(1) => "0".to_string(),
                _ if d == to => format!("d{}", lead + i),
                (Some(a), Some(b)) if a == b => format!("d{}", lead + i),
                _ => return Err(EmitError::Dynamic(format!("broadcast of size `{d}` to `{to}` decided at run time"))),
            });
        }
        let init = self.b.empty(x.dtype, shape);
        let iters = vec![Iter::Par; shape.len()];
        let mut r =
            self.b.generic(&[Operand::new(x, map)], &[Operand::identity(&init)], &iters, |_, a| vec![a[0].clone()]);
        Ok(r.remove(0))
    }

    /// `x[start:end:step]`, start and end clamped to each axis. Where the declared
    /// length was trusted (an end the shape rules could not compare with the size), it is
    /// checked: an error here when the sizes are constant, a run-time failure otherwise,
    /// after which the slice is not read (an empty tensor stands in for it), so a refused
    /// run never reads past the axis.
    pub fn slice(&mut self, x: &V, start: &[Dim], end: &[Dim], step: &[i64], out: &Ty) -> EmitResult<V> {
        let known = super::consts(&self.env);
        let mut offsets = Vec::new();
        let mut bad: Option<String> = None;
        for (axis, ((s, n), len)) in start.iter().zip(&x.shape).zip(&out.1).enumerate() {
            let (s, e) = (s.subst(&known), end[axis].subst(&known));
            if n.sub(&e).as_const().is_none_or(|c| c < 0) || s.as_const().is_none() {
                if let Some(flag) = self.check_slice_len(x, axis, (&s, &e, step[axis]), out)? {
                    bad = Some(match bad {
                        None => flag,
                        Some(b) => self.b.assign(format!("arith.ori {b}, {flag} : i1")),
                    });
                }
            }
            offsets.push(self.slice_offset(&s, n, len));
        }
        if out.1 == x.shape {
            return Ok(x.clone());
        }
        let Some(bad) = bad else { return Ok(self.extract(x, &offsets, step, out)) };
        let ty = tensor(x.dtype, &out.1);
        let r = self.b.fresh();
        self.b.raw(format!("{r} = scf.if {bad} -> ({ty}) {{"));
        self.b.indent();
        let stand_in = self.b.empty(x.dtype, &out.1);
        self.b.raw(format!("scf.yield {} : {ty}", stand_in.name));
        self.b.dedent();
        self.b.raw("} else {");
        self.b.indent();
        let v = self.extract(x, &offsets, step, out);
        self.b.raw(format!("scf.yield {} : {ty}", v.name));
        self.b.dedent();
        self.b.raw("}");
        Ok(V { name: r, dtype: x.dtype, shape: out.1.clone() })
    }

    /// `tensor.extract_slice` of `x` at `offsets` with `step`, of type `out`.
    fn extract(&mut self, x: &V, offsets: &[String], step: &[i64], out: &Ty) -> V {
        let sizes = self.b.mixed(&out.1);
        let name = self.b.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            offsets.join(", "),
            sizes.join(", "),
            list(step),
            x.ty(),
            tensor(x.dtype, &out.1)
        ));
        V { name, dtype: x.dtype, shape: out.1.clone() }
    }

    /// Checks that slicing axis `axis` of `x` by `(start, end, step)` gives the declared
    /// length `out.1[axis]` (the interpreter's rule: both bounds clamped to the axis); for
    /// a check at run time, the `i1` that is true when it fails.
    fn check_slice_len(
        &mut self,
        x: &V,
        axis: usize,
        (s, e, step): (&Dim, &Dim, i64),
        out: &Ty,
    ) -> EmitResult<Option<String>> {
        let (n, len) = (&x.shape[axis], &out.1[axis]);
        if let (Some(sc), Some(ec), Some(nc), Some(lc)) = (s.as_const(), e.as_const(), n.as_const(), len.as_const()) {
            let (lo, hi) = (sc.clamp(0, nc), ec.clamp(0, nc));
            let got = if hi > lo { (hi - lo + step - 1) / step } else { 0 };
            if got != lc {
                let mut shape = out.1.clone();
                shape[axis] = Dim::constant(got);
                let ty = |dims: &[Dim]| format!("{}[{}]", out.0, list(dims));
                return Err(EmitError::Refused(format!("result is {}, declared {}", ty(&shape), ty(&out.1))));
            }
            return Ok(None);
        }
        let (sv, ev, nv, lv) = (self.b.size(s), self.b.size(e), self.b.size(n), self.b.size(len));
        let (zero, stepv) = (self.b.index(0), self.b.index(step));
        let clamp = |b: &mut super::builder::Builder, v: &str| {
            let lo = b.assign(format!("arith.maxsi {v}, {zero} : index"));
            b.assign(format!("arith.minsi {lo}, {nv} : index"))
        };
        let lo = clamp(&mut self.b, &sv);
        let hi = clamp(&mut self.b, &ev);
        let span = self.b.assign(format!("arith.subi {hi}, {lo} : index"));
        let span = self.b.assign(format!("arith.maxsi {span}, {zero} : index"));
        let got = self.b.assign(format!("arith.ceildivsi {span}, {stepv} : index"));
        let bad = self.b.assign(format!("arith.cmpi ne, {got}, {lv} : index"));
        // The end the declared length needs: start + (len - 1) * step + 1.
        let one = self.b.index(1);
        let last = self.b.assign(format!("arith.subi {lv}, {one} : index"));
        let last = self.b.assign(format!("arith.muli {last}, {stepv} : index"));
        let need = self.b.assign(format!("arith.addi {lo}, {last} : index"));
        let need = self.b.assign(format!("arith.addi {need}, {one} : index"));
        let (need, nv, ax) = (self.as_i64(&need), self.as_i64(&nv), self.b.i64c(axis as i64));
        self.fail_if(&bad, Failure::SliceEnd, [&need, &nv, &ax]);
        Ok(Some(bad))
    }

    /// The offset of a slice starting at `start` on an axis of size `n` yielding `len`
    /// elements: `start` clamped to `[0, n]`, and 0 for an empty result (MLIR rejects an
    /// offset at the end of the axis even for a size-0 slice).
    fn slice_offset(&mut self, start: &Dim, n: &Dim, len: &Dim) -> String {
        match (start.as_const(), n.as_const(), len.as_const()) {
            (_, _, Some(0)) => "0".into(),
            (Some(v), Some(n), _) => v.clamp(0, n).to_string(),
            _ => {
                let (v, n, zero) = (self.b.size(start), self.b.size(n), self.b.index(0));
                let lo = self.b.assign(format!("arith.maxsi {v}, {zero} : index"));
                let off = self.b.assign(format!("arith.minsi {lo}, {n} : index"));
                if len.as_const().is_some() {
                    return off;
                }
                let l = self.b.size(len);
                let empty = self.b.assign(format!("arith.cmpi eq, {l}, {zero} : index"));
                self.b.assign(format!("arith.select {empty}, {zero}, {off} : index"))
            }
        }
    }

    /// `x` inserted into `dest` at `offsets` (same rank).
    pub fn insert(&mut self, x: &V, dest: &V, offsets: &[String]) -> V {
        let ones = vec![1; x.rank()];
        let sizes = self.b.mixed(&x.shape);
        let name = self.b.assign(format!(
            "tensor.insert_slice {} into {}[{}] [{}] [{}] : {} into {}",
            x.name,
            dest.name,
            offsets.join(", "),
            sizes.join(", "),
            list(&ones),
            x.ty(),
            dest.ty()
        ));
        V { name, ..dest.clone() }
    }

    /// Pieces of constant size 0 along `axis` are skipped (MLIR rejects their offset at
    /// the end of the axis).
    pub fn concat(&mut self, xs: &[V], axis: usize, out: &Ty) -> V {
        let mut acc = self.b.empty(out.0, &out.1);
        let mut at = Dim::constant(0);
        for x in xs.iter().filter(|x| x.shape[axis].as_const() != Some(0)) {
            let pos = self.b.mixed(std::slice::from_ref(&at)).remove(0);
            let offsets: Vec<String> =
                (0..x.rank()).map(|i| if i == axis { pos.clone() } else { "0".into() }).collect();
            acc = self.insert(x, &acc, &offsets);
            at = at.add(&x.shape[axis]);
        }
        acc
    }

    pub fn pad(&mut self, x: &V, padding: &[(i64, i64)], value: f64, _out: &Ty) -> V {
        self.pad_value(x, padding, value)
    }

    /// `tensor.pad` with a constant (no-op when every amount is zero).
    pub fn pad_value(&mut self, x: &V, padding: &[(i64, i64)], value: f64) -> V {
        if padding.iter().all(|&(l, h)| l == 0 && h == 0) {
            return x.clone();
        }
        let shape: Vec<Dim> = x.shape.iter().zip(padding).map(|(d, &(l, h))| d.add(&Dim::constant(l + h))).collect();
        let c = self.b.scalar(value, x.dtype);
        let lo: Vec<i64> = padding.iter().map(|p| p.0).collect();
        let hi: Vec<i64> = padding.iter().map(|p| p.1).collect();
        let r = self.b.fresh();
        let idx: Vec<String> = (0..x.rank()).map(|i| format!("%i{i}: index")).collect();
        self.b.raw(format!("{r} = tensor.pad {} low[{}] high[{}] {{", x.name, list(&lo), list(&hi)));
        self.b.raw(format!("^bb0({}):", idx.join(", ")));
        self.b.raw(format!("  tensor.yield {c} : {}", elem(x.dtype)));
        self.b.op(format!("}} : {} to {}", x.ty(), tensor(x.dtype, &shape)));
        V { name: r, dtype: x.dtype, shape }
    }

    /// The index `i` (i64) as an `index` (see [`wrap_index`]).
    fn clamped_index(&mut self, i: &str, n: &Dim) -> String {
        wrap_index(&mut self.b, i, n)
    }

    /// A run-time failure when an index of `idx` is outside `[-n, n)` (`n` the size of
    /// `axis`): the smallest and largest index are found by one pass. On the CPU target
    /// the host compares them and calls `archc_fail`; on the GPU target, where they lie in
    /// device memory, a kernel writes the check's record and the host hands it to
    /// `archc_check_record` ([`Self::check_on_device`]).
    fn check_indices(&mut self, idx: &V, n: &Dim, axis: usize) {
        let lo = self.b.filled(i64::MAX as f64, DType::I64, &[]);
        let hi = self.b.filled(i64::MIN as f64, DType::I64, &[]);
        let iters = vec![Iter::Red; idx.rank()];
        let outs = [Operand::new(&lo, vec![]), Operand::new(&hi, vec![])];
        let r = self.b.generic(&[Operand::identity(idx)], &outs, &iters, |b, a| {
            let lo = b.assign(format!("arith.minsi {}, {} : i64", a[0], a[1]));
            let hi = b.assign(format!("arith.maxsi {}, {} : i64", a[0], a[2]));
            vec![lo, hi]
        });
        let nv = self.b.size(n);
        let nv = self.as_i64(&nv);
        let ax = self.b.i64c(axis as i64);
        if self.em.target != super::Target::Cpu {
            let (lo, hi) = (r[0].name.clone(), r[1].name.clone());
            let rec = self.record(|b| {
                let lo = b.assign(format!("tensor.extract {lo}[] : tensor<i64>"));
                let hi = b.assign(format!("tensor.extract {hi}[] : tensor<i64>"));
                let (bad, which) = out_of_range(b, &lo, &hi, &nv);
                let (k, zero) = (b.i64c(Failure::Index as i64), b.i64c(0));
                let kind = b.assign(format!("arith.select {bad}, {k}, {zero} : i64"));
                [kind, which, nv.clone(), ax.clone()]
            });
            self.check_on_device(&rec);
            return;
        }
        let lo = self.b.assign(format!("tensor.extract {}[] : tensor<i64>", r[0].name));
        let hi = self.b.assign(format!("tensor.extract {}[] : tensor<i64>", r[1].name));
        let (bad, which) = out_of_range(&mut self.b, &lo, &hi, &nv);
        self.fail_if(&bad, Failure::Index, [&which, &nv, &ax]);
    }

    /// `x[idx]` along `axis`; `check`: refuse indices outside `[-n, n)` at run time (off
    /// where they provably lie inside).
    pub fn gather(&mut self, x: &V, idx: &V, axis: usize, out: &Ty, check: bool) -> V {
        if check {
            self.check_indices(idx, &x.shape[axis], axis);
        }
        let init = self.b.empty(out.0, &out.1);
        let k = idx.rank();
        let imap: Vec<String> = (axis..axis + k).map(|i| format!("d{i}")).collect();
        let iters = vec![Iter::Par; out.1.len()];
        let n = x.shape[axis].clone();
        let xr = x.rank();
        let xname = x.name.clone();
        let xty = x.ty();
        let mut r = self.b.generic(&[Operand::new(idx, imap)], &[Operand::identity(&init)], &iters, |b, a| {
            let i = wrap_index(b, &a[0], &n);
            let mut pos = Vec::with_capacity(xr);
            for d in 0..xr {
                pos.push(match d {
                    d if d < axis => b.loop_index(d),
                    d if d == axis => i.clone(),
                    d => b.loop_index(d - 1 + k),
                });
            }
            vec![b.assign(format!("tensor.extract {xname}[{}] : {xty}", pos.join(", ")))]
        });
        r.remove(0)
    }

    /// `x` plus `src` added at `idx` along `axis`: a loop nest over `src`.
    pub fn scatter_add(&mut self, x: &V, idx: &V, src: &V, axis: usize, check: bool) -> EmitResult<V> {
        if check {
            self.check_indices(idx, &x.shape[axis], axis);
        }
        let k = idx.rank();
        let r = src.rank();
        let zero = self.b.index(0);
        let one = self.b.index(1);
        let bounds: Vec<String> = src.shape.iter().map(|d| self.b.size(d)).collect();
        let ty = x.ty();
        let ivs: Vec<String> = (0..r).map(|_| self.b.fresh()).collect();
        let accs: Vec<String> = (0..=r).map(|_| self.b.fresh()).collect();
        let results: Vec<String> = (0..r).map(|_| self.b.fresh()).collect();
        // accs[0] is x; loop level l carries accs[l] -> iter arg accs[l + 1].
        let mut prev = x.name.clone();
        for l in 0..r {
            self.b.raw(format!(
                "{} = scf.for {} = {zero} to {} step {one} iter_args({} = {prev}) -> ({ty}) {{",
                results[l],
                ivs[l],
                bounds[l],
                accs[l + 1]
            ));
            self.b.indent();
            prev = accs[l + 1].clone();
        }
        let cur = accs[r].clone();
        let s = self.b.assign(format!("tensor.extract {}[{}] : {}", src.name, ivs.join(", "), src.ty()));
        let j =
            self.b.assign(format!("tensor.extract {}[{}] : {}", idx.name, ivs[axis..axis + k].join(", "), idx.ty()));
        let j = self.clamped_index(&j, &x.shape[axis]);
        let pos: Vec<String> = ivs[..axis].iter().cloned().chain([j]).chain(ivs[axis + k..].iter().cloned()).collect();
        let old = self.b.assign(format!("tensor.extract {cur}[{}] : {ty}", pos.join(", ")));
        let new = scalar::binary(&mut self.b, BinaryOp::Add, x.dtype, &old, &s)?;
        let upd = self.b.assign(format!("tensor.insert {new} into {cur}[{}] : {ty}", pos.join(", ")));
        let mut yielded = upd;
        for l in (0..r).rev() {
            self.b.raw(format!("scf.yield {yielded} : {ty}"));
            self.b.dedent();
            self.b.raw("}");
            yielded = results[l].clone();
        }
        Ok(V { name: yielded, ..x.clone() })
    }
}

/// Whether indices from `lo` to `hi` (i64) leave `[-n, n)`, and the first offender's
/// value (`hi` when it is too large, else `lo`).
fn out_of_range(b: &mut Builder, lo: &str, hi: &str, n: &str) -> (String, String) {
    let zero = b.i64c(0);
    let neg = b.assign(format!("arith.subi {zero}, {n} : i64"));
    let below = b.assign(format!("arith.cmpi slt, {lo}, {neg} : i64"));
    let above = b.assign(format!("arith.cmpi sge, {hi}, {n} : i64"));
    let bad = b.assign(format!("arith.ori {below}, {above} : i1"));
    let which = b.assign(format!("arith.select {above}, {hi}, {lo} : i64"));
    (bad, which)
}

/// The index `i` (i64) as an `index` into an axis of size `n`: a negative `i` counts from
/// the end (`i + n`); the result is then clamped to `[0, n)` (to 0 when `n` is 0), so a
/// refused index (see [`FnLower::check_indices`]) never reads out of bounds.
fn wrap_index(b: &mut Builder, i: &str, n: &Dim) -> String {
    let i = b.assign(format!("arith.index_cast {i} : i64 to index"));
    let zero = b.index(0);
    let size = b.size(n);
    let neg = b.assign(format!("arith.cmpi slt, {i}, {zero} : index"));
    let up = b.assign(format!("arith.addi {i}, {size} : index"));
    let i = b.assign(format!("arith.select {neg}, {up}, {i} : index"));
    let hi = match n.as_const() {
        Some(c) => b.index((c - 1).max(0)),
        None => {
            let last = b.size(&n.sub(&Dim::constant(1)));
            b.assign(format!("arith.maxsi {last}, {zero} : index"))
        }
    };
    let lo = b.assign(format!("arith.maxsi {i}, {zero} : index"));
    b.assign(format!("arith.minsi {lo}, {hi} : index"))
}
