//! Instructions run by a Rust kernel ([`crate::kernels`]): the results are allocated
//! here, their shapes and the operands' are written to a stack array, and
//! `archc_clif_op(ctx, plan, dims, bufs, key)` is called with the index of the
//! instruction's plan in the module's table
//! (native where [`crate::kernels::native::supports`] says so, else the interpreter's
//! implementation). Random ops pass their stream key, `seed ^ op seed ^ frame key`.

use super::FnLower;
use crate::kernels::{native, Kernel, Plan};
use crate::rt;
use crate::ClifError;
use archc_compiler::tir::{Inst, Op, TensorType, ValueId};
use cranelift_codegen::ir::{types, InstBuilder, Value};

pub(crate) fn lower(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    // An `irfft` of zero-padded parts reads the heads (`FnLower::irfft_parts`).
    let parts = l.irfft_parts.get(&inst.result).copied();
    let from_parts = parts.map(|(re, im)| Inst { args: vec![re, im], ..inst.clone() });
    let inst = from_parts.as_ref().unwrap_or(inst);
    let args: Vec<TensorType> = inst.args.iter().map(|a| l.val(*a).ty).collect();
    let kernel = if parts.is_some() || native::supports(inst, &args) { Kernel::Native } else { Kernel::Reference };
    if matches!(inst.op, Op::RandUniform { .. } | Op::RandNormal { .. }) && kernel != Kernel::Native {
        return Err(ClifError::unsupported(inst.op.name(), format!("of type {}", inst.ty)));
    }
    let outs: Vec<(ValueId, (Value, usize), TensorType)> =
        inst.results().map(|(r, t)| (r, l.alloc(t), t.clone())).collect();
    let ptrs: Vec<Value> = outs.iter().map(|(_, o, _)| o.0).collect();
    call(l, inst, kernel, &ptrs, false);
    for (r, out, t) in outs {
        l.bind(r, out, &t);
    }
    Ok(())
}

/// Calls the kernel of `inst` with the result buffers `outs` (allocated by the caller);
/// `refusal`: only to refuse the run.
pub(crate) fn call(l: &mut FnLower, inst: &Inst, kernel: Kernel, outs: &[Value], refusal: bool) {
    let args: Vec<TensorType> = inst.args.iter().map(|a| l.val(*a).ty).collect();
    let mut dims: Vec<Value> = Vec::new();
    let mut bufs: Vec<Value> = Vec::new();
    for a in &inst.args {
        let v = l.val(*a);
        dims.extend(l.shape(&v.ty));
        bufs.push(v.ptr);
    }
    for ((_, t), &out) in inst.results().zip(outs) {
        dims.extend(l.shape(t));
        bufs.push(out);
    }
    let key = match inst.op {
        Op::RandUniform { seed } | Op::RandNormal { seed } => {
            let s = l.b.ins().load(types::I64, super::mem(), l.ctx, rt::SEED);
            let k = l.b.ins().bxor(s, l.key);
            l.b.ins().bxor_imm_s(k, seed as i64)
        }
        _ => l.iconst(0),
    };
    let keep = l.spectral.get(&inst.result).copied();
    let plan = Plan { inst: inst.clone(), args, kernel, syms: l.sh.syms.clone(), refusal, keep };
    let plan_index = l.iconst(l.sh.plans.len() as i64);
    l.sh.plans.push(plan);
    let (d, b) = (l.array(&dims), l.array(&bufs));
    let call = [l.ctx, plan_index, d, b, key];
    l.call_rt("archc_clif_op", &[types::I64; 5], &[], &call);
}
