//! `archc grad MODEL --input x=x.npy --cotangent y=c.npy --out PATH`: the
//! vector-Jacobian product of the network's forward pass (`main`, inference mode) for
//! given inputs and output cotangents, on any backend, through the `Executor` trait.
//!
//! The program gets the function `vjp` (`archc_compiler::autodiff::vjp`, ABI there);
//! parameters come from `--weights` (as for `archc run`: every parameter must be in the
//! file unless `--allow-missing`) or their initialisers (`--seed`), inputs from `.npy`
//! files (the rest drawn at random, as `run` does), cotangents from `.npy` files. The
//! result is one `.safetensors` file with `output.OUT` (the forward outputs),
//! `grad.input.X` (every float input) and `grad.param.NAME` (every trainable float
//! parameter), and a summary line per tensor on stdout.
//!
//! Contract: nothing runs before every name, dtype and shape has been checked: an
//! unknown `--input` or `--cotangent` name, a float output without a cotangent, an
//! integer output with one, a dtype or shape differing from the network's (a
//! cotangent's expected shape is its output's type with the input sizes bound), or a
//! run above `--max-memory` is an error naming the tensor (exit 1); nothing large is
//! allocated before the memory check. Sizes are evaluated in checked arithmetic.
//! The output file is written whole (a temporary file renamed into place) and never
//! through a symbolic link.

use crate::backend::{self, Backend};
use crate::driver::check_path;
use crate::render::render;
use archc_compiler::autodiff::vjp::{build_vjp_program, VJP};
use archc_compiler::sema::ChoiceMode;
use archc_compiler::tir::{Func, Program, TensorType};
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The arguments of `archc grad`.
#[derive(clap::Args, Clone, Debug)]
pub struct GradArgs {
    /// The `.arch` file (or printed `.tir`) whose entry network is differentiated.
    pub file: PathBuf,
    #[command(flatten)]
    pub sel: crate::choices::EntryFlags,
    /// What runs the forward and backward pass (default as for `run`).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Weights to load (`.safetensors`, names as in `build --emit tir`, or a training
    /// checkpoint); every parameter of the program must be in the file.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// With --weights: parameters the file lacks keep their initial values (by --seed)
    /// instead of being an error.
    #[arg(long, requires = "weights")]
    pub allow_missing: bool,
    /// An input from a file: `--input x=x.npy` (repeatable). Others are random.
    #[arg(long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// The cotangent of an output: `--cotangent y=dy.npy` (repeatable), of the output's
    /// dtype and shape; every float output needs one.
    #[arg(long = "cotangent", value_name = "OUT=PATH")]
    pub cotangents: Vec<String>,
    /// Sizes of symbolic dims for random inputs: `--dim B=4,N=64` (default B=2, others 16).
    #[arg(long, value_name = "NAME=SIZE,...")]
    pub dim: Option<String>,
    /// Seed for parameter initialisation and random inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the gradients: a `.safetensors` file, or a folder (created if
    /// needed) that gets `grad.safetensors`.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

/// Runs `archc grad`; the error is the message to print (diagnostics already shown).
/// `device`: the global `--device`; `max_memory`: the global `--max-memory` in bytes.
pub fn run(args: &GradArgs, device: Option<&str>, max_memory: Option<u128>, color: bool) -> Result<(), String> {
    grad(args, device, max_memory, color).map_err(|e| if e.is_empty() { e } else { format!("error: {e}") })
}

fn grad(args: &GradArgs, device: Option<&str>, max_memory: Option<u128>, color: bool) -> Result<(), String> {
    backend::check_device(args.backend, device)?;
    let out = out_file(&args.out)?;
    let program = load(args, color)?;
    let vjp = build_vjp_program(&program).map_err(|e| format!("cannot differentiate the network: {e}"))?;
    let main = program.main();
    let (inputs, env) = read_inputs(main, args)?;
    let cots = read_cotangents(main, &args.cotangents)?;
    check_cotangent_shapes(main, &env, &cots)?;
    crate::memory::check(&vjp, VJP, &env, max_memory)?;
    let inputs = draw(main, inputs, args.seed);
    let params = param_values(&vjp, args)?;
    let mut exec = backend::executor(&vjp, args.backend, None)?;
    for (name, t) in &params {
        exec.set_param_value(name, t.clone()).map_err(|e| e.to_string())?;
    }
    let f = vjp.func(VJP).ok_or("internal: no vjp function")?;
    let call = vjp_arguments(f, inputs, &params, cots)?;
    let results = exec.run_func(VJP, &call, 0).map_err(|e| e.to_string())?;
    let named: Vec<(String, Tensor)> = f
        .result_names
        .iter()
        .zip(results)
        .map(|(n, t)| (n.strip_prefix("output:").map_or_else(|| n.clone(), |o| format!("output.{o}")), t))
        .collect();
    summary(&named)?;
    write(&out, &named)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The entry's program: a `.tir` file as printed, or the `.arch` file checked with the
/// selection flags (diagnostics rendered; `choice NAME = VALUE` shown as `run` does).
fn load(args: &GradArgs, color: bool) -> Result<Program, String> {
    if crate::tirfile::is_tir(&args.file) {
        if args.sel.any() {
            return Err(format!(
                "{}: a .tir file is one built program; --entry, --args, --choices and --sample apply to .arch sources",
                args.file.display()
            ));
        }
        return crate::tirfile::read(&args.file);
    }
    let opts = args.sel.options()?;
    let out = check_path(&args.file, &opts)?;
    if !out.diagnostics.is_empty() {
        eprint!("{}", render(&out.diagnostics, &out.sources, color));
        let n = out.diagnostics.len();
        return Err(format!("{} failed with {n} error{}", args.file.display(), if n == 1 { "" } else { "s" }));
    }
    if let ChoiceMode::Explicit(given) = &opts.choices {
        let declared = crate::choices::declared(&out.sources);
        crate::choices::check_names(given, &out.choices, &declared)?;
    }
    for (name, value) in &out.choices {
        eprintln!("choice {name} = {value}");
    }
    out.program.ok_or_else(|| "internal: no program was built".into())
}

/// `NAME=PATH` pairs, each name once.
fn pairs(specs: &[String], flag: &str) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (k, v) = spec.split_once('=').ok_or_else(|| format!("{flag} expects NAME=PATH, found `{spec}`"))?;
        if out.insert(k.to_string(), PathBuf::from(v)).is_some() {
            return Err(format!("{flag} {k} is given twice"));
        }
    }
    Ok(out)
}

/// `main`'s inputs (files read and checked against the declared types, the shapes of
/// the rest) and the size symbols: bound by the files, else `--dim`, else the default.
fn read_inputs(main: &Func, args: &GradArgs) -> Result<(Vec<Input>, HashMap<String, i64>), String> {
    let files = pairs(&args.inputs, "--input")?;
    for k in files.keys() {
        if !main.arg_names.contains(k) {
            return Err(format!("the network has no input `{k}`; inputs: {}", main.arg_names.join(", ")));
        }
    }
    let mut read: HashMap<&str, Tensor> = HashMap::new();
    let mut env: HashMap<String, i64> = HashMap::new();
    for (name, (_, ty)) in main.arg_names.iter().zip(&main.args) {
        let Some(path) = files.get(name) else { continue };
        let t = io::read_npy(path).map_err(|e| e.to_string())?;
        let what = format!("input `{name}` ({})", path.display());
        bind(&what, &t, ty, &mut env)?;
        read.insert(name, t);
    }
    for (k, v) in backend::parse_dims(args.dim.as_deref())? {
        env.entry(k).or_insert(v);
    }
    for (_, ty) in &main.args {
        for s in ty.shape.iter().flat_map(|d| d.symbols()) {
            let d = crate::inputs::default_dim(&s);
            env.entry(s).or_insert(d);
        }
    }
    let mut inputs = Vec::with_capacity(main.args.len());
    for (name, (_, ty)) in main.arg_names.iter().zip(&main.args) {
        inputs.push(match read.remove(name.as_str()) {
            Some(t) => conforms(&format!("input `{name}`"), &t, ty, &env).map(|()| Input::Read(t))?,
            None => Input::Random(sized(ty, &env).ok_or_else(|| format!("cannot size input `{name}`: {ty}"))?),
        });
    }
    Ok((inputs, env))
}

/// An input of `main`: read from a file, or to be drawn at random with this shape.
enum Input {
    Read(Tensor),
    Random(Vec<usize>),
}

/// The inputs with the random ones drawn (after the memory check: nothing large is
/// allocated before), argument `i` with seed `seed + 1000 + i` as `archc run` does.
fn draw(main: &Func, inputs: Vec<Input>, seed: u64) -> Vec<Tensor> {
    let args = main.arg_names.iter().zip(&main.args).enumerate();
    args.zip(inputs)
        .map(|((i, (name, (_, ty))), input)| match input {
            Input::Read(t) => t,
            Input::Random(shape) => {
                eprintln!(
                    "input {name}: random {} (seed {seed})",
                    archc_runtime::tensor::type_string(ty.dtype, &shape)
                );
                crate::inputs::random_tensor(ty.dtype, &shape, seed.wrapping_add(1000 + i as u64))
            }
        })
        .collect()
}

/// Checks `t`'s dtype and rank against `ty` and binds the symbols of `ty`'s dims that are
/// a lone symbol (a symbol bound before must agree).
fn bind(what: &str, t: &Tensor, ty: &TensorType, env: &mut HashMap<String, i64>) -> Result<(), String> {
    if t.dtype() != ty.dtype || t.rank() != ty.rank() {
        return Err(format!("{what} is {}, but the network takes {ty}", t.type_string()));
    }
    for (d, &n) in ty.shape.iter().zip(t.shape()) {
        if let [s] = d.symbols().as_slice() {
            if *d == archc_compiler::tir::Dim::sym(s.clone()) {
                let n = i64::try_from(n).map_err(|_| format!("{what}: dim {n} is too large"))?;
                match env.insert(s.clone(), n) {
                    Some(m) if m != n => {
                        return Err(format!(
                            "{what} is {}: `{s}` = {n}, but another input has `{s}` = {m}",
                            t.type_string()
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// The concrete shape of `ty` with the symbols of `env` (`None`: a symbol is unbound or
/// a size overflows or is negative).
fn sized(ty: &TensorType, env: &HashMap<String, i64>) -> Option<Vec<usize>> {
    ty.shape.iter().map(|d| d.checked_eval(env).and_then(|v| usize::try_from(v).ok())).collect()
}

/// Checks that `t` has `ty`'s dtype and, with `env`'s sizes, its shape.
fn conforms(what: &str, t: &Tensor, ty: &TensorType, env: &HashMap<String, i64>) -> Result<(), String> {
    let want = sized(ty, env).ok_or_else(|| format!("cannot size {what}: {ty}"))?;
    if t.dtype() != ty.dtype || t.shape() != want.as_slice() {
        let want_s = archc_runtime::tensor::type_string(ty.dtype, &want);
        return Err(format!("{what} is {}, but the network's is {want_s} ({ty})", t.type_string()));
    }
    Ok(())
}

/// The outputs that take a cotangent: `main`'s float results (not `buffer:` updates).
fn float_outputs(main: &Func) -> Vec<(&str, &TensorType)> {
    let types = main.results.iter().map(|r| main.type_of(*r));
    main.result_names
        .iter()
        .zip(types)
        .filter(|(n, _)| !n.starts_with("buffer:"))
        .filter_map(|(n, t)| t.filter(|t| t.dtype.is_float()).map(|t| (n.as_str(), t)))
        .collect()
}

/// The cotangents by output name: every float output has one, no other name does.
fn read_cotangents(main: &Func, specs: &[String]) -> Result<BTreeMap<String, (PathBuf, Tensor)>, String> {
    let files = pairs(specs, "--cotangent")?;
    let floats = float_outputs(main);
    for k in files.keys() {
        if floats.iter().any(|(n, _)| n == k) {
            continue;
        }
        let names: Vec<&str> = floats.iter().map(|(n, _)| *n).collect();
        return Err(match main.result_names.iter().position(|n| n == k) {
            Some(_) => format!("--cotangent {k}: output `{k}` is not a float tensor; it takes no cotangent"),
            None => format!("--cotangent {k}: the network has no output `{k}`; float outputs: {}", names.join(", ")),
        });
    }
    let mut out = BTreeMap::new();
    for (name, ty) in floats {
        let path = files.get(name).ok_or_else(|| {
            format!("output `{name}` ({ty}) has no cotangent: pass --cotangent {name}=PATH.npy (every float output needs one)")
        })?;
        let t = io::read_npy(path).map_err(|e| e.to_string())?;
        if t.dtype() != ty.dtype || t.rank() != ty.rank() {
            return Err(format!(
                "the cotangent of `{name}` ({}) is {}, but output `{name}` is {ty}",
                path.display(),
                t.type_string()
            ));
        }
        out.insert(name.to_string(), (path.clone(), t));
    }
    Ok(out)
}

/// Checks every cotangent's shape against its output's type with the input sizes bound
/// (the verifier guarantees an output's size symbols are those of the inputs).
fn check_cotangent_shapes(
    main: &Func,
    env: &HashMap<String, i64>,
    cots: &BTreeMap<String, (PathBuf, Tensor)>,
) -> Result<(), String> {
    for (name, ty) in float_outputs(main) {
        let shape = sized(ty, env).ok_or_else(|| format!("cannot size output `{name}` ({ty}) from the inputs"))?;
        let (path, t) = &cots[name];
        if t.shape() != shape.as_slice() {
            return Err(format!(
                "the cotangent of `{name}` ({}) is {}, but output `{name}` is {} ({ty})",
                path.display(),
                t.type_string(),
                archc_runtime::tensor::type_string(ty.dtype, &shape)
            ));
        }
    }
    Ok(())
}

/// Every parameter's value: the file's (checked against the declared type), else its
/// initialiser's with `--seed`.
fn param_values(program: &Program, args: &GradArgs) -> Result<BTreeMap<String, Tensor>, String> {
    let mut init = Interpreter::new(program);
    init.init_params(args.seed).map_err(|e| e.to_string())?;
    let mut values: BTreeMap<String, Tensor> = init.params().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(w) = &args.weights {
        let fitted = crate::weights::read(w).and_then(|ws| crate::weights::fit(&ws, program, w, args.allow_missing))?;
        if !fitted.unused.is_empty() {
            eprintln!("note: not used by this program (training only): {}", fitted.unused.join(", "));
        }
        let empty = HashMap::new();
        for (name, t) in fitted.values {
            let decl = program.param(&name).ok_or_else(|| format!("internal: no parameter `{name}`"))?;
            conforms(&format!("{}: parameter `{name}`", w.display()), &t, &decl.ty, &empty)?;
            values.insert(name, t);
        }
    }
    Ok(values)
}

/// The arguments of `vjp` in its ABI's order: inputs, `param:NAME`, `cot:OUT`.
fn vjp_arguments(
    f: &Func,
    inputs: Vec<Tensor>,
    params: &BTreeMap<String, Tensor>,
    mut cots: BTreeMap<String, (PathBuf, Tensor)>,
) -> Result<Vec<Tensor>, String> {
    let mut call = inputs;
    for name in &f.arg_names[call.len()..] {
        let t = if let Some(p) = name.strip_prefix("param:") {
            params.get(p).cloned()
        } else {
            name.strip_prefix("cot:").and_then(|o| cots.remove(o)).map(|(_, t)| t)
        };
        call.push(t.ok_or_else(|| format!("internal: no value for the vjp argument `{name}`"))?);
    }
    Ok(call)
}

/// One line per tensor on stdout: name, type, largest magnitude.
fn summary(named: &[(String, Tensor)]) -> Result<(), String> {
    use std::io::Write;
    let width = named.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (name, t) in named {
        let label = if name.starts_with("output.") { "max|y|" } else { "max|g|" };
        let max = t.to_f64_vec().map(|v| format!("{label} {:.6e}", max_abs(&v))).unwrap_or_default();
        text.push_str(&format!("{name:<width$}  {:<16} {max}\n", t.type_string()));
    }
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}

/// The largest magnitude (NaN if any element is NaN).
fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.max(x.abs()) })
}

/// The file `--out` names: `PATH` itself when it ends in `.safetensors`, else
/// `PATH/grad.safetensors`. Neither the file nor the folder may be a symbolic link.
fn out_file(out: &Path) -> Result<PathBuf, String> {
    let file = if out.extension().is_some_and(|e| e == "safetensors") {
        out.to_path_buf()
    } else {
        refuse_link(out)?;
        out.join("grad.safetensors")
    };
    refuse_link(&file)?;
    if file.is_dir() {
        return Err(format!("--out {}: is a folder; name a .safetensors file or a folder", file.display()));
    }
    Ok(file)
}

fn refuse_link(p: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(format!("--out {}: is a symbolic link; refusing to write through it", p.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `named` to `file` whole: a new temporary file beside it, renamed into place
/// (a link put there meanwhile is replaced, not followed).
fn write(file: &Path, named: &[(String, Tensor)]) -> Result<(), String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stem = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{stem}.{}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let written = io::write_safetensors(&tmp, named.iter().map(|(n, t)| (n.as_str(), t)))
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, file).map_err(|e| format!("cannot write {}: {e}", file.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
