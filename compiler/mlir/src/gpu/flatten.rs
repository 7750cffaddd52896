//! A text pass of the GPU path (after loop fusion, before outlining): multi-dimensional
//! parallel loops whose innermost dimension does not fill thread blocks become one
//! flat dimension.
//!
//! Outlining tiles the first dimension of each parallel loop (the innermost, after
//! `hostwrap::innermost_first`) by [`super::BLOCK`] threads and maps the others to
//! blocks: a `[256, 10]` loop ran 256 blocks of 256 threads with 10 of each busy.
//! Flattened, it runs 10 blocks with every thread busy, consecutive threads still on
//! consecutive elements of the innermost dimension.
//!
//! Contract: [`flatten`] takes a printed module (custom assembly form) and rewrites every
//! `scf.parallel` with at least two dimensions, lower bounds 0, steps 1 and constant upper
//! bounds (by the values of the function's `arith.constant ... : index` lines), whose
//! first dimension is not a multiple of `BLOCK`, into a one-dimensional loop over the
//! product of the bounds. The body first recovers the old induction variables (under
//! their old names) with `arith.remui`/`arith.divui`, first dimension fastest.

use super::hostwrap::{parallel_header, ParallelHeader};
use super::BLOCK;
use std::collections::HashMap;

/// Rewrites every qualifying loop of `text`; see the module docs.
pub fn flatten(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1024);
    let mut constants: HashMap<String, u64> = HashMap::new();
    let mut counter = 0;
    for line in text.lines() {
        if line.starts_with("  func.func ") {
            constants.clear();
        }
        if let Some((name, value)) = index_constant(line) {
            constants.insert(name, value);
        }
        match rewrite(line, &constants, counter) {
            Some(lines) => {
                out.push_str(&lines);
                counter += 1;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `%c = arith.constant 4 : index` -> (`%c`, 4).
fn index_constant(line: &str) -> Option<(String, u64)> {
    let (lhs, rhs) = line.trim().split_once(" = arith.constant ")?;
    let value = rhs.strip_suffix(" : index")?.parse().ok()?;
    Some((lhs.to_string(), value))
}

/// The flattened header and the body's first lines for a qualifying loop header.
fn rewrite(line: &str, constants: &HashMap<String, u64>, n: usize) -> Option<String> {
    let ParallelHeader { indent, ivs, lbs, ubs, steps, tail } = parallel_header(line)?;
    if tail.trim() != "{" {
        return None;
    }
    let value = |name: &&str| constants.get(*name).copied();
    let sizes: Vec<u64> = ubs.iter().map(value).collect::<Option<_>>()?;
    let zero = lbs.iter().all(|l| value(l) == Some(0));
    let one = steps.iter().all(|s| value(s) == Some(1));
    if ivs.len() < 2 || !zero || !one || sizes[0].is_multiple_of(BLOCK as u64) || sizes.contains(&0) {
        return None;
    }
    let total = sizes.iter().try_fold(1u64, |p, &s| p.checked_mul(s))?;
    let p = format!("%fl{n}");
    let mut out = format!(
        "{indent}{p}_zero = arith.constant 0 : index\n{indent}{p}_one = arith.constant 1 : index\n\
{indent}{p}_total = arith.constant {total} : index\n\
{indent}scf.parallel ({p}_i) = ({p}_zero) to ({p}_total) step ({p}_one) {{\n"
    );
    let body = format!("{indent}  ");
    let mut rest = format!("{p}_i");
    for (k, (iv, size)) in ivs.iter().zip(&sizes).enumerate() {
        if k + 1 == ivs.len() {
            out += &format!("{body}{iv} = arith.addi {rest}, {p}_zero : index\n");
            break;
        }
        out += &format!("{body}{p}_s{k} = arith.constant {size} : index\n");
        out += &format!("{body}{iv} = arith.remui {rest}, {p}_s{k} : index\n");
        out += &format!("{body}{p}_q{k} = arith.divui {rest}, {p}_s{k} : index\n");
        rest = format!("{p}_q{k}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::flatten;

    const LOOP: &str = "  func.func @f() {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c10 = arith.constant 10 : index
    %c3 = arith.constant 3 : index
    %c256 = arith.constant 256 : index
    scf.parallel (%a, %b, %c) = (%c0, %c0, %c0) to (%c10, %c3, %c256) step (%c1, %c1, %c1) {
      scf.reduce
    }
";

    #[test]
    fn loops_with_a_short_first_dimension_become_flat() {
        let want = "    %fl0_zero = arith.constant 0 : index
    %fl0_one = arith.constant 1 : index
    %fl0_total = arith.constant 7680 : index
    scf.parallel (%fl0_i) = (%fl0_zero) to (%fl0_total) step (%fl0_one) {
      %fl0_s0 = arith.constant 10 : index
      %a = arith.remui %fl0_i, %fl0_s0 : index
      %fl0_q0 = arith.divui %fl0_i, %fl0_s0 : index
      %fl0_s1 = arith.constant 3 : index
      %b = arith.remui %fl0_q0, %fl0_s1 : index
      %fl0_q1 = arith.divui %fl0_q0, %fl0_s1 : index
      %c = arith.addi %fl0_q1, %fl0_zero : index
      scf.reduce
    }
";
        let out = flatten(LOOP);
        assert!(out.ends_with(want), "{out}");
    }

    #[test]
    fn other_loops_stay() {
        let full = LOOP.replace("to (%c10, %c3, %c256)", "to (%c256, %c3, %c10)");
        assert_eq!(flatten(&full), full, "the first dimension fills blocks");
        let one = LOOP.replace(
            "(%a, %b, %c) = (%c0, %c0, %c0) to (%c10, %c3, %c256) step (%c1, %c1, %c1)",
            "(%a) = (%c0) to (%c10) step (%c1)",
        );
        assert_eq!(flatten(&one), one, "one dimension");
        let dynamic = LOOP.replace("to (%c10, %c3, %c256)", "to (%c10, %n, %c256)");
        assert_eq!(flatten(&dynamic), dynamic, "a bound not constant");
    }
}
