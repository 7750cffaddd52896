//! Shape changes shared by the op families: `expand_shape` / `collapse_shape` of tensor
//! values, and the loop-dimension names of generic ops.

use super::builder::V;
use super::lower::FnLower;
use super::types::tensor;
use super::EmitError;
use archc_compiler::tir::Dim;

pub(super) fn dims(idx: impl IntoIterator<Item = usize>) -> Vec<String> {
    idx.into_iter().map(|i| format!("d{i}")).collect()
}

impl FnLower<'_, '_, '_> {
    /// `tensor.expand_shape`: axis `at` of `x` split per `groups` (indices into `shape`,
    /// relative to `at`); other axes unchanged.
    pub fn expand(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], at: usize) -> V {
        for g in groups {
            self.one_dynamic_size(g.iter().map(|&i| &shape[at + i]));
        }
        let reassoc = self.reassociation(x.rank(), shape.len(), groups, at);
        let dims = self.b.mixed(shape);
        let name = self.b.assign(format!(
            "tensor.expand_shape {} {reassoc} output_shape [{}] : {} into {}",
            x.name,
            dims.join(", "),
            x.ty(),
            tensor(x.dtype, shape)
        ));
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// Fails the lowering when an expanded group has several dynamic sizes: MLIR 22's
    /// `expand-strided-metadata` crashes on such an `expand_shape` (the caller then falls
    /// back to concrete shapes).
    pub(super) fn one_dynamic_size<'d>(&mut self, group: impl Iterator<Item = &'d Dim>) {
        if group.filter(|d| d.as_const().is_none()).count() > 1 {
            let e = || EmitError::Dynamic("an expand_shape group with several dynamic sizes".into());
            self.b.size_error.get_or_insert_with(e);
        }
    }

    /// `tensor.collapse_shape`, the inverse of [`Self::expand`].
    pub fn collapse(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], at: usize) -> V {
        let reassoc = self.reassociation(shape.len(), x.rank(), groups, at);
        let name = self.b.assign(format!(
            "tensor.collapse_shape {} {reassoc} : {} into {}",
            x.name,
            x.ty(),
            tensor(x.dtype, shape)
        ));
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// Reassociation between a rank-`small` and a rank-`big` shape: before `at` one to one,
    /// then `groups` (each a run of big axes, given relative to `at`), then one to one.
    pub(super) fn reassociation(&self, small: usize, big: usize, groups: &[Vec<usize>], at: usize) -> String {
        let mut out: Vec<String> = (0..at).map(|i| format!("[{i}]")).collect();
        let mut next = at;
        for g in groups {
            let ids: Vec<String> = g.iter().map(|i| (at + i).to_string()).collect();
            next = at + g.last().expect("non-empty group") + 1;
            out.push(format!("[{}]", ids.join(", ")));
        }
        let small_used = at + groups.len();
        for (k, i) in (next..big).enumerate() {
            debug_assert!(small_used + k < small);
            out.push(format!("[{i}]"));
        }
        format!("[{}]", out.join(", "))
    }
}
