//! `memrefCopy` for the mlir-gpu backend's host code: MLIR's runtime function behind
//! `memref.copy` between layouts that are not both contiguous, done by the driver on the
//! process's one stream instead of by the host (which would migrate managed pages).
//!
//! Contract:
//! - `memrefCopy(elem_size, src, dst)` copies every element of `src` to the element of `dst`
//!   with the same index. Both are unranked memrefs ([`UnrankedMemRef`]: the rank and a
//!   pointer to `{allocated, aligned, offset, sizes[rank], strides[rank]}`, 64-bit words,
//!   offsets and strides in elements) of one rank and one shape; anything else (or a bad
//!   element size, a null descriptor) is recorded as an error (see [`crate::take_error`])
//!   and nothing is copied. Zero-sized copies do nothing; rank 0 copies one element.
//! - The layout is simplified first: dimensions of size 1 are dropped, and neighbours that
//!   are contiguous in both `src` and `dst` are merged. Then
//!   - one dense run (rank 0 or 1 with unit strides on both sides) is one `cuMemcpyAsync`;
//!   - otherwise, if the innermost dimension has unit stride on both sides, it is the rows
//!     of `cuMemcpy2DAsync` copies (`CU_MEMORYTYPE_UNIFIED` on both sides), and the next
//!     dimension their pitch; if not, single elements are the rows and the innermost
//!     dimension gives the pitch. One 2-D copy is issued per index of the remaining outer
//!     dimensions, for up to [`MAX_2D_COPIES`] of them. Pitches must be positive, at least
//!     a row and at most `i32::MAX` bytes;
//!   - every other layout, a copy between two buffers the driver does not know (plain
//!     host memory), and everything when [`crate::CudaOptions::host_copy`] is set (the CLI's
//!     `ARCHC_GPU_HOST_COPY=1`), is copied by an exact
//!     host loop after `cuCtxSynchronize` (whole rows with `memmove` where both sides are
//!     unit-stride, else element by element). One side in plain host memory and the other
//!     known to the driver goes through the driver.
//! - Queued copies are waited for (`cuStreamSynchronize`) before returning, so the host
//!   code may read `dst` at once, unless `set_sync_launches(false)` says it reads no buffer.
//!   A host copy where either side is device memory is not done: the error recorded is a
//!   [`CudaError::NeedsHostMemory`].
//! - Without a CUDA device (no driver, no device) the host loop runs directly, on host
//!   memory, and nothing is recorded. While an error is pending nothing is copied, like the
//!   `mgpu` calls.

use crate::mgpu::{failed, record, stream};
use crate::{cuda, driver, options, Cuda, CudaError};

/// At most this many 2-D copies are queued for one `memrefCopy`; more go to the host loop.
pub const MAX_2D_COPIES: i64 = 256;

/// An unranked memref as MLIR passes it: the rank and a pointer to a ranked descriptor
/// `{allocated, aligned, offset, sizes[rank], strides[rank]}` (all 64-bit words).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnrankedMemRef {
    pub rank: i64,
    pub desc: *const i64,
}

impl UnrankedMemRef {
    /// The address of element 0 (the descriptor's aligned pointer plus its offset).
    ///
    /// # Safety
    /// `desc` points to a readable descriptor; `elem_size` is the element's size in bytes.
    pub unsafe fn element_zero(&self, elem_size: usize) -> *mut u8 {
        // SAFETY: a ranked descriptor starts with `allocated, aligned, offset`.
        let w = unsafe { std::slice::from_raw_parts(self.desc, 3) };
        (w[1] as usize as *mut u8).wrapping_offset(w[2] as isize * elem_size as isize)
    }
}

/// The symbols of this module, for the JIT's symbol map.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![("memrefCopy", memrefCopy as *mut ())]
}

/// `void memrefCopy(i64 elem_size, ptr src, ptr dst)`: see the module doc. (Not
/// `#[no_mangle]`: the CPU runtime exports that symbol; the JIT gets this one by name.)
///
/// # Safety
/// `src` and `dst` point to unranked memrefs whose descriptors describe live buffers of
/// `elem_size`-byte elements, readable at `src` and writable at `dst`, not overlapping.
#[allow(non_snake_case)]
pub unsafe extern "C" fn memrefCopy(elem_size: i64, src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
    if failed() {
        return;
    }
    // SAFETY: forwarded from this function's contract.
    let copy = match unsafe { Transfer::describe(elem_size, src, dst) } {
        Ok(Some(copy)) => copy,
        Ok(None) => return,
        Err(error) => return record(error.context("memrefCopy")),
    };
    let Ok(cuda) = cuda() else {
        // SAFETY: the descriptors cover the ranges (this function's contract).
        return unsafe { copy.on_host() };
    };
    // SAFETY: as above.
    if let Err(error) = unsafe { copy.on_device(cuda) } {
        record(error.context("memrefCopy"));
    }
}

/// One dimension of a copy: its size and its strides in the source and the destination
/// (elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dim {
    pub size: i64,
    pub src: i64,
    pub dst: i64,
}

/// A non-empty copy with its layout simplified.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The addresses of element 0 (the descriptors' offsets applied).
    pub src: *const u8,
    pub dst: *mut u8,
    pub elem_size: usize,
    /// Outermost first; size-1 dimensions dropped, contiguous neighbours merged.
    pub dims: Vec<Dim>,
}

/// How the driver does a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// One `cuMemcpyAsync` of this many bytes.
    Linear(usize),
    /// One `cuMemcpy2DAsync` per index of `outer`: `rows` rows of `width` bytes.
    Planes { outer: Vec<Dim>, rows: Dim, width: usize },
    /// The host loop.
    Host,
}

impl Transfer {
    /// Reads the two descriptors; `None` for a copy of no elements.
    ///
    /// # Safety
    /// `src` and `dst` are null or point to unranked memrefs with readable descriptors.
    unsafe fn describe(
        elem_size: i64,
        src: *const UnrankedMemRef,
        dst: *const UnrankedMemRef,
    ) -> Result<Option<Transfer>, CudaError> {
        if src.is_null() || dst.is_null() {
            return Err(CudaError::Internal("null memref".into()));
        }
        // SAFETY: non-null, and readable by the caller's promise.
        let (src, dst) = unsafe { (*src, *dst) };
        let bad = || CudaError::Internal(format!("bad element size {elem_size}"));
        let elem_size = usize::try_from(elem_size).ok().filter(|&e| e > 0).ok_or_else(bad)?;
        if src.rank != dst.rank || src.rank < 0 || src.desc.is_null() || dst.desc.is_null() {
            return Err(CudaError::Internal(format!("bad memrefs (ranks {} and {})", src.rank, dst.rank)));
        }
        let rank = src.rank as usize;
        // SAFETY: a descriptor of rank `rank` holds 3 + 2 * rank words.
        let (s, d) = unsafe {
            (std::slice::from_raw_parts(src.desc, 3 + 2 * rank), std::slice::from_raw_parts(dst.desc, 3 + 2 * rank))
        };
        let (sizes, dst_sizes) = (&s[3..3 + rank], &d[3..3 + rank]);
        if sizes != dst_sizes || sizes.iter().any(|&n| n < 0) {
            return Err(CudaError::Internal(format!("shapes {sizes:?} and {dst_sizes:?} differ")));
        }
        if sizes.contains(&0) {
            return Ok(None);
        }
        let dims: Vec<Dim> =
            (0..rank).map(|i| Dim { size: sizes[i], src: s[3 + rank + i], dst: d[3 + rank + i] }).collect();
        // SAFETY: both descriptors were read above.
        let (src, dst) = unsafe { (src.element_zero(elem_size), dst.element_zero(elem_size)) };
        Ok(Some(Transfer { src, dst, elem_size, dims: collapse(&dims) }))
    }

    /// The copy on the device, or by the host after synchronising (see the module doc).
    ///
    /// # Safety
    /// The descriptors cover the ranges, as `memrefCopy` requires.
    unsafe fn on_device(&self, cuda: &Cuda) -> Result<(), CudaError> {
        // Copies between two buffers the driver does not know (plain host memory) are the
        // host's business.
        let (src, dst) = (self.src as usize as u64, self.dst as usize as u64);
        let host = options().host_copy || !(cuda.knows_address(src) || cuda.knows_address(dst));
        let route = if host { Route::Host } else { route(&self.dims, self.elem_size) };
        let stream = match route {
            Route::Host => {
                if !(cuda.host_accessible(src) && cuda.host_accessible(dst)) {
                    return Err(CudaError::needs_host_memory("this copy's layout", " (a copy on the host)"));
                }
                crate::stats::bump(crate::stats::Counter::Wait);
                cuda.synchronize()?;
                // SAFETY: the device is idle; the caller vouches for the ranges.
                unsafe { self.on_host() };
                return Ok(());
            }
            _ => stream(cuda)?,
        };
        let label = || {
            format!(
                "copy {:?} of {}-byte elements",
                self.dims.iter().map(|d| d.size).collect::<Vec<_>>(),
                self.elem_size
            )
        };
        crate::timing::timed(cuda, stream, label, || self.queue(cuda, route, stream))?;
        crate::stats::bump(crate::stats::Counter::Copy);
        if !crate::mgpu::host_waits() {
            return Ok(());
        }
        crate::stats::bump(crate::stats::Counter::Wait);
        cuda.stream_synchronize_raw(stream)
    }

    /// Queues the copy on `stream` as `route` says (not `Route::Host`).
    fn queue(&self, cuda: &Cuda, route: Route, stream: crate::CUstream) -> Result<(), CudaError> {
        let (src, dst) = (self.src as usize as u64, self.dst as usize as u64);
        match route {
            Route::Linear(bytes) => cuda.memcpy_async(dst, src, bytes, stream)?,
            Route::Planes { outer, rows, width } => {
                let es = self.elem_size as i64;
                for_each_index(&outer, |src_offset, dst_offset| {
                    let copy = driver::CudaMemcpy2D {
                        src_x_in_bytes: 0,
                        src_y: 0,
                        src_memory_type: driver::CU_MEMORYTYPE_UNIFIED,
                        src_host: std::ptr::null(),
                        src_device: src.wrapping_add_signed(src_offset * es),
                        src_array: std::ptr::null_mut(),
                        src_pitch: (rows.src * es) as usize,
                        dst_x_in_bytes: 0,
                        dst_y: 0,
                        dst_memory_type: driver::CU_MEMORYTYPE_UNIFIED,
                        dst_host: std::ptr::null_mut(),
                        dst_device: dst.wrapping_add_signed(dst_offset * es),
                        dst_array: std::ptr::null_mut(),
                        dst_pitch: (rows.dst * es) as usize,
                        width_in_bytes: width,
                        height: rows.size as usize,
                    };
                    cuda.memcpy_2d_async(&copy, stream)
                })?;
            }
            Route::Host => unreachable!("handled by the caller"),
        }
        Ok(())
    }

    /// The exact host loop.
    ///
    /// # Safety
    /// The descriptors cover the ranges, and no device work touches them meanwhile.
    pub(crate) unsafe fn on_host(&self) {
        let es = self.elem_size as isize;
        let Some((inner, outer)) = self.dims.split_last() else {
            // SAFETY: rank 0: one element on each side.
            return unsafe { std::ptr::copy(self.src, self.dst, self.elem_size) };
        };
        let run = inner.src == 1 && inner.dst == 1;
        let _ = for_each_index(outer, |so, dof| {
            let (s, d) = (self.src.wrapping_offset(so as isize * es), self.dst.wrapping_offset(dof as isize * es));
            if run {
                // SAFETY: `inner.size` contiguous elements on both sides (the descriptors).
                unsafe { std::ptr::copy(s, d, inner.size as usize * self.elem_size) };
            } else {
                for j in 0..inner.size as isize {
                    let (sj, dj) = (
                        s.wrapping_offset(j * inner.src as isize * es),
                        d.wrapping_offset(j * inner.dst as isize * es),
                    );
                    // SAFETY: one element on each side, inside the descriptors' ranges.
                    unsafe { std::ptr::copy(sj, dj, self.elem_size) };
                }
            }
            Ok(())
        });
    }
}

/// Drops size-1 dimensions and merges neighbours contiguous on both sides (outer first).
pub(crate) fn collapse(dims: &[Dim]) -> Vec<Dim> {
    let mut out: Vec<Dim> = Vec::with_capacity(dims.len());
    for d in dims.iter().filter(|d| d.size != 1) {
        let contiguous =
            |last: &Dim| d.src.checked_mul(d.size) == Some(last.src) && d.dst.checked_mul(d.size) == Some(last.dst);
        match out.last_mut() {
            Some(last) if contiguous(last) => {
                *last = Dim { size: last.size * d.size, src: d.src, dst: d.dst };
            }
            _ => out.push(*d),
        }
    }
    out
}

/// How the driver copies these (collapsed, non-empty) dimensions (see the module doc).
pub(crate) fn route(dims: &[Dim], elem_size: usize) -> Route {
    let es = elem_size as i64;
    let Some((inner, rest)) = dims.split_last() else { return Route::Linear(elem_size) };
    let unit = inner.src == 1 && inner.dst == 1;
    if unit && rest.is_empty() {
        return Route::Linear(inner.size as usize * elem_size);
    }
    // Rows of the 2-D copies: whole unit-stride runs, else single elements.
    let (rows, outer, width) = if unit {
        let (rows, outer) = rest.split_last().expect("not empty: handled above");
        (*rows, outer, inner.size * es)
    } else {
        (*inner, rest, es)
    };
    let pitch_ok = |stride: i64| stride.checked_mul(es).is_some_and(|p| p >= width && p <= i32::MAX as i64);
    let count = outer.iter().try_fold(1i64, |n, d| n.checked_mul(d.size));
    if pitch_ok(rows.src) && pitch_ok(rows.dst) && count.is_some_and(|n| n <= MAX_2D_COPIES) {
        Route::Planes { outer: outer.to_vec(), rows, width: width as usize }
    } else {
        Route::Host
    }
}

/// Calls `f(src_offset, dst_offset)` (elements) for every index of `dims`, in row-major
/// order (once for no dimensions); stops at the first error.
fn for_each_index(dims: &[Dim], mut f: impl FnMut(i64, i64) -> Result<(), CudaError>) -> Result<(), CudaError> {
    let mut index = vec![0i64; dims.len()];
    loop {
        let src = dims.iter().zip(&index).map(|(d, i)| d.src * i).sum();
        let dst = dims.iter().zip(&index).map(|(d, i)| d.dst * i).sum();
        f(src, dst)?;
        let mut axis = dims.len();
        loop {
            if axis == 0 {
                return Ok(());
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < dims[axis].size {
                break;
            }
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(size: i64, src: i64, dst: i64) -> Dim {
        Dim { size, src, dst }
    }

    #[test]
    fn contiguous_layouts_collapse_to_one_run() {
        let dims = collapse(&[dim(2, 12, 12), dim(3, 4, 4), dim(4, 1, 1)]);
        assert_eq!(dims, [dim(24, 1, 1)]);
        assert_eq!(route(&dims, 4), Route::Linear(96));
        assert_eq!(route(&collapse(&[dim(1, 5, 7)]), 8), Route::Linear(8), "one element");
        assert_eq!(route(&[], 8), Route::Linear(8), "rank 0");
    }

    #[test]
    fn padded_rows_are_one_2d_copy() {
        // A [3, 4] block of a [3, 10] source into a dense destination.
        let dims = collapse(&[dim(1, 99, 99), dim(3, 10, 4), dim(4, 1, 1)]);
        assert_eq!(dims, [dim(3, 10, 4), dim(4, 1, 1)]);
        assert_eq!(route(&dims, 4), Route::Planes { outer: vec![], rows: dim(3, 10, 4), width: 16 });
        // Rank 3 with padded rows: one 2-D copy per outer index.
        let dims = collapse(&[dim(5, 40, 12), dim(3, 10, 4), dim(4, 1, 1)]);
        assert_eq!(route(&dims, 4), Route::Planes { outer: vec![dim(5, 40, 12)], rows: dim(3, 10, 4), width: 16 });
    }

    #[test]
    fn strided_vectors_copy_single_elements_as_rows() {
        assert_eq!(route(&[dim(7, 3, 1)], 8), Route::Planes { outer: vec![], rows: dim(7, 3, 1), width: 8 });
        // A transposed source: neither side is unit-stride in the innermost dimension.
        let dims = collapse(&[dim(3, 1, 4), dim(4, 3, 1)]);
        assert_eq!(route(&dims, 4), Route::Planes { outer: vec![dim(3, 1, 4)], rows: dim(4, 3, 1), width: 4 });
    }

    #[test]
    fn unsupported_layouts_go_to_the_host() {
        // Broadcast source rows (pitch 0) and negative strides.
        assert_eq!(route(&[dim(3, 0, 4), dim(4, 1, 1)], 4), Route::Host);
        assert_eq!(route(&[dim(3, -4, 4), dim(4, 1, 1)], 4), Route::Host);
        assert_eq!(route(&[dim(5, 0, 1)], 4), Route::Host);
        // Overlapping rows (pitch below the row width).
        assert_eq!(route(&[dim(3, 2, 4), dim(4, 1, 1)], 4), Route::Host);
        // Too many 2-D copies.
        let many = [dim(MAX_2D_COPIES + 1, 1000, 1000), dim(3, 10, 4), dim(4, 1, 1)];
        assert_eq!(route(&many, 4), Route::Host);
        // A pitch beyond i32::MAX bytes.
        assert_eq!(route(&[dim(3, 1 << 30, 4), dim(4, 1, 1)], 4), Route::Host);
    }

    #[test]
    fn the_host_loop_visits_every_index_once() {
        let mut seen = Vec::new();
        for_each_index(&[dim(2, 10, 1), dim(3, 1, 2)], |s, d| {
            seen.push((s, d));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(0, 0), (1, 2), (2, 4), (10, 1), (11, 3), (12, 5)]);
    }
}
