//! Ops that compiled code hands to Rust kernels: one entry point, [`archc_clif_op`], with
//! a [`Plan`] per instruction (owned by the compiled module), the run's sizes and the
//! operand and result buffers.
//!
//! Contract: compiled code allocates every result at its declared size and passes the
//! concrete shapes of operands and results (`dims`: each operand's, then each result's,
//! row-major sizes in order); the kernel checks that the op's result shapes are the
//! declared ones before it writes anything, and records a refusal in the context
//! otherwise (or where the interpreter refuses), leaving the results unwritten.
//!
//! Kernels: [`native`] has the contractions (`gemm`: `matmul`, two-operand `einsum`), convolutions (im2col + `gemm`),
//! pooling, gathers and scatters, transforms, `argmax` and random fills; every other op
//! given to [`Kernel::Reference`] runs the interpreter's own implementation on copies of
//! the buffers (one instruction, concrete types), so its values and refusals are the
//! interpreter's. That path copies its operands and results: it is the tier's fallback
//! for ops without a native lowering (listed by `Compiled::reference_ops`).

pub(crate) mod copy;
mod einsum;
mod fft;
mod index;
pub(crate) mod native;
mod window;

use crate::rt::Ctx;
use archc_compiler::tir::{DType, Dim, Func, Inst, Op, Program, TensorType, ValueId};
use archc_runtime::{Data, Interpreter, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// How an instruction's kernel runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// A native kernel of [`native`].
    Native,
    /// The interpreter's implementation on copies of the buffers.
    Reference,
}

/// One instruction's kernel: the instruction (types over the entry's size symbols), its
/// operand types, and the entry's symbol names (for attributes that are dims).
pub struct Plan {
    pub inst: Inst,
    pub args: Vec<TensorType>,
    pub kernel: Kernel,
    pub syms: Arc<Vec<String>>,
    /// Whether the plan runs only to refuse a run (in the interpreter's words).
    pub refusal: bool,
    /// For `rfft`, the leading coefficients its readers use; for `irfft`, how many leading
    /// coefficients of its operand can be nonzero (see `lower::spectral`).
    pub keep: Option<usize>,
}

/// A typed view of a buffer during a kernel call.
pub(crate) struct Buf {
    pub shape: Vec<usize>,
    pub ptr: *mut u8,
}

impl Buf {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The elements as `T`.
    ///
    /// # Safety
    /// The buffer must hold `numel` live elements of `T`.
    pub unsafe fn slice<'a, T>(&self) -> &'a [T] {
        unsafe { std::slice::from_raw_parts(self.ptr as *const T, self.numel()) }
    }

    /// # Safety
    /// As [`Buf::slice`], and nothing else may read or write it meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut<'a, T>(&self) -> &'a mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut T, self.numel()) }
    }
}

/// Runs the kernel of `plan`: see the module docs.
///
/// # Safety
/// `ctx` is the run's context, `plan` an index into its plans; `dims` holds the shapes of the plan's operands and results
/// (their ranks in order) and `bufs` one live buffer of that shape per operand and result.
pub unsafe extern "C" fn archc_clif_op(ctx: *mut Ctx, plan: i64, dims: *const i64, bufs: *const *mut u8, key: i64) {
    let ctx = unsafe { &mut *ctx };
    let plan: &Plan = unsafe { &*ctx.plans.add(plan as usize) };
    let ranks: Vec<usize> =
        plan.args.iter().map(|t| t.rank()).chain(plan.inst.results().map(|(_, t)| t.rank())).collect();
    let total: usize = ranks.iter().sum();
    let flat = unsafe { std::slice::from_raw_parts(dims, total) };
    let ptrs = unsafe { std::slice::from_raw_parts(bufs, ranks.len()) };
    let mut at = 0;
    let mut views = Vec::with_capacity(ranks.len());
    for (r, &ptr) in ranks.iter().zip(ptrs) {
        views.push(Buf { shape: flat[at..at + r].iter().map(|&d| d as usize).collect(), ptr });
        at += r;
    }
    let (ins, outs) = views.split_at(plan.args.len());
    let done = match plan.kernel {
        Kernel::Native => unsafe { native::run(plan, ins, outs, key) },
        Kernel::Reference => unsafe { reference(ctx, plan, ins, outs) },
    };
    if let Err(message) = done {
        ctx.fail(message);
    }
}

/// The interpreter's implementation of the plan's instruction on copies of the buffers.
///
/// # Safety
/// As [`archc_clif_op`].
unsafe fn reference(ctx: &Ctx, plan: &Plan, ins: &[Buf], outs: &[Buf]) -> Result<(), String> {
    let values: Vec<i64> = (0..plan.syms.len()).map(|i| unsafe { *ctx.syms.add(i) }).collect();
    let env: HashMap<String, Dim> = plan.syms.iter().cloned().zip(values.into_iter().map(Dim::constant)).collect();
    let concrete = |t: &TensorType| TensorType::new(t.dtype, t.shape.iter().map(|d| d.subst(&env)).collect());
    let n = plan.args.len() as u32;
    let mut inst = plan.inst.clone();
    inst.op = concrete_op(&inst.op, &env);
    inst.args = (0..n).map(ValueId).collect();
    inst.result = ValueId(n);
    inst.ty = concrete(&inst.ty);
    inst.extra = inst.extra.iter().enumerate().map(|(i, (_, t))| (ValueId(n + 1 + i as u32), concrete(t))).collect();
    let results: Vec<ValueId> = inst.result_ids().collect();
    let func = Func {
        name: "op".into(),
        args: plan.args.iter().enumerate().map(|(i, t)| (ValueId(i as u32), concrete(t))).collect(),
        arg_names: (0..n).map(|i| format!("x{i}")).collect(),
        result_names: results.iter().map(|r| r.to_string()).collect(),
        body: vec![inst],
        results,
    };
    let program = Program { name: "op".into(), params: Vec::new(), funcs: vec![func] };
    let inputs: Vec<Tensor> = plan.args.iter().zip(ins).map(|(t, b)| unsafe { read(t.dtype, b) }).collect();
    let got = Interpreter::new(&program).run("op", &inputs).map_err(|e| match e {
        archc_runtime::RunError::Inst { message, .. } => message,
        e => e.to_string(),
    })?;
    for (t, b) in got.iter().zip(outs) {
        if t.shape() != b.shape.as_slice() {
            return Err(format!("result is {}, declared {:?}", t.type_string(), b.shape));
        }
    }
    for (t, b) in got.iter().zip(outs) {
        unsafe { write(t, b) };
    }
    Ok(())
}

/// `op` with its dim attributes evaluated (slice bounds, `irfft`'s `n`).
fn concrete_op(op: &Op, env: &HashMap<String, Dim>) -> Op {
    let sub = |ds: &[Dim]| ds.iter().map(|d| d.subst(env)).collect();
    match op {
        Op::Slice { start, end, step } => Op::Slice { start: sub(start), end: sub(end), step: step.clone() },
        Op::Irfft { axis, n } => Op::Irfft { axis: *axis, n: n.subst(env) },
        op => op.clone(),
    }
}

/// A tensor copied out of a buffer.
///
/// # Safety
/// `b` must hold `numel` live elements of `dtype`.
pub(crate) unsafe fn read(dtype: DType, b: &Buf) -> Tensor {
    let data = unsafe {
        match dtype {
            DType::F32 => Data::F32(b.slice::<f32>().to_vec()),
            DType::F64 => Data::F64(b.slice::<f64>().to_vec()),
            DType::I64 => Data::I64(b.slice::<i64>().to_vec()),
            DType::Bool => Data::Bool(b.slice::<u8>().iter().map(|&v| v != 0).collect()),
            DType::C64 => Data::C64(b.slice::<archc_runtime::elem::C64>().to_vec()),
        }
    };
    Tensor { shape: b.shape.clone(), data }
}

/// Copies a tensor into a buffer of its shape.
///
/// # Safety
/// `b` must hold `t.numel()` elements of `t`'s dtype.
pub(crate) unsafe fn write(t: &Tensor, b: &Buf) {
    unsafe {
        match &t.data {
            Data::F32(v) => b.slice_mut::<f32>().copy_from_slice(v),
            Data::F64(v) => b.slice_mut::<f64>().copy_from_slice(v),
            Data::I64(v) => b.slice_mut::<i64>().copy_from_slice(v),
            Data::Bool(v) => b.slice_mut::<u8>().iter_mut().zip(v).for_each(|(d, &s)| *d = s as u8),
            Data::C64(v) => b.slice_mut::<archc_runtime::elem::C64>().copy_from_slice(v),
        }
    }
}
