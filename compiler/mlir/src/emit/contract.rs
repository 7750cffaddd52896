//! Contractions as `linalg` ops or runtime products: `matmul` and `einsum`. They
//! accumulate in f64 when they sum at least [`LONG_SUM`] terms (below that, f32
//! accumulation stays within 1e-5 of the interpreter and is faster); large products call
//! the runtime's `gemm` on strided views.

use super::builder::{product, Iter, Operand, V};
use super::lower::FnLower;
use super::reshape::dims;
use super::scalar;
use super::types::tensor;
use super::{EmitError, EmitResult, Ty};
use archc_compiler::tir::{BinaryOp, DType, Dim, ReduceOp};
use std::collections::HashMap;

/// Generic contractions summing at least this many f32 terms accumulate in f64 (as do
/// sums of a run-time length).
pub const LONG_SUM: usize = 1024;

/// f32 matmuls (and the convolutions, einsums and DFTs built on them) summing at least
/// this many terms run in f64: gemm's blocked f32 sums stay within 1e-5 of the
/// interpreter's f64 accumulation below it (measured: Darcy's pointwise-weight gradient,
/// 5120 terms, was 1.1e-5 off in f32). Sums of a run-time length count as long.
pub const LONG_GEMM: usize = 4096;

/// The type every runtime product operand is cast to: rank `r`, any offset and strides.
pub(super) fn dyn_view(r: usize, dt: DType) -> String {
    let t = super::types::elem(dt);
    format!("memref<{}{t}, strided<[{}], offset: ?>>", "?x".repeat(r), vec!["?"; r].join(", "))
}

/// Whether a sum of `n` terms is at least `limit` long (a run-time length is).
pub(super) fn at_least(n: &Dim, limit: usize) -> bool {
    n.as_const().is_none_or(|c| c >= limit as i64)
}

impl FnLower<'_, '_, '_> {
    pub fn matmul(&mut self, a: &V, b: &V, out: &Ty) -> V {
        let r = a.rank();
        if r > 3 && matches!(out.0, DType::F32 | DType::F64) {
            if let Some(y) = self.collapsed_matmul(a, b, out) {
                return y;
            }
        }
        if (r == 2 || r == 3) && matches!(out.0, DType::F32 | DType::F64) {
            let long = out.0 == DType::F32 && at_least(&a.shape[r - 1], LONG_GEMM);
            if r == 2 && !long && self.em.target == super::Target::Cpu {
                if let Some(y) = self.product_of_swapped_rows(a, b, out) {
                    return y;
                }
            }
            if long {
                // Long f32 sums (weight gradients over batch x positions) run in f64.
                let (a64, b64) = (self.cast_operand(a, DType::F64), self.cast_operand(b, DType::F64));
                let y = self.library_matmul(&a64, &b64, &(DType::F64, out.1.clone()));
                return self.cast(&y, DType::F32);
            }
            return self.library_matmul(a, b, out);
        }
        let red = a.shape[r - 1].clone();
        if (r == 2 || r == 3) && !(out.0 == DType::F32 && at_least(&red, LONG_SUM)) {
            let init = self.b.filled(0.0, out.0, &out.1);
            let name = if r == 2 { "linalg.matmul" } else { "linalg.batch_matmul" };
            let ty = init.ty();
            let res = self.b.assign(format!(
                "{name} ins({}, {} : {}, {}) outs({} : {ty}) -> {ty}",
                a.name,
                b.name,
                a.ty(),
                b.ty(),
                init.name
            ));
            return V { name: res, dtype: out.0, shape: out.1.clone() };
        }
        // Loops: batch..., m, n, k.
        let nb = r - 2;
        let batch: Vec<String> = dims(0..nb);
        let (m, n, k) = (format!("d{nb}"), format!("d{}", nb + 1), format!("d{}", nb + 2));
        let am = [batch.clone(), vec![m.clone(), k.clone()]].concat();
        let bm = [batch.clone(), vec![k, n.clone()]].concat();
        let om = [batch, vec![m, n]].concat();
        let mut iters = vec![Iter::Par; nb + 2];
        iters.push(Iter::Red);
        self.contract(&[Operand::new(a, am), Operand::new(b, bm)], out.0, &out.1, om, &iters, &red)
    }

    /// `a @ b` where `a: [B * N, K]` is a reshape of `x: [B, K, N]` with its last two axes
    /// swapped (a channels-first activation read by a `Linear`, as in an FNO's
    /// projection): one batched product of `x`'s strided view with `b` broadcast over the
    /// batch (stride 0), whose `[B, N, O]` result is the `[B * N, O]` rows in place. No
    /// transposed copy of `x` is made (the CPU target; the GPU's copies are cheap). `None`
    /// when `a` is no such reshape.
    fn product_of_swapped_rows(&mut self, a: &V, b: &V, out: &Ty) -> Option<V> {
        let source = self.swapped_rows.get(&a.name).cloned()?;
        let batch = source.shape[0].clone();
        let shape3 = vec![batch.clone(), source.shape[2].clone(), out.1[1].clone()];
        let dyn_ty = dyn_view(3, out.0);
        let ca = self.swapped_view(&source, &dyn_ty);
        let cb = self.batch_broadcast_view(b, &batch, &dyn_ty);
        let y = self.library_call(&ca, &cb, &(out.0, shape3));
        Some(self.regroup(&y, &out.1, &[vec![0, 1], vec![2]], false))
    }

    /// A product with several batch axes (attention's `[B, H, T, D]` operands) as one
    /// batched product of the runtime over the batch axes collapsed into one, instead of
    /// a loop nest (on the GPU one thread per result, reading strided operands). An
    /// operand that is a permuted view is materialised first (one copy). `None` where a
    /// reshape cannot be emitted.
    pub(super) fn collapsed_matmul(&mut self, a: &V, b: &V, out: &Ty) -> Option<V> {
        let r = a.rank();
        let batch = product(&out.1[..r - 2]);
        let three = |v: &V| vec![batch.clone(), v.shape[r - 2].clone(), v.shape[r - 1].clone()];
        let a3 = self.reshape(a, &three(a)).ok()?;
        let b3 = self.reshape(b, &three(b)).ok()?;
        let y = self.matmul(&a3, &b3, &(out.0, vec![batch.clone(), out.1[r - 2].clone(), out.1[r - 1].clone()]));
        self.reshape(&y, &out.1).ok()
    }

    /// The sum over `axes` of `x`, every element of which is the constant `c`: `c` times
    /// the number of elements summed (exact, as the interpreter's f64 sum of them is),
    /// without reading `x`.
    pub fn constant_sum(&mut self, c: f64, x: &V, axes: &[usize], out: &Ty) -> V {
        let count = product(axes.iter().map(|&a| &x.shape[a]));
        let n = self.b.size(&count);
        let n = self.b.assign(format!("arith.index_cast {n} : index to i64"));
        let n = self.b.assign(format!("arith.sitofp {n} : i64 to f64"));
        let cv = self.b.scalar(c, DType::F64);
        let v = self.b.assign(format!("arith.mulf {cv}, {n} : f64"));
        let v = scalar::cast(&mut self.b, DType::F64, out.0, &v);
        self.b.fill(&v, out.0, &out.1)
    }

    /// `sum_i (a[i] @ b[i])` for `a: [B, M, K]`, `b: [B, K, N]`: one batched product, then
    /// a sum over the batch. f32 products whose sums have at least [`LONG_GEMM`] terms in
    /// all (`B * K`) run and are summed in f64, the result rounded once.
    pub fn summed_matmul(&mut self, a: &V, b: &V, out: &Ty) -> EmitResult<V> {
        let terms = a.shape[0].mul(&a.shape[2]);
        let wide = out.0 == DType::F32 && at_least(&terms, LONG_GEMM);
        let dt = if wide { DType::F64 } else { out.0 };
        let (a2, b2) = (self.cast_operand(a, dt), self.cast_operand(b, dt));
        let products = (dt, vec![a.shape[0].clone(), a.shape[1].clone(), b.shape[2].clone()]);
        let p = self.matmul(&a2, &b2, &products);
        let s = self.reduce(ReduceOp::Sum, &[0], false, &p, &(dt, out.1.clone()))?;
        Ok(if wide { self.cast(&s, out.0) } else { s })
    }

    /// `v` cast to `dt` for a matrix product: a swapped value (see [`Self::swapped_view`])
    /// is cast before the swap, so the product still reads it as a view.
    pub(super) fn cast_operand(&mut self, v: &V, dt: DType) -> V {
        if v.dtype == dt {
            return v.clone();
        }
        let Some(source) = self.swapped.get(&v.name).cloned() else { return self.cast(v, dt) };
        let c = self.cast(&source, dt);
        let r = c.rank();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&c, &perm)
    }

    /// `a @ b` by the runtime's `gemm` kernels (`archc_matmul_*` / `archc_bmm_*`): the
    /// operands' buffers are read in place, the result is a fresh buffer.
    pub(super) fn library_matmul(&mut self, a: &V, b: &V, out: &Ty) -> V {
        let dyn_ty = dyn_view(a.rank(), out.0);
        let ca = self.matmul_operand(a, &dyn_ty);
        let cb = self.matmul_operand(b, &dyn_ty);
        self.library_call(&ca, &cb, out)
    }

    /// `a` as a product operand: its buffer (or, for a swapped value, the strided view of
    /// its source) cast to `dyn_ty`.
    pub(super) fn matmul_operand(&mut self, v: &V, dyn_ty: &str) -> String {
        if let Some(source) = self.swapped.get(&v.name).cloned() {
            return self.swapped_view(&source, dyn_ty);
        }
        let (buf, m) = self.read_buffer(v);
        self.b.assign(format!("memref.cast {buf} : {m} to {dyn_ty}"))
    }

    /// The buffer of `v`, read only, and its memref type.
    pub(super) fn read_buffer(&mut self, v: &V) -> (String, String) {
        let m = super::types::memref(v.dtype, &v.shape);
        let buf = self.b.assign(format!("bufferization.to_buffer {} read_only : {} to {m}", v.name, v.ty()));
        (buf, m)
    }

    /// The runtime call `out = a @ b` on two operand views of type [`dyn_view`].
    pub(super) fn library_call(&mut self, ca: &str, cb: &str, out: &Ty) -> V {
        let r = out.1.len();
        let t = super::types::elem(out.0);
        let sym = format!("archc_{}_{t}", if r == 2 { "matmul" } else { "bmm" });
        let dyn_ty = dyn_view(r, out.0);
        self.em.externs.insert(
            sym.clone(),
            format!("func.func private @{sym}({dyn_ty}, {dyn_ty}, {dyn_ty}) attributes {{llvm.emit_c_interface}}"),
        );
        let mc_ty = super::types::memref(out.0, &out.1);
        let mc = self.b.alloc(out.0, &out.1);
        let cc = self.b.assign(format!("memref.cast {mc} : {mc_ty} to {dyn_ty}"));
        self.b.op(format!("func.call @{sym}({ca}, {cb}, {cc}) : ({dyn_ty}, {dyn_ty}, {dyn_ty}) -> ()"));
        let name =
            self.b.assign(format!("bufferization.to_tensor {mc} restrict : {mc_ty} to {}", tensor(out.0, &out.1)));
        V { name, dtype: out.0, shape: out.1.clone() }
    }

    /// The `[O, C, 1, ...]` weight `w` as a `[batch, O, C]` view of type `dyn_ty` whose
    /// batch stride is 0: every batch entry reads the one matrix.
    pub(super) fn batch_broadcast_view(&mut self, w: &V, batch: &Dim, dyn_ty: &str) -> String {
        let (buf, m) = self.read_buffer(w);
        let (o, c) = (w.shape[0].clone(), w.shape[1].clone());
        let sizes: Vec<String> = [batch, &o, &c].iter().map(|d| self.b.size(d)).collect();
        let (zero, one) = (self.b.index(0), self.b.index(1));
        let row = sizes[2].clone();
        self.b.assign(format!(
            "memref.reinterpret_cast {buf} to offset: [{zero}], sizes: [{}], strides: [{zero}, {row}, {one}] : {m} to {dyn_ty}",
            sizes.join(", ")
        ))
    }

    /// `source` with its last two axes swapped, as a strided view of its buffer cast to
    /// `dyn_ty` (a matrix product's operand: no transposed copy is made; the transpose
    /// op, left without uses, is removed by the pipeline).
    pub(super) fn swapped_view(&mut self, source: &V, dyn_ty: &str) -> String {
        let r = source.rank();
        let (buf, m) = self.read_buffer(source);
        // Row-major strides of the source, `?` where a size is dynamic.
        let mut strides = vec![String::new(); r];
        let mut inner = Some(1i64);
        for i in (0..r).rev() {
            strides[i] = inner.map_or("?".to_string(), |s| s.to_string());
            inner = inner.zip(source.shape[i].as_const()).map(|(s, d)| s * d);
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        let shape: Vec<Dim> = perm.iter().map(|&p| source.shape[p].clone()).collect();
        let view_strides: Vec<&str> = perm.iter().map(|&p| strides[p].as_str()).collect();
        let sizes: String =
            shape.iter().map(|d| d.as_const().map_or("?".to_string(), |c| c.to_string()) + "x").collect();
        let t = super::types::elem(source.dtype);
        let view_ty = format!("memref<{sizes}{t}, strided<[{}]>>", view_strides.join(", "));
        let ins: Vec<String> = (0..r).map(|i| format!("d{i}")).collect();
        let outs: Vec<String> = perm.iter().map(|&p| format!("d{p}")).collect();
        let view = self.b.assign(format!(
            "memref.transpose {buf} ({}) -> ({}) : {m} to {view_ty}",
            ins.join(", "),
            outs.join(", ")
        ));
        self.b.assign(format!("memref.cast {view} : {view_ty} to {dyn_ty}"))
    }

    /// A generic sum-of-products of `ins` (all of dtype `dt`) into zeros of `shape`,
    /// summing `red` terms per output element. Long f32 sums (at least
    /// [`LONG_SUM`] terms) accumulate exact products in f64 and round once, as the
    /// interpreter does; shorter ones stay in f32.
    pub(super) fn contract(
        &mut self,
        ins: &[Operand],
        dt: DType,
        shape: &[Dim],
        out_map: Vec<String>,
        iters: &[Iter],
        red: &Dim,
    ) -> V {
        let acc = if dt == DType::F32 && at_least(red, LONG_SUM) { DType::F64 } else { dt };
        let init = self.b.filled(0.0, acc, shape);
        let n_in = ins.len();
        let sums = iters.contains(&Iter::Red);
        let mut r = self.b.generic(ins, &[Operand::new(&init, out_map)], iters, |b, a| {
            let mut p = scalar::cast(b, dt, acc, &a[0]);
            for x in &a[1..n_in] {
                let x = scalar::cast(b, dt, acc, x);
                p = scalar::binary(b, BinaryOp::Mul, acc, &p, &x).expect("numeric");
            }
            if !sums {
                // Nothing summed (a permutation or outer product): the init is not read,
                // as MLIR's elementwise fusion would turn an accumulating all-parallel op
                // read through a broadcast into a running sum.
                return vec![p];
            }
            vec![scalar::binary(b, BinaryOp::Add, acc, &a[n_in], &p).expect("numeric")]
        });
        let v = r.remove(0);
        if acc == dt {
            v
        } else {
            self.cast(&v, dt)
        }
    }

    pub fn einsum(&mut self, spec: &str, xs: &[V], out: &Ty) -> EmitResult<V> {
        let (lhs, rhs) =
            spec.split_once("->").ok_or_else(|| EmitError::Malformed(format!("bad einsum spec {spec:?}")))?;
        let inputs: Vec<&str> = lhs.split(',').collect();
        if inputs.len() != xs.len() {
            let (n, got) = (inputs.len(), xs.len());
            return Err(EmitError::Malformed(format!("einsum spec {spec:?} has {n} operands, got {got}")));
        }
        let direct = self.em.target == super::Target::Gpu && small_contraction(&inputs, xs);
        if let [a, b] = xs {
            if out.0.is_float() && a.dtype == out.0 && b.dtype == out.0 && !direct {
                if let Some(v) = self.einsum_as_matmul(inputs[0], inputs[1], rhs, a, b, out)? {
                    return Ok(v);
                }
            }
        }
        // Loop order: output letters, then the summed letters in order of appearance.
        let mut letters: Vec<char> = rhs.chars().collect();
        for s in &inputs {
            for c in s.chars() {
                if !letters.contains(&c) {
                    letters.push(c);
                }
            }
        }
        let map_of = |s: &str| -> Vec<String> {
            s.chars().map(|c| format!("d{}", letters.iter().position(|&l| l == c).expect("collected"))).collect()
        };
        let iters: Vec<Iter> = (0..letters.len()).map(|i| if i < rhs.len() { Iter::Par } else { Iter::Red }).collect();
        let mut size: HashMap<char, Dim> = HashMap::new();
        for (x, s) in xs.iter().zip(&inputs) {
            for (c, d) in s.chars().zip(&x.shape) {
                size.insert(c, d.clone());
            }
        }
        let red = product(letters[rhs.len()..].iter().map(|c| &size[c]));
        let ins: Vec<Operand> = xs.iter().zip(&inputs).map(|(x, s)| Operand::new(x, map_of(s))).collect();
        Ok(self.contract(&ins, out.0, &out.1, map_of(rhs), &iters, &red))
    }

    /// A two-operand einsum as one (batched) matmul: operands permuted to
    /// `[batch, free, contracted]` / `[batch, contracted, free]` and flattened, the product
    /// reshaped and permuted to the output. `None` when the spec is not of that form
    /// (a repeated letter, or a letter summed within one operand).
    pub(super) fn einsum_as_matmul(
        &mut self,
        l: &str,
        r: &str,
        o: &str,
        a: &V,
        b: &V,
        out: &Ty,
    ) -> EmitResult<Option<V>> {
        let distinct = |s: &str| s.chars().enumerate().all(|(i, c)| !s[..i].contains(c));
        if !distinct(l) || !distinct(r) || !distinct(o) {
            return Ok(None);
        }
        if l.chars().chain(r.chars()).any(|c| !o.contains(c) && !(l.contains(c) && r.contains(c))) {
            return Ok(None);
        }
        let size: HashMap<char, Dim> =
            l.chars().zip(&a.shape).chain(r.chars().zip(&b.shape)).map(|(c, d)| (c, d.clone())).collect();
        let batch: Vec<char> = o.chars().filter(|&c| l.contains(c) && r.contains(c)).collect();
        let lfree: Vec<char> = o.chars().filter(|&c| l.contains(c) && !r.contains(c)).collect();
        let rfree: Vec<char> = o.chars().filter(|&c| r.contains(c) && !l.contains(c)).collect();
        let contr: Vec<char> = l.chars().filter(|&c| r.contains(c) && !o.contains(c)).collect();
        let prod = |cs: &[char]| product(cs.iter().map(|c| &size[c]));
        let (bp, lp, cp, rp) = (prod(&batch), prod(&lfree), prod(&contr), prod(&rfree));
        let pos = |s: &str, cs: &[char]| cs.iter().map(|&c| s.find(c).expect("letter of s")).collect::<Vec<_>>();
        let pa = [pos(l, &batch), pos(l, &lfree), pos(l, &contr)].concat();
        let pb = [pos(r, &batch), pos(r, &contr), pos(r, &rfree)].concat();
        let dt = out.0;
        let (sa, sb, sy) = if batch.is_empty() {
            (vec![lp.clone(), cp.clone()], vec![cp, rp.clone()], vec![lp, rp])
        } else {
            (vec![bp.clone(), lp.clone(), cp.clone()], vec![bp.clone(), cp, rp.clone()], vec![bp, lp, rp])
        };
        let a2 = self.permute(a, &pa);
        let a2 = self.reshape(&a2, &sa)?;
        let b2 = self.permute(b, &pb);
        let b2 = self.reshape(&b2, &sb)?;
        let y = self.matmul(&a2, &b2, &(dt, sy));
        let order: Vec<char> = [batch, lfree, rfree].concat();
        let y = self.reshape(&y, &order.iter().map(|c| size[c].clone()).collect::<Vec<_>>())?;
        let perm: Vec<usize> = o.chars().map(|c| order.iter().position(|&x| x == c).expect("output letter")).collect();
        Ok(Some(self.permute(&y, &perm)))
    }
}

/// Einsums with at most this many products run as one generic kernel on the GPU.
pub(super) const SMALL_CONTRACTION: usize = 1 << 22;

/// Whether an einsum of `inputs` (their letters) over `xs` has constant sizes and at
/// most [`SMALL_CONTRACTION`] products. On the GPU such a contraction is one kernel (a
/// thread per result); as a batched matrix product it would be up to three transposed
/// copies (FNO's mode mixing `bim,iom->bom` batches over the innermost axis) and a
/// cuBLAS call, each a launch costing more than the arithmetic.
pub(super) fn small_contraction(inputs: &[&str], xs: &[V]) -> bool {
    let mut size: HashMap<char, usize> = HashMap::new();
    for (s, x) in inputs.iter().zip(xs) {
        for (c, d) in s.chars().zip(&x.shape) {
            match d.as_const().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => size.insert(c, n),
                None => return false,
            };
        }
    }
    size.values().try_fold(1usize, |p, &n| p.checked_mul(n)).is_some_and(|p| p <= SMALL_CONTRACTION)
}
