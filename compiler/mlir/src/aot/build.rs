//! Writing artifacts: each function's module is lowered through the CPU pipeline (or,
//! for CUDA, [`crate::gpu::compile`]) and translated to LLVM IR, optimised by `opt -O2`
//! (the middle end the JIT runs: without it loops are neither hoisted nor vectorised, and
//! a train step ran 5x slower), made loadable on the optimised module through LLVM's API
//! ([`super::loadable`]: runtime calls through slots, constructors run by `archc_init`,
//! packed entry points; see the parent module), compiled by `llc` (position-independent;
//! both for the host's triple and `-mcpu=` the artifact's [`HostCpu`]) and linked into a
//! shared object by the system C compiler. The files passed between these tools live in a
//! private fresh folder ([`super::scratch`]), removed when the object is built or the
//! build fails. A tool that cannot be started is [`Error::NoTool`] (the user's: LLVM 22's
//! tools or the C compiler are missing); one that fails is [`Error::ToolFailed`].

use super::loadable::{make_loadable, LlvmModule};
use super::scratch::{private_dir, write_new};
use super::{AotTarget, FuncEntry, HostCpu};
use crate::emit::{emit_module_dynamic, Module, Shape, Target};
use crate::error::{Error, Result};
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
) -> Result<FuncEntry> {
    let batch = vec!["B".to_string()];
    let tries: Vec<&[String]> = vec![dynamic, if dynamic.contains(&batch[0]) { &batch } else { &[] }];
    let emit_target = match target {
        AotTarget::Cpu => Target::Cpu,
        AotTarget::Cuda(_) => Target::Gpu,
    };
    let entry = |sig: Module| -> Result<FuncEntry> {
        let (object, sync) = shared_object(&sig, target, cpu)?;
        let sig = Module { text: String::new(), ..sig };
        Ok(FuncEntry { name: func.to_string(), sig, object, sync })
    };
    for syms in tries {
        if let Ok(sig) = emit_module_dynamic(program, func, inputs, syms, None, emit_target) {
            return entry(sig);
        }
    }
    entry(emit_module_dynamic(program, func, inputs, &[], None, emit_target)?)
}

/// The shared object of an emitted module, its host code for `cpu`, and (for CUDA)
/// whether its launches must synchronise (see [`crate::exec::gpu::needs_sync`]).
pub fn shared_object(sig: &Module, target: &AotTarget, cpu: &HostCpu) -> Result<(Vec<u8>, bool)> {
    let (ir, sync) = match target {
        AotTarget::Cpu => (lower_to(&sig.text, Stage::LlvmIr)?, false),
        AotTarget::Cuda(arch) => {
            let lowered = crate::gpu::compile(&sig.text, arch)?;
            let sync = crate::exec::gpu::needs_sync(lowered.host_ops, lowered.random_fills);
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
    // the JIT does (and so that what it adds, a `calloc`, is seen); then the trampolines
    // and entry points, on the optimised module; then code generation.
    let optimized = dir.join("opt.ll");
    run(Command::new(llvm_tool("opt")).args(["-S", "-O2", &triple, &mcpu, "-o"]).arg(&optimized).arg(&raw))?;
    let ir = read(&optimized)?;
    let mut module = LlvmModule::parse(&ir)?;
    make_loadable(&mut module, target)?;
    write_new(dir, "m.ll", module.print().as_bytes())?;
    run(Command::new(llvm_tool("llc"))
        .args(["-O2", "-relocation-model=pic", "-filetype=obj", &triple, &mcpu, "-o"])
        .arg(&obj)
        .arg(&ll))?;
    let cc = crate::jit::cpu_options().cc;
    // -Bsymbolic: the object's calls reach its own trampolines, also for names the C
    // library defines too (the allocator's).
    run(Command::new(&cc).args(["-shared", "-Wl,-Bsymbolic", "-o"]).arg(&so).arg(&obj).arg("-lm"))?;
    Ok((read(&so)?, sync))
}

/// The bytes of a file a tool wrote.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

/// An LLVM 22 tool (`llc`, `opt`): next to the MLIR libraries archc was built against
/// (`MLIR_SYS_220_PREFIX` at build time, else Debian's `/usr/lib/llvm-22`), else
/// `NAME-22` on the PATH.
fn llvm_tool(name: &str) -> PathBuf {
    let prefix = option_env!("MLIR_SYS_220_PREFIX").unwrap_or("/usr/lib/llvm-22");
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

fn run(cmd: &mut Command) -> Result<()> {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => return Err(Error::NoTool { tool, message: e.to_string() }),
    };
    if !out.status.success() {
        return Err(Error::ToolFailed { tool, stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
    }
    Ok(())
}
