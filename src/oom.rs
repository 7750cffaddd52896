//! The last guard against absurd sizes: an allocation the system refuses ends the
//! process with a one-line error and exit code 1, instead of Rust's abort (SIGABRT).
//!
//! `archc` refuses programs whose estimated peak exceeds `--max-memory` before they run
//! (`memory`); this allocator catches what gets past that (`--max-memory none`, workspace
//! the estimate does not count). It delegates to mimalloc (many small, short-lived
//! blocks: building and scoring a search's candidates spent a third of its time in
//! glibc's malloc and free) and changes only what happens on failure. The message is
//! written without allocating.

use mimalloc::MiMalloc as Inner;
use std::alloc::{GlobalAlloc, Layout};
use std::io::Write;

/// mimalloc, exiting cleanly when an allocation fails.
pub struct ExitOnOom;

fn out_of_memory(size: usize) -> ! {
    let mut buf = [0u8; 160];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = writeln!(cur, "error: out of memory: cannot allocate {size} bytes; lower the sizes or free memory");
    let n = cur.position() as usize;
    let _ = std::io::stderr().write_all(&buf[..n]);
    std::process::exit(1)
}

// SAFETY: every method forwards to `Inner` with the same arguments; on failure the
// process exits instead of returning.
unsafe impl GlobalAlloc for ExitOnOom {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `Inner.alloc`.
        let p = unsafe { Inner.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `Inner.alloc_zeroed`.
        let p = unsafe { Inner.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `Inner`.
        unsafe { Inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `Inner.realloc`.
        let p = unsafe { Inner.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}
