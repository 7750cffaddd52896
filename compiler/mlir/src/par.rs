//! Which parallel loops of the CPU pipeline run on several cores: a text pass over the
//! printed module after `convert-linalg-to-parallel-loops` (every linalg op is then one
//! `scf.parallel` over its parallel dimensions, with `scf.for` loops inside for its
//! reduction dimensions, and every bound is a constant since shapes are concrete).
//!
//! [`select`] estimates each outermost `scf.parallel`'s work (operations executed, from
//! the constant trip counts of it and the `scf.for` loops it holds). Loops with at least
//! [`min_work`] become a one-dimensional `scf.parallel` over their outermost dimension with
//! `scf.for` loops inside for the others (each core then runs whole rows, which LLVM's
//! vectoriser sees as before); `convert-scf-to-openmp` turns them into OpenMP regions run
//! by [`crate::omp`]. Every other loop becomes plain `scf.for` loops, as
//! `convert-linalg-to-loops` would have made it: small steps never pay for a fork.
//!
//! Relies on MLIR's pretty printer: one operation per line, a region's closing `}` alone
//! on a line at its operation's indentation, index constants as
//! `%NAME = arith.constant N : index`.

use std::collections::HashMap;

/// Work (operations executed, estimated) from which a loop runs on several cores, unless
/// `ARCHC_PAR_MIN` says otherwise (`ARCHC_PAR_MIN=0` keeps every loop on one core).
pub const MIN_WORK: u64 = 1 << 18;

/// The threshold in effect: `ARCHC_PAR_MIN` or [`MIN_WORK`]; `None` when parallel loops
/// are off.
pub fn min_work() -> Option<u64> {
    match std::env::var("ARCHC_PAR_MIN").ok().and_then(|v| v.parse::<u64>().ok()) {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(MIN_WORK),
    }
}

/// A loop header: induction variables, lower bounds, upper bounds, steps (SSA names).
struct Header {
    ivs: Vec<String>,
    lbs: Vec<String>,
    ubs: Vec<String>,
    steps: Vec<String>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

/// `scf.parallel (%a, %b) = (%l0, %l1) to (%u0, %u1) step (%s0, %s1) {`
fn parse_parallel(line: &str) -> Option<Header> {
    let rest = line.trim().strip_prefix("scf.parallel (")?;
    let (ivs, rest) = rest.split_once(") = (")?;
    let (lbs, rest) = rest.split_once(") to (")?;
    let (ubs, rest) = rest.split_once(") step (")?;
    let steps = rest.strip_suffix(") {")?;
    let h = Header { ivs: list(ivs), lbs: list(lbs), ubs: list(ubs), steps: list(steps) };
    let n = h.ivs.len();
    (n > 0 && h.lbs.len() == n && h.ubs.len() == n && h.steps.len() == n).then_some(h)
}

/// `scf.for %i = %lb to %ub step %s {` (no iteration arguments): (lb, ub, step).
fn parse_for(line: &str) -> Option<(String, String, String)> {
    let rest = line.trim().strip_prefix("scf.for ")?;
    let (_, rest) = rest.split_once(" = ")?;
    let (lb, rest) = rest.split_once(" to ")?;
    let (ub, rest) = rest.split_once(" step ")?;
    let step = rest.strip_suffix(" {")?;
    (!step.contains(' ')).then(|| (lb.to_string(), ub.to_string(), step.to_string()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The index of the line closing the region opened at `open` (same indentation, `}`).
fn close_of(lines: &[&str], open: usize) -> Option<usize> {
    let ind = indent(lines[open]);
    (open + 1..lines.len()).find(|&i| indent(lines[i]) == ind && lines[i].trim_start().starts_with('}'))
}

struct Func<'a> {
    consts: HashMap<&'a str, i64>,
}

/// The trip count assumed for a loop whose bounds are known only at run time (a dynamic
/// size: a batch, a sequence length): a typical batch.
pub const ASSUMED_TRIP: u64 = 64;

impl Func<'_> {
    /// A loop's trip count: from its constant bounds, [`ASSUMED_TRIP`] when a bound or the
    /// step is a run-time value, `None` for a constant step that is not positive.
    fn trip(&self, lb: &str, ub: &str, step: &str) -> Option<u64> {
        let known = |name: &str| self.consts.get(name).copied();
        match (known(lb), known(ub), known(step)) {
            (_, _, Some(s)) if s <= 0 => None,
            (Some(l), Some(u), Some(s)) => Some(if u > l { ((u - l + s - 1) / s) as u64 } else { 0 }),
            _ => Some(ASSUMED_TRIP),
        }
    }

    /// Operations executed by the lines `from..to` (nested `scf.for` loops multiply their
    /// bodies; other nested regions count once). `None` if a trip count is not constant.
    fn work(&self, lines: &[&str], from: usize, to: usize) -> Option<u64> {
        let mut total = 0u64;
        let mut i = from;
        while i < to {
            let line = lines[i];
            if let Some((lb, ub, step)) = parse_for(line) {
                let end = close_of(lines, i)?;
                let body = self.work(lines, i + 1, end)?;
                total = total.saturating_add(self.trip(&lb, &ub, &step)?.saturating_mul(body.max(1)));
                i = end + 1;
                continue;
            }
            if !line.trim_start().starts_with('}') {
                total = total.saturating_add(1);
            }
            i += 1;
        }
        Some(total)
    }
}

/// What [`select`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Loops kept parallel (over their outermost dimension).
    pub parallel: usize,
    /// Loops made sequential.
    pub sequential: usize,
}

/// Rewrites every outermost `scf.parallel` of `text` (see the module doc). `None` when the
/// module holds a loop this pass does not understand (a reduction, a step that is not
/// positive): the caller then lowers every loop sequentially.
pub fn select(text: &str, min_work: u64) -> Option<(String, Selection)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 16);
    let mut sel = Selection::default();
    let mut func = Func { consts: HashMap::new() };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if t.starts_with("func.func") {
            func.consts.clear();
        }
        if let Some((name, rest)) = t.split_once(" = arith.constant ") {
            if let Some(v) = rest.strip_suffix(" : index").and_then(|v| v.trim().parse::<i64>().ok()) {
                func.consts.insert(name.trim(), v);
            }
        }
        if t.contains("= scf.parallel") {
            return None;
        }
        if !t.starts_with("scf.parallel") {
            out.push(line.to_string());
            i += 1;
            continue;
        }
        let h = parse_parallel(line)?;
        let end = close_of(&lines, i)?;
        // The body ends with an operand-free `scf.reduce`.
        let reduce = (i + 1..end).rev().find(|&k| !lines[k].trim().is_empty())?;
        if lines[reduce].trim() != "scf.reduce" || lines[i + 1..end].iter().any(|l| l.contains("scf.parallel")) {
            return None;
        }
        let trips: Vec<u64> =
            (0..h.ivs.len()).map(|d| func.trip(&h.lbs[d], &h.ubs[d], &h.steps[d])).collect::<Option<_>>()?;
        let body = func.work(&lines, i + 1, reduce)?;
        let work = trips.iter().fold(body.max(1), |w, &t| w.saturating_mul(t));
        let pad = " ".repeat(indent(line));
        let for_line =
            |d: usize| format!("{pad}scf.for {} = {} to {} step {} {{", h.ivs[d], h.lbs[d], h.ubs[d], h.steps[d]);
        let inner = lines[i + 1..reduce].iter().map(|l| l.to_string());
        if work >= min_work && trips[0] >= 2 {
            sel.parallel += 1;
            out.push(format!(
                "{pad}scf.parallel ({}) = ({}) to ({}) step ({}) {{",
                h.ivs[0], h.lbs[0], h.ubs[0], h.steps[0]
            ));
            out.extend((1..h.ivs.len()).map(for_line));
            out.extend(inner);
            out.extend((1..h.ivs.len()).map(|_| format!("{pad}}}")));
            out.push(format!("{pad}  scf.reduce"));
            out.push(format!("{pad}}}"));
        } else {
            sel.sequential += 1;
            out.extend((0..h.ivs.len()).map(for_line));
            out.extend(inner);
            out.extend((0..h.ivs.len()).map(|_| format!("{pad}}}")));
        }
        i = end + 1;
    }
    let mut text = out.join("\n");
    text.push('\n');
    Some((text, sel))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = "module {
  func.func @f(%arg0: memref<64x256xf32>, %arg1: memref<64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    scf.parallel (%arg2, %arg3) = (%c0, %c0) to (%c64, %c256) step (%c1, %c1) {
      %0 = memref.load %arg0[%arg2, %arg3] : memref<64x256xf32>
      memref.store %0, %arg0[%arg2, %arg3] : memref<64x256xf32>
      scf.reduce 
    }
    scf.parallel (%arg2) = (%c0) to (%c64) step (%c1) {
      scf.for %arg3 = %c0 to %c256 step %c1 {
        %0 = memref.load %arg0[%arg2, %arg3] : memref<64x256xf32>
        memref.store %0, %arg1[%arg2] : memref<64xf32>
      }
      scf.reduce 
    }
    return
  }
}
";

    #[test]
    fn small_loops_become_sequential() {
        let (text, sel) = select(MODULE, u64::MAX).expect("understood");
        assert_eq!(sel, Selection { parallel: 0, sequential: 2 });
        assert!(!text.contains("scf.parallel") && !text.contains("scf.reduce"), "{text}");
        assert_eq!(text.matches("scf.for").count(), 4, "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count(), "{text}");
    }

    #[test]
    fn large_loops_stay_parallel_over_their_outer_dimension() {
        // 64 * 256 * 2 operations each (the `scf.for` body counts its two lines).
        let (text, sel) = select(MODULE, 64 * 256 * 2).expect("understood");
        assert_eq!(sel, Selection { parallel: 2, sequential: 0 });
        assert_eq!(text.matches("scf.parallel (%arg2) = (%c0) to (%c64) step (%c1) {").count(), 2, "{text}");
        assert_eq!(text.matches("scf.for %arg3 = %c0 to %c256 step %c1 {").count(), 2, "{text}");
        assert_eq!(text.matches("scf.reduce").count(), 2, "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count(), "{text}");
        let (_, sel) = select(MODULE, 64 * 256 * 2 + 1).expect("understood");
        assert_eq!(sel, Selection { parallel: 0, sequential: 2 });
    }

    #[test]
    fn reductions_and_unknown_bounds_are_refused() {
        let with_reduce = MODULE.replacen("scf.reduce ", "scf.reduce(%0 : f32) {", 1);
        assert!(select(&with_reduce, 1).is_none());
        let zero_step = MODULE.replacen("%c1 = arith.constant 1 : index", "%c1 = arith.constant 0 : index", 1);
        assert!(select(&zero_step, 1).is_none());
    }

    #[test]
    fn run_time_bounds_count_as_a_typical_batch() {
        // %n rows assumed ASSUMED_TRIP = 64: the same work as the constant 64.
        let dynamic = MODULE.replacen("to (%c64, %c256)", "to (%n, %c256)", 1);
        let (text, sel) = select(&dynamic, 64 * 256 * 2).expect("understood");
        assert_eq!(sel, Selection { parallel: 2, sequential: 0 });
        assert!(text.contains("scf.parallel (%arg2) = (%c0) to (%n) step (%c1) {"), "{text}");
        let (_, sel) = select(&dynamic, 64 * 256 * 2 + 1).expect("understood");
        assert_eq!(sel, Selection { parallel: 0, sequential: 2 });
    }
}
