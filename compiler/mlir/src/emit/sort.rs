//! `argsort`. On the CPU, rows longer than [`SORT_IN_LOOPS`] (or of a length known only
//! at run time) call the runtime (`archc_argsort_*`: a stable `O(n log n)` sort of each
//! row). Otherwise, and on every GPU, it is two `linalg.generic`s over the sorted axis
//! and a second copy of it, with no library call: the rank of element `i` is the number
//! of elements that sort before it (smaller, or equal and earlier: the sort is stable),
//! and the result at position `k` is the index whose rank is `k`. That is `O(n²)`
//! comparisons per row of `n` and no memory beyond the two results. Either way the order
//! is the interpreter's (`archc_runtime::interp` `sort`: NaN largest, `-0.0 == 0.0`).

use super::builder::{Builder, Iter, Operand, V};
use super::lower::FnLower;
use super::types::elem;
use super::EmitResult;
use archc_compiler::tir::DType;

/// The longest rows the CPU target sorts by counting in loops (`O(n²)`, vectorised);
/// longer ones call the runtime's sort.
pub const SORT_IN_LOOPS: i64 = 32;

/// Loop names `d0..d{rank}` with `axis` replaced by the extra loop `d{rank}`.
fn along_extra(rank: usize, axis: usize) -> Vec<String> {
    (0..rank).map(|i| if i == axis { format!("d{rank}") } else { format!("d{i}") }).collect()
}

fn identity(rank: usize) -> Vec<String> {
    (0..rank).map(|i| format!("d{i}")).collect()
}

/// `a` sorts strictly before `b` ascending (NaN above every number).
fn less(b: &mut Builder, dtype: DType, x: &str, y: &str) -> String {
    if dtype == DType::I64 {
        return b.assign(format!("arith.cmpi slt, {x}, {y} : i64"));
    }
    let t = elem(dtype);
    let lt = b.assign(format!("arith.cmpf olt, {x}, {y} : {t}"));
    let x_nan = b.assign(format!("arith.cmpf uno, {x}, {x} : {t}"));
    let y_nan = b.assign(format!("arith.cmpf uno, {y}, {y} : {t}"));
    let yes = b.scalar(1.0, DType::Bool);
    let x_num = b.assign(format!("arith.xori {x_nan}, {yes} : i1"));
    let num_nan = b.assign(format!("arith.andi {x_num}, {y_nan} : i1"));
    b.assign(format!("arith.ori {lt}, {num_nan} : i1"))
}

/// `a` and `b` are equal in the sort order (NaNs equal each other).
fn equal(b: &mut Builder, dtype: DType, x: &str, y: &str) -> String {
    if dtype == DType::I64 {
        return b.assign(format!("arith.cmpi eq, {x}, {y} : i64"));
    }
    let t = elem(dtype);
    let eq = b.assign(format!("arith.cmpf oeq, {x}, {y} : {t}"));
    let x_nan = b.assign(format!("arith.cmpf uno, {x}, {x} : {t}"));
    let y_nan = b.assign(format!("arith.cmpf uno, {y}, {y} : {t}"));
    let nans = b.assign(format!("arith.andi {x_nan}, {y_nan} : i1"));
    b.assign(format!("arith.ori {eq}, {nans} : i1"))
}

impl FnLower<'_, '_, '_> {
    /// The indices (i64) that sort `x` along `axis` (see the module docs).
    pub fn argsort(&mut self, axis: usize, descending: bool, x: &V) -> EmitResult<V> {
        let long = x.shape[axis].as_const().is_none_or(|n| n > SORT_IN_LOOPS);
        if self.em.target == super::Target::Cpu && long {
            let (rows, moved) = self.rows_along(x, axis)?;
            let order = if descending { "desc" } else { "asc" };
            let sym = format!("archc_argsort_{}_{order}", elem(x.dtype));
            let sorted = self.rt_call(&sym, &[&rows], (DType::I64, x.shape[axis].clone()));
            return self.unrows(&sorted, &moved, axis, x.shape[axis].clone());
        }
        Ok(self.argsort_in_loops(axis, descending, x))
    }

    /// [`Self::argsort`] by counting (see the module docs).
    fn argsort_in_loops(&mut self, axis: usize, descending: bool, x: &V) -> V {
        let r = x.rank();
        let mut iters = vec![Iter::Par; r];
        iters.push(Iter::Red);
        let dt = x.dtype;
        let zero = self.b.filled(0.0, DType::I64, &x.shape);
        let ins = [Operand::new(x, identity(r)), Operand::new(x, along_extra(r, axis))];
        let rank = self
            .b
            .generic(&ins, &[Operand::new(&zero, identity(r))], &iters, |b, a| {
                let (xi, xj, acc) = (&a[0], &a[1], &a[2]);
                let i = b.loop_index(axis);
                let j = b.loop_index(r);
                let earlier = b.assign(format!("arith.cmpi ult, {j}, {i} : index"));
                let ahead = if descending { less(b, dt, xi, xj) } else { less(b, dt, xj, xi) };
                let same = equal(b, dt, xj, xi);
                let tie = b.assign(format!("arith.andi {same}, {earlier} : i1"));
                let before = b.assign(format!("arith.ori {ahead}, {tie} : i1"));
                let one = b.assign(format!("arith.extui {before} : i1 to i64"));
                vec![b.assign(format!("arith.addi {acc}, {one} : i64"))]
            })
            .remove(0);
        let zero = self.b.filled(0.0, DType::I64, &x.shape);
        let ranks = [Operand::new(&rank, along_extra(r, axis))];
        self.b
            .generic(&ranks, &[Operand::new(&zero, identity(r))], &iters, |b, a| {
                let k = b.loop_index(axis);
                let k = b.assign(format!("arith.index_cast {k} : index to i64"));
                let i = b.loop_index(r);
                let i = b.assign(format!("arith.index_cast {i} : index to i64"));
                let hit = b.assign(format!("arith.cmpi eq, {}, {k} : i64", a[0]));
                let none = b.i64c(0);
                let add = b.assign(format!("arith.select {hit}, {i}, {none} : i64"));
                vec![b.assign(format!("arith.addi {}, {add} : i64", a[1]))]
            })
            .remove(0)
    }
}
