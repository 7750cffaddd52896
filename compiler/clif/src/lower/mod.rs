//! One TIR function (a specialisation, types over the entry's symbols) as a Cranelift
//! function of the ABI `fn(ctx, key, args, outs)`.
//!
//! Contract: every value is a pointer to a contiguous row-major buffer. Instructions
//! allocate their results (`archc_clif_alloc`) at top level, before any loop they emit;
//! `reshape` and same-type casts alias their operand, arguments and parameters are
//! borrowed. A buffer is freed right after the last instruction that reads it (or any of
//! its aliases); an instruction computing a result of the function writes it into its
//! slot of `outs` directly where it can, other results are copied there at the end. Sizes are
//! computed once at top level from the context's symbol values and reused; code inside
//! loops and conditionals never adds to that cache (its values would not dominate later
//! uses). Chains of elementwise ops are one loop ([`fuse`]: a value whose one reader is
//! elementwise is computed in that reader's loop, never stored). The op families live in
//! one module each: [`ew`] (elementwise), [`reduce`],
//! [`movement`], [`control`], [`kernel`] (calls of Rust kernels); [`simd`] holds the
//! vector loops of the first two.

mod control;
mod ew;
mod fuse;
mod ir;
mod kernel;
mod movement;
mod reduce;
mod simd;

use crate::module::Shared;
use crate::rt;
use crate::ClifError;
use archc_compiler::tir::{DType, Dim, Func, Inst, Op, TensorType, ValueId};
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;

/// A lowered value: its buffer, its type and the buffer's root (see the module docs).
#[derive(Clone)]
pub(crate) struct Val {
    pub ptr: Value,
    pub ty: TensorType,
    root: usize,
    /// One element standing for every element (a broadcast scalar that only elementwise
    /// loops read: they load element 0).
    pub splat: bool,
    /// A broadcast that only elementwise loops read, not materialised: the buffer is the
    /// operand's, read at these strides ([`Bcast`]).
    pub bcast: Option<std::rc::Rc<Bcast>>,
}

/// How a loop reads an unmaterialised broadcast: per axis of the result, whether it is
/// stretched (known at compile time) and the operand's stride in elements (0 where
/// stretched).
pub(crate) struct Bcast {
    pub stretched: Vec<bool>,
    pub strides: Vec<Value>,
}

/// A buffer: owned ones (with their size in bytes) are freed after `last`.
struct Root {
    ptr: Value,
    bytes: Option<Value>,
    last: usize,
    freed: bool,
}

/// Marks a value read by the function's results (never freed before the end).
const END: usize = usize::MAX;

pub(crate) struct FnLower<'s, 'p, 'f> {
    pub sh: &'s mut Shared<'p>,
    pub b: FunctionBuilder<'f>,
    pub ctx: Value,
    pub key: Value,
    syms: Vec<Value>,
    sizes: HashMap<Dim, Value>,
    /// Loops and conditionals around the code being emitted.
    depth: u32,
    vals: HashMap<ValueId, Val>,
    roots: Vec<Root>,
    last_use: HashMap<ValueId, usize>,
    /// Values read only by elementwise loops (never a result of the function).
    elementwise_readers: std::collections::HashSet<ValueId>,
    /// Values read only by elementwise loops and `concat` (which fills from a splat).
    concat_readers: std::collections::HashSet<ValueId>,
    refs: HashMap<FuncId, FuncRef>,
    /// The position of the instruction being lowered.
    pos: usize,
    /// Values computed in their reader's loop ([`fuse`]), and those lowered but not yet
    /// read.
    fused: std::collections::HashSet<ValueId>,
    pending: HashMap<ValueId, ew::Node>,
    /// The function's `outs` array, the first result slot of each result value, the slot
    /// the instruction being lowered may allocate its result in (see [`FnLower::alloc`]),
    /// and the slots written in place (with the buffer's pointer).
    outs: Option<Value>,
    result_slot: HashMap<ValueId, usize>,
    target: Option<(usize, TensorType)>,
    direct: HashMap<usize, Value>,
    /// `rfft` and `irfft` results that need only their first coefficients ([`spectral`]).
    pub spectral: HashMap<ValueId, usize>,
    /// `irfft` results run from the heads `(re, im)` of their zero-padded operand, and the
    /// `concat` and `complex` instructions that padding takes (not lowered).
    pub irfft_parts: HashMap<ValueId, (ValueId, ValueId)>,
    skipped: std::collections::HashSet<ValueId>,
}

/// The Cranelift type and byte size of one element (c64: two f32, moved as one i64).
pub(crate) fn elem(dtype: DType) -> (Type, i64) {
    match dtype {
        DType::F32 => (types::F32, 4),
        DType::F64 => (types::F64, 8),
        DType::I64 => (types::I64, 8),
        DType::Bool => (types::I8, 1),
        DType::C64 => (types::I64, 8),
    }
}

/// The byte size of one element.
pub(crate) fn elem_bytes(dtype: DType) -> usize {
    elem(dtype).1 as usize
}

/// Loads and stores of buffers: never trapping, alignment not assumed.
pub(crate) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'s, 'p, 'f> FnLower<'s, 'p, 'f> {
    /// Lowers `func` into `b` (the function's context and signature are set).
    pub fn lower(sh: &'s mut Shared<'p>, mut b: FunctionBuilder<'f>, func: &Func) -> Result<(), ClifError> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let fused = fuse::fused(func);
        let mut last_use = last_uses(func);
        fuse::extend_last_uses(func, &fused, &mut last_use);
        let (irfft_parts, skipped) = padded_parts(func);
        for (pos, inst) in func.body.iter().enumerate() {
            if let Some((re, im)) = irfft_parts.get(&inst.result) {
                for h in [re, im] {
                    let last = last_use.entry(*h).or_insert(pos);
                    if *last != END {
                        *last = (*last).max(pos);
                    }
                }
            }
        }
        let mut l = FnLower {
            sh,
            b,
            ctx: p[0],
            key: p[1],
            syms: Vec::new(),
            sizes: HashMap::new(),
            depth: 0,
            vals: HashMap::new(),
            roots: Vec::new(),
            last_use,
            elementwise_readers: elementwise_readers(func, false),
            concat_readers: elementwise_readers(func, true),
            refs: HashMap::new(),
            pos: 0,
            fused,
            pending: HashMap::new(),
            outs: None,
            result_slot: HashMap::new(),
            target: None,
            direct: HashMap::new(),
            spectral: spectral(func),
            irfft_parts,
            skipped,
        };
        l.load_symbols();
        l.body(func, p[2], p[3])?;
        l.b.seal_all_blocks();
        let config = l.sh.module.target_config();
        l.b.finalize(config);
        Ok(())
    }

    fn load_symbols(&mut self) {
        let table = self.b.ins().load(types::I64, mem(), self.ctx, rt::SYMS);
        for i in 0..self.sh.syms.len() {
            let v = self.b.ins().load(types::I64, mem(), table, 8 * i as i32);
            self.syms.push(v);
        }
    }

    fn body(&mut self, func: &Func, args: Value, outs: Value) -> Result<(), ClifError> {
        for (i, (id, ty)) in func.args.iter().enumerate() {
            let ptr = self.b.ins().load(types::I64, mem(), args, 8 * i as i32);
            self.sh.checks.insert(ty.clone());
            let root = self.new_root(ptr, None);
            self.define(*id, ptr, ty.clone(), root);
        }
        self.outs = Some(outs);
        for (k, r) in func.results.iter().enumerate().rev() {
            self.result_slot.insert(*r, k);
        }
        for (pos, inst) in func.body.iter().enumerate() {
            self.pos = pos;
            self.target = self.result_target(inst);
            self.inst(inst)?;
            self.target = None;
            self.release(pos);
        }
        for (k, r) in func.results.iter().enumerate() {
            let v = self.val(*r);
            if self.direct.get(&k) == Some(&v.ptr) {
                continue;
            }
            let dst = self.b.ins().load(types::I64, mem(), outs, 8 * k as i32);
            let bytes = self.bytes(&v.ty);
            self.call_rt("archc_clif_copy", &[types::I64; 3], &[], &[dst, v.ptr, bytes]);
        }
        for r in 0..self.roots.len() {
            self.free_root(r);
        }
        self.b.ins().return_(&[]);
        Ok(())
    }

    /// The result slot `inst` may write its one result into: it is a result of the
    /// function, and not an op whose lowering allocates other buffers of its type first
    /// (`call`, `stack`, `vmap`, `scan`).
    fn result_target(&self, inst: &Inst) -> Option<(usize, TensorType)> {
        let control = matches!(inst.op, Op::Call(_) | Op::Stack(_) | Op::Vmap { .. } | Op::Scan { .. });
        if control || !inst.extra.is_empty() {
            return None;
        }
        self.result_slot.get(&inst.result).map(|&k| (k, inst.ty.clone()))
    }

    /// Lowers one instruction (its results are defined afterwards).
    fn inst(&mut self, inst: &Inst) -> Result<(), ClifError> {
        for (_, t) in inst.results() {
            self.sh.checks.insert(t.clone());
        }
        if self.skipped.contains(&inst.result) {
            return Ok(()); // Read through the heads by an `irfft` ([`padded_parts`]).
        }
        match &inst.op {
            Op::Param(name) => self.param(inst, name),
            Op::Const(_) | Op::Iota { .. } | Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast => {
                ew::lower(self, inst)
            }
            Op::Real | Op::Imag | Op::Complex => ew::lower(self, inst),
            Op::Reduce { .. } => reduce::lower(self, inst),
            Op::Reshape
            | Op::StopGradient
            | Op::Permute(_)
            | Op::Broadcast
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Pad { .. } => movement::lower(self, inst),
            Op::Call(_) | Op::Stack(_) | Op::Vmap { .. } | Op::Scan { .. } => control::lower(self, inst),
            Op::ArgMax { .. } | Op::ArgSort { .. } | Op::MatMul | Op::Einsum(_) | Op::Conv { .. } | Op::Pool { .. } => {
                kernel::lower(self, inst)
            }
            Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Rfft { .. } | Op::Irfft { .. } => kernel::lower(self, inst),
            Op::RandUniform { .. } | Op::RandNormal { .. } => kernel::lower(self, inst),
        }
    }

    fn param(&mut self, inst: &Inst, name: &str) -> Result<(), ClifError> {
        let idx = self.sh.program.params.iter().position(|p| p.name == name);
        let decl_ty = idx.map(|i| &self.sh.program.params[i].ty);
        let Some(i) = idx.filter(|_| decl_ty == Some(&inst.ty) && inst.ty.const_shape().is_some()) else {
            return Err(ClifError::unsupported(
                "param",
                format!("@{name} is not a declared parameter of type {}", inst.ty),
            ));
        };
        self.sh.params_used.insert(i);
        let table = self.b.ins().load(types::I64, mem(), self.ctx, rt::PARAMS);
        let ptr = self.b.ins().load(types::I64, mem(), table, 8 * i as i32);
        let root = self.new_root(ptr, None);
        self.define(inst.result, ptr, inst.ty.clone(), root);
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Values and buffers

    pub fn val(&self, v: ValueId) -> Val {
        self.vals.get(&v).cloned().expect("verified TIR defines values before use")
    }

    pub fn arg(&self, inst: &Inst, i: usize) -> Val {
        self.val(inst.args[i])
    }

    fn new_root(&mut self, ptr: Value, bytes: Option<Value>) -> usize {
        self.roots.push(Root { ptr, bytes, last: self.pos, freed: false });
        self.roots.len() - 1
    }

    fn define(&mut self, v: ValueId, ptr: Value, ty: TensorType, root: usize) {
        let last = self.last_use.get(&v).copied().unwrap_or(self.pos);
        let r = &mut self.roots[root];
        r.last = r.last.max(last);
        self.vals.insert(v, Val { ptr, ty, root, splat: false, bcast: None });
    }

    /// A fresh buffer of type `ty` (at top level), not yet bound to a value.
    ///
    /// The first allocation of an instruction whose result is a result of the function
    /// ([`FnLower::result_target`]), if of that type, is the caller's result buffer (not
    /// freed; the result is not copied at the end when it is bound to it).
    pub fn alloc(&mut self, ty: &TensorType) -> (Value, usize) {
        debug_assert_eq!(self.depth, 0, "allocations happen at top level");
        if let Some((k, t)) = self.target.take() {
            if t == *ty {
                let outs = self.outs.expect("set before the body");
                let ptr = self.b.ins().load(types::I64, mem(), outs, 8 * k as i32);
                self.direct.insert(k, ptr);
                return (ptr, self.new_root(ptr, None));
            }
        }
        self.sh.checks.insert(ty.clone());
        let bytes = self.bytes(ty);
        let ptr = self.call_rt("archc_clif_alloc", &[types::I64], &[types::I64], &[bytes]).expect("a pointer");
        (ptr, self.new_root(ptr, Some(bytes)))
    }

    /// A scratch buffer freed after the current instruction.
    pub fn scratch(&mut self, ty: &TensorType) -> Value {
        let target = self.target.take();
        let ptr = self.alloc(ty).0;
        self.target = target;
        ptr
    }

    /// Binds result `v` to a buffer from [`FnLower::alloc`].
    pub fn bind(&mut self, v: ValueId, (ptr, root): (Value, usize), ty: &TensorType) {
        self.define(v, ptr, ty.clone(), root);
    }

    /// Binds result `v` to the buffer of `of` (same bytes, another type).
    pub fn alias(&mut self, v: ValueId, of: &Val, ty: &TensorType) {
        debug_assert!(!of.splat && of.bcast.is_none(), "splats are read by elementwise loops only");
        self.define(v, of.ptr, ty.clone(), of.root);
    }

    /// Binds result `v` (of type `ty`) to the one element of `of`, when only elementwise
    /// loops read `v`; `false` (nothing bound) otherwise.
    pub fn splat(&mut self, v: ValueId, of: &Val, ty: &TensorType) -> bool {
        if !self.elementwise_readers.contains(&v) && !self.concat_readers.contains(&v) {
            return false;
        }
        self.define(v, of.ptr, ty.clone(), of.root);
        self.vals.get_mut(&v).expect("defined").splat = true;
        true
    }

    /// Binds result `v` (of type `ty`) to `of` read through `b` (a broadcast), when only
    /// elementwise loops read `v`; `false` (nothing bound) otherwise.
    pub fn lazy_broadcast(&mut self, v: ValueId, of: &Val, ty: &TensorType, b: Bcast) -> bool {
        if !self.elementwise_readers.contains(&v) {
            return false;
        }
        self.define(v, of.ptr, ty.clone(), of.root);
        self.vals.get_mut(&v).expect("defined").bcast = Some(std::rc::Rc::new(b));
        true
    }

    fn release(&mut self, pos: usize) {
        for r in 0..self.roots.len() {
            if self.roots[r].last <= pos {
                self.free_root(r);
            }
        }
    }

    fn free_root(&mut self, r: usize) {
        let root = &mut self.roots[r];
        if root.freed {
            return;
        }
        root.freed = true;
        if let Some(bytes) = root.bytes {
            let ptr = root.ptr;
            self.call_rt("archc_clif_free", &[types::I64; 2], &[], &[ptr, bytes]);
        }
    }
}

/// The values of `func` that only elementwise loops (`ew::map`) read: operands of
/// unary and binary ops, `select` and casts to another dtype, of real, integer or bool
/// dtypes (not i64 `div`/`rem`/`pow`, which run a kernel), and no result; with `concat`,
/// operands of `concat` too.
fn elementwise_readers(func: &Func, concat: bool) -> std::collections::HashSet<ValueId> {
    use archc_compiler::tir::BinaryOp;
    let mut types: HashMap<ValueId, &TensorType> = func.args.iter().map(|(v, t)| (*v, t)).collect();
    for inst in &func.body {
        types.extend(inst.results());
    }
    let mut ok: HashMap<ValueId, bool> = HashMap::new();
    for inst in &func.body {
        for a in &inst.args {
            let d = types.get(a).map(|t| t.dtype);
            let fits = d.is_some_and(|d| d != DType::C64)
                && match &inst.op {
                    Op::Unary(_) | Op::Select => true,
                    Op::Binary(b) => {
                        !(d == Some(DType::I64) && matches!(b, BinaryOp::Div | BinaryOp::Rem | BinaryOp::Pow))
                    }
                    Op::Cast => Some(inst.ty.dtype) != d,
                    Op::Concat { .. } => concat,
                    _ => false,
                };
            *ok.entry(*a).or_insert(true) &= fits;
        }
    }
    for r in &func.results {
        ok.insert(*r, false);
    }
    ok.into_iter().filter(|(_, fits)| *fits).map(|(v, _)| v).collect()
}

/// The Fourier coefficients a transform needs, by result: an `rfft` (not a result of the
/// function) read only through slices from 0 along its axis (constant ends, unit step)
/// needs the first `max(end)`; an `irfft` of `complex(concat(re, 0), concat(im, 0))`
/// (zero padding of the high modes, `pattern::zero_padded`, constant head lengths) reads
/// only the heads' coefficients. The kernel computes (or reads) only those where that is
/// cheaper than a full transform.
fn spectral(func: &Func) -> HashMap<ValueId, usize> {
    use archc_compiler::tir::pattern::zero_padded;
    let def: HashMap<ValueId, &Inst> = func.body.iter().map(|i| (i.result, i)).collect();
    let mut types: HashMap<ValueId, &TensorType> = func.args.iter().map(|(v, t)| (*v, t)).collect();
    for inst in &func.body {
        types.extend(inst.results());
    }
    let mut keep = HashMap::new();
    for inst in &func.body {
        match &inst.op {
            Op::Rfft { axis } if !func.results.contains(&inst.result) => {
                let ends: Option<Vec<i64>> = func
                    .body
                    .iter()
                    .filter(|u| u.args.contains(&inst.result))
                    .map(|u| match &u.op {
                        Op::Slice { start, end, step }
                            if u.args.len() == 1
                                && step.get(*axis) == Some(&1)
                                && start.get(*axis).and_then(|d| d.as_const()) == Some(0) =>
                        {
                            end.get(*axis).and_then(|d| d.as_const())
                        }
                        _ => None,
                    })
                    .collect();
                if let Some(k) = ends.and_then(|e| e.into_iter().max()) {
                    keep.insert(inst.result, k.max(1) as usize);
                }
            }
            Op::Irfft { axis, .. } => {
                let head = |v: ValueId| zero_padded(|x| def.get(&x).copied(), v, *axis);
                let len = |v: ValueId| types.get(&v).and_then(|t| t.shape.get(*axis)?.as_const());
                let heads = def
                    .get(&inst.args[0])
                    .filter(|c| c.op == Op::Complex)
                    .and_then(|c| Some((len(head(c.args[0])?)?, len(head(c.args[1])?)?)));
                if let Some((a, b)) = heads {
                    keep.insert(inst.result, a.max(b).max(1) as usize);
                }
            }
            _ => {}
        }
    }
    keep
}

/// `irfft`s (f32 results) of `complex(concat(re, 0), concat(im, 0))` where nothing else
/// reads the `complex` or the `concat`s and the heads are f32 buffers (not broadcasts,
/// which may be splats): the heads by `irfft` result, and the `concat` and `complex`
/// results, which are then not computed (the kernel reads the heads, the rest being
/// zeros).
fn padded_parts(func: &Func) -> (HashMap<ValueId, (ValueId, ValueId)>, std::collections::HashSet<ValueId>) {
    use archc_compiler::tir::pattern::zero_padded;
    let def: HashMap<ValueId, &Inst> = func.body.iter().map(|i| (i.result, i)).collect();
    let mut readers: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
    for inst in &func.body {
        for a in &inst.args {
            readers.entry(*a).or_default().push(inst.result);
        }
    }
    let only = |v: ValueId, by: ValueId| {
        !func.results.contains(&v) && readers.get(&v).is_some_and(|r| r.iter().all(|&x| x == by))
    };
    let f32_buffer = |v: ValueId| match def.get(&v) {
        Some(d) => d.ty.dtype == DType::F32 && d.extra.is_empty() && d.op != Op::Broadcast,
        None => func.args.iter().any(|(a, t)| *a == v && t.dtype == DType::F32),
    };
    let (mut parts, mut skipped) = (HashMap::new(), std::collections::HashSet::new());
    for inst in &func.body {
        let Op::Irfft { axis, .. } = &inst.op else { continue };
        if inst.ty.dtype != DType::F32 || !inst.extra.is_empty() {
            continue;
        }
        let Some(c) = def.get(&inst.args[0]).filter(|c| c.op == Op::Complex && c.args.len() == 2) else { continue };
        if !only(c.result, inst.result) || !c.extra.is_empty() {
            continue;
        }
        let head = |v: ValueId| zero_padded(|x| def.get(&x).copied(), v, *axis);
        let (Some(re), Some(im)) = (head(c.args[0]), head(c.args[1])) else { continue };
        let padded_only =
            c.args.iter().all(|&a| only(a, c.result) && def.get(&a).is_some_and(|d| matches!(d.op, Op::Concat { .. })));
        if !padded_only || !f32_buffer(re) || !f32_buffer(im) {
            continue;
        }
        let shape = |v: ValueId| {
            def.get(&v)
                .map(|d| &d.ty)
                .or_else(|| func.args.iter().find(|(a, _)| *a == v).map(|(_, t)| t))
                .map(|t| t.shape.clone())
        };
        if shape(re) != shape(im) {
            continue;
        }
        parts.insert(inst.result, (re, im));
        skipped.insert(c.result);
        skipped.extend(c.args.iter().copied());
    }
    (parts, skipped)
}

/// For each value, the position of the last instruction that reads it ([`END`] for the
/// function's results).
fn last_uses(func: &Func) -> HashMap<ValueId, usize> {
    let mut m = HashMap::new();
    for (pos, inst) in func.body.iter().enumerate() {
        for a in &inst.args {
            m.insert(*a, pos);
        }
    }
    for r in &func.results {
        m.insert(*r, END);
    }
    m
}
