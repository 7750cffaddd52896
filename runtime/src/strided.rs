//! Walking two strided views of one shape in step: the part every strided copy shares
//! (the CPU backend's `memrefCopy`, the Cranelift tier's `archc_clif_copy_view`).
//!
//! A view pair is described per axis, outermost first, as `(size, source stride,
//! destination stride)` in elements. [`merged_axes`] drops axes of size 1 and merges an
//! axis into the one outside it where the outer one steps over it exactly on both sides,
//! so a copy between dense layouts has one axis; [`for_each_outer`] visits every index of
//! the given (outer) axes in row-major order with its element offsets on both sides.

/// One axis of a view pair: (size, source stride, destination stride), in elements.
pub type Axis = (i64, i64, i64);

/// The axes of views of `sizes` with strides `src` and `dst` (see the module docs), with
/// axes of size 1 dropped and contiguous axes merged. Sizes are assumed non-zero.
pub fn merged_axes(sizes: &[i64], src: &[i64], dst: &[i64]) -> Vec<Axis> {
    let mut axes: Vec<Axis> = Vec::with_capacity(sizes.len());
    for ((&n, &ss), &ds) in sizes.iter().zip(src).zip(dst) {
        if n == 1 {
            continue;
        }
        match axes.last_mut() {
            // The previous (outer) axis steps over exactly this one on both sides.
            Some(outer) if outer.1 == n * ss && outer.2 == n * ds => *outer = (outer.0 * n, ss, ds),
            _ => axes.push((n, ss, ds)),
        }
    }
    axes
}

/// Calls `f(source offset, destination offset)` (in elements) for every index of `axes`,
/// the last axis fastest; once with `(0, 0)` when `axes` is empty. Sizes must be positive.
pub fn for_each_outer(axes: &[Axis], mut f: impl FnMut(isize, isize)) {
    let mut idx = vec![0i64; axes.len()];
    let (mut so, mut dof) = (0isize, 0isize);
    loop {
        f(so, dof);
        let mut i = axes.len();
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            let (n, ss, ds) = axes[i];
            idx[i] += 1;
            so += ss as isize;
            dof += ds as isize;
            if idx[i] < n {
                break;
            }
            idx[i] = 0;
            so -= (n * ss) as isize;
            dof -= (n * ds) as isize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_views_merge_into_one_axis() {
        // [2, 1, 3, 4] row-major on both sides.
        assert_eq!(merged_axes(&[2, 1, 3, 4], &[12, 12, 4, 1], &[12, 12, 4, 1]), vec![(24, 1, 1)]);
        // A transposed source keeps its axes apart.
        assert_eq!(merged_axes(&[3, 4], &[1, 3], &[4, 1]), vec![(3, 1, 4), (4, 3, 1)]);
        // A destination with padded rows merges nothing.
        assert_eq!(merged_axes(&[2, 3], &[3, 1], &[4, 1]), vec![(2, 3, 4), (3, 1, 1)]);
    }

    #[test]
    fn outer_indices_are_visited_row_major_with_both_offsets() {
        let mut seen = Vec::new();
        for_each_outer(&[(2, 10, 1), (3, 1, 2)], |s, d| seen.push((s, d)));
        assert_eq!(seen, vec![(0, 0), (1, 2), (2, 4), (10, 1), (11, 3), (12, 5)]);
        let mut once = Vec::new();
        for_each_outer(&[], |s, d| once.push((s, d)));
        assert_eq!(once, vec![(0, 0)]);
    }
}
