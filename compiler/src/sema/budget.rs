//! The evaluation budget of one file: every build a check makes (each item, each train
//! block's models) draws its steps from one pool, so the cost of checking a file is
//! bounded by the file, not by the number of items times the per-build budget.
//!
//! Contract: [`FileBudget::start`] opens a pool on this thread for as long as the guard
//! lives; [`take`] hands a new checker at most what the pool still holds (the full
//! per-build amount when no pool is open) and [`give_back`] returns what it did not
//! spend. Pools do not nest: an inner `start` keeps the outer pool.

use std::cell::Cell;

thread_local! {
    static POOL: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Evaluation steps one file may spend in all its builds together.
pub const FILE_FUEL: u64 = 4 * super::FUEL;

/// The open pool of this thread; closed when dropped.
pub struct FileBudget {
    opened: bool,
}

impl FileBudget {
    pub fn start(total: u64) -> FileBudget {
        let opened = POOL.with(|p| {
            if p.get().is_some() {
                return false;
            }
            p.set(Some(total));
            true
        });
        FileBudget { opened }
    }
}

impl Drop for FileBudget {
    fn drop(&mut self) {
        if self.opened {
            POOL.with(|p| p.set(None));
        }
    }
}

/// Up to `want` steps from the pool (all of `want` when no pool is open).
pub fn take(want: u64) -> u64 {
    POOL.with(|p| match p.get() {
        None => want,
        Some(left) => {
            let got = want.min(left);
            p.set(Some(left - got));
            got
        }
    })
}

/// Returns unspent steps to the pool.
pub fn give_back(unspent: u64) {
    POOL.with(|p| {
        if let Some(left) = p.get() {
            p.set(Some(left.saturating_add(unspent)));
        }
    });
}

/// Whether an open pool is spent.
pub fn exhausted() -> bool {
    POOL.with(|p| p.get() == Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_share_one_pool() {
        let _b = FileBudget::start(10);
        assert_eq!(take(4), 4);
        assert_eq!(take(8), 6);
        assert!(exhausted());
        give_back(3);
        assert_eq!(take(8), 3);
        let inner = FileBudget::start(100);
        assert_eq!(take(1), 0, "an inner start keeps the outer pool");
        drop(inner);
        assert_eq!(take(1), 0);
    }

    #[test]
    fn without_a_pool_every_build_gets_what_it_asks() {
        assert_eq!(take(7), 7);
        give_back(7);
        assert!(!exhausted());
    }
}
