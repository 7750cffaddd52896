//! `archc`: check, build, run and format `.arch` files.
//!
//! This file parses the command line and dispatches: each command lives in the library
//! (`archc::cli` for check, build, run, train, eval and fmt; `adapt`, `import`, `grad`,
//! `search` and `supernet` in their own modules).
//!
//! Exit codes: 0 success, 1 user error (diagnostics printed), 2 internal error.

use archc::cli::{self, Context, Fail};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
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

#[global_allocator]
static ALLOCATOR: archc::oom::ExitOnOom = archc::oom::ExitOnOom;

#[derive(Copy, Clone, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse, resolve names and check shapes of every buildable item.
    Check(cli::check::CheckArgs),
    /// Build the entry network and print a stage.
    Build(cli::build::BuildArgs),
    /// Run the entry network.
    Run(cli::run::RunArgs),
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
    Train(cli::train::TrainArgs),
    /// Report test metrics of a checkpoint written by `archc train`.
    Eval(cli::eval::EvalArgs),
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
    Fmt(cli::fmt::FmtArgs),
}

fn main() -> ExitCode {
    // SAFETY: the first thing the process does: no other thread yet.
    unsafe { archc::options::openblas_one_thread() };
    let args = Cli::parse();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal(),
    };
    match Context::new(color, args.device, args.max_memory.as_deref()) {
        Ok(cx) => cli::on_worker(move || dispatch(args.cmd, &cx)),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs one command; `cx` holds the global flags.
fn dispatch(cmd: Cmd, cx: &Context) -> Result<(), Fail> {
    let color = cx.color;
    match cmd {
        Cmd::Check(args) => cli::check::run(&args, color),
        Cmd::Build(args) => cli::build::run(args, color),
        Cmd::Run(args) => cli::run::run(args, cx),
        Cmd::Train(args) => cli::train::run(args, cx),
        Cmd::Eval(args) => cli::eval::run(args, cx),
        Cmd::Fmt(args) => cli::fmt::run(&args),
        Cmd::Devices => cli::devices(),
        Cmd::Adapt(args) => archc::adapt::cli::run(&args, color).map_err(Fail::User),
        Cmd::Import(args) => archc::import::run(&args, color).map_err(Fail::User),
        Cmd::Grad(args) => archc::grad::run(&args, cx.device(), cx.max_memory, color).map_err(Fail::User),
        Cmd::Search(args) => archc::search::cli::search(&args, color).map_err(Fail::user),
        Cmd::SearchTrial { spec } => archc::search::cli::trial(&spec).map_err(Fail::user),
        Cmd::Supernet(cmd) => archc::supernet::cli::run(&cmd, color).map_err(Fail::user),
    }
}
