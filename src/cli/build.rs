//! `archc build FILE`: the entry network (or, with `--train` and a `train` block, the
//! whole train step) printed at a stage of the pipeline (`--emit`), or compiled ahead of
//! time into an artifact (`--target`, in [`super::build_artifact`]).
//!
//! Contract: the file is checked once; a stage goes to `--output` or stdout (a closed
//! pipe is not an error); the MLIR stages are specialised to `--dim` sizes except the
//! `--dynamic` symbols; `--timings` reports the front end and each tier's compile on
//! stderr. A `.tir` input is one built program and refuses the selection flags.

use super::build_artifact::ArtifactTarget;
use super::program::{build_program, checked, compile, tir_program};
use super::select::{options, Selection};
use super::{stdout, train_block, Fail};
use crate::backend;
use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// The arguments of `archc build`.
#[derive(Args)]
pub struct BuildArgs {
    pub file: PathBuf,
    /// The stage to print.
    #[arg(long, default_value = "tir")]
    pub emit: Emit,
    #[command(flatten)]
    pub sel: Selection,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Compile ahead of time into an artifact (`-o model.archx`) instead of printing
    /// a stage: the entry, or with `--train` the train and eval steps, with every
    /// input size dynamic that can be. `archc run|train|eval model.archx` runs it,
    /// also an archc built without LLVM.
    #[arg(long, value_enum, requires = "output")]
    pub target: Option<ArtifactTarget>,
    /// The CPU the artifact's host code is compiled for (checked when it loads):
    /// x86-64, x86-64-v2, x86-64-v3 (default; AVX2, FMA), x86-64-v4 (AVX-512) or
    /// native (this machine's CPU; runs only on CPUs with all its features). Hosts
    /// other than x86-64: generic (default) or native.
    #[arg(long, value_name = "NAME", requires = "target")]
    pub cpu: Option<String>,
    /// Sizes of symbolic dims for the MLIR stages, which are specialised to concrete
    /// shapes: `--dim B=32,N=64` (default `B=2`, others 16).
    #[arg(long, value_name = "NAME=SIZE,...")]
    pub dim: Option<String>,
    /// Size symbols of the entry's inputs to leave dynamic in the MLIR stages
    /// (`?` in tensor types, read from the inputs at run time): `--dynamic B,T`.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub dynamic: Vec<String>,
    /// Compile the entry with each tier and report where the time went: Cranelift
    /// (whole compile) and MLIR (parse + verify, passes, LLVM JIT), with MLIR's time
    /// report of every pass.
    #[arg(long)]
    pub timings: bool,
    /// The GPU architecture of `--emit ptx` and `--target cuda`: sm_80, sm_90, ...
    #[arg(long, default_value = "sm_80")]
    pub gpu_arch: String,
    /// Build for training: with a `train` block, the whole train step (forward, loss,
    /// backward, optimizer update; with `--target`, the train and eval steps);
    /// otherwise the network in training mode (dropout active, batch statistics).
    #[arg(long)]
    pub train: bool,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum Emit {
    /// The syntax tree of the main file.
    Ast,
    /// Typed tensor IR (with `--train`: the whole train step).
    Tir,
    /// MLIR on tensors (linalg, tensor, arith, math, scf), as generated and verified.
    Mlir,
    /// MLIR after the CPU pass pipeline (bufferized, lowered to the LLVM dialect).
    MlirOpt,
    /// LLVM IR, as handed to the JIT.
    Llvm,
    /// PTX of the GPU kernels (`--gpu-arch`), as loaded by the CUDA driver.
    Ptx,
    /// Cranelift IR of the entry and every function it reaches (the `cranelift` backend).
    Clif,
}

/// Runs `archc build`.
pub fn run(mut args: BuildArgs, color: bool) -> Result<(), Fail> {
    args.sel.train = args.train;
    match args.target {
        Some(target) => super::build_artifact::run(target, &args, color),
        None => print_stage(&args, color),
    }
}

/// `--emit STAGE`: the stage, written to `--output` or stdout.
fn print_stage(args: &BuildArgs, color: bool) -> Result<(), Fail> {
    let text = match args.emit {
        Emit::Mlir | Emit::MlirOpt | Emit::Llvm | Emit::Ptx | Emit::Clif => lowered(args, color)?,
        Emit::Ast => {
            let out = checked(&args.file, &options(&args.sel, true)?, color)?;
            format!("{:#?}\n", out.ast.expect("main file parsed"))
        }
        Emit::Tir => tir(args, color)?,
    };
    match &args.output {
        Some(p) => std::fs::write(p, text).map_err(|e| Fail::user(format!("cannot write {}: {e}", p.display()))),
        None => stdout(&text),
    }
}

/// The TIR of the entry, or of the train step (the file is parsed for its `train`
/// block only with `--train`).
fn tir(args: &BuildArgs, color: bool) -> Result<String, Fail> {
    let main = if args.sel.train { train_block::parse(&args.file) } else { None };
    match train_block::train_step_for(&args.file, &args.sel, main.as_ref(), color)? {
        Some(step) => Ok(step.to_string()),
        None => Ok(compile(&args.file, &args.sel, color)?.to_string()),
    }
}

/// A stage past TIR (MLIR, LLVM IR, PTX, Cranelift IR) of the entry or the train step.
fn lowered(args: &BuildArgs, color: bool) -> Result<String, Fail> {
    let t0 = std::time::Instant::now();
    let (program, entry, sources) = front_end(args, color)?;
    let front = t0.elapsed();
    if args.timings {
        eprint!("{}", backend::clif_timings(&program, entry, front));
    }
    if matches!(args.emit, Emit::Clif) {
        return backend::emit_clif(&program, entry).map_err(Fail::user);
    }
    let gpu = matches!(args.emit, Emit::Ptx);
    let module = backend::emit_mlir(&program, entry, args.dim.as_deref(), &args.dynamic, &sources, gpu)?;
    if gpu {
        return backend::ptx(&module.text, &args.gpu_arch);
    }
    if args.timings {
        eprint!("{}", backend::timings(&module, front)?);
    }
    match args.emit {
        Emit::MlirOpt => backend::lower_mlir(&module.text, false),
        Emit::Llvm => backend::lower_mlir(&module.text, true),
        _ => Ok(module.text),
    }
}

/// The program to lower, the function to lower and the sources its locations point to.
fn front_end(args: &BuildArgs, color: bool) -> Result<(Program, &'static str, SourceMap), Fail> {
    if crate::tirfile::is_tir(&args.file) {
        return Ok((tir_program(&args.file, &args.sel)?, "main", SourceMap::new()));
    }
    let built = build_program(&args.file, &args.sel, color)?;
    let entry = if built.train_step { "train_step" } else { "main" };
    Ok((built.program, entry, built.sources))
}
