//! `archc run FILE`: the entry network run once on inputs read from `.npy` files or
//! drawn at random, on a backend; a `.tir` file or an artifact runs the same way.
//!
//! Contract: parameters are initialised by `--seed`, then replaced by `--weights`;
//! `--max-memory` is checked before any input is drawn; each output is printed on
//! stdout as `NAME: TYPE  mean M  std S` (and written to `--out DIR/NAME.npy`), in the
//! entry's result order; timings and notes go to stderr. `--batch N` runs the input
//! files N rows at a time (`crate::batches`).

use super::program::compile;
use super::select::{resolve, Selection};
use super::{Context, Fail};
use crate::backend::{self, Backend};
use crate::driver::parse_pairs;
use crate::inputs::{arg_shapes, random_tensor};
use archc_compiler::tir::Program;
use archc_mlir::aot::Artifact;
use archc_runtime::{io, Executor, Interpreter, Tensor};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

/// The arguments of `archc run`.
#[derive(Args)]
pub struct RunArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub sel: Selection,
    /// What runs the network (default mlir-cpu, or interp in an archc without MLIR).
    /// An artifact runs its own compiled code: only the backend of its target.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Weights to load (`.safetensors`, names as in `build --emit tir`, or a training
    /// checkpoint); every parameter of the program must be in the file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// With --weights: parameters the file lacks keep their initial values (by
    /// --seed) instead of being an error.
    #[arg(long, requires = "weights")]
    pub allow_missing: bool,
    /// An input from a file: `--input x=x.npy` (repeatable). Others are random.
    #[arg(long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// Sizes of symbolic dims for random inputs: `--dim B=4,N=64` (default B=2, others 16).
    #[arg(long, value_name = "NAME=SIZE,...")]
    pub dim: Option<String>,
    /// Seed for parameter initialisation and random inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write each output to DIR/NAME.npy.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run N more times after the first and report the median time per run (the first
    /// run, which includes compilation, is reported separately).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub repeat: usize,
    /// Run over whole input files N rows at a time: every `--input` is cut along axis 0
    /// into chunks of at most N rows, the network runs once per chunk (`--max-memory` is
    /// checked for one chunk) and each output's chunks are joined along axis 0.
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Run the network in training mode (dropout active, batch statistics).
    #[arg(long)]
    pub train: bool,
    /// Run the stack's blocks in this order instead of the trained one (layer-loop
    /// adaptation): `--chain 0,1,1,3`, or `--chain NAME=0,1,1,3` to pick a stack.
    #[arg(long, value_name = "[NAME=]BLOCKS")]
    pub chain: Option<String>,
    /// Report every compilation at the end: tier, function, time.
    #[arg(long)]
    pub timings: bool,
}

/// Runs `archc run`.
pub fn run(mut args: RunArgs, cx: &Context) -> Result<(), Fail> {
    args.sel.train = args.train;
    let input = resolve(&args.file, std::mem::take(&mut args.sel), args.backend, cx.device())?;
    let mut program = compile(&input.file, &input.sel, cx.color)?;
    if let Some(c) = &args.chain {
        if input.art.is_some() {
            return Err(Fail::user("--chain runs a `.arch` file; an artifact holds its compiled order"));
        }
        program = crate::adapt::split::with_chain_arg(&program, c).map_err(Fail::user)?;
    }
    execute(&program, &args, cx, input.artifact())
}

/// Runs the entry once (or once per `--batch` chunk), then `--repeat` more times.
fn execute(program: &Program, args: &RunArgs, cx: &Context, art: Option<&Artifact>) -> Result<(), Fail> {
    let batches = match args.batch {
        Some(n) => Some(
            crate::batches::Batches::read(program, &args.inputs, n, args.repeat, cx.max_memory).map_err(Fail::user)?,
        ),
        None => None,
    };
    let tensors = if batches.is_some() { Vec::new() } else { main_inputs(program, args, cx.max_memory)? };
    let mut exec = backend::executor(program, args.backend, art).map_err(Fail::user)?;
    set_params(program, args, exec.as_mut())?;
    let t0 = std::time::Instant::now();
    let outputs = match &batches {
        Some(b) => b.run(program, exec.as_mut()).map_err(Fail::driver)?,
        None => exec.run_func("main", &tensors, 0).map_err(Fail::run)?,
    };
    let first = t0.elapsed();
    if args.repeat > 0 {
        repeat(exec.as_mut(), &tensors, args.repeat, first)?;
    }
    if args.timings {
        eprint!("{}", backend::compile_report(&exec.compile_times()));
    }
    print_outputs(program, &outputs, args)
}

/// The parameters: initialised by `--seed`, then those of `--weights`.
fn set_params(program: &Program, args: &RunArgs, exec: &mut dyn Executor) -> Result<(), Fail> {
    let mut init = Interpreter::new(program);
    init.init_params(args.seed).map_err(Fail::user)?;
    for (name, t) in init.params() {
        exec.set_param_value(name, t.clone()).map_err(Fail::user)?;
    }
    let Some(w) = &args.weights else { return Ok(()) };
    let fitted = crate::weights::read(w)
        .and_then(|ws| crate::weights::fit(&ws, program, w, args.allow_missing))
        .map_err(Fail::user)?;
    if !fitted.unused.is_empty() {
        eprintln!("note: not used by this program (training only): {}", fitted.unused.join(", "));
    }
    for (name, t) in fitted.values {
        exec.set_param_value(&name, t).map_err(Fail::user)?;
    }
    Ok(())
}

/// `--repeat N`: N more runs, then the median and the fastest on stderr.
fn repeat(exec: &mut dyn Executor, tensors: &[Tensor], n: usize, first: std::time::Duration) -> Result<(), Fail> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        exec.run_func("main", tensors, 0).map_err(Fail::run)?;
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
    Ok(())
}

/// Each output's type and statistics on stdout, and with `--out` its `.npy` file.
fn print_outputs(program: &Program, outputs: &[Tensor], args: &RunArgs) -> Result<(), Fail> {
    for (name, t) in program.main().result_names.iter().zip(outputs) {
        out!("{name}: {}{}", t.type_string(), stats(t));
        if let Some(dir) = &args.out {
            std::fs::create_dir_all(dir).map_err(|e| Fail::user(format!("cannot create {}: {e}", dir.display())))?;
            io::write_npy(dir.join(format!("{name}.npy")), t).map_err(Fail::user)?;
        }
    }
    Ok(())
}

/// The entry's inputs: files read, the rest drawn at random, after checking that the
/// run fits in `--max-memory` (no tensor is drawn before).
fn main_inputs(program: &Program, args: &RunArgs, max_memory: Option<u128>) -> Result<Vec<Tensor>, Fail> {
    let main = program.main();
    let files = input_files(program, &args.inputs)?;
    let dims = dims(args.dim.as_deref())?;
    let mut read: HashMap<String, Tensor> = HashMap::new();
    for (name, p) in &files {
        read.insert(name.clone(), io::read_npy(p).map_err(Fail::user)?);
    }
    let mut shapes = arg_shapes(main, &dims).map_err(Fail::user)?;
    for (name, shape) in main.arg_names.iter().zip(shapes.iter_mut()) {
        if let Some(t) = read.get(name) {
            shape.clone_from(&t.shape);
        }
    }
    let by_name: HashMap<String, Vec<usize>> = main.arg_names.iter().cloned().zip(shapes.iter().cloned()).collect();
    let env = crate::memory::bind(main, &by_name);
    crate::memory::check(program, "main", &env, max_memory).map_err(Fail::user)?;
    let mut out = Vec::new();
    for (i, ((name, (_, ty)), shape)) in main.arg_names.iter().zip(&main.args).zip(shapes).enumerate() {
        let t = match read.remove(name) {
            Some(t) => t,
            None => random_tensor(ty.dtype, &shape, args.seed.wrapping_add(1000 + i as u64)),
        };
        out.push(t);
    }
    Ok(out)
}

/// `--input NAME=PATH` flags by input name; each name must be an input of the entry.
fn input_files(program: &Program, inputs: &[String]) -> Result<HashMap<String, PathBuf>, Fail> {
    let main = program.main();
    let mut files = HashMap::new();
    for spec in inputs {
        let (k, v) =
            spec.split_once('=').ok_or_else(|| Fail::user(format!("--input expects NAME=PATH, found `{spec}`")))?;
        if !main.arg_names.iter().any(|a| a == k) {
            return Err(Fail::user(format!("the network has no input `{k}`; inputs: {}", main.arg_names.join(", "))));
        }
        files.insert(k.to_string(), PathBuf::from(v));
    }
    Ok(files)
}

/// `--dim NAME=SIZE,...` as integers.
fn dims(dim: Option<&str>) -> Result<HashMap<String, i64>, Fail> {
    let Some(d) = dim else { return Ok(HashMap::new()) };
    parse_pairs(d)
        .map_err(Fail::user)?
        .into_iter()
        .map(|(k, v)| {
            v.parse::<i64>().map(|n| (k.clone(), n)).map_err(|_| Fail::user(format!("--dim {k}={v}: not an int")))
        })
        .collect()
}

/// `  mean M  std S` of a numeric tensor; empty for others.
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
