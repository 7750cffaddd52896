//! `rfft` / `irfft` as DFT contractions: twiddle tables are computed in f64 by a
//! `linalg.generic` (angles reduced modulo `n` first), then contracted with the input.
//! Conventions are numpy's (see the interpreter's `fft` module).

use super::builder::{Builder, Iter, Operand, V};
use super::lower::FnLower;
use super::scalar;
use super::Shape;
use archc_compiler::tir::DType;

/// Which table: rfft's `(cos, -sin)`, or irfft's weighted `(c_k cos / n, -s_k sin / n)`.
#[derive(Copy, Clone)]
enum Table {
    Forward,
    Inverse,
}

fn dims(idx: impl IntoIterator<Item = usize>) -> Vec<String> {
    idx.into_iter().map(|i| format!("d{i}")).collect()
}

impl FnLower<'_, '_, '_> {
    /// Two `[k, t]` tables of `dtype` for a length-`n` transform with `kn` coefficients.
    fn twiddles(&mut self, kn: usize, n: usize, dtype: DType, table: Table) -> (V, V) {
        let c = self.b.empty(dtype, &[kn, n]);
        let s = self.b.empty(dtype, &[kn, n]);
        let outs = [Operand::identity(&c), Operand::identity(&s)];
        let mut r = self.b.generic(&[], &outs, &[Iter::Par, Iter::Par], |b: &mut Builder, _| {
            let k = b.loop_index(0);
            let t = b.loop_index(1);
            let kt = b.assign(format!("arith.muli {k}, {t} : index"));
            let nn = b.index(n as i64);
            let kt = b.assign(format!("arith.remui {kt}, {nn} : index"));
            let kt = b.assign(format!("arith.index_cast {kt} : index to i64"));
            let kt = b.assign(format!("arith.sitofp {kt} : i64 to f64"));
            let w = b.scalar(std::f64::consts::TAU / n as f64, DType::F64);
            let th = b.assign(format!("arith.mulf {kt}, {w} : f64"));
            let cos = b.assign(format!("math.cos {th} : f64"));
            let sin = b.assign(format!("math.sin {th} : f64"));
            let sin = b.assign(format!("arith.negf {sin} : f64"));
            let (cos, sin) = match table {
                Table::Forward => (cos, sin),
                Table::Inverse => {
                    // c_k = 1 at DC and (even n) Nyquist, else 2; the imaginary parts there are ignored.
                    let k64 = b.assign(format!("arith.index_cast {k} : index to i64"));
                    let zero = b.i64c(0);
                    let nyq = b.i64c(if n % 2 == 0 { (n / 2) as i64 } else { -1 });
                    let dc = b.assign(format!("arith.cmpi eq, {k64}, {zero} : i64"));
                    let ny = b.assign(format!("arith.cmpi eq, {k64}, {nyq} : i64"));
                    let edge = b.assign(format!("arith.ori {dc}, {ny} : i1"));
                    let inv_n = b.scalar(1.0 / n as f64, DType::F64);
                    let two_n = b.scalar(2.0 / n as f64, DType::F64);
                    let zf = b.scalar(0.0, DType::F64);
                    let wc = b.assign(format!("arith.select {edge}, {inv_n}, {two_n} : f64"));
                    let ws = b.assign(format!("arith.select {edge}, {zf}, {two_n} : f64"));
                    let cos = b.assign(format!("arith.mulf {cos}, {wc} : f64"));
                    let sin = b.assign(format!("arith.mulf {sin}, {ws} : f64"));
                    (cos, sin)
                }
            };
            vec![scalar::cast(b, DType::F64, dtype, &cos), scalar::cast(b, DType::F64, dtype, &sin)]
        });
        let s = r.remove(1);
        (r.remove(0), s)
    }

    pub fn rfft(&mut self, x: &V, axis: usize, out: &Shape) -> V {
        let n = x.shape[axis];
        let m = out.1[axis];
        let dt = x.dtype;
        let (cos, sin) = self.twiddles(m, n, dt, Table::Forward);
        let r = x.rank();
        let re0 = self.b.filled(0.0, dt, &out.1);
        let im0 = self.b.filled(0.0, dt, &out.1);
        let xmap: Vec<String> = (0..r).map(|i| if i == axis { format!("d{r}") } else { format!("d{i}") }).collect();
        let tmap = vec![format!("d{axis}"), format!("d{r}")];
        let mut iters = vec![Iter::Par; r];
        iters.push(Iter::Red);
        let ins = [Operand::new(x, xmap), Operand::new(&cos, tmap.clone()), Operand::new(&sin, tmap)];
        let outs = [Operand::new(&re0, dims(0..r)), Operand::new(&im0, dims(0..r))];
        let t = super::types::elem(dt);
        let mut parts = self.b.generic(&ins, &outs, &iters, |b, a| {
            let pc = b.assign(format!("arith.mulf {}, {} : {t}", a[0], a[1]));
            let ps = b.assign(format!("arith.mulf {}, {} : {t}", a[0], a[2]));
            vec![
                b.assign(format!("arith.addf {}, {pc} : {t}", a[3])),
                b.assign(format!("arith.addf {}, {ps} : {t}", a[4])),
            ]
        });
        let im = parts.remove(1);
        self.complex(&parts.remove(0), &im)
    }

    /// The first `k` entries of `x` along `axis`.
    fn leading(&mut self, x: &V, axis: usize, k: usize) -> V {
        let mut shape = x.shape.clone();
        shape[axis] = k;
        let list = |v: Vec<String>| v.join(", ");
        let name = self.b.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            list(vec!["0".to_string(); x.rank()]),
            list(shape.iter().map(|d| d.to_string()).collect()),
            list(vec!["1".to_string(); x.rank()]),
            x.ty(),
            super::types::tensor(x.dtype, &shape)
        ));
        V { name, dtype: x.dtype, shape }
    }

    pub fn irfft(&mut self, z: &V, axis: usize, out: &Shape) -> V {
        let n = out.1[axis];
        let kn = z.shape[axis].min(n / 2 + 1);
        // Coefficients past `n / 2 + 1` are ignored: contract only the first `kn`.
        let z = &if z.shape[axis] > kn { self.leading(z, axis, kn) } else { z.clone() };
        let dt = out.0;
        let (a_tab, b_tab) = self.twiddles(kn, n, dt, Table::Inverse);
        let r = z.rank();
        let init = self.b.filled(0.0, dt, &out.1);
        let zmap: Vec<String> = (0..r).map(|i| if i == axis { format!("d{r}") } else { format!("d{i}") }).collect();
        let tmap = vec![format!("d{r}"), format!("d{axis}")];
        let mut iters = vec![Iter::Par; r];
        iters.push(Iter::Red);
        let ins = [Operand::new(z, zmap), Operand::new(&a_tab, tmap.clone()), Operand::new(&b_tab, tmap)];
        let t = super::types::elem(dt);
        let mut res = self.b.generic(&ins, &[Operand::new(&init, dims(0..r))], &iters, |b, a| {
            let re = b.assign(format!("complex.re {} : complex<f32>", a[0]));
            let im = b.assign(format!("complex.im {} : complex<f32>", a[0]));
            let re = scalar::cast(b, DType::F32, dt, &re);
            let im = scalar::cast(b, DType::F32, dt, &im);
            let p = b.assign(format!("arith.mulf {re}, {} : {t}", a[1]));
            let q = b.assign(format!("arith.mulf {im}, {} : {t}", a[2]));
            let s = b.assign(format!("arith.addf {p}, {q} : {t}"));
            vec![b.assign(format!("arith.addf {}, {s} : {t}", a[3]))]
        });
        res.remove(0)
    }
}
