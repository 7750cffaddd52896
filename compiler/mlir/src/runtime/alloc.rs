//! `malloc` / `calloc` / `free` for JIT-compiled CPU code (registered as JIT symbols by
//! `jit::Compiled`, not by the GPU path): large buffers are kept for reuse.
//!
//! Compiled code allocates and frees every intermediate buffer on each run, on the thread
//! that runs it. glibc serves threads other than the main one from per-thread arenas,
//! whose 64 MiB heaps are unmapped as soon as they are empty (whatever `M_TRIM_THRESHOLD`
//! says), so a forward pass over tens of megabytes of intermediates page-faulted all of
//! them in again on every run (about 40% of an FNO forward pass). Here a freed buffer of
//! at least [`CACHE_MIN`] bytes goes to a free list per size class (whole pages), and the
//! next allocation of that class takes it back; at most [`CACHE_MAX`] bytes are kept.
//!
//! Every block starts with a [`HEADER`]-byte header holding its size class and a tag, so
//! `free` knows where a pointer came from; a pointer without the tag (which compiled
//! code never passes) is handed to the C library's `free`.
//!
//! Compiled code does not check for NULL, so an allocation that fails ends the process
//! with a one-line error and exit code 1 (the CLI refuses programs whose estimated peak
//! exceeds `--max-memory` before they run; this is the last guard, never a segfault).

use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes before the pointer handed out: the size class and a tag (keeps glibc's 16-byte
/// alignment of the block).
const HEADER: usize = 16;
/// Blocks at least this large (header included) are cached.
pub const CACHE_MIN: usize = 64 << 10;
/// At most this many bytes of free blocks are kept.
pub const CACHE_MAX: usize = 2 << 30;
const TAG_SMALL: usize = 0x6172_6368_6300_0001;
const TAG_CACHED: usize = 0x6172_6368_6300_0002;
const PAGE: usize = 4096;

extern "C" {
    #[link_name = "malloc"]
    fn c_malloc(n: usize) -> *mut std::ffi::c_void;
    #[link_name = "free"]
    fn c_free(p: *mut std::ffi::c_void);
}

unsafe fn libc_malloc(n: usize) -> *mut u8 {
    unsafe { c_malloc(n) as *mut u8 }
}

unsafe fn libc_free(p: *mut u8) {
    unsafe { c_free(p as *mut std::ffi::c_void) }
}

#[derive(Default)]
struct Cache {
    free: HashMap<usize, Vec<usize>>,
    bytes: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<T>(f: impl FnOnce(&mut Cache) -> T) -> T {
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Cache::default))
}

/// The block size (header included) for a request of `n` bytes.
fn class(n: usize) -> Option<usize> {
    let total = n.checked_add(HEADER)?;
    if total < CACHE_MIN {
        Some(total)
    } else {
        total.checked_add(PAGE - 1).map(|t| t & !(PAGE - 1))
    }
}

/// `malloc` for compiled code.
///
/// # Safety
/// As C's `malloc`; the block must be released with [`archc_free`].
pub unsafe extern "C" fn archc_malloc(n: usize) -> *mut u8 {
    let Some(size) = class(n) else { out_of_memory(n) };
    let cached = size >= CACHE_MIN;
    let reused = if cached {
        with_cache(|c| {
            let p = c.free.get_mut(&size).and_then(|v| v.pop());
            if p.is_some() {
                c.bytes -= size;
            }
            p
        })
    } else {
        None
    };
    let base = match reused {
        Some(p) => p as *mut u8,
        // SAFETY: plain C allocation.
        None => unsafe { libc_malloc(size) },
    };
    if base.is_null() {
        out_of_memory(n);
    }
    let words = base as *mut usize;
    // SAFETY: the block holds at least HEADER bytes, 16-byte aligned.
    unsafe {
        words.write(size);
        words.add(1).write(if cached { TAG_CACHED } else { TAG_SMALL });
        base.add(HEADER)
    }
}

/// Ends the process: compiled code would write through the NULL a failed allocation gives.
fn out_of_memory(n: usize) -> ! {
    eprintln!("error: out of memory: compiled code could not allocate {n} bytes; lower the sizes or free memory");
    std::process::exit(1)
}

/// `calloc` for compiled code (LLVM may fold a `malloc` and a zero fill into it).
///
/// # Safety
/// As C's `calloc`.
pub unsafe extern "C" fn archc_calloc(count: usize, each: usize) -> *mut u8 {
    let Some(n) = count.checked_mul(each) else { out_of_memory(usize::MAX) };
    // SAFETY: a fresh block of n bytes.
    unsafe {
        let p = archc_malloc(n);
        if !p.is_null() {
            std::ptr::write_bytes(p, 0, n);
        }
        p
    }
}

/// `free` for compiled code.
///
/// # Safety
/// `p` must be null or a live block of [`archc_malloc`] / [`archc_calloc`].
pub unsafe extern "C" fn archc_free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: blocks of archc_malloc have their header right before `p`.
    let (base, size, tag) = unsafe {
        let base = p.sub(HEADER);
        let words = base as *const usize;
        (base, words.read(), words.add(1).read())
    };
    match tag {
        TAG_CACHED => {
            // Clear the tag: a double free then reaches the C library, which reports it.
            // SAFETY: the header belongs to this block.
            unsafe { (base as *mut usize).add(1).write(0) };
            let kept = with_cache(|c| {
                if c.bytes + size > CACHE_MAX {
                    return false;
                }
                c.bytes += size;
                c.free.entry(size).or_default().push(base as usize);
                true
            });
            if !kept {
                // SAFETY: allocated by the C library.
                unsafe { libc_free(base) };
            }
        }
        TAG_SMALL => {
            // SAFETY: as above.
            unsafe {
                (base as *mut usize).add(1).write(0);
                libc_free(base)
            }
        }
        // SAFETY: not ours: the C library's.
        _ => unsafe { libc_free(p) },
    }
}

/// The allocation symbols of compiled CPU code.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![("malloc", archc_malloc as *mut ()), ("calloc", archc_calloc as *mut ()), ("free", archc_free as *mut ())]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large blocks come back from the cache; small ones go to the C library.
    #[test]
    fn reuses_large_blocks() {
        // SAFETY: blocks are used within their sizes and freed once.
        unsafe {
            let a = archc_malloc(1 << 20);
            a.write_bytes(7, 1 << 20);
            archc_free(a);
            let b = archc_malloc((1 << 20) - 8);
            assert_eq!(a, b, "a freed block of the same page class is reused");
            archc_free(b);
            let z = archc_calloc(1000, 4);
            assert!(std::slice::from_raw_parts(z, 4000).iter().all(|&x| x == 0));
            archc_free(z);
            let big = archc_calloc(1 << 18, 4);
            assert!(std::slice::from_raw_parts(big, 1 << 20).iter().all(|&x| x == 0), "a reused block is zeroed");
            archc_free(big);
            archc_free(std::ptr::null_mut());
        }
    }
}
