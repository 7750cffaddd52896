//! A small builder that appends typed instructions to a function, for the rewrites of
//! autodiff: every instruction goes through the shared shape rules, and the helpers
//! spell the compound patterns gradient rules need (fill, sum to a shape, conjugate).

use crate::tir::infer::{infer, infer_one, FuncSigs};
use crate::tir::{BinaryOp, DType, Dim, Func, Inst, Op, ReduceOp, TensorType, UnaryOp, ValueId};

pub type V = ValueId;
pub type Res<T> = Result<T, String>;

pub struct Emitter<'a> {
    pub func: Func,
    next: u32,
    sigs: &'a dyn FuncSigs,
    /// Types of the values defined so far (a function can have many thousands).
    types: std::collections::HashMap<ValueId, TensorType>,
}

impl<'a> Emitter<'a> {
    /// Continues `func` (new values are numbered after its existing ones).
    pub fn new(func: Func, sigs: &'a dyn FuncSigs) -> Self {
        let next = func.next_value().0;
        let mut types: std::collections::HashMap<ValueId, TensorType> = func.args.iter().cloned().collect();
        for i in &func.body {
            for (v, t) in i.results() {
                types.insert(v, t.clone());
            }
        }
        Emitter { func, next, sigs, types }
    }

    /// The next value number this emitter would use.
    pub fn peek_next(&self) -> u32 {
        self.next
    }

    /// Makes sure later values are numbered after `v` (for arguments added by hand).
    pub fn bump_past(&mut self, v: V) {
        self.next = self.next.max(v.0 + 1);
    }

    pub fn ty(&self, v: V) -> TensorType {
        match self.types.get(&v) {
            Some(t) => t.clone(),
            // Arguments added by hand after construction.
            None => self.func.type_of(v).cloned().expect("value defined in this function"),
        }
    }

    /// The instruction defining `v` (none for an argument).
    pub fn def(&self, v: V) -> Option<&Inst> {
        self.func.body.iter().rev().find(|i| i.result_ids().any(|r| r == v))
    }

    pub fn op(&mut self, op: Op, args: &[V], declared: Option<TensorType>) -> Res<V> {
        let tys: Vec<TensorType> = args.iter().map(|a| self.ty(*a)).collect();
        let refs: Vec<&TensorType> = tys.iter().collect();
        let ty = infer_one(&op, &refs, declared.as_ref(), self.sigs)?;
        let result = ValueId(self.next);
        self.next += 1;
        self.types.insert(result, ty.clone());
        self.func.body.push(Inst::new(result, op, args.to_vec(), ty));
        Ok(result)
    }

    /// Appends an instruction with several results (`call`, `scan`, `vmap`).
    pub fn op_multi(&mut self, op: Op, args: &[V]) -> Res<Vec<V>> {
        let tys: Vec<TensorType> = args.iter().map(|a| self.ty(*a)).collect();
        let refs: Vec<&TensorType> = tys.iter().collect();
        let types = infer(&op, &refs, None, self.sigs)?;
        let mut results = Vec::new();
        for t in types {
            self.types.insert(ValueId(self.next), t.clone());
            results.push((ValueId(self.next), t));
            self.next += 1;
        }
        let ids = results.iter().map(|(v, _)| *v).collect();
        self.func.body.push(Inst::with_results(op, args.to_vec(), results));
        Ok(ids)
    }

    pub fn un(&mut self, u: UnaryOp, x: V) -> Res<V> {
        self.op(Op::Unary(u), &[x], None)
    }

    pub fn bin(&mut self, b: BinaryOp, x: V, y: V) -> Res<V> {
        self.op(Op::Binary(b), &[x, y], None)
    }

    pub fn add(&mut self, x: V, y: V) -> Res<V> {
        self.bin(BinaryOp::Add, x, y)
    }

    pub fn mul(&mut self, x: V, y: V) -> Res<V> {
        self.bin(BinaryOp::Mul, x, y)
    }

    pub fn neg(&mut self, x: V) -> Res<V> {
        self.un(UnaryOp::Neg, x)
    }

    /// A tensor of type `ty` filled with `value`.
    pub fn fill(&mut self, value: f64, ty: &TensorType) -> Res<V> {
        let c = self.op(Op::Const(value), &[], Some(TensorType::scalar(ty.dtype)))?;
        self.broadcast(c, &ty.shape)
    }

    /// `x` times the constant `k` (same dtype).
    pub fn scale(&mut self, x: V, k: f64) -> Res<V> {
        let t = self.ty(x);
        let c = self.fill(k, &t)?;
        self.mul(x, c)
    }

    pub fn broadcast(&mut self, x: V, shape: &[Dim]) -> Res<V> {
        let t = self.ty(x);
        if t.shape == shape {
            return Ok(x);
        }
        self.op(Op::Broadcast, &[x], Some(TensorType::new(t.dtype, shape.to_vec())))
    }

    pub fn reshape(&mut self, x: V, shape: Vec<Dim>) -> Res<V> {
        let t = self.ty(x);
        if t.shape == shape {
            return Ok(x);
        }
        self.op(Op::Reshape, &[x], Some(TensorType::new(t.dtype, shape)))
    }

    pub fn permute(&mut self, x: V, perm: Vec<usize>) -> Res<V> {
        if perm.iter().enumerate().all(|(i, p)| i == *p) {
            return Ok(x);
        }
        self.op(Op::Permute(perm), &[x], None)
    }

    pub fn cast(&mut self, x: V, dtype: DType) -> Res<V> {
        let t = self.ty(x);
        if t.dtype == dtype {
            return Ok(x);
        }
        self.op(Op::Cast, &[x], Some(t.with_dtype(dtype)))
    }

    /// Sums `x` down to `shape` (the inverse of numpy broadcasting).
    pub fn sum_to(&mut self, x: V, shape: &[Dim]) -> Res<V> {
        let t = self.ty(x);
        if t.shape == shape {
            return Ok(x);
        }
        let lead = t.rank() - shape.len();
        let mut axes: Vec<usize> = (0..lead).collect();
        for (i, d) in shape.iter().enumerate() {
            if d.as_const() == Some(1) && t.shape[lead + i].as_const() != Some(1) {
                axes.push(lead + i);
            }
        }
        let summed = if axes.is_empty() {
            x
        } else {
            self.op(Op::Reduce { op: ReduceOp::Sum, axes, keepdim: false }, &[x], None)?
        };
        self.reshape(summed, shape.to_vec())
    }

    /// The complex conjugate.
    pub fn conj(&mut self, z: V) -> Res<V> {
        let re = self.op(Op::Real, &[z], None)?;
        let im = self.op(Op::Imag, &[z], None)?;
        let nim = self.neg(im)?;
        self.op(Op::Complex, &[re, nim], None)
    }

    /// A scalar tensor holding the value of a (possibly symbolic) dim, as `dtype`.
    pub fn dim_value(&mut self, d: &Dim, dtype: DType) -> Res<V> {
        if let Some(c) = d.as_const() {
            return self.op(Op::Const(c as f64), &[], Some(TensorType::scalar(dtype)));
        }
        let ones = self.fill(1.0, &TensorType::new(dtype, vec![d.clone()]))?;
        self.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[ones], None)
    }

    /// Zeros of `ty`, concatenated before/after `x` along `axis` (padding by dims that may
    /// be symbolic).
    pub fn pad_dims(&mut self, x: V, axis: usize, lo: &Dim, hi: &Dim) -> Res<V> {
        let t = self.ty(x);
        if let (Some(l), Some(h)) = (lo.as_const(), hi.as_const()) {
            if l == 0 && h == 0 {
                return Ok(x);
            }
            let mut padding = vec![(0, 0); t.rank()];
            padding[axis] = (l, h);
            return self.op(Op::Pad { padding, value: 0.0 }, &[x], None);
        }
        let mut parts = Vec::new();
        for (d, before) in [(lo, true), (hi, false)] {
            if d.as_const() == Some(0) {
                continue;
            }
            let mut s = t.shape.clone();
            s[axis] = d.clone();
            let z = self.fill(0.0, &TensorType::new(t.dtype, s))?;
            if before {
                parts.insert(0, z);
            } else {
                parts.push(z);
            }
        }
        let pos = usize::from(lo.as_const() != Some(0));
        parts.insert(pos, x);
        self.op(Op::Concat { axis }, &parts, None)
    }

    /// Inserts `s - 1` zeros between the elements of `x` along `axis`:
    /// `[a, b, c]` with `s = 2` gives `[a, 0, b, 0, c]`.
    pub fn dilate(&mut self, x: V, axis: usize, s: i64) -> Res<V> {
        if s == 1 {
            return Ok(x);
        }
        let t = self.ty(x);
        let n = t.shape[axis].clone();
        let mut shape = t.shape.clone();
        shape.insert(axis + 1, Dim::constant(1));
        let u = self.reshape(x, shape)?;
        let mut padding = vec![(0, 0); t.rank() + 1];
        padding[axis + 1] = (0, s - 1);
        let p = self.op(Op::Pad { padding, value: 0.0 }, &[u], None)?;
        let mut flat = t.shape.clone();
        flat[axis] = n.mul(&Dim::constant(s));
        let f = self.reshape(p, flat)?;
        let keep = n.sub(&Dim::constant(1)).mul(&Dim::constant(s)).add(&Dim::constant(1));
        self.slice_axis(f, axis, Dim::constant(0), keep, 1)
    }

    /// `x[.., start:end:step, ..]` along one axis.
    pub fn slice_axis(&mut self, x: V, axis: usize, start: Dim, end: Dim, step: i64) -> Res<V> {
        let t = self.ty(x);
        let mut s: Vec<Dim> = vec![Dim::constant(0); t.rank()];
        let mut e = t.shape.clone();
        let mut st = vec![1; t.rank()];
        s[axis] = start;
        e[axis] = end;
        st[axis] = step;
        if s.iter().all(|d| d.as_const() == Some(0)) && e == t.shape && step == 1 {
            return Ok(x);
        }
        self.op(Op::Slice { start: s, end: e, step: st }, &[x], None)
    }

    /// Reverses `x` along `axis` (whose size must be a constant).
    pub fn flip(&mut self, x: V, axis: usize) -> Res<V> {
        let t = self.ty(x);
        let n = t.shape[axis].as_const().ok_or("flip needs a constant axis size")?;
        if n == 1 {
            return Ok(x);
        }
        let iota = self.op(Op::Iota { axis: 0 }, &[], Some(TensorType::new(DType::I64, vec![Dim::constant(n)])))?;
        let last = self.fill((n - 1) as f64, &TensorType::new(DType::I64, vec![Dim::constant(n)]))?;
        let idx = self.bin(BinaryOp::Sub, last, iota)?;
        self.op(Op::Gather { axis }, &[x, idx], None)
    }
}
