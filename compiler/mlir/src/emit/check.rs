//! Run-time refusals in compiled code: a condition computed at the function's top level
//! that, when true, calls the runtime's `archc_fail` with a [`Failure`] code and its
//! payload (see `crate::runtime::rt`). The code after it runs on with safe values (clamped
//! indices), so a refused run never reads out of bounds; the caller of the entry takes
//! the failure and fails the run. Conditions that sizes alone decide are checked on the
//! host on every target. Conditions on tensor values are too on the CPU target; on the
//! GPU target, where the values live in device memory, a kernel computes the check's
//! record `[kind or 0, payload]` ([`FnLower::record`]) and the host passes the buffer to
//! the runtime's `archc_check_record` ([`FnLower::check_on_device`]), which the GPU
//! runners implement by a copy into page-locked memory queued on the stream (captured
//! into CUDA graphs like the kernels) and read after the run's last wait.

use super::builder::{Builder, Iter, Operand, V};
use super::lower::FnLower;
use crate::runtime::rt::Failure;
use archc_compiler::tir::{DType, Dim};

const DECL: &str = "func.func private @archc_fail(i64, i64, i64, i64)";

impl FnLower<'_, '_, '_> {
    /// When the `i1` value `cond` is true, records `kind` with `payload` (three `i64`
    /// values) as the run's failure.
    pub fn fail_if(&mut self, cond: &str, kind: Failure, payload: [&str; 3]) {
        self.em.externs.insert("archc_fail".into(), DECL.into());
        let k = self.b.i64c(kind as i64);
        self.b.raw(format!("scf.if {cond} {{"));
        self.b.indent();
        self.b.op(format!(
            "func.call @archc_fail({k}, {}, {}, {}) : (i64, i64, i64, i64) -> ()",
            payload[0], payload[1], payload[2]
        ));
        self.b.dedent();
        self.b.raw("}");
    }

    /// A `tensor<4xi64>` check record whose elements `body` computes from values it reads
    /// (one four-element loop: a kernel on the GPU target).
    pub fn record(&mut self, body: impl FnOnce(&mut Builder) -> [String; 4]) -> V {
        let init = self.zeroed_record();
        // The zeroed element is the last alternative (never taken): a body that did not
        // read it would let canonicalization swap the zeroed buffer for a fresh one.
        let mut r = self.b.generic(&[], &[Operand::identity(&init)], &[Iter::Par], |b, a| {
            let parts = body(b);
            let i = b.loop_index(0);
            let i = b.assign(format!("arith.index_cast {i} : index to i64"));
            let mut v = a[0].clone();
            for at in (0..4).rev() {
                let c = b.i64c(at as i64);
                let here = b.assign(format!("arith.cmpi eq, {i}, {c} : i64"));
                v = b.assign(format!("arith.select {here}, {}, {v} : i64", parts[at]));
            }
            vec![v]
        });
        r.remove(0)
    }

    /// A fresh record buffer that the runtime's `archc_check_begin` zeroes (a fill on the
    /// GPU's stream), so a record is "nothing to report" until a kernel writes it.
    fn zeroed_record(&mut self) -> V {
        self.runtime_fill("archc_check_begin", &[], (DType::I64, vec![Dim::constant(4)]))
    }

    /// Hands the check record `rec` ([`Self::record`]) to the runtime's
    /// `archc_check_record`, which fails the run when its kind is not 0.
    pub fn check_on_device(&mut self, rec: &V) {
        let any = "memref<*xi64>";
        let decl = format!("func.func private @archc_check_record({any}) attributes {{llvm.emit_c_interface}}");
        self.em.externs.insert("archc_check_record".into(), decl);
        let (buf, m) = self.read_buffer(rec);
        let u = self.b.assign(format!("memref.cast {buf} : {m} to {any}"));
        self.b.op(format!("func.call @archc_check_record({u}) : ({any}) -> ()"));
    }

    /// The `index` value `v` as an `i64`.
    pub fn as_i64(&mut self, v: &str) -> String {
        self.b.assign(format!("arith.index_cast {v} : index to i64"))
    }
}
