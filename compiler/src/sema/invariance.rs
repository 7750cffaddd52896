//! Discretisation invariance inside an `operator .. over grid N`: one set of weights must
//! serve every resolution, so operations whose footprint is a number of grid points are
//! errors there, each with the span of the call:
//! - a convolution whose kernel is wider than one point along a grid axis (pointwise,
//!   `k = 1`, convolutions, as every FNO uses, stay allowed);
//! - a pooling window wider than one point along a grid axis;
//! - an index or a slice other than the whole axis along an axis whose size is a grid dim
//!   itself (`x[:, :16]` on `[B, N]`; an `rfft`'s `N / 2 + 1` coefficients are modes, not
//!   grid points, and may be cut).
//!
//! The grid axes are read from the operand's type: an axis whose size mentions a grid
//! dim of an operator being built ([`super::Checker::grid`]). To opt out, leave the dim
//! out of `over grid`.

use super::Checker;
use crate::diag::Diagnostic;
use crate::tir::Dim;
use archc_grammar::span::Span;

impl Checker<'_> {
    /// The grid dim `d` mentions, if any.
    fn grid_in(&self, d: &Dim) -> Option<String> {
        d.symbols().into_iter().find(|s| self.grid.contains(s))
    }

    /// Refuses a window of `sizes` (per spatial axis, the last `sizes.len()` axes of
    /// `shape`) wider than one point along a grid axis.
    pub fn check_grid_window(&self, what: &str, shape: &[Dim], sizes: &[i64], span: Span) -> Result<(), Diagnostic> {
        let first = shape.len().saturating_sub(sizes.len());
        for (i, &k) in sizes.iter().enumerate() {
            let Some(g) = shape.get(first + i).and_then(|d| self.grid_in(d)) else { continue };
            if k > 1 {
                return Err(Diagnostic::error(
                    format!("a {what} {k} points wide along grid dim {g} breaks discretisation invariance"),
                    span,
                )
                .with_help(format!(
                    "an operator's weights must serve every resolution: use a pointwise (k = 1) {what}, \
                     or leave {g} out of `over grid`"
                )));
            }
        }
        Ok(())
    }

    /// Refuses picking part of an axis whose size is a grid dim.
    pub fn check_grid_slice(&self, size: &Dim, whole: bool, span: Span) -> Result<(), Diagnostic> {
        let Some(g) = self.grid.iter().find(|g| *size == Dim::sym(g.as_str())) else { return Ok(()) };
        if whole {
            return Ok(());
        }
        Err(Diagnostic::error(
            format!("indexing part of grid dim {g} breaks discretisation invariance: it picks grid points"),
            span,
        )
        .with_help(format!("an operator reads every grid point alike; or leave {g} out of `over grid`")))
    }
}
