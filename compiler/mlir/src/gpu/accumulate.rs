//! A text pass of the GPU path (after loop fusion, before outlining): a reduction's
//! accumulators in registers instead of memory.
//!
//! `convert-linalg-to-parallel-loops` turns a reduction into a parallel loop over the
//! results around an `scf.for` nest over the reduced elements, whose innermost body loads
//! the result's element, combines it with an input element and stores it back. In a
//! kernel that is a load and a store of global memory per element, and the store keeps
//! the next iteration's input loads from starting early (they might read what it wrote),
//! so each thread waits for its loads one at a time.
//!
//! Contract: [`registerize`] takes a printed module (custom assembly form) and rewrites
//! every `scf.for` nest without `iter_args` whose levels hold nothing but the next level
//! and whose innermost body is straight-line code, when that body loads and then stores a
//! buffer at the same indices, both defined outside the nest, and touches that buffer
//! nowhere else: the element is loaded once before the nest, carried through every level
//! as an `iter_args` value (the load's uses read it, the stored value is yielded), and
//! stored once after the nest. Several such buffers in one body become several carried
//! values. The nest computes the same values; only the memory traffic changes (nothing
//! else in the body may write the buffer, and the loaded and stored element is the same
//! one every iteration).

use super::hostwrap::{defined, memref_elem, rename, uses};
use std::collections::HashMap;

/// Rewrites every qualifying nest of `text`; see the module docs.
pub fn registerize(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 1024);
    let mut counter = 0;
    let mut i = 0;
    while i < lines.len() {
        if let Some(nest) = Nest::parse(&lines, i) {
            if let Some(rewritten) = nest.rewrite(&lines, counter) {
                out.push_str(&rewritten);
                counter += 1;
                i = nest.end + 1;
                continue;
            }
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

/// A perfect `scf.for` nest: the header line of each level (outermost first), the
/// innermost body's lines, and the line of the outermost closing brace.
struct Nest {
    headers: Vec<usize>,
    body: std::ops::Range<usize>,
    end: usize,
}

/// `scf.for %iv = ... {` without results or `iter_args`: the induction variable.
fn plain_for(line: &str) -> Option<&str> {
    let t = line.trim();
    let rest = t.strip_prefix("scf.for ")?;
    if !t.ends_with('{') || t.contains("iter_args") {
        return None;
    }
    rest.split_whitespace().next()
}

/// The line of the brace closing the region opened at line `open`.
fn closing(lines: &[&str], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, line) in lines.iter().enumerate().skip(open) {
        let t = line.trim();
        if t.starts_with('}') {
            depth -= 1;
        }
        if t.ends_with('{') {
            depth += 1;
        }
        if depth == 0 {
            return Some(k);
        }
    }
    None
}

impl Nest {
    fn parse(lines: &[&str], start: usize) -> Option<Nest> {
        plain_for(lines[start])?;
        let end = closing(lines, start)?;
        let mut headers = vec![start];
        let mut close = end;
        loop {
            let first = headers[headers.len() - 1] + 1;
            // A level holding exactly one plain `scf.for` goes one deeper.
            if plain_for(lines[first]).is_some() && closing(lines, first) == Some(close - 1) {
                headers.push(first);
                close -= 1;
                continue;
            }
            let body = first..close;
            let straight = lines[body.clone()].iter().all(|l| !l.trim().ends_with('{') && !l.trim().starts_with('}'));
            return straight.then_some(Nest { headers, body, end });
        }
    }

    /// The nest with its accumulators carried, or `None` when the body has none.
    fn rewrite(&self, lines: &[&str], n: usize) -> Option<String> {
        let body = &lines[self.body.clone()];
        let mut inside: Vec<String> =
            self.headers.iter().filter_map(|&h| plain_for(lines[h])).map(String::from).collect();
        inside.extend(body.iter().flat_map(|l| defined(l)));
        let accs: Vec<Acc> = body.iter().enumerate().filter_map(|(k, l)| Acc::find(body, k, l, &inside)).collect();
        if accs.is_empty() {
            return None;
        }
        Some(self.emit(lines, &accs, n))
    }

    fn emit(&self, lines: &[&str], accs: &[Acc], n: usize) -> String {
        let indent = |l: &str| l[..l.len() - l.trim_start().len()].to_string();
        let depth = self.headers.len();
        let types: Vec<&str> = accs.iter().map(|a| a.elem.as_str()).collect();
        let types = types.join(", ");
        let carried = |level: usize, k: usize| format!("%rz{n}_a{level}_{k}");
        let result = |level: usize, k: usize| {
            if accs.len() == 1 {
                format!("%rz{n}_l{level}")
            } else {
                format!("%rz{n}_l{level}#{k}")
            }
        };
        let mut out = String::new();
        let outer = indent(lines[self.headers[0]]);
        for (k, a) in accs.iter().enumerate() {
            out += &format!("{outer}%rz{n}_init{k} = memref.load {}[{}] : {}\n", a.buffer, a.indices, a.ty);
        }
        for (level, &h) in self.headers.iter().enumerate() {
            let head = lines[h].trim().strip_suffix('{').unwrap_or(lines[h].trim()).trim_end();
            let args: Vec<String> = (0..accs.len())
                .map(|k| {
                    let from = if level == 0 { format!("%rz{n}_init{k}") } else { carried(level - 1, k) };
                    format!("{} = {from}", carried(level, k))
                })
                .collect();
            let name =
                if accs.len() == 1 { format!("%rz{n}_l{level}") } else { format!("%rz{n}_l{level}:{}", accs.len()) };
            out += &format!("{}{name} = {head} iter_args({}) -> ({types}) {{\n", indent(lines[h]), args.join(", "));
        }
        let last = depth - 1;
        let carry: HashMap<String, String> =
            accs.iter().enumerate().map(|(k, a)| (a.loaded.clone(), carried(last, k))).collect();
        let skip: Vec<usize> = accs.iter().flat_map(|a| [a.load, a.store]).collect();
        for (_, l) in lines[self.body.clone()].iter().enumerate().filter(|(k, _)| !skip.contains(k)) {
            out += &rename(l, &carry);
            out.push('\n');
        }
        let body_indent = indent(lines[self.body.start]);
        let yielded: Vec<String> = accs.iter().map(|a| rename(&a.stored, &carry)).collect();
        out += &format!("{body_indent}scf.yield {} : {types}\n", yielded.join(", "));
        // Close the levels from the innermost out; each outer one yields the inner results.
        for level in (0..depth).rev() {
            let h = self.headers[level];
            out += &format!("{}}}\n", indent(lines[h]));
            if level > 0 {
                let inner: Vec<String> = (0..accs.len()).map(|k| result(level, k)).collect();
                out += &format!(
                    "{}scf.yield {} : {types}\n",
                    indent(lines[self.headers[level - 1] + 1]),
                    inner.join(", ")
                );
            }
        }
        for (k, a) in accs.iter().enumerate() {
            out += &format!("{outer}memref.store {}, {}[{}] : {}\n", result(0, k), a.buffer, a.indices, a.ty);
        }
        out
    }
}

/// One accumulator of a nest's body: the buffer, the indices and memref type of its
/// element, the lines (within the body) of its load and store, the load's result and
/// the stored value, and the element type.
struct Acc {
    buffer: String,
    indices: String,
    ty: String,
    elem: String,
    load: usize,
    store: usize,
    loaded: String,
    stored: String,
}

/// `memref.store %v, %b[i, j] : T` -> (`%v`, `%b`, `i, j`, `T`).
fn parse_store(line: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = line.trim().strip_prefix("memref.store ")?;
    let (value, rest) = rest.split_once(", ")?;
    let (buffer, rest) = rest.split_once('[')?;
    let (indices, ty) = rest.split_once("] : ")?;
    Some((value, buffer, indices, ty))
}

/// `%x = memref.load %b[i, j] : T` -> (`%x`, `%b`, `i, j`, `T`).
fn parse_load(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (result, rest) = line.trim().split_once(" = memref.load ")?;
    let (buffer, rest) = rest.split_once('[')?;
    let (indices, ty) = rest.split_once("] : ")?;
    Some((result, buffer, indices, ty))
}

impl Acc {
    /// The accumulator stored at body line `k`, if it is one (see the module docs).
    fn find(body: &[&str], k: usize, line: &str, inside: &[String]) -> Option<Acc> {
        let (stored, buffer, indices, ty) = parse_store(line)?;
        let touching: Vec<usize> = (0..body.len()).filter(|&j| uses(body[j], buffer)).collect();
        let load = touching.iter().copied().find(|&j| j < k)?;
        let (loaded, b2, i2, t2) = parse_load(body[load])?;
        let outside = |name: &str| !inside.iter().any(|d| d == name);
        let index_names = indices.split(", ").filter(|s| s.starts_with('%'));
        let fits = touching.len() == 2 && b2 == buffer && i2 == indices && t2 == ty;
        if !fits || !index_names.clone().all(outside) || !outside(buffer) {
            return None;
        }
        Some(Acc {
            buffer: buffer.to_string(),
            indices: indices.to_string(),
            ty: ty.to_string(),
            elem: memref_elem(ty)?.to_string(),
            load,
            store: k,
            loaded: loaded.to_string(),
            stored: stored.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::registerize;

    const NEST: &str = "    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %cst, %acc[%i] : memref<4xf64>
      scf.for %j = %c0 to %c8 step %c1 {
        scf.for %k = %c0 to %c2 step %c1 {
          %0 = memref.load %x[%i, %j, %k] : memref<4x8x2xf32>
          %1 = memref.load %acc[%i] : memref<4xf64>
          %2 = arith.extf %0 : f32 to f64
          %3 = arith.addf %1, %2 : f64
          memref.store %3, %acc[%i] : memref<4xf64>
        }
      }
      %4 = memref.load %acc[%i] : memref<4xf64>
      scf.reduce
    }
";

    #[test]
    fn an_accumulator_is_carried_through_the_nest() {
        let out = registerize(NEST);
        let want = "    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %cst, %acc[%i] : memref<4xf64>
      %rz0_init0 = memref.load %acc[%i] : memref<4xf64>
      %rz0_l0 = scf.for %j = %c0 to %c8 step %c1 iter_args(%rz0_a0_0 = %rz0_init0) -> (f64) {
        %rz0_l1 = scf.for %k = %c0 to %c2 step %c1 iter_args(%rz0_a1_0 = %rz0_a0_0) -> (f64) {
          %0 = memref.load %x[%i, %j, %k] : memref<4x8x2xf32>
          %2 = arith.extf %0 : f32 to f64
          %3 = arith.addf %rz0_a1_0, %2 : f64
          scf.yield %3 : f64
        }
        scf.yield %rz0_l1 : f64
      }
      memref.store %rz0_l0, %acc[%i] : memref<4xf64>
      %4 = memref.load %acc[%i] : memref<4xf64>
      scf.reduce
    }
";
        assert_eq!(out, want);
    }

    #[test]
    fn two_accumulators_are_carried_together() {
        let text = "      scf.for %j = %c0 to %c8 step %c1 {
        %0 = memref.load %x[%i, %j] : memref<4x8xf32>
        %1 = memref.load %m[%i] : memref<4xf32>
        %2 = memref.load %n[%i] : memref<4xi64>
        %3 = arith.maximumf %1, %0 : f32
        memref.store %3, %m[%i] : memref<4xf32>
        memref.store %2, %n[%i] : memref<4xi64>
      }
";
        let out = registerize(text);
        assert!(out.contains("%rz0_l0:2 = scf.for %j = %c0 to %c8 step %c1 iter_args(%rz0_a0_0 = %rz0_init0, %rz0_a0_1 = %rz0_init1) -> (f32, i64) {"), "{out}");
        assert!(out.contains("scf.yield %3, %rz0_a0_1 : f32, i64"), "{out}");
        assert!(out.contains("memref.store %rz0_l0#1, %n[%i] : memref<4xi64>"), "{out}");
    }

    #[test]
    fn nests_that_do_not_fit_are_left_alone() {
        // The index depends on the innermost loop; a second store; a nest with other ops
        // between levels (only its inner loop is carried).
        let moving = NEST.replace("%acc[%i]", "%acc[%k]");
        assert_eq!(registerize(&moving), moving);
        let middle = NEST.replace("%acc[%i]", "%acc[%j]");
        assert!(registerize(&middle).contains("%rz0_l0 = scf.for %k"), "invariant in the inner loop only");
        let twice = NEST.replace(
            "          memref.store %3, %acc[%i] : memref<4xf64>\n",
            "          memref.store %3, %acc[%i] : memref<4xf64>\n          memref.store %2, %acc[%i] : memref<4xf64>\n",
        );
        assert_eq!(registerize(&twice), twice);
        let imperfect = NEST.replace(
            "        scf.for %k = %c0 to %c2 step %c1 {\n",
            "        %9 = arith.addi %j, %j : index\n        scf.for %k = %c0 to %c2 step %c1 {\n",
        );
        let out = registerize(&imperfect);
        assert!(out.contains("%rz0_l0 = scf.for %k"), "the inner loop alone is carried:\n{out}");
        assert!(out.contains("      scf.for %j = %c0 to %c8 step %c1 {\n"), "{out}");
    }
}
