//! Text passes of the GPU path over printed MLIR, between `passes::pipelines::gpu_loops` and
//! `passes::pipelines::gpu_outline`: host compute into one-thread kernels ([`wrap_host_compute`]),
//! host copies through the runtime ([`route_copies`]), innermost parallel dimension
//! first ([`innermost_first`]), and the count of buffer accesses left in host code
//! ([`host_memory_ops`]).
//!
//! After `convert-linalg-to-parallel-loops`, a linalg op with no parallel loop (a full
//! reduction, an elementwise op on 0-d tensors, a fill of a 0-d tensor) is a plain
//! `scf.for` nest or `memref.load`/`arith`/`memref.store` sequence in the host function.
//! Run on the host, it touches buffers the GPU just wrote (managed memory migrates them
//! back and forth) and forces a synchronisation before it.
//!
//! Contract: [`wrap_host_compute`] takes a printed module (custom assembly form, before
//! `gpu-map-parallel-loops`) and wraps each maximal run of consecutive top-level host
//! ops made only of `scf.for`/`scf.if` (whose bodies hold only scalar, load/store and
//! view ops), `memref.load`, `memref.store`, `arith` (constants are hoisted out) and
//! `math` ops in a one-iteration `scf.parallel`, which the GPU mapping turns into a
//! kernel. An op stays on the host when a value it defines is used after its wrapped
//! segment (the host needs that value, e.g. as a kernel argument); the run is split
//! around it, order kept. Nothing else changes. It returns the new text and the number
//! of top-level compute ops still on the host.

use std::collections::HashMap;

/// Ops allowed inside a wrapped region (by op name).
fn inner_allowed(op: &str) -> bool {
    op.starts_with("arith.")
        || op.starts_with("math.")
        || op.starts_with("index.")
        || matches!(
            op,
            "scf.for"
                | "scf.if"
                | "scf.yield"
                | "memref.load"
                | "memref.store"
                | "memref.subview"
                | "memref.cast"
                | "memref.expand_shape"
                | "memref.collapse_shape"
                | "memref.reinterpret_cast"
        )
}

/// The op name of a line: the first word after an optional `%results = `.
fn op_name(line: &str) -> &str {
    let t = line.trim_start();
    let t = match t.split_once(" = ") {
        Some((lhs, rhs)) if lhs.starts_with('%') => rhs,
        _ => t,
    };
    t.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("")
}

/// The SSA names a top-level op defines (`%a`, `%b:2` -> `%b`).
pub(crate) fn defined(line: &str) -> Vec<String> {
    let t = line.trim_start();
    match t.split_once(" = ") {
        Some((lhs, _)) if lhs.starts_with('%') => {
            lhs.split(',').map(|n| n.trim().split(':').next().unwrap_or("").to_string()).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `name` (like `%12`) occurs in `text` as a whole SSA name.
pub(crate) fn uses(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find(name) {
        let after = rest[i + name.len()..].chars().next();
        if !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.') {
            return true;
        }
        rest = &rest[i + name.len()..];
    }
    false
}

/// One top-level op of a function body: its lines.
pub(crate) struct TopOp<'a> {
    pub(crate) lines: Vec<&'a str>,
}

impl TopOp<'_> {
    pub(crate) fn name(&self) -> &str {
        op_name(self.lines[0])
    }

    fn is_constant(&self) -> bool {
        self.name() == "arith.constant"
    }

    /// Host compute that can run as a one-thread kernel.
    fn wrappable(&self) -> bool {
        let n = self.name();
        let head = n.starts_with("arith.")
            || n.starts_with("math.")
            || matches!(n, "scf.for" | "scf.if" | "memref.load" | "memref.store");
        head && self.lines.iter().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('}') || inner_allowed(op_name(l))
        })
    }
}

/// Splits a function body (lines at indent 4 and deeper) into top-level ops.
pub(crate) fn split_ops<'a>(body: &[&'a str]) -> Vec<TopOp<'a>> {
    let mut ops = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut depth = 0i32;
    for &line in body {
        let t = line.trim();
        if t.starts_with('}') {
            depth -= 1;
        }
        if t.ends_with('{') {
            depth += 1;
        }
        cur.push(line);
        if depth == 0 {
            ops.push(TopOp { lines: std::mem::take(&mut cur) });
        }
    }
    if !cur.is_empty() {
        ops.push(TopOp { lines: cur });
    }
    ops
}

/// Wraps host compute runs in one-iteration `scf.parallel` ops; see the module docs.
pub fn wrap_host_compute(text: &str) -> (String, usize) {
    let (mut left, mut counter) = (0, 0);
    let out = map_bodies(text, |_, body| {
        let (body, l) = wrap_body(body, &mut counter);
        left += l;
        body
    });
    (out, left)
}

/// `text` with the body of each function defined in it (the lines between a
/// `  func.func ... {` line and its closing `  }`) replaced by `f(header, body)`.
pub(crate) fn map_bodies(text: &str, mut f: impl FnMut(&str, &[&str]) -> String) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 1024);
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push_str(line);
        out.push('\n');
        i += 1;
        if !(line.starts_with("  func.func ") && line.trim_end().ends_with('{')) {
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i] != "  }" {
            i += 1;
        }
        out.push_str(&f(line, &lines[start..i]));
    }
    out
}

/// The rewritten body of one function and how many compute ops stay on the host.
fn wrap_body(body: &[&str], counter: &mut usize) -> (String, usize) {
    let ops = split_ops(body);
    let mut out = String::new();
    let mut left = 0;
    let mut k = 0;
    while k < ops.len() {
        if !ops[k].wrappable() {
            emit(&mut out, &ops[k].lines, "");
            k += 1;
            continue;
        }
        let mut end = k;
        while end < ops.len() && (ops[end].wrappable() || ops[end].is_constant()) {
            end += 1;
        }
        left += wrap_run(&mut out, &ops[k..end], &ops[end..], counter);
        k = end;
    }
    (out, left)
}

/// Emits a run of host compute: constants first, then the ops in order, consecutive
/// kernel-able ones wrapped together. An op stays on the host when a value it defines is
/// used after its segment (by host code or another segment); that splits segments, so
/// this repeats until stable. Returns how many ops stay on the host.
fn wrap_run(out: &mut String, run: &[TopOp], rest: &[TopOp], counter: &mut usize) -> usize {
    let after_run: String = rest.iter().flat_map(|o| o.lines.iter()).copied().collect::<Vec<_>>().join("\n");
    let ops: Vec<&TopOp> = run.iter().filter(|o| !o.is_constant()).collect();
    let mut host = vec![false; ops.len()];
    loop {
        let mut changed = false;
        for seg in segments(&host) {
            let later: String =
                ops[seg.end..].iter().flat_map(|o| o.lines.iter()).copied().collect::<Vec<_>>().join("\n");
            for i in seg {
                let escapes = defined(ops[i].lines[0]).iter().any(|d| uses(&later, d) || uses(&after_run, d));
                if escapes {
                    host[i] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for o in run.iter().filter(|o| o.is_constant()) {
        emit(out, &o.lines, "");
    }
    let mut i = 0;
    while i < ops.len() {
        if host[i] {
            emit(out, &ops[i].lines, "");
            i += 1;
            continue;
        }
        let n = *counter;
        *counter += 1;
        out.push_str(&format!(
            "    %hw_zero{n} = arith.constant 0 : index\n    %hw_one{n} = arith.constant 1 : index\n    \
scf.parallel (%hw_i{n}) = (%hw_zero{n}) to (%hw_one{n}) step (%hw_one{n}) {{\n"
        ));
        while i < ops.len() && !host[i] {
            emit(out, &ops[i].lines, "  ");
            i += 1;
        }
        out.push_str("      scf.reduce\n    }\n");
    }
    host.iter().filter(|&&h| h).count()
}

/// Maximal ranges of consecutive `false` entries.
fn segments(host: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < host.len() {
        if host[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < host.len() && !host[i] {
            i += 1;
        }
        v.push(s..i);
    }
    v
}

fn emit(out: &mut String, lines: &[&str], indent: &str) {
    for l in lines {
        out.push_str(indent);
        out.push_str(l);
        out.push('\n');
    }
}

/// How many `memref.load`/`memref.store` ops of an outlined module are host code (outside
/// every `gpu.module`): host code that reads or writes buffer contents, so launches must
/// synchronise before it runs.
pub fn host_memory_ops(text: &str) -> usize {
    let mut in_kernels = false;
    let mut n = 0;
    for line in text.lines() {
        if line.starts_with("  gpu.module ") {
            in_kernels = true;
        } else if in_kernels && line == "  }" {
            in_kernels = false;
        } else if !in_kernels && matches!(op_name(line), "memref.load" | "memref.store") {
            n += 1;
        }
    }
    n
}

/// The element type of a memref type (`memref<2x?xf32, strided<..>>` -> `f32`).
pub(crate) fn memref_elem(ty: &str) -> Option<&str> {
    let inner = ty.trim().strip_prefix("memref<")?;
    let mut depth = 0;
    let mut end = inner.len();
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => {
                end = i;
                break;
            }
            '>' => depth -= 1,
            ',' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let shape = &inner[..end];
    let mut rest = shape;
    while let Some((dim, tail)) = rest.split_once('x') {
        if dim.is_empty() || !dim.chars().all(|c| c.is_ascii_digit() || c == '?') {
            break;
        }
        rest = tail;
    }
    Some(rest)
}

/// The copy function for an element type: `archc_copy_f32`, `archc_copy_c64`, ...
pub fn copy_symbol(elem: &str) -> String {
    let suffix = match elem {
        "complex<f32>" => "c64".to_string(),
        e => e.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    format!("archc_copy_{suffix}")
}

/// Routes every host `memref.copy` through a runtime call `archc_copy_<elem>(src, dst)`
/// (unranked memrefs, C interface). The LLVM lowering would otherwise copy contiguous
/// buffers with an inline `memcpy` on the host, which reads buffers the GPU may still
/// be writing; the GPU runtime copies on its stream instead.
pub fn route_copies(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut decls = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        match reroute(line, n) {
            Some((call, elem)) => {
                out.push_str(&call);
                decls.insert(elem);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let decl: String = decls
        .iter()
        .map(|e| {
            format!(
                "  func.func private @{}(memref<*x{e}>, memref<*x{e}>) attributes {{llvm.emit_c_interface}}\n",
                copy_symbol(e)
            )
        })
        .collect();
    // After the `module ... {` line (attribute aliases like `#map = ...` come before it).
    let at = out.lines().position(|l| l.starts_with("module") && l.trim_end().ends_with('{'));
    match at {
        Some(k) if !decl.is_empty() => {
            let split = out.split_inclusive('\n').take(k + 1).map(str::len).sum::<usize>();
            format!("{}{decl}{}", &out[..split], &out[split..])
        }
        _ => out,
    }
}

/// `memref.copy %a, %b : T1 to T2` as casts to unranked memrefs and a call.
fn reroute(line: &str, n: usize) -> Option<(String, String)> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let rest = line.trim_start().strip_prefix("memref.copy ")?;
    let (operands, types) = rest.split_once(" : ")?;
    let (a, b) = operands.split_once(", ")?;
    let (ta, tb) = types.split_once(" to ")?;
    let tb = tb.split(" loc(").next()?;
    let elem = memref_elem(ta)?.to_string();
    let any = format!("memref<*x{elem}>");
    let sym = copy_symbol(&elem);
    Some((
        format!(
            "{indent}%rc_src{n} = memref.cast {a} : {ta} to {any}\n{indent}%rc_dst{n} = memref.cast {b} : {tb} to {any}\n\
{indent}func.call @{sym}(%rc_src{n}, %rc_dst{n}) : ({any}, {any}) -> ()\n"
        ),
        elem,
    ))
}

/// Reverses the dimensions of every multi-dimensional `scf.parallel` header, so that the
/// innermost dimension comes first: the tiling by threads and the mapping to `x` take the
/// first dimension, and consecutive threads then touch consecutive elements (coalesced
/// accesses). Parallel dimensions commute, and the body refers to them by name, so the
/// loop means the same.
pub fn innermost_first(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&reverse_header(line).unwrap_or_else(|| line.to_string()));
        out.push('\n');
    }
    out
}

/// An `scf.parallel` header line taken apart: its indentation, the lists of induction
/// variables, lower bounds, upper bounds and steps (as printed), and what follows.
pub(crate) struct ParallelHeader<'a> {
    pub indent: &'a str,
    pub ivs: Vec<&'a str>,
    pub lbs: Vec<&'a str>,
    pub ubs: Vec<&'a str>,
    pub steps: Vec<&'a str>,
    pub tail: &'a str,
}

/// `scf.parallel (a, b) = (c, d) to (e, f) step (g, h) {` taken apart.
pub(crate) fn parallel_header(line: &str) -> Option<ParallelHeader<'_>> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let rest = line.trim_start().strip_prefix("scf.parallel (")?;
    let (ivs, rest) = rest.split_once(") = (")?;
    let (lbs, rest) = rest.split_once(") to (")?;
    let (ubs, rest) = rest.split_once(") step (")?;
    let (steps, tail) = rest.split_once(')')?;
    Some(ParallelHeader { indent, ivs: list(ivs), lbs: list(lbs), ubs: list(ubs), steps: list(steps), tail })
}

/// The items of a printed comma-separated list.
fn list(s: &str) -> Vec<&str> {
    s.split(", ").collect()
}

/// `scf.parallel (a, b) = (c, d) to (e, f) step (g, h) {` with each list reversed.
fn reverse_header(line: &str) -> Option<String> {
    let h = parallel_header(line)?;
    if h.ivs.len() < 2 {
        return None;
    }
    let rev = |l: &[&str]| l.iter().rev().copied().collect::<Vec<_>>().join(", ");
    Some(format!(
        "{}scf.parallel ({}) = ({}) to ({}) step ({}){}",
        h.indent,
        rev(&h.ivs),
        rev(&h.lbs),
        rev(&h.ubs),
        rev(&h.steps),
        h.tail
    ))
}

/// `line` with every SSA name that is a key of `to` replaced by its value.
pub(crate) fn rename(line: &str, to: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = 1 + tail[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.' || c == '#'))
            .unwrap_or(tail.len() - 1);
        let token = &tail[..end];
        out.push_str(to.get(token).map_or(token, String::as_str));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "module {
  func.func @f(%arg0: memref<2x10xf32>, %arg1: memref<f32>, %arg2: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %alloc = memref.alloc() : memref<f64>
    %cst = arith.constant 0.000000e+00 : f64
    memref.store %cst, %alloc[] : memref<f64>
    scf.for %i = %c0 to %c2 step %c1 {
      %a = memref.load %arg0[%i, %c0] : memref<2x10xf32>
      %b = memref.load %alloc[] : memref<f64>
      %e = arith.extf %a : f32 to f64
      %s = arith.addf %b, %e : f64
      memref.store %s, %alloc[] : memref<f64>
    }
    %0 = memref.load %alloc[] : memref<f64>
    %1 = arith.truncf %0 : f64 to f32
    memref.store %1, %arg1[] : memref<f32>
    %2 = memref.load %arg2[] : memref<f32>
    %3 = arith.negf %2 : f32
    scf.parallel (%j) = (%c0) to (%c2) step (%c1) {
      memref.store %3, %arg1[] : memref<f32>
      scf.reduce
    }
    memref.dealloc %alloc : memref<f64>
    return
  }
}
";

    #[test]
    fn wraps_runs_whose_values_stay_inside() {
        let (text, left) = wrap_host_compute(HOST);
        // The store, the reduction loop and the final load/trunc/store form one kernel;
        // `%3` feeds the parallel loop, so its run stays on the host.
        assert_eq!(left, 2, "{text}");
        assert_eq!(text.matches("scf.parallel (%hw_i").count(), 1, "{text}");
        let wrapped = text.split("scf.parallel (%hw_i0)").nth(1).unwrap();
        let inside = wrapped.split("      scf.reduce").next().unwrap();
        assert!(inside.contains("scf.for %i") && inside.contains("arith.truncf"), "{text}");
        assert!(!inside.contains("arith.constant 0.0"), "constants are hoisted: {text}");
        assert!(text.contains("    %3 = arith.negf %2 : f32\n    scf.parallel (%j)"), "{text}");
    }

    #[test]
    fn leaves_loops_with_calls_or_allocations_alone() {
        let src = "module {
  func.func @g(%m: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %i = %c0 to %c4 step %c1 {
      %a = memref.alloc() : memref<4xf32>
      memref.dealloc %a : memref<4xf32>
    }
    return
  }
}
";
        let (text, left) = wrap_host_compute(src);
        assert_eq!(text, src);
        assert_eq!(left, 0);
    }

    #[test]
    fn host_memory_ops_skip_kernels() {
        let text = "module {\n  func.func @f() {\n    %0 = memref.load %a[] : memref<f32>\n  }\n  gpu.module @k {\n    gpu.func @g() kernel {\n      memref.store %x, %a[] : memref<f32>\n    }\n  }\n}\n";
        assert_eq!(host_memory_ops(text), 1);
    }

    #[test]
    fn copies_become_runtime_calls() {
        let src = "#map = affine_map<(d0) -> (d0)>\nmodule {\n  func.func @f(%a: memref<2x3xf32>, %b: memref<2x3xf32, strided<[4, 1], offset: ?>>) {\n    memref.copy %a, %b : memref<2x3xf32> to memref<2x3xf32, strided<[4, 1], offset: ?>>\n    return\n  }\n}\n";
        let out = route_copies(src);
        assert!(out.contains("module {\n  func.func private @archc_copy_f32(memref<*xf32>, memref<*xf32>)"), "{out}");
        assert!(
            out.contains("%rc_dst3 = memref.cast %b : memref<2x3xf32, strided<[4, 1], offset: ?>> to memref<*xf32>"),
            "{out}"
        );
        assert!(out.contains("func.call @archc_copy_f32(%rc_src3, %rc_dst3)"), "{out}");
        assert!(!out.contains("memref.copy"), "{out}");
        assert_eq!(memref_elem("memref<4xcomplex<f32>>"), Some("complex<f32>"));
        assert_eq!(memref_elem("memref<i1>"), Some("i1"));
        assert_eq!(memref_elem("memref<?x8xi64, strided<[?, 1], offset: ?>>"), Some("i64"));
        assert_eq!(copy_symbol("complex<f32>"), "archc_copy_c64");
    }

    #[test]
    fn parallel_dims_are_reversed() {
        let src = "    scf.parallel (%a, %b, %c) = (%c0, %c0, %c1) to (%c2, %c16, %c8) step (%c1, %c1, %c2) {\n      scf.parallel (%i) = (%c0) to (%c4) step (%c1) {\n";
        let out = innermost_first(src);
        assert_eq!(
            out,
            "    scf.parallel (%c, %b, %a) = (%c1, %c0, %c0) to (%c8, %c16, %c2) step (%c2, %c1, %c1) {\n      scf.parallel (%i) = (%c0) to (%c4) step (%c1) {\n"
        );
    }

    #[test]
    fn names_are_matched_whole() {
        assert!(uses("foo(%1, %2)", "%1"));
        assert!(!uses("foo(%12)", "%1"));
        assert!(uses("%r#1 = x", "%r"));
        assert!(!uses("%cst_1", "%cst"));
    }
}
