//! TIR -> MLIR text (`func`, `linalg`, `tensor`, `arith`, `math`, `complex`, `scf`,
//! `bufferization`, `memref` dialects), specialised to concrete shapes.
//!
//! Contract:
//! - [`emit_module`] lowers one entry function of a program for concrete input shapes.
//!   Every function reachable from it (through `call`, `stack`, `vmap`, `scan`) is
//!   specialised once per distinct argument shapes: all tensor types in the module are
//!   static. The JIT caches one compiled module per (program, entry, input shapes).
//! - Each lowered TIR function becomes `func.func private @fN_name(%seed: i64, %fkey: i64,
//!   args...) -> (results...)` on tensors. `%seed ^ %fkey ^ op seed` keys the random ops
//!   exactly as the reference interpreter does, and the frame key is re-derived at each
//!   call site with the interpreter's SplitMix mix (see `archc_runtime::interp::random`),
//!   so random streams agree value for value.
//! - Parameters read by `param` are module globals `@param_N` (set through the exported
//!   `archc_set_params`); train steps receive theirs as arguments instead.
//! - The exported entry is `archc_entry(%seed: i64, inputs: memref..., outputs: memref...)`
//!   with `llvm.emit_c_interface`: inputs are read, outputs written in place.
//! - Source spans become `loc("file":line:col)` when a locator is given.
//!
//! Semantics follow `archc_compiler::tir::ops` and the interpreter; deviations: integer
//! division by zero yields a value instead of an error, and out-of-range `gather` /
//! `scatter_add` indices are clamped.

mod builder;
mod control;
mod data;
mod fft;
mod linalg;
mod lower;
mod scalar;
pub mod types;

use archc_compiler::tir::{DType, Program, TensorType};
use archc_grammar::span::Span;
use archc_runtime::interp::bind::{bind_shapes, eval_shape, DimEnv};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A concrete tensor type.
pub type Shape = (DType, Vec<usize>);

/// Why a module could not be emitted (names the function and instruction).
#[derive(Clone, Debug, PartialEq)]
pub struct EmitError(pub String);

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EmitError {}

/// Maps a source span to an MLIR location, e.g. `loc("model.arch":3:9)`.
pub type Locator<'a> = &'a dyn Fn(Span) -> Option<String>;

/// An emitted module and its calling convention.
#[derive(Clone, Debug)]
pub struct Module {
    pub text: String,
    /// The entry's inputs and outputs (after the seed), in order.
    pub inputs: Vec<Shape>,
    pub outputs: Vec<Shape>,
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
    let (main, outputs) = em.request(entry, inputs)?;
    while let Some(job) = em.queue.pop() {
        let text = lower::lower_func(&mut em, &job)?;
        em.funcs.push(text);
    }
    let params: Vec<(String, Shape)> = em.params.iter().map(|(n, (_, s))| (n.clone(), s.clone())).collect();
    let param_globals = em.params.values().map(|(g, _)| g.clone()).collect();
    let text = em.assemble(&main, inputs, &outputs);
    Ok(Module { text, inputs: inputs.to_vec(), outputs, params, param_globals })
}

/// One function specialisation to lower.
pub(crate) struct Job {
    pub mangled: String,
    pub func: String,
    pub env: DimEnv,
    pub inputs: Vec<Shape>,
    pub outputs: Vec<Shape>,
}

pub(crate) struct Emitter<'p, 'l> {
    pub program: &'p Program,
    pub target: Target,
    done: HashMap<(String, Vec<Shape>), (String, Vec<Shape>)>,
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

pub(crate) fn concrete(ty: &TensorType, env: &DimEnv) -> Result<Shape, String> {
    Ok((ty.dtype, eval_shape(&ty.shape, env)?))
}

impl<'p, 'l> Emitter<'p, 'l> {
    /// The specialisation of `func` for `inputs`: its symbol and concrete result types.
    pub fn request(&mut self, func: &str, inputs: &[Shape]) -> Result<(String, Vec<Shape>), EmitError> {
        let key = (func.to_string(), inputs.to_vec());
        if let Some(done) = self.done.get(&key) {
            return Ok(done.clone());
        }
        let f = self.program.func(func).ok_or_else(|| EmitError(format!("no function @{func}")))?;
        let shapes: Vec<(DType, &[usize])> = inputs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
        let env = bind_shapes(f, &shapes).map_err(|m| EmitError(format!("@{func}: {m}")))?;
        let outputs = f
            .result_types()
            .iter()
            .map(|t| concrete(t, &env))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| EmitError(format!("@{func} result: {m}")))?;
        let safe: String = func.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mangled = format!("f{}_{safe}", self.done.len());
        self.done.insert(key, (mangled.clone(), outputs.clone()));
        self.queue.push(Job {
            mangled: mangled.clone(),
            func: func.to_string(),
            env,
            inputs: inputs.to_vec(),
            outputs: outputs.clone(),
        });
        Ok((mangled, outputs))
    }

    /// The global holding parameter `name`, declared on first use.
    pub fn param_global(&mut self, name: &str) -> Result<(String, Shape), String> {
        if let Some(g) = self.params.get(name) {
            return Ok(g.clone());
        }
        let decl = self.program.param(name).ok_or_else(|| format!("no parameter @{name}"))?;
        let shape =
            decl.ty.const_shape().ok_or_else(|| format!("parameter @{name} has a symbolic type {}", decl.ty))?;
        let g = (format!("param_{}", self.params.len()), (decl.ty.dtype, shape));
        self.params.insert(name.to_string(), g.clone());
        Ok(g)
    }

    fn assemble(&self, main: &str, inputs: &[Shape], outputs: &[Shape]) -> String {
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

fn entry_wrapper(main: &str, inputs: &[Shape], outputs: &[Shape]) -> String {
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
