//! Writing artifacts: each function's module is lowered through the CPU pipeline to LLVM
//! IR, optimised by `opt -O2` (the middle end the JIT runs: without it loops are neither
//! hoisted nor vectorised, and a train step ran 5x slower), made loadable (runtime calls
//! through slots, packed entry points; see the parent module), compiled by `llc`
//! (position-independent; both for the host's triple and `-mcpu=` the artifact's
//! [`HostCpu`]) and linked into a shared object by the system C compiler. The files
//! passed between these tools live in a private fresh folder ([`super::scratch`]),
//! removed when the object is built or the build fails.

use super::scratch::{private_dir, write_new};
use super::{runtime_symbols, AotTarget, FuncEntry, HostCpu};
use crate::emit::{emit_module_dynamic, Module, Shape, Target};
use crate::jit::{lower_to, Stage};
use archc_compiler::tir::Program;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `func` of `program` for `target` (host code for `cpu`) and inputs like
/// `inputs`, leaving as many of the size symbols `dynamic` dynamic as the lowering
/// allows: all of them, else the batch `B` alone, else none (the artifact then runs
/// these shapes only).
pub fn compile_function(
    program: &Program,
    func: &str,
    inputs: &[Shape],
    dynamic: &[String],
    target: &AotTarget,
    cpu: &HostCpu,
) -> Result<FuncEntry, String> {
    let batch = vec!["B".to_string()];
    let tries: Vec<&[String]> = vec![dynamic, if dynamic.contains(&batch[0]) { &batch } else { &[] }, &[]];
    let emit_target = match target {
        AotTarget::Cpu => Target::Cpu,
        AotTarget::Cuda(_) => Target::Gpu,
    };
    let mut last = String::new();
    for syms in tries {
        match emit_module_dynamic(program, func, inputs, syms, None, emit_target) {
            Ok(sig) => {
                let (object, sync) = shared_object(&sig, target, cpu)?;
                let sig = Module { text: String::new(), ..sig };
                return Ok(FuncEntry { name: func.to_string(), sig, object, sync });
            }
            Err(e) => last = e.0,
        }
    }
    Err(last)
}

/// The shared object of an emitted module, its host code for `cpu`, and (for CUDA)
/// whether its launches must synchronise (see [`crate::gpu::run::needs_sync`]).
pub fn shared_object(sig: &Module, target: &AotTarget, cpu: &HostCpu) -> Result<(Vec<u8>, bool), String> {
    let (ir, sync) = match target {
        AotTarget::Cpu => (lower_to(&sig.text, Stage::LlvmIr)?, false),
        AotTarget::Cuda(arch) => {
            let lowered = crate::gpu::compile(&sig.text, arch)?;
            let sync = crate::gpu::run::needs_sync(lowered.host_ops, &sig.text);
            (crate::jit::llvm_ir(&lowered.module)?, sync)
        }
    };
    let scratch = private_dir("archc-build-")?;
    let dir = scratch.path();
    let (raw, ll, obj, so) = (dir.join("raw.ll"), dir.join("m.ll"), dir.join("m.o"), dir.join("m.so"));
    write_new(dir, "raw.ll", ir.as_bytes())?;
    let (triple, mcpu) = (format!("-mtriple={}", host_triple()), format!("-mcpu={}", cpu.llc_name()));
    // LLVM's middle end first (what the JIT runs at -O2: inlining, hoisting, the loop
    // vectoriser), on the IR as MLIR wrote it, so that it sees the runtime functions as
    // the JIT does; then the trampolines; then code generation.
    let optimized = dir.join("opt.ll");
    run(Command::new(llvm_tool("opt")).args(["-S", "-O2", &triple, &mcpu, "-o"]).arg(&optimized).arg(&raw))?;
    let ir = std::fs::read_to_string(&optimized).map_err(|e| format!("cannot read {}: {e}", optimized.display()))?;
    let ir = loadable(&ir, target)?;
    write_new(dir, "m.ll", ir.as_bytes())?;
    run(Command::new(llvm_tool("llc"))
        .args(["-O2", "-relocation-model=pic", "-filetype=obj", &triple, &mcpu, "-o"])
        .arg(&obj)
        .arg(&ll))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    // -Bsymbolic: the object's calls reach its own trampolines, also for names the C
    // library defines too (the allocator's).
    run(Command::new(&cc).args(["-shared", "-Wl,-Bsymbolic", "-o"]).arg(&so).arg(&obj).arg("-lm"))?;
    let bytes = std::fs::read(&so).map_err(|e| format!("cannot read {}: {e}", so.display()))?;
    Ok((bytes, sync))
}

/// An LLVM 22 tool (`llc`, `opt`): next to the MLIR libraries archc links, else
/// `NAME-22` on the PATH.
fn llvm_tool(name: &str) -> PathBuf {
    let prefix = std::env::var("MLIR_SYS_220_PREFIX").unwrap_or_else(|_| "/usr/lib/llvm-22".into());
    let path = Path::new(&prefix).join("bin").join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(format!("{name}-22"))
    }
}

/// The target triple of the machine building (MLIR's LLVM IR names none).
fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| format!("cannot run {name}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{name} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// LLVM IR made loadable: every declared runtime function becomes a trampoline through
/// its slot, and `archc_entry` / `archc_set_params` get packed entry points.
pub fn loadable(ir: &str, target: &AotTarget) -> Result<String, String> {
    let runtime = runtime_symbols(target);
    let mut out = String::new();
    let mut slots = Vec::new();
    let (mut ctors, mut dtors) = (Vec::new(), Vec::new());
    for line in ir.lines() {
        if let Some(list) = line.strip_prefix("@llvm.global_ctors = ") {
            ctors = structor_names(list);
            continue;
        }
        if let Some(list) = line.strip_prefix("@llvm.global_dtors = ") {
            dtors = structor_names(list);
            continue;
        }
        match declaration(line) {
            Some(d) if runtime.contains_key(d.name.as_str()) => {
                out.push_str(&d.trampoline());
                slots.push(d.name);
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str(&slot_table(&slots));
    out.push_str(&calls_in_order("archc_init", &ctors));
    out.push_str(&calls_in_order("archc_fini", &dtors));
    for name in ["archc_entry", "archc_set_params"] {
        out.push_str(&packed(ir, name)?);
    }
    Ok(out)
}

/// The functions of an `@llvm.global_ctors` / `_dtors` list, by priority (stable).
/// Constructors would run when the object is loaded, before its slots are filled (a
/// CUDA module's kernels are loaded through them), so `loadable` lists them in
/// `archc_init` / `archc_fini` instead, which the loader calls.
fn structor_names(list: &str) -> Vec<String> {
    let mut entries: Vec<(i64, String)> = list
        .split("{ i32 ")
        .skip(1)
        .filter_map(|entry| {
            let (priority, rest) = entry.split_once(", ptr @")?;
            let name = rest.split([',', ' ', '}']).next()?;
            Some((priority.trim().parse().ok()?, name.trim_matches('"').to_string()))
        })
        .collect();
    entries.sort_by_key(|(priority, _)| *priority);
    entries.into_iter().map(|(_, name)| name).collect()
}

/// `define void @<name>()` calling each of `functions` in order.
fn calls_in_order(name: &str, functions: &[String]) -> String {
    let calls: String = functions.iter().map(|f| format!("  call void @\"{f}\"()\n")).collect();
    format!("\ndefine void @{name}() {{\n{calls}  ret void\n}}\n")
}

/// A function declaration: `declare <ret> @<name>(<params>)`.
struct Decl {
    ret: String,
    name: String,
    params: Vec<String>,
}

fn declaration(line: &str) -> Option<Decl> {
    let rest = line.strip_prefix("declare ")?;
    let (ret, rest) = rest.split_once(" @")?;
    let (name, rest) = rest.split_once('(')?;
    let close = rest.rfind(')')?;
    let params = split_top(&rest[..close]);
    // The return type is the last word before the name: metadata (`!callback !3`),
    // linkage and return attributes come first.
    let ret = ret.split_whitespace().last()?.to_string();
    Some(Decl { ret, name: name.trim_matches('"').to_string(), params })
}

/// Splits a parameter list at commas outside brackets.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '{' | '[' | '(' | '<' => depth += 1,
            '}' | ']' | ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

impl Decl {
    /// A definition calling through the slot; a variadic function (OpenMP's fork call)
    /// forwards its variadic arguments with a `musttail` call.
    fn trampoline(&self) -> String {
        let variadic = self.params.last().is_some_and(|p| p == "...");
        let fixed = &self.params[..self.params.len() - variadic as usize];
        let mut args: Vec<String> = fixed.iter().enumerate().map(|(i, t)| format!("{t} %a{i}")).collect();
        let slot = format!("@\"archc_slot.{}\"", self.name);
        if variadic {
            args.push("...".into());
            let fn_ty = format!("{} ({})", self.ret, self.params.join(", "));
            let tail = match self.ret.as_str() {
                "void" => format!("  musttail call {fn_ty} %f({})\n  ret void\n", args.join(", ")),
                r => format!("  %r = musttail call {fn_ty} %f({})\n  ret {r} %r\n", args.join(", ")),
            };
            return format!(
                "{slot} = global ptr null\ndefine {} @\"{}\"({}) {{\n  %f = load ptr, ptr {slot}\n{tail}}}\n",
                self.ret,
                self.name,
                args.join(", ")
            );
        }
        let call = format!("call {} %f({})", self.ret, args.join(", "));
        let body = match self.ret.as_str() {
            "void" => format!("  {call}\n  ret void\n"),
            r => format!("  %r = {call}\n  ret {r} %r\n"),
        };
        format!(
            "{slot} = global ptr null\ndefine {} @\"{}\"({}) {{\n  %f = load ptr, ptr {slot}\n{body}}}\n",
            self.ret,
            self.name,
            args.join(", ")
        )
    }
}

/// `archc_slot_names`: the slots' symbols as a null-terminated array of C strings.
fn slot_table(slots: &[String]) -> String {
    let mut s = String::new();
    let mut refs = Vec::new();
    for (i, name) in slots.iter().enumerate() {
        s.push_str(&format!("@archc_slot_name.{i} = private constant [{} x i8] c\"{name}\\00\"\n", name.len() + 1));
        refs.push(format!("ptr @archc_slot_name.{i}"));
    }
    refs.push("ptr null".into());
    s.push_str(&format!("@archc_slot_names = global [{} x ptr] [{}]\n", refs.len(), refs.join(", ")));
    s
}

/// `archc_packed_<name>(ptr %args)`: loads argument `i` through `args[i]` and calls the
/// C interface `_mlir_ciface_<name>`.
fn packed(ir: &str, name: &str) -> Result<String, String> {
    let head = format!("define void @_mlir_ciface_{name}(");
    let line = ir.lines().find(|l| l.starts_with(&head)).ok_or_else(|| format!("no C interface of {name}"))?;
    let inner = &line[head.len()..line.rfind(')').ok_or("bad define line")?];
    let types: Vec<String> = split_top(inner)
        .iter()
        .map(|p| p.split_whitespace().next().unwrap_or("ptr").to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let mut body = String::new();
    let mut args = Vec::new();
    for (i, t) in types.iter().enumerate() {
        body.push_str(&format!(
            "  %p{i} = getelementptr inbounds ptr, ptr %args, i64 {i}\n  %q{i} = load ptr, ptr %p{i}\n  %v{i} = load {t}, ptr %q{i}\n"
        ));
        args.push(format!("{t} %v{i}"));
    }
    Ok(format!(
        "define void @archc_packed_{name}(ptr %args) {{\n{body}  call void @_mlir_ciface_{name}({})\n  ret void\n}}\n",
        args.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_parse_with_nested_types() {
        let d = declaration("declare void @_mlir_ciface_archc_matmul_f32(ptr, { ptr, i64 }, ptr)").expect("decl");
        assert_eq!(d.name, "_mlir_ciface_archc_matmul_f32");
        assert_eq!(d.params, vec!["ptr", "{ ptr, i64 }", "ptr"]);
        assert!(declaration("define void @f()").is_none());
        let d = declaration("declare !callback !3 void @__kmpc_fork_call(ptr, i32, ptr, ...)").expect("decl");
        assert_eq!((d.ret.as_str(), d.params.len()), ("void", 4));
    }

    #[test]
    fn trampolines_call_through_the_slot() {
        let d = declaration("declare float @archc_rand_uniform_f32(i64, i64)").expect("decl");
        let t = d.trampoline();
        assert!(t.contains("@\"archc_slot.archc_rand_uniform_f32\" = global ptr null"), "{t}");
        assert!(t.contains("%r = call float %f(i64 %a0, i64 %a1)"), "{t}");
        assert!(t.contains("ret float %r"), "{t}");
    }

    #[test]
    fn variadic_trampolines_forward_with_musttail() {
        let d = declaration("declare void @__kmpc_fork_call(ptr, i32, ptr, ...)").expect("decl");
        let t = d.trampoline();
        assert!(t.contains("define void @\"__kmpc_fork_call\"(ptr %a0, i32 %a1, ptr %a2, ...)"), "{t}");
        assert!(t.contains("musttail call void (ptr, i32, ptr, ...) %f(ptr %a0, i32 %a1, ptr %a2, ...)"), "{t}");
    }

    #[test]
    fn constructors_become_init_functions_in_priority_order() {
        let list = "appending global [3 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 200, ptr @late, ptr null }, \
                    { i32, ptr, ptr } { i32 123, ptr @a_load, ptr null }, { i32, ptr, ptr } { i32 123, ptr @\"b.load\", ptr null }]";
        let ir = format!(
            "@llvm.global_ctors = {list}\n@llvm.global_dtors = {}\n\
             define void @_mlir_ciface_archc_entry(i64 %0) {{\n}}\ndefine void @_mlir_ciface_archc_set_params() {{\n}}\n",
            list.replace("load", "unload")
        );
        let text = loadable(&ir, &AotTarget::Cpu).expect("loadable");
        assert!(!text.contains("@llvm.global_ctors") && !text.contains("@llvm.global_dtors"), "{text}");
        let init = "define void @archc_init() {\n  call void @\"a_load\"()\n  call void @\"b.load\"()\n  call void @\"late\"()\n";
        assert!(text.contains(init), "{text}");
        assert!(text.contains("define void @archc_fini() {\n  call void @\"a_unload\"()"), "{text}");
    }

    #[test]
    fn packed_entry_loads_each_argument() {
        let ir = "define void @_mlir_ciface_archc_entry(i64 %0, ptr %1) {\n}\n";
        let p = packed(ir, "archc_entry").expect("packed");
        assert!(p.contains("%v0 = load i64, ptr %q0"), "{p}");
        assert!(p.contains("%v1 = load ptr, ptr %q1"), "{p}");
        assert!(p.contains("call void @_mlir_ciface_archc_entry(i64 %v0, ptr %v1)"), "{p}");
        assert!(packed(ir, "archc_set_params").is_err());
    }
}
