//! The reference TIR interpreter.
//!
//! Contract: [`Interpreter::run`] evaluates one function of a [`Program`] on concrete
//! tensors, exactly as `archc_compiler::tir::ops` documents each op. It binds the
//! function's size symbols from the input shapes (see [`bind`]), evaluates instructions in
//! order, and checks every result's dtype and shape against the instruction's declared
//! types (an instruction may have several results: `call`, `vmap`, `scan`). Any failure (bad inputs, a missing parameter, an op precondition, a result that
//! disagrees with its declared type) is a [`RunError`] naming the function and the
//! instruction, never a panic.
//!
//! Numerics: f32 ops compute in f32, except that sums, means, matmul, einsum and conv
//! accumulate f32 in f64 and round once, and rfft/irfft compute in f64 (like numpy).
//! Randomness is deterministic: a `rand.*` op at the top level draws from
//! `ChaCha8(interpreter seed ^ op seed)`; inside `call`/`stack`/`vmap`/`scan` the stream
//! key is further mixed with the call site (the instruction's first result) and an index
//! (the stack entry, the vmap sample, the scan step's time index), so two calls of one
//! function, two samples of one vmap and two steps of one scan get different streams
//! (see [`random`]).
//!
//! The op families live in one module each; this module holds the state and dispatcher.

pub mod bind;
mod contract;
mod control;
mod conv;
mod elementwise;
mod fft;
mod index;
mod movement;
pub mod random;
mod reduce;
pub mod sort;

use crate::resident::{Bindings, HostState};
use crate::tensor::Tensor;

use archc_compiler::tir::{DType, Func, Inst, Op, Program, ValueId};
use bind::DimEnv;
pub use fft::{rfft, RealFft};
pub use movement::{concat, permute};
use std::collections::HashMap;
use std::fmt;

/// Calls nested deeper than this are reported as an error (recursive programs).
const MAX_DEPTH: u32 = 64;

/// A failed run. `Nested` wraps an error raised inside a function called by an instruction.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// No function of that name.
    UnknownFunc(String),
    /// A parameter is missing, unknown, of the wrong type, or could not be initialised.
    Param { name: String, message: String },
    /// The inputs do not fit the function's argument types.
    Input { func: String, message: String },
    /// An instruction failed; `inst` reads like `%5 = conv`.
    Inst { func: String, inst: String, message: String },
    /// An error inside a function called by instruction `inst` of `func`.
    Nested { func: String, inst: String, source: Box<RunError> },
    /// A compiled backend could not build or run `func` (the program or its inputs are at
    /// fault, as far as the backend can tell).
    Backend { func: String, message: String },
    /// A compiled backend met its own bug building or running `func` (a module it emitted
    /// that does not verify, a failed pass pipeline, an ABI mismatch).
    Internal { func: String, message: String },
    /// Resident state (see [`crate::resident`]) is missing, mismatched or unreadable.
    State { name: String, message: String },
}

impl RunError {
    /// Whether archc, not the program or its inputs, is at fault (a backend's own bug,
    /// also inside a called function).
    pub fn is_internal(&self) -> bool {
        match self {
            RunError::Internal { .. } => true,
            RunError::Nested { source, .. } => source.is_internal(),
            _ => false,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RunError::UnknownFunc(name) => write!(f, "no function @{name}"),
            RunError::Param { name, message } => write!(f, "param @{name}: {message}"),
            RunError::Input { func, message } => write!(f, "@{func}: {message}"),
            RunError::Inst { func, inst, message } => write!(f, "in @{func}, {inst}: {message}"),
            RunError::Nested { func, inst, source } => write!(f, "in @{func}, {inst}: {source}"),
            RunError::Backend { func, message } | RunError::Internal { func, message } => {
                write!(f, "@{func}: {message}")
            }
            RunError::State { name, message } if name.is_empty() => write!(f, "resident state: {message}"),
            RunError::State { name, message } => write!(f, "resident state {name}: {message}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Something that runs the functions of one program: the interpreter, or a compiled
/// backend. Parameters read by `param` ops are set by name beforehand.
pub trait Executor {
    /// Runs `func` on `inputs` with the random seed `seed`.
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError>;
    /// Sets a declared parameter (dtype and shape must match the declaration).
    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError>;
    /// Every compilation done so far, in order (`--timings`); none for an executor that
    /// compiles nothing.
    fn compile_times(&self) -> Vec<CompileTime> {
        Vec::new()
    }

    /// The host store of an executor whose resident state lives in host memory; `None`
    /// where the executor overrides the state methods below.
    fn host_state(&mut self) -> Option<&mut HostState> {
        None
    }

    /// Sets (or replaces) the resident state `name` (see [`crate::resident`]).
    fn put_state(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        self.host_state().ok_or_else(|| no_store(name))?.put(name, value);
        Ok(())
    }

    /// A copy of the resident state `name`, read back from where it lives.
    fn read_state(&mut self, name: &str) -> Result<Tensor, RunError> {
        self.host_state().ok_or_else(|| no_store(name))?.get(name).cloned()
    }

    /// The first of `names` whose resident value holds a NaN or an infinity.
    fn non_finite_state(&mut self, names: &[String]) -> Result<Option<String>, RunError> {
        self.host_state().ok_or_else(|| no_store(""))?.first_non_finite(names)
    }

    /// Runs `func` with the arguments and results `bindings` places in the resident
    /// state; `given` fills the other arguments in order, and the other results are
    /// returned in order.
    fn run_bound(
        &mut self,
        func: &str,
        bindings: &Bindings,
        given: Vec<Tensor>,
        seed: u64,
    ) -> Result<Vec<Tensor>, RunError> {
        let mut store = std::mem::take(self.host_state().ok_or_else(|| no_store(""))?);
        let out = store.call(bindings, given, |args| self.run_func(func, args, seed));
        *self.host_state().expect("checked above") = store;
        out
    }
}

/// The error of an executor that keeps no resident state.
fn no_store(name: &str) -> RunError {
    RunError::State { name: name.to_string(), message: "this executor keeps no resident state".into() }
}

/// One compilation by an executor: the tier that compiled, the function, how long it
/// took, and details (input types, phases, when its code was first used).
#[derive(Clone, Debug)]
pub struct CompileTime {
    pub tier: &'static str,
    pub func: String,
    pub time: std::time::Duration,
    pub detail: String,
}

impl Executor for Interpreter<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        self.set_seed(seed);
        self.run(func, inputs)
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        self.set_param(name, value)
    }

    fn host_state(&mut self) -> Option<&mut HostState> {
        Some(&mut self.state)
    }
}

/// The interpreter: a program, its parameter values and a random seed.
pub struct Interpreter<'p> {
    program: &'p Program,
    params: HashMap<String, Tensor>,
    seed: u64,
    /// Resident state (see [`crate::resident`]).
    state: HostState,
}

/// The declared result of the instruction being evaluated, made concrete.
pub(crate) struct Out<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub dims: &'a DimEnv,
}

/// Per-activation state: the random stream key and the call depth.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub key: u64,
    pub depth: u32,
}

/// An error raised by an op: a message, or an error from a called function.
pub(crate) enum OpError {
    Msg(String),
    Nested(RunError),
}

impl From<String> for OpError {
    fn from(m: String) -> OpError {
        OpError::Msg(m)
    }
}

pub(crate) type OpResult = Result<Tensor, OpError>;
/// The results of an op, in order.
pub(crate) type OpResults = Result<Vec<Tensor>, OpError>;

impl<'p> Interpreter<'p> {
    /// No parameters set, seed 0.
    pub fn new(program: &'p Program) -> Self {
        Interpreter { program, params: HashMap::new(), seed: 0, state: HostState::default() }
    }

    pub fn program(&self) -> &'p Program {
        self.program
    }

    /// The seed of `rand.*` ops.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Sets a declared parameter; its dtype and shape must match the declaration.
    pub fn set_param(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        let err = |message: String| RunError::Param { name: name.to_string(), message };
        let decl = self.program.param(name).ok_or_else(|| err("not declared by the program".into()))?;
        let shape = random::param_shape(decl).map_err(err)?;
        if value.dtype() != decl.ty.dtype || value.shape != shape {
            return Err(err(format!("value is {}, declared {}", value.type_string(), decl.ty)));
        }
        self.params.insert(name.to_string(), value);
        Ok(())
    }

    pub fn param(&self, name: &str) -> Option<&Tensor> {
        self.params.get(name)
    }

    pub fn params(&self) -> &HashMap<String, Tensor> {
        &self.params
    }

    /// Materialises every declared parameter by its `Init`, replacing current values
    /// (deterministic: see [`random::init_param`]).
    pub fn init_params(&mut self, seed: u64) -> Result<(), RunError> {
        for decl in &self.program.params {
            let value = random::init_param(decl, seed)
                .map_err(|message| RunError::Param { name: decl.name.clone(), message })?;
            self.params.insert(decl.name.clone(), value);
        }
        Ok(())
    }

    /// Runs function `func` on `inputs`, returning its results in order.
    pub fn run(&self, func: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
        let f = self.program.func(func).ok_or_else(|| RunError::UnknownFunc(func.to_string()))?;
        let inputs: Vec<&Tensor> = inputs.iter().collect();
        self.call_func(f, &inputs, Frame { key: 0, depth: 0 })
    }

    /// Evaluates one activation of `func`.
    pub(crate) fn call_func(&self, func: &Func, inputs: &[&Tensor], frame: Frame) -> Result<Vec<Tensor>, RunError> {
        let input_err = |message: String| RunError::Input { func: func.name.clone(), message };
        if frame.depth > MAX_DEPTH {
            return Err(input_err(format!("calls nested deeper than {MAX_DEPTH} (recursion?)")));
        }
        let dims = bind::bind_args(func, inputs).map_err(input_err)?;
        let mut env = Env::new(func);
        for ((id, _), x) in func.args.iter().zip(inputs) {
            env.define(*id, (*x).clone()).map_err(input_err)?;
        }
        for (pos, inst) in func.body.iter().enumerate() {
            let values = self.exec(func, inst, &env, &dims, frame)?;
            for (r, value) in inst.result_ids().zip(values) {
                env.define(r, value).map_err(|m| inst_error(func, inst, m))?;
            }
            env.release_after(pos);
        }
        func.results.iter().map(|r| env.get(*r).cloned().map_err(|m| input_err(format!("result: {m}")))).collect()
    }

    /// Evaluates one instruction and checks its results against the declared types.
    fn exec(&self, func: &Func, inst: &Inst, env: &Env, dims: &DimEnv, frame: Frame) -> Result<Vec<Tensor>, RunError> {
        let fail = |m: String| inst_error(func, inst, m);
        let args: Vec<&Tensor> = inst.args.iter().map(|a| env.get(*a)).collect::<Result<_, _>>().map_err(fail)?;
        let mut outs = Vec::with_capacity(inst.num_results());
        for (i, (_, ty)) in inst.results().enumerate() {
            let shape = bind::eval_shape(&ty.shape, dims).map_err(|m| match inst.num_results() {
                1 => fail(format!("declared type: {m}")),
                _ => fail(format!("declared type of result {i}: {m}")),
            })?;
            outs.push(Out { dtype: ty.dtype, shape, dims });
        }
        let values = self.eval_op(&inst.op, &args, &outs, frame, inst.result).map_err(|e| match e {
            OpError::Msg(m) => fail(m),
            OpError::Nested(source) => {
                RunError::Nested { func: func.name.clone(), inst: inst_label(inst), source: Box::new(source) }
            }
        })?;
        if values.len() != outs.len() {
            return Err(fail(format!("gives {} results, declared {}", values.len(), outs.len())));
        }
        for (i, ((value, out), (_, ty))) in values.iter().zip(&outs).zip(inst.results()).enumerate() {
            if value.dtype() != out.dtype || value.shape != out.shape {
                let which = if outs.len() == 1 { String::new() } else { format!(" {i}") };
                return Err(fail(format!(
                    "result{which} is {}, declared {ty} = {}",
                    value.type_string(),
                    crate::tensor::type_string(out.dtype, &out.shape)
                )));
            }
        }
        Ok(values)
    }

    /// The dispatcher: one arm per op, each delegating to its family module. `outs` are
    /// the declared results, one per result of the instruction.
    fn eval_op(&self, op: &Op, args: &[&Tensor], outs: &[Out], frame: Frame, site: ValueId) -> OpResults {
        use elementwise as ew;
        let out = &outs[0];
        let a = |n: usize| arity(args, n);
        let t = match op {
            Op::Param(name) => self.read_param(name),
            Op::Const(v) => Ok(Tensor::full(out.dtype, &[], *v)),
            Op::Iota { axis } => ew::iota(*axis, out),
            Op::Unary(u) => a(1).and_then(|_| ew::unary(*u, args[0])),
            Op::Binary(b) => a(2).and_then(|_| ew::binary(*b, args[0], args[1])),
            Op::Select => a(3).and_then(|_| ew::select(args[0], args[1], args[2])),
            Op::Cast => a(1).map(|_| args[0].cast(out.dtype)),
            Op::Reduce { op, axes, keepdim } => a(1).and_then(|_| reduce::reduce(*op, args[0], axes, *keepdim)),
            Op::ArgMax { axis, keepdim } => a(1).and_then(|_| reduce::argmax(args[0], *axis, *keepdim)),
            Op::ArgSort { axis, descending } => a(1).and_then(|_| sort::argsort(args[0], *axis, *descending)),
            Op::StopGradient => a(1).map(|_| args[0].clone()),
            Op::MatMul => a(2).and_then(|_| contract::matmul(args[0], args[1])),
            Op::Einsum(spec) => contract::einsum(spec, args),
            Op::Conv { stride, padding, dilation, groups } => {
                let spec = conv::ConvSpec { stride, padding, dilation, groups: *groups };
                a(2).and_then(|_| conv::conv(args[0], args[1], &spec))
            }
            Op::Pool { op, window, stride, padding } => {
                a(1).and_then(|_| conv::pool(*op, args[0], window, stride, padding))
            }
            Op::Reshape => a(1).and_then(|_| movement::reshape(args[0], &out.shape)),
            Op::Permute(perm) => a(1).and_then(|_| movement::permute(args[0], perm)),
            Op::Broadcast => a(1).and_then(|_| movement::broadcast(args[0], &out.shape)),
            Op::Slice { start, end, step } => a(1).and_then(|_| index::slice(args[0], start, end, step, out.dims)),
            Op::Concat { axis } => movement::concat(args, *axis),
            Op::Pad { padding, value } => a(1).and_then(|_| movement::pad(args[0], padding, *value)),
            Op::Gather { axis } => a(2).and_then(|_| index::gather(args[0], args[1], *axis)),
            Op::ScatterAdd { axis } => a(3).and_then(|_| index::scatter_add(args[0], args[1], args[2], *axis)),
            Op::Rfft { axis } => a(1).and_then(|_| fft::rfft(args[0], *axis)),
            Op::Irfft { axis, n } => a(1).and_then(|_| fft::irfft(args[0], *axis, n, out)),
            Op::Real => a(1).and_then(|_| fft::real_part(args[0], false)),
            Op::Imag => a(1).and_then(|_| fft::real_part(args[0], true)),
            Op::Complex => a(2).and_then(|_| fft::complex(args[0], args[1])),
            Op::RandUniform { seed } => a(0).and_then(|_| random::uniform(self.seed ^ seed ^ frame.key, out)),
            Op::RandNormal { seed } => a(0).and_then(|_| random::normal(self.seed ^ seed ^ frame.key, out)),
            Op::Call(f) => return control::call(self, f, args, frame, site),
            Op::Stack(fs) => return control::stack(self, fs, args, frame, site).map(|t| vec![t]),
            Op::Vmap { func, keep, out_keep } => {
                return control::vmap(self, func, keep, out_keep, args, outs, frame, site)
            }
            Op::Scan { func, axis, carries, xs, reverse } => {
                let spec = control::ScanSpec { axis: *axis, carries: *carries, xs: *xs, reverse: *reverse };
                return control::scan(self, func, &spec, args, outs, frame, site);
            }
        };
        t.map(|t| vec![t]).map_err(OpError::Msg)
    }

    fn read_param(&self, name: &str) -> Result<Tensor, String> {
        self.params
            .get(name)
            .cloned()
            .ok_or_else(|| format!("parameter @{name} has no value (set_param or init_params)"))
    }
}

fn arity(args: &[&Tensor], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("expects {n} operand(s), got {}", args.len()))
    }
}

fn inst_label(inst: &Inst) -> String {
    format!("{} = {}", inst.result, inst.op.name())
}

fn inst_error(func: &Func, inst: &Inst, message: String) -> RunError {
    RunError::Inst { func: func.name.clone(), inst: inst_label(inst), message }
}

/// The values of one activation, dropped after their last use.
struct Env {
    values: Vec<Option<Tensor>>,
    /// `dead_after[p]`: values whose last reader is instruction `p`, and results of `p`
    /// that nothing reads (never the function's results).
    dead_after: Vec<Vec<ValueId>>,
}

impl Env {
    fn new(func: &Func) -> Env {
        let mut last: HashMap<ValueId, usize> = HashMap::new();
        for (pos, inst) in func.body.iter().enumerate() {
            for a in &inst.args {
                last.insert(*a, pos);
            }
        }
        for (pos, inst) in func.body.iter().enumerate() {
            for r in inst.result_ids() {
                last.entry(r).or_insert(pos);
            }
        }
        let mut dead_after = vec![Vec::new(); func.body.len()];
        for (v, pos) in last {
            if !func.results.contains(&v) {
                dead_after[pos].push(v);
            }
        }
        Env { values: vec![None; func.next_value().0 as usize], dead_after }
    }

    fn define(&mut self, id: ValueId, value: Tensor) -> Result<(), String> {
        let slot = &mut self.values[id.0 as usize];
        if slot.is_some() {
            return Err(format!("{id} is defined twice"));
        }
        *slot = Some(value);
        Ok(())
    }

    fn get(&self, id: ValueId) -> Result<&Tensor, String> {
        self.values
            .get(id.0 as usize)
            .and_then(|v| v.as_ref())
            .ok_or_else(|| format!("{id} is used before it is defined"))
    }

    fn release_after(&mut self, pos: usize) {
        for v in &self.dead_after[pos] {
            self.values[v.0 as usize] = None;
        }
    }
}
