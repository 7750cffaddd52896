//! `rfft` / `irfft` as DFT matrix products on the runtime's `gemm` kernels: the transform
//! axis is moved last and the other axes flattened, so a transform is `[R, n] @ [n, 2k]`
//! (cosine and negated sine columns side by side) or `[R, 2k] @ [2k, n]`. Twiddle tables
//! are computed in f64 by a `linalg.generic` (angles reduced modulo `n` first), once per
//! function for each table shape: a train step's transforms, forward and backward, share
//! them ([`FnLower::tables`]).
//! Conventions are numpy's (see the interpreter's `fft` module).
//!
//! Only the coefficients a program uses are computed: an `rfft` read only through
//! leading slices along its axis keeps `k` coefficients ([`FnLower::rfft`] with `keep`),
//! and an `irfft` of `complex(concat(re, 0), concat(im, 0))` contracts only `re` and `im`
//! ([`FnLower::irfft_parts`]), which is how spectral convolutions truncate modes.
//!
//! A transform whose table would hold more than [`MAX_TABLE`] entries (a few MB; the
//! table grows with the square of the length) is instead a call of the runtime's FFT
//! (`archc_rfft_*` / `archc_irfft_*`, the interpreter's transform row by row) on the CPU
//! target, and on the GPU target one reduction that computes each table entry where it
//! is used ([`FnLower::times_table`]): either way memory stays proportional to the data.

use super::builder::{ds, fixed, product, Builder, Iter, Operand, V};
use super::lower::FnLower;
use super::scalar;
use super::types::elem;
use super::{EmitResult, Ty};
use archc_compiler::tir::{DType, Dim};

/// The most entries of a DFT table (`n x 2k`); longer transforms call the runtime's FFT.
pub const MAX_TABLE: usize = 1 << 19;

impl FnLower<'_, '_, '_> {
    /// A `[rows, cols]` table of `dtype` whose entry is `f(builder, row, col)` (f64),
    /// computed on first use (`inverse` and the sizes name it) and shared after, where the
    /// builder is at the function's top level (where every later use is dominated).
    fn table(
        &mut self,
        inverse: bool,
        (rows, cols): (usize, usize),
        dtype: DType,
        f: impl FnOnce(&mut Builder, &str, &str) -> String,
    ) -> V {
        let key = (inverse, rows, cols, dtype);
        let shared = self.b.at_top_level();
        if let Some(t) = self.tables.get(&key).filter(|_| shared) {
            return t.clone();
        }
        if self.em.target == super::Target::Cpu {
            let (n, k) = if inverse { (cols, rows / 2) } else { (rows, cols / 2) };
            let t = self.runtime_table(inverse, (n, k), (rows, cols), dtype);
            if shared {
                self.tables.insert(key, t.clone());
            }
            return t;
        }
        let init = self.b.empty(dtype, &ds(&[rows, cols]));
        let mut r = self.b.generic(&[], &[Operand::identity(&init)], &[Iter::Par, Iter::Par], |b, _| {
            let i = b.loop_index(0);
            let j = b.loop_index(1);
            let v = f(b, &i, &j);
            vec![scalar::cast(b, DType::F64, dtype, &v)]
        });
        let t = r.remove(0);
        if shared {
            self.tables.insert(key, t.clone());
        }
        t
    }

    /// `rows @ T` for a `[inner, cols]` table `T` whose entry is `entry(builder, i, c)`
    /// (f64): the table ([`Self::table`]) and a product where the table has at most
    /// [`MAX_TABLE`] entries; otherwise (the GPU target, which has no runtime FFT) one
    /// reduction that computes each entry where it is used and sums in f64, so memory stays
    /// proportional to the data.
    fn times_table(
        &mut self,
        rows: &V,
        inverse: bool,
        (inner, cols): (usize, usize),
        entry: impl Fn(&mut Builder, &str, &str) -> String,
    ) -> V {
        let dt = rows.dtype;
        let out = (dt, vec![rows.shape[0].clone(), Dim::constant(cols as i64)]);
        if inner * cols <= MAX_TABLE {
            let table = self.table(inverse, (inner, cols), dt, entry);
            return self.matmul(rows, &table, &out);
        }
        let acc = self.b.filled(0.0, DType::F64, &out.1);
        let ins = [Operand::new(rows, vec!["d0".into(), "d2".into()])];
        let outs = [Operand::new(&acc, vec!["d0".into(), "d1".into()])];
        let sums = self.b.generic(&ins, &outs, &[Iter::Par, Iter::Par, Iter::Red], |b, a| {
            let (i, c) = (b.loop_index(2), b.loop_index(1));
            let t = entry(b, &i, &c);
            let x = scalar::cast(b, dt, DType::F64, &a[0]);
            let xt = b.assign(format!("arith.mulf {x}, {t} : f64"));
            vec![b.assign(format!("arith.addf {}, {xt} : f64", a[1]))]
        });
        self.cast(&sums[0], dt)
    }

    /// The table of a transform of `n` points keeping `k` coefficients, copied by the
    /// runtime from the one it computed on first use (`runtime::dft`, the same entries as
    /// [`Self::times_forward_table`]'s and [`Self::times_inverse_table`]'s): on the CPU
    /// a forward pass no longer computes `sincos` per entry on every run.
    fn runtime_table(
        &mut self,
        inverse: bool,
        (n, k): (usize, usize),
        (rows, cols): (usize, usize),
        dtype: DType,
    ) -> V {
        let sym = format!("archc_dft_table_{}", elem(dtype));
        let scalars = [inverse as i64, n as i64, k as i64].map(|v| self.b.i64c(v));
        self.runtime_fill(&sym, &scalars, (dtype, ds(&[rows, cols])))
    }

    /// `rows: [R, n]` times the `[n, 2k]` forward table (column `j < k` is
    /// `cos(2 pi j t / n)`, column `k + j` is `-sin(...)`).
    fn times_forward_table(&mut self, rows: &V, n: usize, k: usize) -> V {
        self.times_table(rows, false, (n, 2 * k), move |b, t, j| {
            let (freq, is_sin) = split_column(b, j, k);
            let (cos, sin) = angle(b, &freq, t, n);
            let nsin = b.assign(format!("arith.negf {sin} : f64"));
            b.assign(format!("arith.select {is_sin}, {nsin}, {cos} : f64"))
        })
    }

    /// `both: [R, 2k]` times the `[2k, n]` inverse table: row `j < k` is
    /// `c_j cos(2 pi j t / n) / n`, row `k + j` is `-s_j sin(...) / n`, with `c_j = 1` at
    /// DC and (even `n`) Nyquist, else 2, and `s_j` the same but 0 at DC and Nyquist
    /// (their imaginary parts are ignored).
    fn times_inverse_table(&mut self, both: &V, k: usize, n: usize) -> V {
        self.times_table(both, true, (2 * k, n), move |b, j, t| {
            let (freq, is_sin) = split_column(b, j, k);
            let (cos, sin) = angle(b, &freq, t, n);
            let f64v = b.assign(format!("arith.index_cast {freq} : index to i64"));
            let zero = b.i64c(0);
            let nyq = b.i64c(if n.is_multiple_of(2) { (n / 2) as i64 } else { -1 });
            let dc = b.assign(format!("arith.cmpi eq, {f64v}, {zero} : i64"));
            let ny = b.assign(format!("arith.cmpi eq, {f64v}, {nyq} : i64"));
            let edge = b.assign(format!("arith.ori {dc}, {ny} : i1"));
            let inv_n = b.scalar(1.0 / n as f64, DType::F64);
            let two_n = b.scalar(2.0 / n as f64, DType::F64);
            let m_two_n = b.scalar(-2.0 / n as f64, DType::F64);
            let zf = b.scalar(0.0, DType::F64);
            let wc = b.assign(format!("arith.select {edge}, {inv_n}, {two_n} : f64"));
            let ws = b.assign(format!("arith.select {edge}, {zf}, {m_two_n} : f64"));
            let c = b.assign(format!("arith.mulf {cos}, {wc} : f64"));
            let s = b.assign(format!("arith.mulf {sin}, {ws} : f64"));
            b.assign(format!("arith.select {is_sin}, {s}, {c} : f64"))
        })
    }

    /// `x` with `axis` moved last and the other axes flattened: `([R, n], moved shape)`.
    pub(super) fn rows_along(&mut self, x: &V, axis: usize) -> EmitResult<(V, Vec<Dim>)> {
        let r = x.rank();
        let perm: Vec<usize> = (0..r).filter(|&i| i != axis).chain([axis]).collect();
        let moved = self.permute(x, &perm);
        let rows = product(&moved.shape[..r - 1]);
        let flat = self.reshape(&moved, &[rows, x.shape[axis].clone()])?;
        Ok((flat, moved.shape))
    }

    /// The inverse of [`Self::rows_along`] for a result with `len` points on the axis.
    pub(super) fn unrows(&mut self, y: &V, moved: &[Dim], axis: usize, len: Dim) -> EmitResult<V> {
        let r = moved.len();
        let mut shape = moved.to_vec();
        shape[r - 1] = len;
        let y = self.reshape(y, &shape)?;
        // Moving the last axis back to `axis`.
        let inv: Vec<usize> = (0..r)
            .map(|i| {
                if i < axis {
                    i
                } else if i == axis {
                    r - 1
                } else {
                    i - 1
                }
            })
            .collect();
        Ok(self.permute(&y, &inv))
    }

    /// The first `keep` (at most `n / 2 + 1`) coefficients of the real FFT along `axis`.
    pub fn rfft(&mut self, x: &V, axis: usize, out: &Ty, keep: Option<usize>) -> EmitResult<V> {
        let n = x.fixed(axis)?;
        let full = fixed(&out.1[axis])?;
        let k = keep.unwrap_or(full).min(full);
        let dt = x.dtype;
        let (rows, moved) = self.rows_along(x, axis)?;
        if self.runtime_fft(n, k) {
            let z = self.rt_call(&format!("archc_rfft_{}", elem(dt)), &[&rows], (DType::C64, Dim::constant(k as i64)));
            return self.unrows(&z, &moved, axis, Dim::constant(k as i64));
        }
        let y = self.times_forward_table(&rows, n, k);
        let re = self.columns(&y, 0, k);
        let im = self.columns(&y, k, k);
        let im = self.zero_edge_columns(&im, n);
        let z = self.complex(&re, &im);
        self.unrows(&z, &moved, axis, Dim::constant(k as i64))
    }

    /// Whether a transform of `n` points keeping `k` coefficients calls the runtime.
    fn runtime_fft(&self, n: usize, k: usize) -> bool {
        self.em.target == super::Target::Cpu && n * 2 * k > MAX_TABLE
    }

    /// A fresh buffer of `ty` written by one host call `sym(scalars..., buffer)` (`i64`
    /// scalars, the buffer as `memref<*xT>` through the C interface), as a tensor.
    pub(super) fn runtime_fill(&mut self, sym: &str, scalars: &[String], (dtype, shape): Ty) -> V {
        let any = format!("memref<*x{}>", elem(dtype));
        let tys: Vec<&str> = scalars.iter().map(|_| "i64").chain([any.as_str()]).collect();
        let decl = format!("func.func private @{sym}({}) attributes {{llvm.emit_c_interface}}", tys.join(", "));
        self.em.externs.insert(sym.to_string(), decl);
        let mty = super::types::memref(dtype, &shape);
        let m = self.b.alloc(dtype, &shape);
        let u = self.b.assign(format!("memref.cast {m} : {mty} to {any}"));
        let args: Vec<&str> = scalars.iter().map(String::as_str).chain([u.as_str()]).collect();
        self.b.op(format!("func.call @{sym}({}) : ({}) -> ()", args.join(", "), tys.join(", ")));
        let ty = super::types::tensor(dtype, &shape);
        let name = self.b.assign(format!("bufferization.to_tensor {m} restrict : {mty} to {ty}"));
        V { name, dtype, shape }
    }

    /// `out = sym(ins...)` on `[R, _]` matrices: the runtime writes a fresh `[R, len]`
    /// buffer of `dtype` (its last argument).
    pub(super) fn rt_call(&mut self, sym: &str, ins: &[&V], (dtype, len): (DType, Dim)) -> V {
        let shape = vec![ins[0].shape[0].clone(), len];
        let mut args = Vec::new();
        let mut tys = Vec::new();
        for v in ins {
            let (buf, m) = self.read_buffer(v);
            let ty = super::contract::dyn_view(2, v.dtype);
            args.push(self.b.assign(format!("memref.cast {buf} : {m} to {ty}")));
            tys.push(ty);
        }
        let out_ty = super::types::memref(dtype, &shape);
        let out = self.b.alloc(dtype, &shape);
        let dyn_out = super::contract::dyn_view(2, dtype);
        args.push(self.b.assign(format!("memref.cast {out} : {out_ty} to {dyn_out}")));
        tys.push(dyn_out);
        let decl = format!("func.func private @{sym}({}) attributes {{llvm.emit_c_interface}}", tys.join(", "));
        self.em.externs.insert(sym.to_string(), decl);
        self.b.op(format!("func.call @{sym}({}) : ({}) -> ()", args.join(", "), tys.join(", ")));
        let t = super::types::tensor(dtype, &shape);
        let name = self.b.assign(format!("bufferization.to_tensor {out} restrict : {out_ty} to {t}"));
        V { name, dtype, shape }
    }

    /// `m: [R, k]` (imaginary parts of coefficients) with the DC column and, for an even
    /// `n`, the Nyquist column set to exactly 0: they are 0 in a real transform (the sine
    /// table's entries there multiply a NaN or infinite input into NaN, and its `sin(pi)`
    /// is not quite 0), and an inverse transform ignores them (numpy's rule).
    fn zero_edge_columns(&mut self, m: &V, n: usize) -> V {
        let dt = m.dtype;
        self.b.map(&[m], dt, |b, a| {
            let j = b.loop_index(1);
            let j = b.assign(format!("arith.index_cast {j} : index to i64"));
            let (zero, nyq) = (b.i64c(0), b.i64c(if n.is_multiple_of(2) { (n / 2) as i64 } else { -1 }));
            let dc = b.assign(format!("arith.cmpi eq, {j}, {zero} : i64"));
            let ny = b.assign(format!("arith.cmpi eq, {j}, {nyq} : i64"));
            let edge = b.assign(format!("arith.ori {dc}, {ny} : i1"));
            let z = b.scalar(0.0, dt);
            b.assign(format!("arith.select {edge}, {z}, {} : {}", a[0], elem(dt)))
        })
    }

    /// Columns `[start, start + len)` of a matrix.
    fn columns(&mut self, y: &V, start: usize, len: usize) -> V {
        let shape = vec![y.shape[0].clone(), Dim::constant(len as i64)];
        let rows = self.b.mixed(&shape[..1]).remove(0);
        let name = self.b.assign(format!(
            "tensor.extract_slice {}[0, {start}] [{rows}, {len}] [1, 1] : {} to {}",
            y.name,
            y.ty(),
            super::types::tensor(y.dtype, &shape)
        ));
        V { name, dtype: y.dtype, shape }
    }

    pub fn irfft(&mut self, z: &V, axis: usize, out: &Ty) -> EmitResult<V> {
        let re = self.part(z, false);
        let im = self.part(z, true);
        self.irfft_parts(&re, &im, axis, out)
    }

    /// `irfft(complex(re, im))` along `axis` with `out.1[axis]` points; coefficients past
    /// `n / 2 + 1` are ignored, missing ones are zeros.
    pub fn irfft_parts(&mut self, re: &V, im: &V, axis: usize, out: &Ty) -> EmitResult<V> {
        let n = fixed(&out.1[axis])?;
        let k = re.fixed(axis)?.min(n / 2 + 1);
        let dt = out.0;
        let mut parts = Vec::new();
        for p in [re, im] {
            let p = if p.fixed(axis)? > k { self.leading(p, axis, k) } else { p.clone() };
            let p = if p.dtype == dt { p } else { self.cast(&p, dt) };
            parts.push(self.rows_along(&p, axis)?);
        }
        parts[1].0 = self.zero_edge_columns(&parts[1].0, n);
        let moved = parts[0].1.clone();
        let rows = parts[0].0.shape[0].clone();
        if self.runtime_fft(n, k) {
            let sym = format!("archc_irfft_{}", elem(dt));
            let y = self.rt_call(&sym, &[&parts[0].0, &parts[1].0], (dt, Dim::constant(n as i64)));
            return self.unrows(&y, &moved, axis, Dim::constant(n as i64));
        }
        let both_ty = (dt, vec![rows.clone(), Dim::constant(2 * k as i64)]);
        let both = self.concat(&[parts[0].0.clone(), parts[1].0.clone()], 1, &both_ty);
        let y = self.times_inverse_table(&both, k, n);
        self.unrows(&y, &moved, axis, Dim::constant(n as i64))
    }

    /// The first `k` entries of `x` along `axis`.
    fn leading(&mut self, x: &V, axis: usize, k: usize) -> V {
        let mut shape = x.shape.clone();
        shape[axis] = Dim::constant(k as i64);
        let list = |v: Vec<String>| v.join(", ");
        let sizes = self.b.mixed(&shape);
        let name = self.b.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            list(vec!["0".to_string(); x.rank()]),
            list(sizes),
            list(vec!["1".to_string(); x.rank()]),
            x.ty(),
            super::types::tensor(x.dtype, &shape)
        ));
        V { name, dtype: x.dtype, shape }
    }
}

/// For table index `j` over `2k` entries: the frequency `j mod k` (index) and whether `j`
/// is in the sine half.
fn split_column(b: &mut Builder, j: &str, k: usize) -> (String, String) {
    let kk = b.index(k as i64);
    let is_sin = b.assign(format!("arith.cmpi uge, {j}, {kk} : index"));
    let freq = b.assign(format!("arith.remui {j}, {kk} : index"));
    (freq, is_sin)
}

/// `(cos, sin)` of `2 pi ((f * t) mod n) / n` in f64.
fn angle(b: &mut Builder, f: &str, t: &str, n: usize) -> (String, String) {
    let ft = b.assign(format!("arith.muli {f}, {t} : index"));
    let nn = b.index(n as i64);
    let ft = b.assign(format!("arith.remui {ft}, {nn} : index"));
    let ft = b.assign(format!("arith.index_cast {ft} : index to i64"));
    let ft = b.assign(format!("arith.sitofp {ft} : i64 to f64"));
    let w = b.scalar(std::f64::consts::TAU / n as f64, DType::F64);
    let th = b.assign(format!("arith.mulf {ft}, {w} : f64"));
    (b.assign(format!("math.cos {th} : f64")), b.assign(format!("math.sin {th} : f64")))
}
