//! Run-time refusals in compiled code: a condition computed at the function's top level
//! that, when true, calls the runtime's `archc_fail` with a [`Failure`] code and its
//! payload (see `crate::runtime::rt`). The code after it runs on with safe values (clamped
//! indices), so a refused run never reads out of bounds; the caller of the entry takes
//! the failure and fails the run. Conditions that sizes alone decide are checked on
//! every target; conditions on tensor values are checked on the CPU target only (on the
//! GPU target the values live in device memory).

use super::lower::FnLower;
use crate::runtime::rt::Failure;

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

    /// The `index` value `v` as an `i64`.
    pub fn as_i64(&mut self, v: &str) -> String {
        self.b.assign(format!("arith.index_cast {v} : index to i64"))
    }
}
