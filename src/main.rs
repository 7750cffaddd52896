//! `archc`: check, build, run and format `.arch` files.
//!
//! Exit codes: 0 success, 1 user error (diagnostics printed), 2 internal error.

use archc::backend::{self, Backend};
use archc::driver::{check_path, parse_pairs};
use archc::inputs::{arg_shapes, random_tensor};
use archc::render::render;
use archc::training;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::{CheckOutput, ChoiceMode, Options};
use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use archc_mlir::aot::{AotTarget, Artifact, HostCpu};
use archc_runtime::{io, Interpreter, Tensor};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "archc", version, about = "Compiler and runtime for .arch neural architecture files")]
struct Cli {
    /// Colour diagnostics: auto, always, never.
    #[arg(long, global = true, default_value = "auto")]
    color: Color,
    /// The GPU for `--backend mlir-gpu`: `cuda:N` (default cuda:0).
    #[arg(long, global = true, value_name = "cuda:N")]
    device: Option<String>,
    /// The most memory a run may need, estimated before it starts (`8G`, `512M`,
    /// `none`); a program that needs more is refused. Default: 80% of this machine's.
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `println!` for results: a closed pipe (`archc train ... | head`) ends the output
/// quietly instead of panicking; other write errors are user errors.
macro_rules! out {
    ($($t:tt)*) => {
        stdout(&format!("{}\n", format_args!($($t)*)))?
    };
}

#[global_allocator]
static ALLOCATOR: archc::oom::ExitOnOom = archc::oom::ExitOnOom;

/// Stack of the thread that runs a command.
const STACK_BYTES: usize = 256 << 20;

#[derive(Copy, Clone, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse, resolve names and check shapes of every buildable item.
    Check {
        /// The .arch files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Build the entry network and print a stage.
    Build {
        file: PathBuf,
        /// The stage to print.
        #[arg(long, default_value = "tir")]
        emit: Emit,
        #[command(flatten)]
        sel: Selection,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Compile ahead of time into an artifact (`-o model.archx`) instead of printing
        /// a stage: the entry, or with `--train` the train and eval steps, with every
        /// input size dynamic that can be. `archc run|train|eval model.archx` runs it,
        /// also an archc built without LLVM.
        #[arg(long, value_enum, requires = "output")]
        target: Option<ArtifactTarget>,
        /// The CPU the artifact's host code is compiled for (checked when it loads):
        /// x86-64, x86-64-v2, x86-64-v3 (default; AVX2, FMA), x86-64-v4 (AVX-512) or
        /// native (this machine's CPU; runs only on CPUs with all its features). Hosts
        /// other than x86-64: generic (default) or native.
        #[arg(long, value_name = "NAME", requires = "target")]
        cpu: Option<String>,
        /// Sizes of symbolic dims for the MLIR stages, which are specialised to concrete
        /// shapes: `--dim B=32,N=64` (default `B=2`, others 16).
        #[arg(long, value_name = "NAME=SIZE,...")]
        dim: Option<String>,
        /// Size symbols of the entry's inputs to leave dynamic in the MLIR stages
        /// (`?` in tensor types, read from the inputs at run time): `--dynamic B,T`.
        #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
        dynamic: Vec<String>,
        /// Compile the entry with each tier and report where the time went: Cranelift
        /// (whole compile) and MLIR (parse + verify, passes, LLVM JIT).
        #[arg(long)]
        timings: bool,
        /// The GPU architecture of `--emit ptx` and `--target cuda`: sm_80, sm_90, ...
        #[arg(long, default_value = "sm_80")]
        gpu_arch: String,
        /// Build for training: with a `train` block, the whole train step (forward, loss,
        /// backward, optimizer update; with `--target`, the train and eval steps);
        /// otherwise the network in training mode (dropout active, batch statistics).
        #[arg(long)]
        train: bool,
    },
    /// Run the entry network.
    Run {
        file: PathBuf,
        #[command(flatten)]
        sel: Selection,
        /// What runs the network (default mlir-cpu, or interp in an archc without MLIR).
        /// An artifact runs its own compiled code: only the backend of its target.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Weights to load (`.safetensors`, names as in `build --emit tir`, or a training
        /// checkpoint); every parameter of the program must be in the file.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// With --weights: parameters the file lacks keep their initial values (by
        /// --seed) instead of being an error.
        #[arg(long, requires = "weights")]
        allow_missing: bool,
        /// An input from a file: `--input x=x.npy` (repeatable). Others are random.
        #[arg(long = "input", value_name = "NAME=PATH")]
        inputs: Vec<String>,
        /// Sizes of symbolic dims for random inputs: `--dim B=4,N=64` (default B=2, others 16).
        #[arg(long, value_name = "NAME=SIZE,...")]
        dim: Option<String>,
        /// Seed for parameter initialisation and random inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write each output to DIR/NAME.npy.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Run N more times after the first and report the median time per run (the first
        /// run, which includes compilation, is reported separately).
        #[arg(long, value_name = "N", default_value_t = 0)]
        repeat: usize,
        /// Run over whole input files N rows at a time: every `--input` is cut along axis 0
        /// into chunks of at most N rows, the network runs once per chunk (`--max-memory` is
        /// checked for one chunk) and each output's chunks are joined along axis 0.
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
        /// Run the network in training mode (dropout active, batch statistics).
        #[arg(long)]
        train: bool,
        /// Run the stack's blocks in this order instead of the trained one (layer-loop
        /// adaptation): `--chain 0,1,1,3`, or `--chain NAME=0,1,1,3` to pick a stack.
        #[arg(long, value_name = "[NAME=]BLOCKS")]
        chain: Option<String>,
        /// Report every compilation at the end: tier, function, time.
        #[arg(long)]
        timings: bool,
    },
    /// Adapt a trained network's depth per sample: for each sample of a data part, a
    /// chain of its stack's blocks (skipped or repeated), searched as the file's `adapt`
    /// block says; writes chains.jsonl, summary.json and adapt.svg.
    Adapt(archc::adapt::cli::AdaptArgs),
    /// Import a PyTorch state dict (`.pt` or `.safetensors`) as a weights file for
    /// `run --weights`: tensors matched by a name map, then by structure and shapes, with
    /// layouts converted; prints the mapping and refuses unmatched or ambiguous tensors.
    Import(archc::import::ImportArgs),
    /// Gradients of the network's outputs: for given inputs and output cotangents, the
    /// vector-Jacobian product w.r.t. every float input and trainable parameter, written
    /// as one .safetensors file.
    Grad(archc::grad::GradArgs),
    /// Train the network of a `train` block on its data set.
    Train {
        file: PathBuf,
        #[command(flatten)]
        cand: Candidate,
        #[command(flatten)]
        run: TrainArgs,
    },
    /// Report test metrics of a checkpoint written by `archc train`.
    Eval {
        file: PathBuf,
        #[command(flatten)]
        cand: Candidate,
        /// The checkpoint (default: runs/NAME/checkpoint.safetensors), or a weights file
        /// (`.safetensors` with names as in `build --emit tir`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The part of the data set to evaluate on instead of the `train` block's test
        /// part, e.g. `--split test_32` for zero-shot evaluation at another resolution.
        #[arg(long, value_name = "NAME")]
        split: Option<String>,
        /// What runs the eval steps (default as for `run`; an artifact: its target's).
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Report every compilation at the end: tier, function, time.
        #[arg(long)]
        timings: bool,
        /// Also write the network's outputs on every evaluated sample: `preds.npy` (a
        /// network with one output) or a folder (NAME.npy per output), in the data's
        /// order.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Show the CPU and the GPU (CUDA driver, device, cuBLAS) archc finds here.
    Devices,
    /// Search a space of `choose` decisions: random, evolution, MCTS or grid, scored by
    /// training-free proxies, short training, latency, size; writes trials.jsonl, the
    /// winner as best.arch and, with several objectives, pareto.svg.
    Search(archc::search::cli::SearchArgs),
    /// Evaluate one trial of a search, given as JSON (what `search --workers` runs).
    #[command(hide = true)]
    SearchTrial { spec: String },
    /// One-shot search: train one weight set shared by every subnet of a space.
    #[command(subcommand)]
    Supernet(archc::supernet::cli::SupernetCmd),
    /// Print the file in canonical format.
    Fmt {
        files: Vec<PathBuf>,
        /// Rewrite the files in place.
        #[arg(long)]
        write: bool,
        /// Exit with 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Copy, Clone, ValueEnum)]
enum Emit {
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

/// Which concrete network to build.
#[derive(Args, Clone, Default)]
struct Selection {
    /// The block to build (default: the last network or operator in the file).
    #[arg(long)]
    entry: Option<String>,
    /// Values for the entry's parameters: `--args hidden=64,classes=10`.
    #[arg(long, value_name = "NAME=VALUE,...")]
    args: Option<String>,
    /// Draw every search-space choice at random with this seed.
    #[arg(long, conflicts_with = "choices")]
    sample: Option<u64>,
    /// Fix choices: `--choices depth=3,op=1` (ints by value, other options by index).
    #[arg(long, value_name = "NAME=VALUE,...")]
    choices: Option<String>,
    /// Set by the commands that build for training (`build --train`, `run --train`).
    #[arg(skip)]
    train: bool,
}

/// Which candidate of a search space a `train` block trains or a checkpoint evaluates.
#[derive(Args, Clone, Default)]
struct Candidate {
    /// Draw every search-space choice at random with this seed.
    #[arg(long, conflicts_with = "choices")]
    sample: Option<u64>,
    /// Fix choices: `--choices depth=3,op=1` (ints by value, other options by index).
    #[arg(long, value_name = "NAME=VALUE,...")]
    choices: Option<String>,
}

impl Candidate {
    fn selection(self) -> Selection {
        Selection { sample: self.sample, choices: self.choices, ..Selection::default() }
    }

    fn given(&self) -> bool {
        self.sample.is_some() || self.choices.is_some()
    }
}

/// Overrides of a `train` block.
#[derive(Args, Clone)]
struct TrainArgs {
    /// Number of epochs.
    #[arg(long)]
    epochs: Option<u64>,
    /// Learning rate (the schedule scales it).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed for initialisation, shuffling and random ops.
    #[arg(long)]
    seed: Option<u64>,
    /// Batch size.
    #[arg(long)]
    batch: Option<u64>,
    /// The run directory (default: runs/NAME, NAME the file's stem).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the run directory's checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start afresh in a run directory that already holds a run, replacing it.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// On a NaN or Inf, find the first instruction that produced it.
    #[arg(long)]
    detect_anomaly: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// What runs the train and eval steps (default as for `run`; an artifact: its
    /// target's).
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Do not train: time N train steps on random batches of the batch size and print
    /// the median (the first step, which compiles, apart). Needs no data set.
    #[arg(long, value_name = "N")]
    time_steps: Option<usize>,
    /// Sizes of symbolic dims for `--time-steps`: `--dim N=1024` (B is the batch size).
    #[arg(long, value_name = "NAME=SIZE,...", requires = "time_steps")]
    dim: Option<String>,
    /// Report every compilation at the end: tier, function, time.
    #[arg(long)]
    timings: bool,
}

/// A failure: user errors exit 1, internal ones 2.
enum Fail {
    User(String),
    Internal(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal(),
    };
    if let Err(e) = backend::select_device(cli.device.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let device = cli.device;
    let limits = match archc::memory::limit(cli.max_memory.as_deref()) {
        Ok(max_memory) => Limits { max_memory },
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // MLIR's and LLVM's recursive passes over large modules (a train step's GPU kernels)
    // need more stack than a main thread's 8 MiB.
    let worker = std::thread::Builder::new()
        .name("archc".into())
        .stack_size(STACK_BYTES)
        .spawn(move || std::panic::catch_unwind(|| run_cmd(cli.cmd, device.as_deref(), &limits, color)));
    let r = match worker.map(|w| w.join()) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(Box::new("the worker thread died") as Box<dyn std::any::Any + Send>),
        Err(e) => Ok(Err(Fail::Internal(format!("cannot start the worker thread: {e}")))),
    };
    match r {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Fail::User(msg))) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(1)
        }
        Ok(Err(Fail::Internal(msg))) => {
            eprintln!("internal error: {msg}");
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(2),
    }
}

/// Limits that apply to every command that runs a program.
struct Limits {
    /// `--max-memory` in bytes (`None`: no limit).
    max_memory: Option<u128>,
}

/// `device`: the global `--device`, which an artifact must agree with.
fn run_cmd(cmd: Cmd, device: Option<&str>, limits: &Limits, color: bool) -> Result<(), Fail> {
    match cmd {
        Cmd::Check { files } => check(&files, color),
        Cmd::Build { file, target: Some(target), cpu, mut sel, output, dim, gpu_arch, train, .. } => {
            sel.train = train;
            let out = output.expect("clap requires --output with --target");
            let target = match target {
                ArtifactTarget::Cpu => AotTarget::Cpu,
                ArtifactTarget::Cuda => AotTarget::Cuda(gpu_arch),
            };
            let cpu = match cpu {
                Some(name) => HostCpu::named(&name).map_err(|e| Fail::User(format!("error: {e}")))?,
                None => HostCpu::host_default(),
            };
            build_artifact((target, cpu), &file, &sel, &out, dim.as_deref(), color)
        }
        Cmd::Build { file, emit, mut sel, output, dim, dynamic, timings, gpu_arch, train, target: None, .. } => {
            sel.train = train;
            let mlir = MlirOpts { dim: dim.as_deref(), dynamic: &dynamic, timings, gpu_arch: &gpu_arch };
            build(&file, emit, &sel, output.as_deref(), &mlir, color)
        }
        Cmd::Run {
            file,
            mut sel,
            backend,
            weights,
            allow_missing,
            inputs,
            dim,
            seed,
            out,
            repeat,
            batch,
            train,
            chain,
            timings,
        } => {
            sel.train = train;
            let (file, sel, art) = resolve(&file, sel, backend, device)?;
            let mut program = compile(&file, &sel, color)?;
            if let Some(c) = &chain {
                if art.is_some() {
                    return Err(Fail::User(
                        "error: --chain runs a `.arch` file; an artifact holds its compiled order".into(),
                    ));
                }
                program =
                    archc::adapt::split::with_chain_arg(&program, c).map_err(|e| Fail::User(format!("error: {e}")))?;
            }
            let inputs = RunInputs {
                max_memory: limits.max_memory,
                weights,
                allow_missing,
                inputs,
                dim,
                seed,
                out,
                repeat,
                batch,
                timings,
            };
            run(&program, backend, &inputs, art.as_ref().map(|a| &a.artifact))
        }
        Cmd::Train { file, cand, run } => {
            refuse_candidate_of_artifact(&file, &cand)?;
            let (file, sel, art) = resolve(&file, cand.selection(), run.backend, device)?;
            let sel = Selection { train: false, ..sel };
            let opts = options(&sel, false)?;
            show_candidate(&file, &opts, color)?;
            train(&file, (&opts, limits.max_memory), &run, art.as_ref().map(|a| &a.artifact), color)
        }
        Cmd::Eval { file, cand, checkpoint, split, backend, timings, out } => {
            refuse_candidate_of_artifact(&file, &cand)?;
            let (file, sel, art) = resolve(&file, cand.selection(), backend, device)?;
            let sel = Selection { train: false, ..sel };
            let ckpt = checkpoint.clone().unwrap_or_else(|| run_dir(&file, None).join("checkpoint.safetensors"));
            if art.is_some() && out.is_some() {
                return Err(Fail::User(
                    "error: --out runs the network of a `.arch` file; an artifact holds its train and eval steps only"
                        .into(),
                ));
            }
            let what = EvalWhat { max_memory: limits.max_memory, checkpoint, split, backend, timings, out };
            let mut opts = options(&sel, false)?;
            if art.is_none() {
                opts.choices = run_candidate(&ckpt, opts.choices).map_err(|e| Fail::User(format!("error: {e}")))?;
            }
            show_candidate(&file, &opts, color)?;
            eval(&file, &opts, &what, art.as_ref().map(|a| &a.artifact), color)
        }
        Cmd::Adapt(args) => archc::adapt::cli::run(&args, color).map_err(Fail::User),
        Cmd::Import(args) => archc::import::run(&args, color).map_err(Fail::User),
        Cmd::Grad(args) => archc::grad::run(&args, device, limits.max_memory, color).map_err(Fail::User),
        Cmd::Fmt { files, write, check } => fmt(&files, write, check),
        Cmd::Search(args) => archc::search::cli::search(&args, color).map_err(|e| Fail::User(format!("error: {e}"))),
        Cmd::SearchTrial { spec } => archc::search::cli::trial(&spec).map_err(|e| Fail::User(format!("error: {e}"))),
        Cmd::Supernet(cmd) => archc::supernet::cli::run(&cmd, color).map_err(|e| Fail::User(format!("error: {e}"))),
        Cmd::Devices => {
            out!("{}", backend::devices_report());
            Ok(())
        }
    }
}

/// For a candidate picked with `--choices`/`--sample`: checks the names and prints the
/// choices, as `build` and `run` do.
fn show_candidate(file: &Path, opts: &Options, color: bool) -> Result<(), Fail> {
    if matches!(opts.choices, ChoiceMode::First) {
        return Ok(());
    }
    for (name, value) in &checked(file, opts, color)?.choices {
        eprintln!("choice {name} = {value}");
    }
    Ok(())
}

/// Writes (or, for the default candidate, removes) the run folder's candidate record.
fn record_candidate(dir: &Path, opts: &Options) -> Result<(), String> {
    let path = dir.join(archc::choices::RECORD_FILE);
    match archc::choices::record(&opts.choices) {
        Some(text) => {
            std::fs::write(&path, format!("{text}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", path.display())),
            _ => Ok(()),
        },
    }
}

/// The candidate to evaluate a checkpoint with: the one given, else the one its run
/// recorded beside it (a note says which); a given one that differs from the record is
/// noted too.
fn run_candidate(ckpt: &Path, given: ChoiceMode) -> Result<ChoiceMode, String> {
    let path = ckpt.parent().unwrap_or(Path::new(".")).join(archc::choices::RECORD_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(given) };
    let recorded = archc::choices::parse_record(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match (&given, archc::choices::record(&given)) {
        (ChoiceMode::First, _) => {
            eprintln!("the candidate its run trained ({}): --{}", path.display(), text.trim());
            Ok(recorded)
        }
        (_, Some(g)) if g != text.trim() => {
            eprintln!("note: this checkpoint's run trained another candidate ({}): --{}", path.display(), text.trim());
            Ok(given)
        }
        _ => Ok(given),
    }
}

/// An artifact holds one candidate, fixed when it was built.
fn refuse_candidate_of_artifact(file: &Path, cand: &Candidate) -> Result<(), Fail> {
    if cand.given() && archc::artifact::is_artifact(file) {
        return Err(Fail::User(format!(
            "error: {} was built for one candidate of its space; --choices and --sample apply to `.arch` files",
            file.display()
        )));
    }
    Ok(())
}

/// What `--target` compiles for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum ArtifactTarget {
    /// CPUs of `--cpu` (shared objects built with LLVM's `llc` and the system `cc`).
    Cpu,
    /// NVIDIA GPUs of `--gpu-arch` or newer (kernels as PTX; host code for `--cpu`).
    Cuda,
}

/// For an artifact (`*.archx`): the path of its extracted main source, the selection it
/// was built with, and the opened artifact (which removes the sources when dropped),
/// after checking that `backend` and `device`, if given, agree with its target; other
/// files are passed through.
fn resolve(
    file: &Path,
    sel: Selection,
    backend: Option<Backend>,
    device: Option<&str>,
) -> Result<(PathBuf, Selection, Option<archc::artifact::Opened>), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    if !archc::artifact::is_artifact(file) {
        backend::check_device(backend, device).map_err(user)?;
        return Ok((file.to_path_buf(), sel, None));
    }
    let opened = archc::artifact::open(file).map_err(user)?;
    archc::artifact::check_backend(&opened.artifact, backend, device).map_err(user)?;
    let mut sel = Selection::default();
    for (k, v) in &opened.artifact.options {
        match k.as_str() {
            "entry" => sel.entry = Some(v.clone()),
            "args" => sel.args = Some(v.clone()),
            "sample" => sel.sample = v.parse().ok(),
            "choices" => sel.choices = Some(v.clone()),
            "train" => sel.train = v == "true",
            _ => {}
        }
    }
    Ok((opened.main.clone(), sel, Some(opened)))
}

/// `archc build FILE --target cpu [--cpu NAME] -o OUT`.
fn build_artifact(
    (target, cpu): (AotTarget, HostCpu),
    file: &Path,
    sel: &Selection,
    out: &Path,
    dim: Option<&str>,
    color: bool,
) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let checked = checked(file, &options(sel, false)?, color)?;
    let (program, funcs): (Program, &[&str]) = if sel.train && has_train_block(file) {
        let (cfg, _) = train_config(file, &train_options(sel)?, color)?;
        let p = training::train_program(&cfg).map_err(|e| user(format!("cannot build the train step: {e}")))?;
        (p, &["train_step", "eval_step"])
    } else {
        (checked.program.ok_or_else(|| Fail::Internal("no program was built".into()))?, &["main"])
    };
    let mut options = Vec::new();
    let fields = [("entry", sel.entry.clone()), ("args", sel.args.clone()), ("choices", sel.choices.clone())];
    for (k, v) in fields {
        if let Some(v) = v {
            options.push((k.to_string(), v));
        }
    }
    if let Some(seed) = sel.sample {
        options.push(("sample".into(), seed.to_string()));
    }
    options.push(("train".into(), sel.train.to_string()));
    let dims = backend::parse_dims(dim).map_err(user)?;
    let sources = archc::artifact::user_sources(file, &checked.sources);
    let main = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let recorded = archc::artifact::Recorded { main_source: main, sources, options };
    let art = archc::artifact::build(target, cpu, &program, funcs, &dims, recorded).map_err(user)?;
    art.write(out).map_err(user)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    eprintln!("wrote {} ({} KiB, {:.1} s):", out.display(), size / 1024, t0.elapsed().as_secs_f64());
    eprintln!("{}", archc::artifact::describe(&art));
    Ok(())
}

fn options(sel: &Selection, check_all: bool) -> Result<Options, Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let choices = match (&sel.sample, &sel.choices) {
        (Some(seed), _) => ChoiceMode::Sample(*seed),
        (None, Some(c)) => ChoiceMode::Explicit(parse_pairs(c).map_err(user)?),
        (None, None) => ChoiceMode::First,
    };
    let args = sel.args.as_deref().map(parse_pairs).transpose().map_err(user)?.unwrap_or_default();
    Ok(Options {
        training: sel.train,
        choices,
        entry: sel.entry.clone(),
        args,
        check_all,
        validate_only: false,
        elastic_symbols: false,
        option_tags: false,
        gated_choices: false,
        data_fields: None,
    })
}

/// The options of a `train` block's build for the candidate `sel` selects (the block
/// builds both the inference and the training program itself).
fn train_options(sel: &Selection) -> Result<Options, Fail> {
    Ok(Options { training: false, ..options(sel, false)? })
}

fn checked(path: &Path, opts: &Options, color: bool) -> Result<CheckOutput, Fail> {
    let out = check_path(path, opts).map_err(|e| Fail::User(format!("error: {e}")))?;
    if !out.diagnostics.is_empty() {
        eprint!("{}", render(&out.diagnostics, &out.sources, color));
        let n = out.diagnostics.len();
        let candidate = match &opts.choices {
            ChoiceMode::First => String::new(),
            _ if out.choices.is_empty() => String::new(),
            ChoiceMode::Sample(seed) => {
                format!("\nthe candidate drawn with --sample {seed}: {}", archc::choices::summary(&out.choices))
            }
            ChoiceMode::Explicit(_) | ChoiceMode::Assign { .. } => {
                format!("\nthe candidate: {}", archc::choices::summary(&out.choices))
            }
        };
        return Err(Fail::User(format!(
            "error: {} failed with {n} error{}{candidate}",
            path.display(),
            if n == 1 { "" } else { "s" }
        )));
    }
    if let ChoiceMode::Explicit(given) = &opts.choices {
        let declared = archc::choices::declared(&out.sources);
        archc::choices::check_names(given, &out.choices, &declared).map_err(|e| Fail::User(format!("error: {e}")))?;
    }
    Ok(out)
}

fn check(files: &[PathBuf], color: bool) -> Result<(), Fail> {
    let opts = Options { check_all: true, ..Options::default() };
    let mut failed = 0;
    for f in files {
        match checked(f, &opts, color) {
            Ok(out) if archc::choices::declared(&out.sources).is_empty() => eprintln!("ok: {}", f.display()),
            Ok(_) => match archc::search::check::check_space(f, color) {
                Ok(space) if space.ok => eprintln!("{}", space.text),
                Ok(space) => {
                    eprintln!("{}", space.text);
                    failed += 1;
                }
                Err(e) => return Err(Fail::User(format!("error: {e}"))),
            },
            Err(Fail::User(msg)) => {
                eprintln!("{msg}");
                failed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if failed > 0 {
        Err(Fail::User(String::new()))
    } else {
        Ok(())
    }
}

/// The MLIR stage `emit` of the entry (or, with `--train`, of the train step).
fn build_mlir(file: &Path, emit: Emit, sel: &Selection, mlir: &MlirOpts, color: bool) -> Result<String, Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let t0 = std::time::Instant::now();
    let (program, entry, sources) = if archc::tirfile::is_tir(file) {
        (tir_program(file, sel)?, "main", SourceMap::new())
    } else {
        let out = checked(file, &options(sel, false)?, color)?;
        if sel.train && has_train_block(file) {
            let (cfg, _) = train_config(file, &train_options(sel)?, color)?;
            let p = training::train_program(&cfg).map_err(|e| user(format!("cannot build the train step: {e}")))?;
            (p, "train_step", out.sources)
        } else {
            (out.program.ok_or_else(|| Fail::Internal("no program was built".into()))?, "main", out.sources)
        }
    };
    let front = t0.elapsed();
    if mlir.timings {
        eprint!("{}", backend::clif_timings(&program, entry, front));
    }
    if matches!(emit, Emit::Clif) {
        return backend::emit_clif(&program, entry).map_err(user);
    }
    let gpu = matches!(emit, Emit::Ptx);
    let module = backend::emit_mlir(&program, entry, mlir.dim, mlir.dynamic, &sources, gpu).map_err(user)?;
    if gpu {
        return backend::ptx(&module.text, mlir.gpu_arch).map_err(user);
    }
    if mlir.timings {
        eprint!("{}", backend::timings(&module, front).map_err(user)?);
    }
    match emit {
        Emit::MlirOpt => backend::lower_mlir(&module.text, false).map_err(user),
        Emit::Llvm => backend::lower_mlir(&module.text, true).map_err(user),
        _ => Ok(module.text),
    }
}

fn compile(file: &Path, sel: &Selection, color: bool) -> Result<Program, Fail> {
    if archc::tirfile::is_tir(file) {
        return tir_program(file, sel);
    }
    let out = checked(file, &options(sel, false)?, color)?;
    for (name, value) in &out.choices {
        eprintln!("choice {name} = {value}");
    }
    out.program.ok_or_else(|| Fail::Internal("no program was built".into()))
}

/// A program from printed TIR (`archc build --emit tir`); selection flags that only
/// apply to `.arch` sources are refused.
fn tir_program(file: &Path, sel: &Selection) -> Result<Program, Fail> {
    if sel.sample.is_some() || sel.choices.is_some() || sel.args.is_some() || sel.entry.is_some() || sel.train {
        return Err(Fail::User(format!(
            "error: {}: a .tir file is one built program; --entry, --args, --choices, --sample and --train apply to .arch sources",
            file.display()
        )));
    }
    archc::tirfile::read(file).map_err(|e| Fail::User(format!("error: {e}")))
}

/// Options of the MLIR stages of `build`.
struct MlirOpts<'a> {
    dim: Option<&'a str>,
    dynamic: &'a [String],
    timings: bool,
    gpu_arch: &'a str,
}

fn build(
    file: &Path,
    emit: Emit,
    sel: &Selection,
    output: Option<&Path>,
    mlir: &MlirOpts,
    color: bool,
) -> Result<(), Fail> {
    let text = match emit {
        Emit::Mlir | Emit::MlirOpt | Emit::Llvm | Emit::Ptx | Emit::Clif => build_mlir(file, emit, sel, mlir, color)?,
        Emit::Ast => {
            let out = checked(file, &options(sel, true)?, color)?;
            format!("{:#?}\n", out.ast.expect("main file parsed"))
        }
        Emit::Tir if sel.train && has_train_block(file) => {
            let (cfg, _) = train_config(file, &train_options(sel)?, color)?;
            training::train_program(&cfg)
                .map_err(|e| Fail::User(format!("error: cannot build the train step: {e}")))?
                .to_string()
        }
        Emit::Tir => compile(file, sel, color)?.to_string(),
    };
    match output {
        Some(p) => std::fs::write(p, text).map_err(|e| Fail::User(format!("error: cannot write {}: {e}", p.display()))),
        None => stdout(&text),
    }
}

/// Writes to stdout; a closed pipe (`archc build ... | head`) is not an error.
fn stdout(text: &str) -> Result<(), Fail> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Fail::User(format!("error: cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

struct RunInputs {
    max_memory: Option<u128>,
    weights: Option<PathBuf>,
    allow_missing: bool,
    inputs: Vec<String>,
    dim: Option<String>,
    seed: u64,
    out: Option<PathBuf>,
    repeat: usize,
    batch: Option<usize>,
    timings: bool,
}

fn run(program: &Program, backend: Option<Backend>, ri: &RunInputs, art: Option<&Artifact>) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let batches = match ri.batch {
        Some(n) => Some(archc::batches::Batches::read(program, &ri.inputs, n, ri.repeat, ri.max_memory).map_err(user)?),
        None => None,
    };
    let tensors = if batches.is_some() { Vec::new() } else { main_inputs(program, ri)? };
    let mut exec = backend::executor(program, backend, art).map_err(user)?;
    let mut init = Interpreter::new(program);
    init.init_params(ri.seed).map_err(|e| user(e.to_string()))?;
    for (name, t) in init.params() {
        exec.set_param_value(name, t.clone()).map_err(|e| user(e.to_string()))?;
    }
    if let Some(w) = &ri.weights {
        let fitted = archc::weights::read(w)
            .and_then(|ws| archc::weights::fit(&ws, program, w, ri.allow_missing))
            .map_err(user)?;
        if !fitted.unused.is_empty() {
            eprintln!("note: not used by this program (training only): {}", fitted.unused.join(", "));
        }
        for (name, t) in fitted.values {
            exec.set_param_value(&name, t).map_err(|e| user(e.to_string()))?;
        }
    }
    let t0 = std::time::Instant::now();
    let outputs = match &batches {
        Some(b) => b.run(program, exec.as_mut()).map_err(user)?,
        None => exec.run_func("main", &tensors, 0).map_err(|e| user(e.to_string()))?,
    };
    let first = t0.elapsed();
    if ri.repeat > 0 {
        let mut times = Vec::with_capacity(ri.repeat);
        for _ in 0..ri.repeat {
            let t = std::time::Instant::now();
            exec.run_func("main", &tensors, 0).map_err(|e| user(e.to_string()))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        eprintln!(
            "time: median {:.3} ms, min {:.3} ms over {} runs (first run {:.1} ms)",
            times[times.len() / 2],
            times[0],
            times.len(),
            first.as_secs_f64() * 1e3
        );
    }
    if ri.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    let main = program.main();
    for (name, t) in main.result_names.iter().zip(&outputs) {
        out!("{name}: {}{}", t.type_string(), stats(t));
        if let Some(dir) = &ri.out {
            std::fs::create_dir_all(dir).map_err(|e| user(format!("cannot create {}: {e}", dir.display())))?;
            io::write_npy(dir.join(format!("{name}.npy")), t).map_err(|e| user(e.to_string()))?;
        }
    }
    Ok(())
}

/// The entry's inputs: files read, the rest drawn at random, after checking that the
/// run fits in `--max-memory` (no tensor is drawn before).
fn main_inputs(program: &Program, ri: &RunInputs) -> Result<Vec<Tensor>, Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let main = program.main();
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    for spec in &ri.inputs {
        let (k, v) = spec.split_once('=').ok_or_else(|| user(format!("--input expects NAME=PATH, found `{spec}`")))?;
        if !main.arg_names.iter().any(|a| a == k) {
            return Err(user(format!("the network has no input `{k}`; inputs: {}", main.arg_names.join(", "))));
        }
        files.insert(k.to_string(), PathBuf::from(v));
    }
    let dims: HashMap<String, i64> = match &ri.dim {
        Some(d) => parse_pairs(d)
            .map_err(user)?
            .into_iter()
            .map(|(k, v)| {
                v.parse::<i64>().map(|n| (k.clone(), n)).map_err(|_| user(format!("--dim {k}={v}: not an int")))
            })
            .collect::<Result<_, _>>()?,
        None => HashMap::new(),
    };
    let mut read: HashMap<String, Tensor> = HashMap::new();
    for (name, p) in &files {
        read.insert(name.clone(), io::read_npy(p).map_err(|e| user(e.to_string()))?);
    }
    let mut shapes = arg_shapes(main, &dims).map_err(user)?;
    for (name, shape) in main.arg_names.iter().zip(shapes.iter_mut()) {
        if let Some(t) = read.get(name) {
            shape.clone_from(&t.shape);
        }
    }
    let by_name: HashMap<String, Vec<usize>> = main.arg_names.iter().cloned().zip(shapes.iter().cloned()).collect();
    let env = archc::memory::bind(main, &by_name);
    archc::memory::check(program, "main", &env, ri.max_memory).map_err(user)?;
    let mut out = Vec::new();
    for (i, ((name, (_, ty)), shape)) in main.arg_names.iter().zip(&main.args).zip(shapes).enumerate() {
        let t = match read.remove(name) {
            Some(t) => t,
            None => random_tensor(ty.dtype, &shape, ri.seed.wrapping_add(1000 + i as u64)),
        };
        out.push(t);
    }
    Ok(out)
}

fn stats(t: &Tensor) -> String {
    match t.to_f64_vec() {
        Some(v) if !v.is_empty() => {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            format!("  mean {mean:.6}  std {std:.6}")
        }
        _ => String::new(),
    }
}

fn fmt(files: &[PathBuf], write: bool, check: bool) -> Result<(), Fail> {
    let mut unformatted = 0;
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| Fail::User(format!("error: cannot read {}: {e}", f.display())))?;
        let formatted = archc_grammar::fmt::format_source(&text).ok_or_else(|| {
            Fail::User(format!("error: {} has syntax errors; run `archc check` for details", f.display()))
        })?;
        if check {
            if formatted != text {
                eprintln!("not formatted: {}", f.display());
                unformatted += 1;
            }
        } else if write {
            std::fs::write(f, &formatted)
                .map_err(|e| Fail::User(format!("error: cannot write {}: {e}", f.display())))?;
        } else {
            stdout(&formatted)?;
        }
    }
    if unformatted > 0 {
        Err(Fail::User(String::new()))
    } else {
        Ok(())
    }
}

fn train_config(file: &Path, opts: &Options, color: bool) -> Result<(TrainConfig, String), Fail> {
    train_config_with_sources(file, opts, color).map(|(c, t, _)| (c, t))
}

fn train_config_with_sources(
    file: &Path,
    opts: &Options,
    color: bool,
) -> Result<(TrainConfig, String, SourceMap), Fail> {
    let (out, text) = training::read_config(file, opts).map_err(|e| Fail::User(format!("error: {e}")))?;
    if !out.diagnostics.is_empty() {
        eprint!("{}", render(&out.diagnostics, &out.sources, color));
        return Err(Fail::User(format!("error: {} failed", file.display())));
    }
    let cfg = out.config.ok_or_else(|| Fail::Internal("no train configuration".into()))?;
    Ok((cfg, text, out.sources))
}

/// A data set that cannot be loaded or does not fit the network: a diagnostic at the
/// `train` block's data source.
fn data_failure(cfg: &TrainConfig, e: String, sources: &SourceMap, color: bool) -> Fail {
    let d = archc_compiler::diag::Diagnostic::error(e, cfg.data.span);
    eprint!("{}", render(&[d], sources, color));
    Fail::User("error: the data set cannot be used (see above)".into())
}

fn run_dir(file: &Path, out: Option<&Path>) -> PathBuf {
    out.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from("runs").join(file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default())
    })
}

/// `archc train --time-steps N`: prints the median train-step time on random batches.
fn time_steps(
    cfg: &TrainConfig,
    program: &Program,
    args: &TrainArgs,
    steps: usize,
    (art, mem): (Option<&Artifact>, Option<u128>),
) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let dims = backend::parse_dims(args.dim.as_deref()).map_err(user)?;
    let mut env = dims.clone();
    env.entry("B".into()).or_insert(cfg.batch as i64);
    archc::memory::check(program, "train_step", &env, mem).map_err(user)?;
    let step_args = archc::steptime::step_args(cfg, program, &dims).map_err(user)?;
    let mut exec = backend::executor(program, args.backend, art).map_err(user)?;
    let t = archc::steptime::time_steps(exec.as_mut(), program, step_args, steps).map_err(user)?;
    out!(
        "train step: median {:.3} ms, min {:.3} ms over {} steps (first step {:.1} ms), batch {}",
        t.median_ms(),
        t.sorted_ms.first().copied().unwrap_or(t.first_ms),
        t.sorted_ms.len(),
        t.first_ms,
        cfg.batch
    );
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    Ok(())
}

fn train(
    file: &Path,
    (opts, mem): (&Options, Option<u128>),
    args: &TrainArgs,
    art: Option<&Artifact>,
    color: bool,
) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let (mut cfg, text, sources) = train_config_with_sources(file, opts, color)?;
    cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
    if let Some(lr) = args.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(user(format!("--lr {lr}: the learning rate must be a positive finite number")));
    }
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.batch = args.batch.unwrap_or(cfg.batch);
    let program = training::train_program(&cfg).map_err(|e| user(format!("cannot build the train step: {e}")))?;
    if let Some(steps) = args.time_steps {
        return time_steps(&cfg, &program, args, steps, (art, mem));
    }
    let data = training::train_data(&cfg, &program).map_err(|e| data_failure(&cfg, e, &sources, color))?;
    let env = training::step_env(&program, "train_step", &data.train, cfg.batch);
    archc::memory::check(&program, "train_step", &env, mem).map_err(user)?;
    let mut spec = training::loop_spec(&cfg, data.train.len());
    spec.detect_anomaly = args.detect_anomaly;
    let mut exec = backend::executor(&program, args.backend, art).map_err(user)?;
    let dir = run_dir(file, args.out.as_deref());
    if let Some(found) = archc_runtime::train::existing_run(&dir).filter(|_| !args.resume && !args.overwrite) {
        return Err(user(format!(
            "{} already holds a run ({}); pass --resume to continue it, --overwrite to replace it, or another --out",
            dir.display(),
            found.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| user(format!("cannot create {}: {e}", dir.display())))?;
    let name = file.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "train.arch".into());
    archc_runtime::train::write_source(&dir, &name, &text).map_err(|e| user(e.to_string()))?;
    record_candidate(&dir, opts).map_err(user)?;
    eprintln!(
        "training {} on {} ({} train / {} test samples), {} epochs, batch {}, into {}",
        cfg.program.name,
        training::data_label(&cfg.data),
        data.train.len(),
        data.test.as_ref().map_or(0, |t| t.len()),
        cfg.epochs,
        cfg.batch,
        dir.display()
    );
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let report = archc_runtime::train::train_with(&program, &spec, &data, &dir, args.resume, progress, exec.as_mut())
        .map_err(|e| train_failure(e, &sources, color, &dir))?;
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    if report.already_complete {
        eprintln!(
            "the run in {} is already complete ({} epochs done, --epochs {}): nothing to train",
            dir.display(),
            report.epochs,
            cfg.epochs
        );
    }
    let last = archc_runtime::train::read_metrics(&report.metrics).ok().and_then(|r| r.last().cloned());
    for part in ["train", "test"] {
        out!("{}", training::summary_line(last.as_ref(), part));
    }
    out!("curves: {}", report.curves.display());
    out!("metrics: {}", report.metrics.display());
    out!("checkpoint: {}", report.checkpoint.display());
    Ok(())
}

/// What `archc eval` evaluates: which weights, on which part, with what.
struct EvalWhat {
    max_memory: Option<u128>,
    checkpoint: Option<PathBuf>,
    split: Option<String>,
    backend: Option<Backend>,
    timings: bool,
    /// Where the predictions go (`eval --out`).
    out: Option<PathBuf>,
}

fn eval(file: &Path, opts: &Options, what: &EvalWhat, art: Option<&Artifact>, color: bool) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let (mut cfg, _, sources) = train_config_with_sources(file, opts, color)?;
    if let Some(part) = &what.split {
        cfg.data.test_part = Some(part.clone());
        cfg.data.split = None;
    }
    let program = training::train_program(&cfg).map_err(|e| user(format!("cannot build the eval step: {e}")))?;
    let data = training::train_data(&cfg, &program).map_err(|e| data_failure(&cfg, e, &sources, color))?;
    let ckpt = what.checkpoint.clone().unwrap_or_else(|| run_dir(file, None).join("checkpoint.safetensors"));
    let weights = archc::weights::read(&ckpt).map_err(user)?;
    let test = match (&data.test, &what.split) {
        (Some(t), _) => t,
        (None, Some(part)) => return Err(user(training::no_part(&cfg.data.name, part))),
        (None, None) => return Err(user("this data set has no test part".into())),
    };
    let env = training::step_env(&program, "eval_step", test, cfg.batch);
    archc::memory::check(&program, "eval_step", &env, what.max_memory).map_err(user)?;
    let mut exec = backend::executor(&program, what.backend, art).map_err(user)?;
    let metrics =
        training::evaluate(&program, &weights.params, test, cfg.batch as usize, exec.as_mut()).map_err(user)?;
    if what.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    let part = what.split.as_deref().map(|p| format!(" (part `{p}`)")).unwrap_or_default();
    let epoch = weights.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
    out!("{} test samples{part}, weights {}{epoch}", test.len(), ckpt.display());
    for (name, v) in metrics {
        let shown = match name.as_str() {
            "metric:correct" => "accuracy".to_string(),
            other => other.trim_start_matches("metric:").to_string(),
        };
        out!("{shown}: {v:.4}");
    }
    if let Some(out) = &what.out {
        let preds = predictions(&cfg.program, &weights, &ckpt, test, cfg.batch as usize, what.backend)?;
        write_predictions(&preds, out)?;
    }
    Ok(())
}

/// The forward's outputs on `test` with the checkpoint's parameters (`eval --out`).
fn predictions(
    program: &Program,
    weights: &archc::weights::Weights,
    ckpt: &Path,
    test: &archc_runtime::data::Frame,
    batch: usize,
    backend: Option<Backend>,
) -> Result<Vec<(String, Tensor)>, Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let fitted = archc::weights::fit(weights, program, ckpt, false).map_err(user)?;
    let mut exec = backend::executor(program, backend, None).map_err(user)?;
    for (name, t) in fitted.values {
        exec.set_param_value(&name, t).map_err(|e| user(e.to_string()))?;
    }
    training::predict(program, test, batch, exec.as_mut()).map_err(user)
}

/// `preds.npy` for a network with one output, else `out/NAME.npy` per output.
fn write_predictions(preds: &[(String, Tensor)], out: &Path) -> Result<(), Fail> {
    let user = |e: String| Fail::User(format!("error: {e}"));
    let single = out.extension().is_some_and(|e| e == "npy");
    if single && preds.len() != 1 {
        let names: Vec<&str> = preds.iter().map(|(n, _)| n.as_str()).collect();
        return Err(user(format!(
            "--out {}: the network has {} outputs ({}); give a folder to write NAME.npy for each",
            out.display(),
            preds.len(),
            names.join(", ")
        )));
    }
    for (name, t) in preds {
        let path = match single {
            true => out.to_path_buf(),
            false => {
                std::fs::create_dir_all(out).map_err(|e| user(format!("cannot create {}: {e}", out.display())))?;
                out.join(format!("{name}.npy"))
            }
        };
        io::write_npy(&path, t).map_err(|e| user(e.to_string()))?;
        out!("predictions: {} ({})", path.display(), t.type_string());
    }
    Ok(())
}

/// A training error; a non-finite value traced to a source span is shown in the source
/// (the hint mentions the run directory's checkpoint only when there is one).
fn train_failure(e: archc_runtime::train::TrainError, sources: &SourceMap, color: bool, dir: &Path) -> Fail {
    use archc_runtime::train::{TrainError, CHECKPOINT_FILE};
    if let TrainError::NonFinite { step, what, anomaly: Some(a) } = &e {
        if let Some(span) = a.span {
            let advice = "lower the learning rate or clip gradients (`clip: 1.0`)";
            let help = match dir.join(CHECKPOINT_FILE).exists() {
                true => format!("the last good checkpoint was kept; {advice}"),
                false => format!("no checkpoint was saved yet; {advice}"),
            };
            let d =
                Diagnostic::error(format!("step {step}: {what} is not finite; first produced by `{}`", a.inst), span)
                    .with_label(a.detail.clone())
                    .with_help(help);
            eprint!("{}", render(&[d], sources, color));
            return Fail::User(String::new());
        }
    }
    Fail::User(format!("error: {e}"))
}

/// Whether the file defines a `train` block (syntax only).
fn has_train_block(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else { return false };
    let (m, _) = archc_grammar::parse(archc_grammar::span::FileId(0), &text);
    m.items.iter().any(|i| matches!(i, archc_grammar::ast::Item::Train(_)))
}
