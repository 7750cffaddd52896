//! Error recovery inside one item: a failed statement is reported and the item goes on.
//!
//! The statements of a block body are independent units. When one fails, its error is
//! recorded in [`Checker::errors`], the checker's state (open TIR functions, frames,
//! call sites, nesting depth, parameter overrides) is rewound to what it was before the
//! statement, and the name the statement would have bound is bound to
//! [`Value::Poison`](super::value::Value::Poison). A use of a poisoned name fails with
//! [`Diagnostic::poison`], which is never shown, so one mistake gives one error however
//! much depends on it. A block with a failed statement still runs its other statements
//! and then fails with poison itself: its callers stop without a second report. A failed
//! check (`let _ = assert(..)`) stops its block at once, since the statements after it
//! rely on what it checks.
//!
//! Contract: every error recorded here is real (never poison); [`Checker::into_errors`]
//! gives an item's errors in the order they were met.

use super::{Checker, R};
use crate::diag::Diagnostic;

/// The checker's state before a statement, to return to when it fails.
pub struct Mark {
    open_funcs: usize,
    frames: usize,
    call_sites: usize,
    depth: usize,
    overrides: usize,
}

impl Checker<'_> {
    pub fn mark(&self) -> Mark {
        Mark {
            open_funcs: self.b.open_funcs(),
            frames: self.frames.len(),
            call_sites: self.call_sites.len(),
            depth: self.depth,
            overrides: self.overrides.len(),
        }
    }

    /// Abandons whatever a failed statement left open.
    pub fn rewind(&mut self, m: &Mark) {
        self.b.close_funcs_to(m.open_funcs);
        self.frames.truncate(m.frames.max(1));
        self.call_sites.truncate(m.call_sites);
        self.depth = m.depth;
        self.overrides.truncate(m.overrides);
    }

    /// Records an error (poison is already reported and is dropped).
    pub fn record(&mut self, d: Diagnostic) {
        if !d.is_poison() {
            let d = self.locate(d);
            self.errors.push(d);
        }
    }

    /// Runs one statement; on failure rewinds, records the error and gives `None`. Once
    /// the evaluation budget is spent (reported once), no statement runs any more.
    pub fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> Option<T> {
        if self.fuel == 0 {
            return None;
        }
        let mark = self.mark();
        match f(self) {
            Ok(v) => Some(v),
            Err(d) => {
                self.rewind(&mark);
                self.record(d);
                None
            }
        }
    }

    /// The outcome of checking an item: its value, or every error recorded on the way
    /// (with the final error, unless that is poison standing for them). An empty list
    /// means the item failed on errors reported elsewhere (a syntax error in a layer it
    /// uses, an unknown name found by resolution).
    pub fn into_errors<T>(&mut self, r: R<T>) -> Result<T, Vec<Diagnostic>> {
        let mut errors = std::mem::take(&mut self.errors);
        match r {
            Ok(v) if errors.is_empty() => Ok(v),
            Ok(_) => Err(errors),
            Err(d) => {
                if !d.is_poison() {
                    errors.push(d);
                }
                Err(errors)
            }
        }
    }
}
