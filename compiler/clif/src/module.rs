//! Compiling one program function, with every function it reaches, into a JIT module.
//!
//! Contract: [`compile`] specialises the entry and each callee for its argument types
//! over the entry's size symbols (a callee's symbols are bound by `infer::unify` to the
//! caller's dims), lowers each specialisation once to a Cranelift function of the ABI
//! `fn(ctx, key, args: *const ptr, outs: *const ptr)` and finalises them together. The
//! [`Compiled`] result runs the entry on inputs of any sizes its types allow: it binds
//! the symbols, checks every size the code will use (non-negative, at most 2^53
//! elements) before running, and turns a recorded refusal into the run's error.
//! [`emit_clif`] gives the Cranelift IR text of the same functions instead. [`Options`]
//! choose the code's form: 128-bit vector loops where the host's Cranelift backend has
//! them (x86-64, aarch64; [`Options::host`]), scalar loops everywhere else or on request
//! ([`compile_with`], [`emit_clif_with`]).

use crate::kernels::Plan;
use crate::lower::FnLower;
use crate::rt::{self, Ctx};
use crate::ClifError;
use archc_compiler::tir::infer::{subst_type, unify};
use archc_compiler::tir::{DType, Dim, Func, Op, Program, TensorType};
use archc_runtime::interp::bind::{bind_shapes, eval_shape};
use archc_runtime::{Data, Tensor};
use cranelift_codegen::ir::{types, AbiParam, Signature, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The compiled entry: `fn(ctx, key, args, outs)`.
type Entry = unsafe extern "C" fn(*mut Ctx, i64, *const *const u8, *const *mut u8);

/// One specialisation: a function with its types over the entry's symbols.
pub(crate) struct Spec {
    pub func: Func,
    pub id: FuncId,
}

/// Module-wide state shared by the lowering of every function.
pub(crate) struct Shared<'p> {
    pub program: &'p Program,
    pub module: JITModule,
    /// The entry's size symbols, in the order of `Ctx::syms`.
    pub syms: Arc<Vec<String>>,
    helpers: HashMap<&'static str, FuncId>,
    pub specs: Vec<Spec>,
    spec_index: HashMap<(String, Vec<TensorType>), usize>,
    pub plans: Vec<Plan>,
    /// Every tensor type the code allocates or reads, checked before each run.
    pub checks: HashSet<TensorType>,
    /// Parameters the code reads (indices into `program.params`).
    pub params_used: HashSet<usize>,
    /// Whether elementwise loops and reductions use 128-bit vectors ([`Options::simd`]).
    pub simd: bool,
}

/// How [`compile_with`] and [`emit_clif_with`] lower a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Elementwise loops and reductions over 128-bit vectors (f32x4, f64x2, i64x2) with
    /// scalar tails; `false`: scalar loops only. Ignored (scalar) on hosts whose Cranelift
    /// backend is not x86-64 or aarch64.
    pub simd: bool,
}

impl Options {
    /// Vectors wherever the host's backend has them.
    pub fn host() -> Options {
        Options { simd: true }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::host()
    }
}

/// Whether the host's Cranelift backend (the JIT's target is the host) lowers the vector
/// code of `lower`: 128-bit vectors of SSE2 or NEON, nothing of SSE4.1 or AVX assumed.
fn host_has_simd() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
}

impl<'p> Shared<'p> {
    /// The function signature of every compiled function.
    pub fn abi(&self) -> Signature {
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(types::I64); 4]);
        sig
    }

    /// The runtime function `name` with this signature, declared once.
    pub fn helper(&mut self, name: &'static str, params: &[types::Type], rets: &[types::Type]) -> FuncId {
        if let Some(id) = self.helpers.get(name) {
            return *id;
        }
        let mut sig = self.module.make_signature();
        sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        sig.returns.extend(rets.iter().map(|t| AbiParam::new(*t)));
        let id = self.module.declare_function(name, Linkage::Import, &sig).expect("runtime symbols are distinct");
        self.helpers.insert(name, id);
        id
    }

    /// The specialisation of `name` for arguments of types `actual`: its id and result
    /// types (declared now and lowered later when new).
    pub fn spec(&mut self, name: &str, actual: &[TensorType]) -> Result<(FuncId, Vec<TensorType>), ClifError> {
        let key = (name.to_string(), actual.to_vec());
        if let Some(&i) = self.spec_index.get(&key) {
            return Ok((self.specs[i].id, self.specs[i].func.result_types()));
        }
        let f = self.program.func(name).ok_or_else(|| ClifError::Program(format!("no function @{name}")))?;
        let params: Vec<TensorType> = f.args.iter().map(|(_, t)| t.clone()).collect();
        let env = unify(&params, actual).map_err(|e| ClifError::unsupported("call", format!("@{name} {e}")))?;
        let func = specialize(f, &env);
        check_symbols(&func, &self.syms)?;
        let sig = self.abi();
        let label = format!("{}.{}", self.specs.len(), name);
        let id = self
            .module
            .declare_function(&label, Linkage::Local, &sig)
            .map_err(|e| ClifError::Codegen(e.to_string()))?;
        let results = func.result_types();
        self.spec_index.insert(key, self.specs.len());
        self.specs.push(Spec { func, id });
        Ok((id, results))
    }
}

/// `f` with every type and dim attribute rewritten by `env`.
fn specialize(f: &Func, env: &HashMap<String, Dim>) -> Func {
    let mut g = f.clone();
    for (_, t) in &mut g.args {
        *t = subst_type(t, env);
    }
    for inst in &mut g.body {
        inst.ty = subst_type(&inst.ty, env);
        for (_, t) in &mut inst.extra {
            *t = subst_type(t, env);
        }
        let sub = |ds: &mut Vec<Dim>| ds.iter_mut().for_each(|d| *d = d.subst(env));
        match &mut inst.op {
            Op::Slice { start, end, .. } => {
                sub(start);
                sub(end);
            }
            Op::Irfft { n, .. } => *n = n.subst(env),
            _ => {}
        }
    }
    g
}

/// Every symbol of `f`'s types and attributes must be one of the entry's.
fn check_symbols(f: &Func, syms: &[String]) -> Result<(), ClifError> {
    let mut dims: Vec<&Dim> = f.args.iter().flat_map(|(_, t)| &t.shape).collect();
    for inst in &f.body {
        dims.extend(inst.results().flat_map(|(_, t)| t.shape.iter()));
        match &inst.op {
            Op::Slice { start, end, .. } => dims.extend(start.iter().chain(end)),
            Op::Irfft { n, .. } => dims.push(n),
            _ => {}
        }
    }
    for d in dims {
        if let Some(s) = d.symbols().into_iter().find(|s| !syms.contains(s)) {
            return Err(ClifError::unsupported(
                "size",
                format!("@{}: symbol {s} is not bound by the entry's inputs", f.name),
            ));
        }
    }
    Ok(())
}

/// Every function reachable from `entry` must not reach itself (the interpreter would
/// stop at its depth limit; compiled code would not stop).
fn check_acyclic(program: &Program, entry: &str) -> Result<(), ClifError> {
    fn visit<'a>(
        p: &'a Program,
        f: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Result<(), ClifError> {
        if path.contains(&f) {
            return Err(ClifError::Program(format!("@{f} calls itself (recursion)")));
        }
        if done.contains(f) {
            return Ok(());
        }
        let func = p.func(f).ok_or_else(|| ClifError::Program(format!("no function @{f}")))?;
        path.push(f);
        for inst in &func.body {
            for c in inst.op.callees() {
                visit(p, c, path, done)?;
            }
        }
        path.pop();
        done.insert(f);
        Ok(())
    }
    visit(program, entry, &mut Vec::new(), &mut HashSet::new())
}

/// A new JIT module with the runtime's symbols.
fn jit_module() -> Result<JITModule, ClifError> {
    let err = |e: String| ClifError::Codegen(e);
    let mut flags = settings::builder();
    flags.set("use_colocated_libcalls", "false").map_err(|e| err(e.to_string()))?;
    flags.set("is_pic", "false").map_err(|e| err(e.to_string()))?;
    flags.set("opt_level", "speed").map_err(|e| err(e.to_string()))?;
    // Cranelift's IR verifier runs in debug builds (every test); release builds skip it.
    let verify = if cfg!(debug_assertions) { "true" } else { "false" };
    flags.set("enable_verifier", verify).map_err(|e| err(e.to_string()))?;
    let isa = cranelift_native::builder()
        .map_err(|e| err(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| err(e.to_string()))?;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    for (name, ptr) in rt::symbols() {
        jb.symbol(name, ptr);
    }
    Ok(JITModule::new(jb))
}

/// The entry's size symbols: every symbol of its argument types, sorted.
fn entry_symbols(f: &Func) -> Vec<String> {
    let mut syms: Vec<String> = f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
    syms.sort();
    syms.dedup();
    syms
}

/// Lowers every specialisation reachable from `entry`; `text` collects the IR.
fn build<'p>(
    program: &'p Program,
    entry: &str,
    mut text: Option<&mut String>,
    options: Options,
) -> Result<(Shared<'p>, FuncId), ClifError> {
    check_acyclic(program, entry)?;
    let f = program.func(entry).ok_or_else(|| ClifError::Program(format!("no function @{entry}")))?;
    let mut sh = Shared {
        program,
        module: jit_module()?,
        simd: options.simd && host_has_simd(),
        syms: Arc::new(entry_symbols(f)),
        helpers: HashMap::new(),
        specs: Vec::new(),
        spec_index: HashMap::new(),
        plans: Vec::new(),
        checks: HashSet::new(),
        params_used: HashSet::new(),
    };
    let actual: Vec<TensorType> = f.args.iter().map(|(_, t)| t.clone()).collect();
    let (entry_id, _) = sh.spec(entry, &actual)?;
    let mut ctx = sh.module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut next = 0;
    while next < sh.specs.len() {
        let (func, id) = (sh.specs[next].func.clone(), sh.specs[next].id);
        ctx.func.signature = sh.abi();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        FnLower::lower(&mut sh, b, &func)?;
        if let Some(t) = text.as_deref_mut() {
            t.push_str(&format!("; @{} {}\n{}\n", func.name, signature_text(&func), ctx.func.display()));
        }
        sh.module.define_function(id, &mut ctx).map_err(|e| ClifError::Codegen(format!("@{}: {e:?}", func.name)))?;
        sh.module.clear_context(&mut ctx);
        next += 1;
    }
    if let Some(t) = text {
        t.push_str("; functions:\n");
        for (id, decl) in sh.module.declarations().get_functions() {
            t.push_str(&format!(";   u0:{} = {}\n", id.as_u32(), decl.name.as_deref().unwrap_or("?")));
        }
    }
    Ok((sh, entry_id))
}

fn signature_text(f: &Func) -> String {
    let args: Vec<String> = f.args.iter().map(|(_, t)| t.to_string()).collect();
    let res: Vec<String> = f.result_types().iter().map(|t| t.to_string()).collect();
    format!("({}) -> ({})", args.join(", "), res.join(", "))
}

/// The Cranelift IR of `entry` and every specialisation it reaches, before compilation
/// (with [`Options::host`]).
pub fn emit_clif(program: &Program, entry: &str) -> Result<String, ClifError> {
    emit_clif_with(program, entry, Options::host())
}

/// [`emit_clif`] lowered with `options`.
pub fn emit_clif_with(program: &Program, entry: &str, options: Options) -> Result<String, ClifError> {
    let mut text = String::new();
    build(program, entry, Some(&mut text), options)?;
    Ok(text)
}

/// Compiles `entry` of `program` (see the module docs) with [`Options::host`].
pub fn compile(program: &Program, entry: &str) -> Result<Compiled, ClifError> {
    compile_with(program, entry, Options::host())
}

/// [`compile`] lowered with `options`.
pub fn compile_with(program: &Program, entry: &str, options: Options) -> Result<Compiled, ClifError> {
    let t0 = Instant::now();
    let (mut sh, entry_id) = build(program, entry, None, options)?;
    sh.module.finalize_definitions().map_err(|e| ClifError::Codegen(e.to_string()))?;
    let code = sh.module.get_finalized_function(entry_id);
    // SAFETY: the entry was defined with the ABI `Entry` describes.
    let run: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
    let f = program.func(entry).expect("checked by build");
    let mut params_used: Vec<usize> = sh.params_used.iter().copied().collect();
    params_used.sort_unstable();
    Ok(Compiled {
        func: f.clone(),
        symbols: sh.syms.clone(),
        checks: sh.checks.into_iter().collect(),
        params_used,
        reference_ops: reference_ops(&sh.plans),
        plans: sh.plans,
        run,
        module: Some(sh.module),
        compile_time: t0.elapsed(),
    })
}

fn reference_ops(plans: &[Plan]) -> Vec<String> {
    let mut v: Vec<String> = plans
        .iter()
        .filter(|p| p.kernel == crate::kernels::Kernel::Reference && !p.refusal)
        .map(|p| format!("{} ({})", p.inst.op.name(), p.inst.ty.dtype))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A compiled function, runnable on inputs of any sizes its types allow.
pub struct Compiled {
    /// The entry as the program declares it.
    pub func: Func,
    /// The entry's size symbols (the order of `Ctx::syms`).
    pub symbols: Arc<Vec<String>>,
    checks: Vec<TensorType>,
    /// The parameters the code reads (indices into the program's declarations).
    pub params_used: Vec<usize>,
    /// Ops that run the interpreter's kernels (`op (dtype)`).
    pub reference_ops: Vec<String>,
    plans: Vec<Plan>,
    run: Entry,
    module: Option<JITModule>,
    /// The time `compile` took.
    pub compile_time: Duration,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no code of the module runs after its `Compiled` is dropped.
            unsafe { m.free_memory() };
        }
        self.plans.clear();
    }
}

/// The largest element count of any tensor (as the checker's `MAX_ELEMENTS`).
const MAX_ELEMENTS: i64 = 1 << 53;

impl Compiled {
    /// Runs the entry on `inputs` with the parameter buffers `params` (one per declared
    /// parameter, in declaration order; those in [`Compiled::params_used`] must be set).
    pub fn run(&self, inputs: &[&Tensor], params: &[Option<&Tensor>], seed: u64) -> Result<Vec<Tensor>, String> {
        let shapes: Vec<(DType, &[usize])> = inputs.iter().map(|t| (t.dtype(), t.shape())).collect();
        let env = bind_shapes(&self.func, &shapes)?;
        let syms: Vec<i64> = self.symbols.iter().map(|s| env.get(s).copied().unwrap_or(0)).collect();
        for t in &self.checks {
            let n = t.shape.iter().try_fold(1i64, |acc, d| {
                let v = d.checked_eval(&env).filter(|v| *v >= 0)?;
                acc.checked_mul(v).filter(|n| *n <= MAX_ELEMENTS)
            });
            if n.is_none() {
                return Err(format!("a value of type {t} has a negative or too large size at these inputs"));
            }
        }
        let mut param_ptrs: Vec<*const u8> = vec![std::ptr::null(); params.len()];
        for &i in &self.params_used {
            let p = params.get(i).copied().flatten().ok_or_else(|| format!("parameter {i} has no value"))?;
            param_ptrs[i] = data_ptr(&p.data);
        }
        let mut outs: Vec<Tensor> = Vec::new();
        for t in self.func.result_types() {
            let shape = eval_shape(&t.shape, &env)?;
            outs.push(Tensor::zeros(t.dtype, &shape));
        }
        let args: Vec<*const u8> = inputs.iter().map(|t| data_ptr(&t.data)).collect();
        let out_ptrs: Vec<*mut u8> = outs.iter_mut().map(|t| data_mut_ptr(&mut t.data)).collect();
        let mut ctx = Ctx {
            syms: syms.as_ptr(),
            params: param_ptrs.as_ptr(),
            seed: seed as i64,
            plans: self.plans.as_ptr(),
            failure: None,
        };
        // SAFETY: inputs were bound to the entry's types, every size was checked, the
        // outputs have their declared sizes, and the parameters their declared types.
        unsafe { (self.run)(&mut ctx, 0, args.as_ptr(), out_ptrs.as_ptr()) };
        match ctx.failure {
            Some(message) => Err(message),
            None => Ok(outs),
        }
    }
}

/// The address of a tensor's elements.
fn data_ptr(d: &Data) -> *const u8 {
    match d {
        Data::F32(v) => v.as_ptr() as *const u8,
        Data::F64(v) => v.as_ptr() as *const u8,
        Data::I64(v) => v.as_ptr() as *const u8,
        Data::Bool(v) => v.as_ptr() as *const u8,
        Data::C64(v) => v.as_ptr() as *const u8,
    }
}

fn data_mut_ptr(d: &mut Data) -> *mut u8 {
    match d {
        Data::F32(v) => v.as_mut_ptr() as *mut u8,
        Data::F64(v) => v.as_mut_ptr() as *mut u8,
        Data::I64(v) => v.as_mut_ptr() as *mut u8,
        Data::Bool(v) => v.as_mut_ptr() as *mut u8,
        Data::C64(v) => v.as_mut_ptr() as *mut u8,
    }
}
