//! The strided copy every data movement op uses: `archc_clif_copy_view` copies a view
//! (sizes, strides in elements) of one buffer to a view of another, element for
//! element. Axes of size 1 are dropped and axes contiguous with the next on both sides
//! are merged, so a copy between dense layouts is one `memcpy` and a copy into a strided
//! view is one `memcpy` per row; a broadcast innermost axis (source stride 0) is a fill, a
//! transpose (another axis contiguous in the source) is copied in tiles, and another
//! strided innermost axis moves elements one by one.

use archc_runtime::strided::{for_each_outer, merged_axes};

/// Copies `sizes` elements of `es` bytes from `src` (strides `sst`) to `dst` (`dst_st`).
///
/// # Safety
/// Both views must lie inside live buffers and not overlap; `sizes`, `sst` and `dst_st`
/// hold `rank` values each.
pub unsafe extern "C" fn archc_clif_copy_view(
    es: i64,
    rank: i64,
    sizes: *const i64,
    src: *const u8,
    sst: *const i64,
    dst: *mut u8,
    dst_st: *const i64,
) {
    let rank = rank as usize;
    let (sizes, sst, dst_st) = unsafe {
        (
            std::slice::from_raw_parts(sizes, rank),
            std::slice::from_raw_parts(sst, rank),
            std::slice::from_raw_parts(dst_st, rank),
        )
    };
    if sizes.contains(&0) {
        return;
    }
    let mut axes = merged_axes(sizes, sst, dst_st);
    let es = es as usize;
    let inner = axes.pop().unwrap_or((1, 1, 1));
    // A transpose: rows contiguous in the destination, another axis in the source.
    let across = match axes.iter().position(|a| a.1 == 1) {
        Some(j) if inner.1 != 1 && inner.2 == 1 => Some(axes.remove(j)),
        _ => None,
    };
    for_each_outer(&axes, |so, d| {
        let (s, t) = (src.wrapping_offset(so * es as isize), dst.wrapping_offset(d * es as isize));
        // SAFETY: the caller's views.
        match across {
            Some(a) => unsafe { tiles(es, inner, a, s, t) },
            None => unsafe { row(es, inner, s, t) },
        }
    });
}

/// Rows `(n, ss, 1)` for each step of `(m, 1, td)`, in square tiles so that both sides
/// are read and written a cache line at a time.
///
/// # Safety
/// As [`archc_clif_copy_view`].
unsafe fn tiles(es: usize, (n, ss, _): (i64, i64, i64), (m, _, td): (i64, i64, i64), src: *const u8, dst: *mut u8) {
    const T: i64 = 16;
    macro_rules! typed {
        ($t:ty) => {{
            let (s, d) = (src as *const $t, dst as *mut $t);
            for i0 in (0..m).step_by(T as usize) {
                for j0 in (0..n).step_by(T as usize) {
                    for i in i0..(i0 + T).min(m) {
                        for j in j0..(j0 + T).min(n) {
                            unsafe {
                                let v = s.offset((i + j * ss) as isize).read_unaligned();
                                d.offset((i * td + j) as isize).write_unaligned(v);
                            }
                        }
                    }
                }
            }
        }};
    }
    match es {
        1 => typed!(u8),
        4 => typed!(u32),
        _ => typed!(u64),
    }
}

/// One row: `n` elements at strides `ss`, `ds` (elements).
///
/// # Safety
/// As [`archc_clif_copy_view`].
unsafe fn row(es: usize, (n, ss, ds): (i64, i64, i64), src: *const u8, dst: *mut u8) {
    if ss == 1 && ds == 1 {
        unsafe { std::ptr::copy_nonoverlapping(src, dst, es * n as usize) };
        return;
    }
    macro_rules! typed {
        ($t:ty) => {{
            if ss == 0 && ds == 1 {
                // A broadcast row: one value repeated.
                let v = unsafe { (src as *const $t).read_unaligned() };
                let d = dst as *mut $t;
                if d.align_offset(std::mem::align_of::<$t>()) == 0 {
                    unsafe { std::slice::from_raw_parts_mut(d, n as usize) }.fill(v);
                    return;
                }
            }
            for i in 0..n as isize {
                unsafe {
                    let v = (src.offset(i * ss as isize * es as isize) as *const $t).read_unaligned();
                    (dst.offset(i * ds as isize * es as isize) as *mut $t).write_unaligned(v);
                }
            }
        }};
    }
    match es {
        1 => typed!(u8),
        4 => typed!(u32),
        _ => typed!(u64),
    }
}
