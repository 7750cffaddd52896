//! A global allocator that remembers, per thread, the largest single request since the
//! last reset: how the data-reader target proves that a mutated header never makes a
//! reader allocate what its file cannot hold.
//!
//! Contract: [`Tracking`] allocates exactly as `System` does and only records sizes; a
//! binary opts in with `#[global_allocator] static A: Tracking = Tracking;`. Without it,
//! [`peak`] stays 0 and the bound is not checked.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The largest single allocation a data reader may make for the fuzzer's small files.
pub const MAX_READER_ALLOC: usize = 64 << 20;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// See the module docs.
pub struct Tracking;

fn note(size: usize) {
    let _ = PEAK.try_with(|p| {
        if size > p.get() {
            p.set(size)
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Forgets this thread's largest request.
pub fn reset_peak() {
    PEAK.with(|p| p.set(0));
}

/// This thread's largest request since [`reset_peak`] (0 without [`Tracking`]).
pub fn peak() -> usize {
    PEAK.with(Cell::get)
}
