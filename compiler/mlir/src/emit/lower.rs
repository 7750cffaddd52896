//! Lowering of one specialised TIR function: binds its arguments, lowers each instruction
//! through the op families (`scalar`, `linalg`, `data`, `fft`, `control`), and returns the
//! `func.func` text.

use super::builder::{Builder, V};
use super::types::tensor;
use super::{concrete, EmitError, EmitResult, Emitter, Job, Ty};
use archc_compiler::tir::{pattern, DType, Func, Inst, Op, ReduceOp, ValueId};
use archc_runtime::interp::bind::DimEnv;
use std::collections::{HashMap, HashSet};

/// Per-function lowering state.
pub(crate) struct FnLower<'e, 'p, 'l> {
    pub em: &'e mut Emitter<'p, 'l>,
    pub b: Builder,
    /// Symbols with constant values.
    pub env: DimEnv,
    /// Dynamic symbols (read from argument axes at run time).
    pub dynamic: Vec<(String, usize, usize)>,
    vals: HashMap<ValueId, V>,
    plan: Plan,
    /// Results of transposes that swap the last two axes, by SSA name: their source, so
    /// that a matrix product reads it as a strided view instead (see `library_matmul`).
    pub swapped: HashMap<String, V>,
    /// `[B * N, K]` reshapes of swapped `[B, N, K]` values ([`Self::swapped`]): the
    /// source `[B, K, N]`. A product reads the rows as a batched product over the
    /// source's strided view (`FnLower::product_of_swapped_rows`).
    pub swapped_rows: HashMap<String, V>,
    /// DFT twiddle tables computed so far, by (inverse, rows, cols, dtype).
    pub tables: HashMap<(bool, usize, usize, DType), V>,
}

/// Shortcuts found before lowering: spectral ones (see the `fft` module) and batched
/// products summed over their batch.
#[derive(Default)]
struct Plan {
    /// `rfft` results read only through leading slices: the coefficients to compute.
    rfft_keep: HashMap<ValueId, usize>,
    /// `irfft` results whose operand is `complex(re, im)` with both parts zero-padded
    /// (`pattern::zero_padded`): the heads.
    irfft_parts: HashMap<ValueId, (ValueId, ValueId)>,
    /// `reduce.sum` over axis 0 of a rank-3 `matmul` used nowhere else: the product's
    /// operands; the product is lowered with the sum ([`FnLower::summed_matmul`]).
    summed: HashMap<ValueId, (ValueId, ValueId)>,
    /// Those products, not lowered on their own.
    deferred: HashSet<ValueId>,
    /// Float `reduce.sum`s of a broadcast scalar constant (how gradients spell a symbolic
    /// size: a sum of ones), by result: the constant ([`FnLower::constant_sum`]).
    const_sums: HashMap<ValueId, f64>,
    /// `gather`/`scatter_add` results whose indices provably lie in `[-n, n)`
    /// (`pattern::int_range`): no run-time check.
    in_range: HashSet<ValueId>,
}

impl Plan {
    fn of(func: &Func, env: &DimEnv) -> Plan {
        let def: HashMap<ValueId, &Inst> = func.body.iter().map(|i| (i.result, i)).collect();
        let mut plan = Plan::default();
        (plan.summed, plan.deferred) = summed_products(func, &def);
        for inst in &func.body {
            match &inst.op {
                Op::Rfft { axis } if !func.results.contains(&inst.result) => {
                    let uses: Vec<&Inst> = func.body.iter().filter(|u| u.args.contains(&inst.result)).collect();
                    let ends: Option<Vec<i64>> = uses
                        .iter()
                        .map(|u| match &u.op {
                            Op::Slice { start, end, step } if step[*axis] == 1 && start[*axis].eval(env) == Some(0) => {
                                end[*axis].eval(env)
                            }
                            _ => None,
                        })
                        .collect();
                    if let Some(k) = ends.and_then(|e| e.into_iter().max()) {
                        plan.rfft_keep.insert(inst.result, k.max(1) as usize);
                    }
                }
                Op::Reduce { op: ReduceOp::Sum, .. } if matches!(inst.ty.dtype, DType::F32 | DType::F64) => {
                    if let Some(c) = pattern::broadcast_constant(|v| def.get(&v).copied(), inst.args[0]) {
                        plan.const_sums.insert(inst.result, c);
                    }
                }
                Op::Gather { axis } | Op::ScatterAdd { axis } => {
                    let size = |i: &Inst, a: usize| i.ty.shape.get(a).and_then(|d| d.eval(env));
                    let range = pattern::int_range(|x| def.get(&x).copied(), size, inst.args[1]);
                    let n = func.type_of(inst.args[0]).and_then(|t| t.shape[*axis].eval(env));
                    if let (Some((lo, hi)), Some(n)) = (range, n) {
                        if lo >= -n && hi < n {
                            plan.in_range.insert(inst.result);
                        }
                    }
                }
                Op::Irfft { axis, .. } => {
                    let head = |v: ValueId| pattern::zero_padded(|x| def.get(&x).copied(), v, *axis);
                    let parts = def
                        .get(&inst.args[0])
                        .filter(|c| c.op == Op::Complex)
                        .and_then(|c| Some((head(c.args[0])?, head(c.args[1])?)));
                    if let Some(p) = parts {
                        plan.irfft_parts.insert(inst.result, p);
                    }
                }
                _ => {}
            }
        }
        plan
    }
}

/// `reduce.sum` results over axis 0 (not kept) of rank-3 `matmul` results that nothing
/// else reads, mapped to the product's operands; and the products.
fn summed_products(
    func: &Func,
    def: &HashMap<ValueId, &Inst>,
) -> (HashMap<ValueId, (ValueId, ValueId)>, HashSet<ValueId>) {
    let mut uses: HashMap<ValueId, usize> = HashMap::new();
    for v in func.body.iter().flat_map(|i| i.args.iter()).chain(&func.results) {
        *uses.entry(*v).or_default() += 1;
    }
    let (mut summed, mut deferred) = (HashMap::new(), HashSet::new());
    for inst in &func.body {
        let Op::Reduce { op: ReduceOp::Sum, axes, keepdim: false } = &inst.op else { continue };
        let Some(p) = def.get(&inst.args[0]).filter(|p| p.op == Op::MatMul) else { continue };
        if axes == &[0] && p.ty.rank() == 3 && uses.get(&p.result) == Some(&1) {
            summed.insert(inst.result, (p.args[0], p.args[1]));
            deferred.insert(p.result);
        }
    }
    (summed, deferred)
}

pub(crate) fn lower_func(em: &mut Emitter, job: &Job) -> EmitResult<String> {
    let func: &Func = em.program.func(&job.func).expect("requested functions exist");
    let func = func.clone();
    let plan = Plan::of(&func, &job.env);
    let mut l = FnLower {
        em,
        b: Builder::new(),
        env: job.env.clone(),
        dynamic: job.dynamic.clone(),
        vals: HashMap::new(),
        plan,
        swapped: HashMap::new(),
        swapped_rows: HashMap::new(),
        tables: HashMap::new(),
    };
    l.b.scalar_maps = l.em.target == super::Target::Cpu;
    let mut params = vec!["%seed: i64".to_string(), "%fkey: i64".to_string()];
    for (sym, i, axis) in &job.dynamic {
        let (dt, shape) = &job.inputs[*i];
        l.b.bind_symbol(sym, &format!("%a{i}"), *axis, &tensor(*dt, shape));
    }
    for (i, ((id, decl), (dt, shape))) in func.args.iter().zip(&job.inputs).enumerate() {
        let name = format!("%a{i}");
        let param_ty = tensor(*dt, shape);
        params.push(format!("{name}: {param_ty}"));
        // The argument's sizes in this function's symbols; where the caller's type has a
        // dynamic size that is constant here (or the reverse), a cast.
        let (_, dims) = concrete(decl, &l.env, &l.dynamic).map_err(|e| e.at(format!("@{}", func.name)))?;
        let v = V { name: name.clone(), dtype: *dt, shape: dims };
        let v = match v.ty() == param_ty {
            true => v,
            false => V { name: l.b.assign(format!("tensor.cast {name} : {param_ty} to {}", v.ty())), ..v },
        };
        l.vals.insert(*id, v);
    }
    for inst in &func.body {
        l.b.loc = inst.span.and_then(|s| l.em.locator.and_then(|f| f(s)));
        l.inst(inst).map_err(|e| e.at(format!("in @{}, {} = {}", func.name, inst.result, inst.op.name())))?;
    }
    l.b.loc = None;
    if let Some(e) = l.b.size_error.take() {
        return Err(e.at(format!("in @{}", func.name)));
    }
    let results: Vec<V> = func.results.iter().map(|r| l.get(*r)).collect::<EmitResult<_>>()?;
    let names: Vec<&str> = results.iter().map(|v| v.name.as_str()).collect();
    let tys: Vec<String> = job.outputs.iter().map(|(d, s)| tensor(*d, s)).collect();
    if results.is_empty() {
        l.b.raw("return");
    } else {
        l.b.raw(format!("return {} : {}", names.join(", "), tys.join(", ")));
    }
    let mut text = format!("  func.func private @{}({}) -> ({}) {{\n", job.mangled, params.join(", "), tys.join(", "));
    for line in l.b.into_lines() {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("  }\n");
    Ok(text)
}

impl FnLower<'_, '_, '_> {
    pub fn get(&self, v: ValueId) -> EmitResult<V> {
        self.vals.get(&v).cloned().ok_or_else(|| EmitError::Malformed(format!("{v} is not defined")))
    }

    fn inst(&mut self, inst: &Inst) -> EmitResult<()> {
        if let Some(operands) = self.plan.summed.get(&inst.result).copied() {
            return self.summed_inst(inst, operands);
        }
        if self.plan.deferred.contains(&inst.result) {
            return Ok(()); // Lowered with its sum.
        }
        let args: Vec<V> = inst.args.iter().map(|a| self.get(*a)).collect::<Result<_, _>>()?;
        let outs: Vec<Ty> =
            inst.results().map(|(_, t)| concrete(t, &self.env, &self.dynamic)).collect::<Result<_, _>>()?;
        let values = self.op(inst, &args, &outs)?;
        if values.len() != outs.len() {
            return Err(EmitError::Mismatch(format!("lowered to {} results, declared {}", values.len(), outs.len())));
        }
        let truncated = self.plan.rfft_keep.contains_key(&inst.result);
        for ((r, v), (dt, shape)) in inst.result_ids().zip(values).zip(&outs) {
            if (v.dtype != *dt || &v.shape != shape) && !truncated {
                return Err(EmitError::Mismatch(format!("lowered to {}, declared {}", v.ty(), tensor(*dt, shape))));
            }
            self.vals.insert(r, v);
        }
        Ok(())
    }

    /// `inst`, the sum over the batch of the product of `operands` (see [`Plan::summed`]).
    fn summed_inst(&mut self, inst: &Inst, operands: (ValueId, ValueId)) -> EmitResult<()> {
        let a = self.get(operands.0)?;
        let b = self.get(operands.1)?;
        let out = concrete(&inst.ty, &self.env, &self.dynamic)?;
        let v = self.summed_matmul(&a, &b, &out)?;
        self.vals.insert(inst.result, v);
        Ok(())
    }

    fn op(&mut self, inst: &Inst, a: &[V], outs: &[Ty]) -> EmitResult<Vec<V>> {
        let out = &outs[0];
        let one = |v: V| Ok(vec![v]);
        match &inst.op {
            Op::Param(name) => one(self.param(name)?),
            Op::Const(c) => one(self.constant(*c, out)),
            Op::Iota { axis } => one(self.iota(*axis, out)),
            Op::Unary(u) => one(self.unary(*u, &a[0], out)?),
            Op::Binary(op) => one(self.binary(*op, &a[0], &a[1], out)?),
            Op::Select => one(self.select(&a[0], &a[1], &a[2])),
            Op::Cast => one(self.cast(&a[0], out.0)),
            Op::Reduce { op, axes, keepdim } => match self.plan.const_sums.get(&inst.result) {
                Some(&c) => one(self.constant_sum(c, &a[0], axes, out)),
                None => one(self.reduce(*op, axes, *keepdim, &a[0], out)?),
            },
            Op::ArgMax { axis, keepdim } => one(self.argmax(*axis, *keepdim, &a[0], out)?),
            Op::ArgSort { axis, descending } => one(self.argsort(*axis, *descending, &a[0])?),
            Op::StopGradient => one(a[0].clone()),
            Op::MatMul => one(self.matmul(&a[0], &a[1], out)),
            Op::Einsum(spec) => one(self.einsum(spec, a, out)?),
            Op::Conv { stride, padding, dilation, groups } => {
                let spec = super::conv::ConvSpec { stride, padding, dilation, groups: *groups };
                one(self.conv(&a[0], &a[1], &spec, out)?)
            }
            Op::Pool { op, window, stride, padding } => one(self.pool(*op, &a[0], window, stride, padding, out)?),
            Op::Reshape => one(self.reshape(&a[0], &out.1)?),
            Op::Permute(perm) => one(self.permute(&a[0], perm)),
            Op::Broadcast => one(self.broadcast(&a[0], &out.1)?),
            Op::Slice { start, end, step } => one(self.slice(&a[0], start, end, step, out)?),
            Op::Concat { axis } => one(self.concat(a, *axis, out)),
            Op::Pad { padding, value } => one(self.pad(&a[0], padding, *value, out)),
            Op::Gather { axis } => {
                let check = !self.plan.in_range.contains(&inst.result);
                one(self.gather(&a[0], &a[1], *axis, out, check))
            }
            Op::ScatterAdd { axis } => {
                let check = !self.plan.in_range.contains(&inst.result);
                one(self.scatter_add(&a[0], &a[1], &a[2], *axis, check)?)
            }
            Op::Rfft { axis } => {
                let keep = self.plan.rfft_keep.get(&inst.result).copied();
                one(self.rfft(&a[0], *axis, out, keep)?)
            }
            Op::Irfft { axis, .. } => match self.plan.irfft_parts.get(&inst.result).copied() {
                Some((re, im)) => {
                    let (re, im) = (self.get(re)?, self.get(im)?);
                    one(self.irfft_parts(&re, &im, *axis, out)?)
                }
                None => one(self.irfft(&a[0], *axis, out)?),
            },
            Op::Real => one(self.part(&a[0], false)),
            Op::Imag => one(self.part(&a[0], true)),
            Op::Complex => one(self.complex(&a[0], &a[1])),
            Op::RandUniform { seed } => one(self.rand(*seed, false, out)?),
            Op::RandNormal { seed } => one(self.rand(*seed, true, out)?),
            Op::Call(f) => self.call(f, a, inst.result, outs),
            Op::Stack(fs) => one(self.stack(fs, a, inst.result, out)?),
            Op::Vmap { func, keep, out_keep } => self.vmap(func, keep, out_keep, a, outs, inst.result),
            Op::Scan { func, axis, carries, xs, reverse } => {
                self.scan(func, *axis, *carries, *xs, *reverse, a, outs, inst.result)
            }
        }
    }
}
