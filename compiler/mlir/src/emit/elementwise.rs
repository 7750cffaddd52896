//! Elementwise computations as `linalg` ops: constants (`const`), `iota`, unary and binary maps,
//! `select`, casts, complex parts and pairs.

use super::builder::{Iter, Operand, V};
use super::lower::FnLower;
use super::scalar;
use super::{EmitResult, Ty};
use archc_compiler::tir::{BinaryOp, DType, UnaryOp};

impl FnLower<'_, '_, '_> {
    pub fn constant(&mut self, c: f64, out: &Ty) -> V {
        self.b.filled(c, out.0, &out.1)
    }

    pub fn iota(&mut self, axis: usize, out: &Ty) -> V {
        let init = self.b.empty(out.0, &out.1);
        let iters = vec![Iter::Par; out.1.len()];
        let dtype = out.0;
        let mut r = self.b.generic(&[], &[Operand::identity(&init)], &iters, |b, _| {
            let i = b.loop_index(axis);
            let i = b.assign(format!("arith.index_cast {i} : index to i64"));
            vec![scalar::cast(b, DType::I64, dtype, &i)]
        });
        r.remove(0)
    }

    pub fn unary(&mut self, op: UnaryOp, x: &V, out: &Ty) -> EmitResult<V> {
        let mut res = Ok(());
        let dt = x.dtype;
        let v = self.b.map(&[x], out.0, |b, a| match scalar::unary(b, op, dt, &a[0]) {
            Ok(v) => v,
            Err(e) => {
                res = Err(e);
                a[0].clone()
            }
        });
        res.map(|_| v)
    }

    pub fn binary(&mut self, op: BinaryOp, x: &V, y: &V, out: &Ty) -> EmitResult<V> {
        let mut res = Ok(());
        let dt = x.dtype;
        let v = self.b.map(&[x, y], out.0, |b, a| match scalar::binary(b, op, dt, &a[0], &a[1]) {
            Ok(v) => v,
            Err(e) => {
                res = Err(e);
                a[0].clone()
            }
        });
        res.map(|_| v)
    }

    pub fn select(&mut self, c: &V, x: &V, y: &V) -> V {
        let t = super::types::elem(x.dtype);
        self.b.map(&[c, x, y], x.dtype, |b, a| b.assign(format!("arith.select {}, {}, {} : {t}", a[0], a[1], a[2])))
    }

    pub fn cast(&mut self, x: &V, to: DType) -> V {
        let from = x.dtype;
        self.b.map(&[x], to, |b, a| scalar::cast(b, from, to, &a[0]))
    }

    /// `real` / `imag` of a complex tensor; on real input, the identity / zeros.
    pub fn part(&mut self, z: &V, imag: bool) -> V {
        match (z.dtype, imag) {
            (DType::C64, _) => {
                let name = if imag { "complex.im" } else { "complex.re" };
                self.b.map(&[z], DType::F32, |b, a| b.assign(format!("{name} {} : complex<f32>", a[0])))
            }
            (_, false) => z.clone(),
            (dt, true) => self.b.filled(0.0, dt, &z.shape),
        }
    }

    pub fn complex(&mut self, re: &V, im: &V) -> V {
        let dt = re.dtype;
        self.b.map(&[re, im], DType::C64, |b, a| {
            let r = scalar::cast(b, dt, DType::F32, &a[0]);
            let i = scalar::cast(b, dt, DType::F32, &a[1]);
            b.assign(format!("complex.create {r}, {i} : complex<f32>"))
        })
    }
}
