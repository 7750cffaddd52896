//! `archc build FILE --target cpu|cuda [--cpu NAME] -o OUT`: the entry, or with
//! `--train` and a `train` block the train and eval steps, compiled ahead of time into
//! an artifact (`.archx`, `crate::artifact`) with the user's sources and the selection.
//!
//! Contract: the file is checked once (its sources are what the artifact records); an
//! unknown `--cpu` is refused before anything is read; on success the artifact's path,
//! size, build time and contents are reported on stderr.

use super::build::BuildArgs;
use super::program::build_program;
use super::select::record;
use super::Fail;
use crate::backend;
use archc_mlir::aot::{AotTarget, HostCpu};
use clap::ValueEnum;
use std::path::Path;

/// What `--target` compiles for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArtifactTarget {
    /// CPUs of `--cpu` (shared objects built with LLVM's `llc` and the system `cc`).
    Cpu,
    /// NVIDIA GPUs of `--gpu-arch` or newer (kernels as PTX; host code for `--cpu`).
    Cuda,
}

/// Runs `archc build --target`.
pub fn run(target: ArtifactTarget, args: &BuildArgs, color: bool) -> Result<(), Fail> {
    let out = args.output.as_deref().expect("clap requires --output with --target");
    let target = match target {
        ArtifactTarget::Cpu => AotTarget::Cpu,
        ArtifactTarget::Cuda => AotTarget::Cuda(args.gpu_arch.clone()),
    };
    let cpu = match &args.cpu {
        Some(name) => HostCpu::named(name).map_err(Fail::backend)?,
        None => HostCpu::host_default(),
    };
    build((target, cpu), args, out, color)
}

/// Builds the artifact and writes it to `out`.
fn build((target, cpu): (AotTarget, HostCpu), args: &BuildArgs, out: &Path, color: bool) -> Result<(), Fail> {
    let file = &args.file;
    let built = build_program(file, &args.sel, color)?;
    let funcs: &[&str] = if built.train_step { &["train_step", "eval_step"] } else { &["main"] };
    let dims = backend::parse_dims(args.dim.as_deref()).map_err(Fail::user)?;
    let sources = crate::artifact::user_sources(file, &built.sources);
    let main = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let recorded = crate::artifact::Recorded { main_source: main, sources, options: record(&args.sel) };
    let art = crate::artifact::build(target, cpu, &built.program, funcs, &dims, recorded)?;
    art.write(out).map_err(Fail::backend)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    eprintln!("wrote {} ({} KiB, {:.1} s):", out.display(), size / 1024, t0.elapsed().as_secs_f64());
    eprintln!("{}", crate::artifact::describe(&art));
    Ok(())
}
