//! TIR -> MLIR text (`func`, `linalg`, `tensor`, `arith`, `math`, `complex`, `scf`,
//! `bufferization`, `memref` dialects), specialised to the shapes a program is run with.
//!
//! Contract:
//! - [`emit_module`] lowers one entry function of a program for concrete input shapes;
//!   [`emit_module_dynamic`] keeps some of the entry's size symbols (say the batch `B`)
//!   dynamic: their sizes become `?` in tensor types and are read from the inputs at run
//!   time, so one module serves every value of them. Every function reachable from the
//!   entry (through `call`, `stack`, `vmap`, `scan`) is specialised once per distinct
//!   argument types (constant sizes, and which sizes are dynamic). A lowering that needs a
//!   dynamic size as a constant (an FFT length, a channel count) fails with an
//!   [`EmitError`]; callers then fall back to concrete shapes.
//! - Each lowered TIR function becomes `func.func private @fN_name(%seed: i64, %fkey: i64,
//!   args...) -> (results...)` on tensors. `%seed ^ %fkey ^ op seed` keys the random ops
//!   exactly as the reference interpreter does, and the frame key is re-derived at each
//!   call site with the interpreter's SplitMix mix (see `archc_runtime::interp::random`),
//!   so random streams agree value for value.
//! - Parameters read by `param` are module globals `@param_N` (set through the exported
//!   `archc_set_params`); train steps receive theirs as arguments instead.
//! - The exported entry is `archc_entry(%seed: i64, inputs: memref..., outputs: memref...)`
//!   with `llvm.emit_c_interface`: inputs are read, outputs written in place
//!   ([`Module::output_shapes`] gives their shapes for given inputs).
//! - Source spans become `loc("file":line:col)` when a locator is given.
//! - Every error is an [`EmitError`], which says whose fault it is (the user's: inputs,
//!   refusals, unsupported dtypes, sizes only known at run time; archc's: malformed TIR,
//!   lowered values that are not what was declared) and, in its text, the function and
//!   instruction (see `error`).
//!
//! Semantics follow `archc_compiler::tir::ops` and the interpreter; what the interpreter
//! refuses is refused here too: when the sizes decide it (a slice past the end of an
//! axis, `max`/`min`/`argmax` over no elements) with an [`EmitError`] worded like the
//! interpreter's error, and where only the run knows (dynamic sizes, index values) by a
//! run-time failure (`check`, `crate::runtime::rt::take_failure`). Deviations: integer division
//! by zero yields a value instead of an error, and on the GPU target out-of-range
//! `gather` / `scatter_add` indices are clamped (negative ones count from the end, as
//! everywhere).

mod builder;
mod check;
mod contract;
mod control;
mod conv;
mod data;
mod elementwise;
mod error;
mod fft;
mod lower;
mod reduce;
mod reshape;
mod scalar;
mod sort;
pub mod types;

pub use builder::fixed as fixed_size;
pub use error::{EmitError, EmitResult};

use archc_compiler::tir::{DType, Dim, Func, Program, TensorType};
use archc_grammar::span::Span;
use archc_runtime::interp::bind::{bare_symbol, bind_shapes, solve_one, DimEnv};
use std::collections::{BTreeMap, HashMap};

/// A concrete tensor type.
pub type Shape = (DType, Vec<usize>);

/// A tensor type whose sizes may be dynamic: constants, or polynomials in the symbols
/// of the function being lowered (of the entry's dynamic symbols, for a [`Module`]).
pub type Ty = (DType, Vec<Dim>);

/// The specialisation key of a function argument: constant sizes, `None` where dynamic.
type Pattern = (DType, Vec<Option<usize>>);

fn pattern((dt, dims): &Ty) -> Pattern {
    (*dt, dims.iter().map(types::Ext::lit).collect())
}

/// Maps a source span to an MLIR location, e.g. `loc("model.arch":3:9)`.
pub type Locator<'a> = &'a dyn Fn(Span) -> Option<String>;

/// An emitted module and its calling convention.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub text: String,
    /// The entry's inputs and outputs (after the seed), in order; their dynamic sizes are
    /// polynomials in the symbols of `dynamic`.
    pub inputs: Vec<Ty>,
    pub outputs: Vec<Ty>,
    /// Each dynamic symbol and the input axis it is read from: `(symbol, input, axis)`.
    pub dynamic: Vec<(String, usize, usize)>,
    /// Parameters read through globals, in `archc_set_params` argument order.
    pub params: Vec<(String, Shape)>,
    /// The global symbol of each parameter, in the same order.
    pub param_globals: Vec<String>,
}

/// What the module is compiled for: the GPU target keeps parameter globals public (the
/// runtime makes their host memory visible to kernels) and draws random values with one
/// host call per op (`archc_rand_fill_*`) instead of per-element calls, which cannot run
/// inside kernels.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Target {
    #[default]
    Cpu,
    Gpu,
}

impl Module {
    /// The symbol values of `inputs`' shapes, checked against the input types.
    fn bind(&self, inputs: &[Shape]) -> EmitResult<DimEnv> {
        if inputs.len() != self.inputs.len() {
            return Err(EmitError::Input(format!("expects {} inputs, got {}", self.inputs.len(), inputs.len())));
        }
        let mut env = DimEnv::new();
        for (sym, i, axis) in &self.dynamic {
            env.insert(sym.clone(), inputs[*i].1.get(*axis).copied().unwrap_or(0) as i64);
        }
        for (i, ((dt, shape), (want_dt, want))) in inputs.iter().zip(&self.inputs).enumerate() {
            let sizes: Option<Vec<i64>> = want.iter().map(|d| d.eval(&env)).collect();
            let ok = dt == want_dt
                && sizes.is_some_and(|s| s.len() == shape.len() && s.iter().zip(shape).all(|(a, &b)| *a == b as i64));
            if !ok {
                let got = archc_runtime::tensor::type_string(*dt, shape);
                return Err(EmitError::Input(format!(
                    "input {i} is {got}, expected {}",
                    types::tensor(*want_dt, want)
                )));
            }
        }
        Ok(env)
    }

    /// Checks `inputs` against the entry's input types and gives the output shapes.
    pub fn output_shapes(&self, inputs: &[Shape]) -> EmitResult<Vec<Shape>> {
        let env = self.bind(inputs)?;
        self.outputs
            .iter()
            .map(|(dt, dims)| {
                let sizes = archc_runtime::interp::bind::eval_shape(dims, &env).map_err(EmitError::Input)?;
                Ok((*dt, sizes))
            })
            .collect()
    }

    /// The input and output types when no size is dynamic.
    pub fn static_types(&self) -> EmitResult<(Vec<Shape>, Vec<Shape>)> {
        let conc = |tys: &[Ty]| -> EmitResult<Vec<Shape>> {
            tys.iter().map(|(dt, dims)| Ok((*dt, dims.iter().map(builder::fixed).collect::<Result<_, _>>()?))).collect()
        };
        Ok((conc(&self.inputs)?, conc(&self.outputs)?))
    }
}

/// Lowers `entry` of `program` for inputs of the given dtypes and shapes (CPU target).
pub fn emit_module(
    program: &Program,
    entry: &str,
    inputs: &[Shape],
    locator: Option<Locator>,
) -> Result<Module, EmitError> {
    emit_module_for(program, entry, inputs, locator, Target::Cpu)
}

/// [`emit_module`] for a given [`Target`].
pub fn emit_module_for(
    program: &Program,
    entry: &str,
    inputs: &[Shape],
    locator: Option<Locator>,
    target: Target,
) -> Result<Module, EmitError> {
    emit_module_dynamic(program, entry, inputs, &[], locator, target)
}

/// [`emit_module_for`] with the entry's size symbols `dynamic` left dynamic (read from
/// `inputs` at run time). Each must be the whole size of some input axis.
pub fn emit_module_dynamic(
    program: &Program,
    entry: &str,
    inputs: &[Shape],
    dynamic: &[String],
    locator: Option<Locator>,
    target: Target,
) -> Result<Module, EmitError> {
    let f = program.func(entry).ok_or_else(|| EmitError::NoEntry(entry.to_string()))?;
    let (tys, sources) = entry_types(f, inputs, dynamic).map_err(|e| e.at(format!("@{entry}")))?;
    let mut em = Emitter {
        target,
        program,
        done: HashMap::new(),
        queue: Vec::new(),
        funcs: Vec::new(),
        params: BTreeMap::new(),
        locator,
        rand: Default::default(),
        externs: BTreeMap::new(),
    };
    let (main, outputs) = em.request(entry, &tys)?;
    while let Some(job) = em.queue.pop() {
        let text = lower::lower_func(&mut em, &job)?;
        em.funcs.push(text);
    }
    let params: Vec<(String, Shape)> = em.params.iter().map(|(n, (_, s))| (n.clone(), s.clone())).collect();
    let param_globals = em.params.values().map(|(g, _)| g.clone()).collect();
    let text = em.assemble(&main, &tys, &outputs);
    Ok(Module { text, inputs: tys, outputs, dynamic: sources, params, param_globals })
}

/// The entry's input types with `dynamic` symbols left symbolic, and where each is read.
fn entry_types(f: &Func, inputs: &[Shape], dynamic: &[String]) -> EmitResult<(Vec<Ty>, Vec<(String, usize, usize)>)> {
    let shapes: Vec<(DType, &[usize])> = inputs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
    let mut env = bind_shapes(f, &shapes).map_err(EmitError::Input)?;
    let mut sources = Vec::new();
    for sym in dynamic {
        let at = f.args.iter().enumerate().find_map(|(i, (_, ty))| {
            ty.shape.iter().position(|d| bare_symbol(d).as_deref() == Some(sym)).map(|axis| (i, axis))
        });
        let (i, axis) =
            at.ok_or_else(|| EmitError::Dynamic(format!("size `{sym}` is not the size of an input axis")))?;
        env.remove(sym);
        sources.push((sym.clone(), i, axis));
    }
    let known = consts(&env);
    Ok((f.args.iter().map(|(_, ty)| (ty.dtype, ty.shape.iter().map(|d| d.subst(&known)).collect())).collect(), sources))
}

fn consts(env: &DimEnv) -> HashMap<String, Dim> {
    env.iter().map(|(k, v)| (k.clone(), Dim::constant(*v))).collect()
}

/// One function specialisation to lower.
pub(crate) struct Job {
    pub mangled: String,
    pub func: String,
    /// Symbols with constant values.
    pub env: DimEnv,
    /// Dynamic symbols and the argument axis each is read from.
    pub dynamic: Vec<(String, usize, usize)>,
    /// The argument types of the specialisation (its `func.func` signature).
    pub inputs: Vec<Ty>,
    pub outputs: Vec<Ty>,
}

pub(crate) struct Emitter<'p, 'l> {
    pub program: &'p Program,
    pub target: Target,
    done: HashMap<(String, Vec<Pattern>), (String, Vec<Ty>)>,
    queue: Vec<Job>,
    funcs: Vec<String>,
    /// name -> (global symbol, type)
    params: BTreeMap<String, (String, Shape)>,
    pub locator: Option<Locator<'l>>,
    /// Random-number runtime functions used, by symbol.
    pub rand: std::collections::BTreeSet<String>,
    /// Other runtime functions used: symbol -> declaration.
    pub externs: BTreeMap<String, String>,
}

/// A declared type with the constant symbols of `env` substituted; any other symbol must
/// be one of the `dynamic` ones. Another symbol is the user's error, as in the
/// interpreter: the verifier lets a function without arguments name sizes nothing binds,
/// and does not ask that argument sizes be solvable (`N * M`).
pub(crate) fn concrete(ty: &TensorType, env: &DimEnv, dynamic: &[(String, usize, usize)]) -> EmitResult<Ty> {
    let known = consts(env);
    let dims: Vec<Dim> = ty.shape.iter().map(|d| d.subst(&known)).collect();
    for d in &dims {
        if let Some(s) = d.symbols().into_iter().find(|s| !dynamic.iter().any(|(x, ..)| x == s)) {
            return Err(EmitError::Input(format!("dim `{d}` has unbound symbol {s}")));
        }
        if d.as_const().is_some_and(|c| c < 0) {
            return Err(EmitError::Refused(format!("dim `{d}` is negative")));
        }
    }
    Ok((ty.dtype, dims))
}

/// Binds `f`'s size symbols from argument types with constant and dynamic sizes: bare
/// symbols first (constant sizes win), then linear dims with constant sizes solved;
/// every argument dim must then agree with its type. A dynamic size must be a bare
/// symbol of `f`'s argument type. Argument types that do not fit are archc's error: the
/// entry's inputs are checked before ([`entry_types`]), a callee's operands by the
/// verifier.
fn bind_partial(f: &Func, inputs: &[Ty]) -> EmitResult<(DimEnv, Vec<(String, usize, usize)>)> {
    if inputs.len() != f.args.len() {
        return Err(EmitError::Malformed(format!("expects {} inputs, got {}", f.args.len(), inputs.len())));
    }
    let mut env = DimEnv::new();
    let mut dynamic: Vec<(String, usize, usize)> = Vec::new();
    for (i, ((_, ty), (dt, dims))) in f.args.iter().zip(inputs).enumerate() {
        if ty.dtype != *dt || ty.rank() != dims.len() {
            return Err(unfit(i, *dt, dims, ty));
        }
        for (d, size) in ty.shape.iter().zip(dims) {
            if let (Some(s), Some(c)) = (bare_symbol(d), size.as_const()) {
                match env.get(&s) {
                    Some(&v) if v != c => {
                        return Err(EmitError::Malformed(format!("input {i}: {s} is {v} elsewhere but {c} here")))
                    }
                    _ => env.insert(s, c),
                };
            }
        }
    }
    for (i, ((_, ty), (_, dims))) in f.args.iter().zip(inputs).enumerate() {
        for (axis, (d, size)) in ty.shape.iter().zip(dims).enumerate() {
            if size.as_const().is_some() {
                continue;
            }
            let s = bare_symbol(d).ok_or_else(|| {
                EmitError::Dynamic(format!("input {i}: dynamic size for `{d}`, which is not a plain symbol"))
            })?;
            if !env.contains_key(&s) && !dynamic.iter().any(|(x, ..)| *x == s) {
                dynamic.push((s, i, axis));
            }
        }
    }
    loop {
        let mut progress = false;
        for ((_, ty), (_, dims)) in f.args.iter().zip(inputs) {
            for (d, size) in ty.shape.iter().zip(dims) {
                let Some(c) = size.as_const() else { continue };
                if let Some((s, v)) = solve_one(d, c, &env).filter(|(s, _)| !dynamic.iter().any(|(x, ..)| x == s)) {
                    env.insert(s, v);
                    progress = true;
                }
            }
        }
        if !progress {
            break;
        }
    }
    for (i, ((_, ty), (_, dims))) in f.args.iter().zip(inputs).enumerate() {
        let (_, want) = concrete(ty, &env, &dynamic).map_err(|e| e.at(format!("input {i}")))?;
        for (w, got) in want.iter().zip(dims) {
            let agree = match (w.as_const(), got.as_const()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if !agree {
                return Err(unfit(i, ty.dtype, dims, ty));
            }
        }
    }
    Ok((env, dynamic))
}

/// Argument `i` of sizes `dims` (and dtype `dt`) does not fit its type `ty`.
fn unfit(i: usize, dt: DType, dims: &[Dim], ty: &TensorType) -> EmitError {
    EmitError::Malformed(format!("input {i} is {}, expected {ty}", types::tensor(dt, dims)))
}

impl<'p, 'l> Emitter<'p, 'l> {
    /// The specialisation of `func` for arguments of types `inputs`: its symbol and result
    /// types (in `func`'s own dynamic symbols; only which sizes are constant matters to a
    /// caller).
    pub fn request(&mut self, func: &str, inputs: &[Ty]) -> Result<(String, Vec<Ty>), EmitError> {
        let key = (func.to_string(), inputs.iter().map(pattern).collect::<Vec<_>>());
        if let Some(done) = self.done.get(&key) {
            return Ok(done.clone());
        }
        let f = self.program.func(func).ok_or_else(|| EmitError::Malformed(format!("no function @{func}")))?;
        let (env, dynamic) = bind_partial(f, inputs).map_err(|e| e.at(format!("@{func}")))?;
        let outputs = f
            .result_types()
            .iter()
            .map(|t| concrete(t, &env, &dynamic))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.at(format!("@{func} result")))?;
        let safe: String = func.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mangled = format!("f{}_{safe}", self.done.len());
        self.done.insert(key, (mangled.clone(), outputs.clone()));
        self.queue.push(Job {
            mangled: mangled.clone(),
            func: func.to_string(),
            env,
            dynamic,
            inputs: inputs.iter().map(|(dt, dims)| (*dt, dims.iter().map(erase).collect())).collect(),
            outputs: outputs.clone(),
        });
        Ok((mangled, outputs))
    }

    /// The global holding parameter `name`, declared on first use.
    pub fn param_global(&mut self, name: &str) -> EmitResult<(String, Shape)> {
        if let Some(g) = self.params.get(name) {
            return Ok(g.clone());
        }
        let decl = self.program.param(name).ok_or_else(|| EmitError::Malformed(format!("no parameter @{name}")))?;
        let shape = decl
            .ty
            .const_shape()
            .ok_or_else(|| EmitError::Unsupported(format!("parameter @{name} has a symbolic type {}", decl.ty)))?;
        let g = (format!("param_{}", self.params.len()), (decl.ty.dtype, shape));
        self.params.insert(name.to_string(), g.clone());
        Ok(g)
    }

    fn assemble(&self, main: &str, inputs: &[Ty], outputs: &[Ty]) -> String {
        let mut s = String::from("module {\n");
        for (g, (dt, shape)) in self.params.values() {
            let vis = if self.target == Target::Gpu { "" } else { "\"private\" " };
            s.push_str(&format!("  memref.global {vis}@{g} : {} = uninitialized\n", types::memref(*dt, shape)));
        }
        for sym in &self.rand {
            let ty = if sym.ends_with("f32") { "f32" } else { "f64" };
            s.push_str(&format!("  func.func private @{sym}(i64, i64) -> {ty}\n"));
        }
        for decl in self.externs.values() {
            s.push_str(&format!("  {decl}\n"));
        }
        s.push_str(&self.setter());
        s.push_str(&entry_wrapper(main, inputs, outputs));
        for f in self.funcs.iter().rev() {
            s.push_str(f);
        }
        s.push_str("}\n");
        s
    }

    /// `archc_set_params(memref...)`: copies each argument into its global.
    fn setter(&self) -> String {
        let mut args = Vec::new();
        let mut body = String::new();
        for (i, (g, (dt, shape))) in self.params.values().enumerate() {
            let ty = types::memref(*dt, shape);
            args.push(format!("%p{i}: {ty}"));
            body.push_str(&format!(
                "    %g{i} = memref.get_global @{g} : {ty}\n    memref.copy %p{i}, %g{i} : {ty} to {ty}\n"
            ));
        }
        format!(
            "  func.func @archc_set_params({}) attributes {{llvm.emit_c_interface}} {{\n{body}    return\n  }}\n",
            args.join(", ")
        )
    }
}

/// A size as it appears in a signature: the constant, or an opaque dynamic size.
fn erase(d: &Dim) -> Dim {
    match d.as_const() {
        Some(_) => d.clone(),
        None => Dim::sym("?"),
    }
}

fn entry_wrapper(main: &str, inputs: &[Ty], outputs: &[Ty]) -> String {
    let mut args = vec!["%seed: i64".to_string()];
    let mut body = String::new();
    let mut call_args = vec!["%seed".to_string(), "%zero".to_string()];
    for (i, (dt, shape)) in inputs.iter().enumerate() {
        args.push(format!("%in{i}: {}", types::memref(*dt, shape)));
        body.push_str(&format!(
            "    %x{i} = bufferization.to_tensor %in{i} restrict : {} to {}\n",
            types::memref(*dt, shape),
            types::tensor(*dt, shape)
        ));
        call_args.push(format!("%x{i}"));
    }
    for (i, (dt, shape)) in outputs.iter().enumerate() {
        args.push(format!("%out{i}: {}", types::memref(*dt, shape)));
    }
    let in_tys: Vec<String> =
        std::iter::repeat_n("i64".to_string(), 2).chain(inputs.iter().map(|(d, s)| types::tensor(*d, s))).collect();
    let out_tys: Vec<String> = outputs.iter().map(|(d, s)| types::tensor(*d, s)).collect();
    let lhs = match outputs.len() {
        0 => String::new(),
        1 => "%r = ".to_string(),
        n => format!("%r:{n} = "),
    };
    body.push_str(&format!(
        "    {lhs}func.call @{main}({}) : ({}) -> ({})\n",
        call_args.join(", "),
        in_tys.join(", "),
        out_tys.join(", ")
    ));
    for (i, (dt, shape)) in outputs.iter().enumerate() {
        let r = if outputs.len() == 1 { "%r".to_string() } else { format!("%r#{i}") };
        body.push_str(&format!(
            "    bufferization.materialize_in_destination {r} in restrict writable %out{i} : ({}, {}) -> ()\n",
            types::tensor(*dt, shape),
            types::memref(*dt, shape)
        ));
    }
    format!(
        "  func.func @archc_entry({}) attributes {{llvm.emit_c_interface}} {{\n    %zero = arith.constant 0 : i64\n{body}    return\n  }}\n",
        args.join(", ")
    )
}
