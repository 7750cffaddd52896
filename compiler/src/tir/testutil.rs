//! Helpers for tests of TIR and its consumers: a function builder that derives result
//! types with [`infer`], type literals, and [`sample_program`], a valid program that uses
//! every op variant (and every unary and binary op) at least once, and multi-result
//! `call`, `vmap` and `scan` instructions.
//!
//! Everything here panics on misuse: it is for tests, not for the compiler.

use super::dim::Dim;
use super::infer::{infer, infer_one, FuncSigs};
use super::ops::{BinaryOp, Init, Op, PoolOp, ReduceOp, UnaryOp, BINARY_OPS, UNARY_OPS};
use super::parse::parse_type;
use super::program::{Func, Inst, ParamDecl, Program, ValueId};
use super::types::TensorType;

/// A tensor type from its text form: `ty("f32[B, 64]")`.
pub fn ty(text: &str) -> TensorType {
    parse_type(text).unwrap_or_else(|e| panic!("bad type `{text}`: {e}"))
}

/// Builds one function, numbering values in order.
pub struct FuncBuilder {
    func: Func,
    next: u32,
}

impl FuncBuilder {
    pub fn new(name: &str) -> Self {
        let func = Func {
            name: name.to_string(),
            args: Vec::new(),
            arg_names: Vec::new(),
            body: Vec::new(),
            results: Vec::new(),
            result_names: Vec::new(),
        };
        FuncBuilder { func, next: 0 }
    }

    fn fresh(&mut self) -> ValueId {
        self.next += 1;
        ValueId(self.next - 1)
    }

    /// Adds an argument of type `t` (text form) named `name`.
    pub fn arg(&mut self, t: &str, name: &str) -> ValueId {
        let v = self.fresh();
        self.func.args.push((v, ty(t)));
        self.func.arg_names.push(name.to_string());
        v
    }

    /// The type of a value defined so far.
    pub fn type_of(&self, v: ValueId) -> &TensorType {
        self.func.type_of(v).expect("value defined")
    }

    /// Appends `op(args)` with its type derived by `infer`; panics when the rules reject it
    /// or give more than one result.
    pub fn op(&mut self, funcs: &dyn FuncSigs, op: Op, args: &[ValueId]) -> ValueId {
        self.push(funcs, op, args, None)
    }

    /// Appends `op(args)` with all its results, typed by `infer`; panics when the rules
    /// reject it.
    pub fn op_multi(&mut self, funcs: &dyn FuncSigs, op: Op, args: &[ValueId]) -> Vec<ValueId> {
        let tys: Vec<&TensorType> = args.iter().map(|a| self.type_of(*a)).collect();
        let ts = infer(&op, &tys, None, funcs).unwrap_or_else(|e| panic!("{e}"));
        self.raw_multi(op, args, ts)
    }

    /// Appends `op(args) : t`, checked by `infer` against the declared type `t`.
    pub fn op_as(&mut self, funcs: &dyn FuncSigs, op: Op, args: &[ValueId], t: &str) -> ValueId {
        self.push(funcs, op, args, Some(ty(t)))
    }

    fn push(&mut self, funcs: &dyn FuncSigs, op: Op, args: &[ValueId], declared: Option<TensorType>) -> ValueId {
        let tys: Vec<&TensorType> = args.iter().map(|a| self.type_of(*a)).collect();
        let t = infer_one(&op, &tys, declared.as_ref(), funcs).unwrap_or_else(|e| panic!("{e}"));
        self.raw(op, args, t)
    }

    /// Appends an instruction without checking it (to build invalid programs).
    pub fn raw(&mut self, op: Op, args: &[ValueId], t: TensorType) -> ValueId {
        let result = self.fresh();
        self.func.body.push(Inst::new(result, op, args.to_vec(), t));
        result
    }

    /// Appends an instruction with results of types `ts` without checking it.
    pub fn raw_multi(&mut self, op: Op, args: &[ValueId], ts: Vec<TensorType>) -> Vec<ValueId> {
        let results: Vec<(ValueId, TensorType)> = ts.into_iter().map(|t| (self.fresh(), t)).collect();
        let ids = results.iter().map(|(v, _)| *v).collect();
        self.func.body.push(Inst::with_results(op, args.to_vec(), results));
        ids
    }

    pub fn finish(mut self, results: &[(ValueId, &str)]) -> Func {
        self.func.results = results.iter().map(|(v, _)| *v).collect();
        self.func.result_names = results.iter().map(|(_, n)| n.to_string()).collect();
        self.func
    }
}

fn param(name: &str, t: &str, init: Init, trainable: bool) -> ParamDecl {
    ParamDecl { name: name.to_string(), ty: ty(t), init, trainable }
}

fn dims(texts: &[&str]) -> Vec<Dim> {
    texts.iter().map(|t| Dim::parse(t).expect("dim")).collect()
}

/// A valid program that uses every op variant, every unary and binary op, every init,
/// odd floats (`-inf`, `1e-5`) and names with dots and digits.
pub fn sample_program() -> Program {
    let mut p = Program {
        name: "Sample".into(),
        params: vec![
            param("fc.w", "f32[8, 16]", Init::Uniform { low: -0.125, high: 0.125 }, true),
            param("fc.b", "f32[16]", Init::Zeros, true),
            param("conv.w", "f32[6, 2, 3]", Init::Normal { mean: 0.0, std: 0.02 }, true),
            param("emb", "f32[100, 8]", Init::Normal { mean: 0.0, std: 1.0 }, true),
            param("cell.w", "f32[4, 16]", Init::Uniform { low: -0.5, high: 0.5 }, true),
            param("bn.mean", "f32[16]", Init::Ones, false),
            param("bn.eps", "f32[16]", Init::Constant(1e-5), false),
        ],
        funcs: Vec::new(),
    };
    p.funcs.push(unary_block("block", "N", UnaryOp::Relu));
    p.funcs.push(unary_block("s.0", "M", UnaryOp::Tanh));
    p.funcs.push(unary_block("s.1", "M", UnaryOp::Sigmoid));
    p.funcs.push(head(&p));
    p.funcs.push(cell(&p));
    p.funcs.push(moments());
    let main = sample_main(&p);
    p.funcs.insert(0, main);
    p
}

/// `(x: f32[sym, 16]) -> f32[sym, 16]`, applying `u`.
fn unary_block(name: &str, sym: &str, u: UnaryOp) -> Func {
    let mut b = FuncBuilder::new(name);
    let x = b.arg(&format!("f32[{sym}, 16]"), "x");
    let y = b.op(&Program::default(), Op::Unary(u), &[x]);
    b.finish(&[(y, "y")])
}

/// The per-sample function of `vmap`: `f32[1, 16] @ f32[16, 4]`.
fn head(p: &Program) -> Func {
    let mut b = FuncBuilder::new("head");
    let x = b.arg("f32[1, 16]", "x");
    let w = b.arg("f32[16, 4]", "w");
    let y = b.op(p, Op::MatMul, &[x, w]);
    b.finish(&[(y, "y")])
}

/// The recurrent cell of `scan`: `h' = tanh(h + x_t @ W)` with the weight passed as an
/// invariant, returning the new state as the carry and as the per-step output.
fn cell(p: &Program) -> Func {
    let mut b = FuncBuilder::new("cell");
    let h = b.arg("f32[K, 16]", "h");
    let x = b.arg("f32[K, 4]", "x_t");
    let w = b.arg("f32[4, 16]", "w");
    let xw = b.op(p, Op::MatMul, &[x, w]);
    let s = b.op(p, Op::Binary(BinaryOp::Add), &[h, xw]);
    let y = b.op(p, Op::Unary(UnaryOp::Tanh), &[s]);
    b.finish(&[(y, "h"), (y, "y")])
}

/// Two results: the mean and the maximum over axis 1 of `f32[M, 16]`.
fn moments() -> Func {
    let p = Program::default();
    let mut b = FuncBuilder::new("moments");
    let x = b.arg("f32[M, 16]", "x");
    let mean = b.op(&p, Op::Reduce { op: ReduceOp::Mean, axes: vec![1], keepdim: false }, &[x]);
    let max = b.op(&p, Op::Reduce { op: ReduceOp::Max, axes: vec![1], keepdim: false }, &[x]);
    b.finish(&[(mean, "mean"), (max, "max")])
}

fn sample_main(p: &Program) -> Func {
    let mut b = FuncBuilder::new("main");
    let x = b.arg("f32[B, 8]", "x");
    let seq = b.arg("f32[B, T, 4]", "seq");
    let tokens = b.arg("i64[B]", "tokens");
    let signal = b.arg("f32[B, 4, L]", "signal");
    let heads = b.arg("f32[B, 16, 4]", "heads");
    let mask = b.arg("bool[B, 16]", "mask \"quoted\"\n");
    let h = dense(&mut b, p, x);
    elementwise(&mut b, p, h, mask);
    reductions(&mut b, p, x, h);
    windows(&mut b, p, signal);
    movement(&mut b, p, h, seq, tokens);
    spectral(&mut b, p, signal);
    creation(&mut b, p);
    let out = functional(&mut b, p, h, seq, heads);
    b.finish(&[(out.0, "out"), (out.1, "states")])
}

/// `x @ W + b` with a broadcast bias.
fn dense(b: &mut FuncBuilder, p: &Program, x: ValueId) -> ValueId {
    let w = b.op_as(p, Op::Param("fc.w".into()), &[], "f32[8, 16]");
    let bias = b.op_as(p, Op::Param("fc.b".into()), &[], "f32[16]");
    let xw = b.op(p, Op::MatMul, &[x, w]);
    let bb = b.op_as(p, Op::Broadcast, &[bias], "f32[B, 16]");
    b.op(p, Op::Binary(BinaryOp::Add), &[xw, bb])
}

fn elementwise(b: &mut FuncBuilder, p: &Program, h: ValueId, mask: ValueId) {
    let not = b.op(p, Op::Unary(UnaryOp::Not), &[mask]);
    for u in UNARY_OPS.iter().filter(|u| **u != UnaryOp::Not) {
        b.op(p, Op::Unary(*u), &[h]);
    }
    let h2 = b.op(p, Op::Unary(UnaryOp::Exp), &[h]);
    for op in BINARY_OPS {
        let (l, r) = if matches!(op, BinaryOp::And | BinaryOp::Or) { (mask, not) } else { (h, h2) };
        b.op(p, Op::Binary(op), &[l, r]);
    }
    let lt = b.op(p, Op::Binary(BinaryOp::Lt), &[h, h2]);
    b.op(p, Op::Select, &[lt, h, h2]);
}

fn reductions(b: &mut FuncBuilder, p: &Program, x: ValueId, h: ValueId) {
    let reduce = |op, axes: &[usize], keepdim| Op::Reduce { op, axes: axes.to_vec(), keepdim };
    b.op(p, reduce(ReduceOp::Sum, &[1], false), &[h]);
    b.op(p, reduce(ReduceOp::Mean, &[1], true), &[h]);
    b.op(p, reduce(ReduceOp::Max, &[0, 1], false), &[h]);
    b.op(p, reduce(ReduceOp::Min, &[], false), &[h]);
    b.op(p, Op::ArgMax { axis: 1, keepdim: false }, &[h]);
    b.op(p, Op::ArgSort { axis: 1, descending: false }, &[h]);
    b.op(p, Op::ArgSort { axis: 0, descending: true }, &[h]);
    b.op(p, Op::StopGradient, &[h]);
    let w = b.op_as(p, Op::Param("fc.w".into()), &[], "f32[8, 16]");
    b.op(p, Op::Einsum("bi,io->bo".into()), &[x, w]);
    b.op(p, Op::Einsum("bi->ib".into()), &[h]);
}

fn windows(b: &mut FuncBuilder, p: &Program, signal: ValueId) {
    let w = b.op_as(p, Op::Param("conv.w".into()), &[], "f32[6, 2, 3]");
    let conv = Op::Conv { stride: vec![1], padding: vec![(1, 1)], dilation: vec![1], groups: 2 };
    let c = b.op(p, conv, &[signal, w]);
    b.op(p, Op::Pool { op: PoolOp::Max, window: vec![2], stride: vec![2], padding: vec![(0, 0)] }, &[c]);
    b.op(p, Op::Pool { op: PoolOp::Avg, window: vec![3], stride: vec![1], padding: vec![(1, 1)] }, &[c]);
}

fn movement(b: &mut FuncBuilder, p: &Program, h: ValueId, seq: ValueId, tokens: ValueId) {
    let r = b.op_as(p, Op::Reshape, &[h], "f32[B, 4, 4]");
    b.op(p, Op::Permute(vec![0, 2, 1]), &[r]);
    b.op(p, Op::Slice { start: dims(&["0", "2"]), end: dims(&["B", "16"]), step: vec![1, 3] }, &[h]);
    b.op(p, Op::Slice { start: dims(&["0", "1", "0"]), end: dims(&["B", "T", "4"]), step: vec![1, 2, 1] }, &[seq]);
    b.op(p, Op::Concat { axis: 1 }, &[h, h]);
    b.op(p, Op::Pad { padding: vec![(0, 0), (1, 2)], value: 0.0 }, &[h]);
    let table = b.op_as(p, Op::Param("emb".into()), &[], "f32[100, 8]");
    let g = b.op(p, Op::Gather { axis: 0 }, &[table, tokens]);
    b.op(p, Op::ScatterAdd { axis: 0 }, &[table, tokens, g]);
}

fn spectral(b: &mut FuncBuilder, p: &Program, signal: ValueId) {
    let z = b.op(p, Op::Rfft { axis: 2 }, &[signal]);
    b.op(p, Op::Irfft { axis: 2, n: Dim::sym("L") }, &[z]);
    let re = b.op(p, Op::Real, &[z]);
    let im = b.op(p, Op::Imag, &[z]);
    b.op(p, Op::Complex, &[re, im]);
}

fn creation(b: &mut FuncBuilder, p: &Program) {
    b.op_as(p, Op::Const(0.5), &[], "f32[]");
    b.op_as(p, Op::Const(f64::NEG_INFINITY), &[], "f32[]");
    b.op_as(p, Op::Const(3.0), &[], "i64[]");
    let i = b.op_as(p, Op::Iota { axis: 0 }, &[], "i64[16]");
    b.op_as(p, Op::Cast, &[i], "f32[16]");
    b.op_as(p, Op::RandUniform { seed: 3 }, &[], "f32[B, 16]");
    b.op_as(p, Op::RandNormal { seed: 4 }, &[], "f64[B, 16]");
}

/// `call`, `stack`, `vmap` and `scan` (with several results each); returns the vmap
/// result and the stacked scan states.
fn functional(b: &mut FuncBuilder, p: &Program, h: ValueId, seq: ValueId, heads: ValueId) -> (ValueId, ValueId) {
    let c = b.op(p, Op::Call("block".into()), &[h]);
    b.op_multi(p, Op::Call("moments".into()), &[c]);
    let s = b.op(p, Op::Stack(vec!["s.0".into(), "s.1".into()]), &[c]);
    let v = b.op(p, Op::Vmap { func: "head".into(), keep: vec![true, false], out_keep: vec![true] }, &[s, heads]);
    b.op_multi(p, Op::Vmap { func: "moments".into(), keep: vec![true], out_keep: vec![true, false] }, &[s]);
    let w = b.op_as(p, Op::Param("cell.w".into()), &[], "f32[4, 16]");
    let scan = |reverse| Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse };
    let states = b.op_multi(p, scan(false), &[h, seq, w]);
    b.op_multi(p, scan(true), &[h, seq, w]);
    (v, states[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One number per `Op` variant; the match has no wildcard, so a new variant must be
    /// added here (and to the sample).
    fn variant(op: &Op) -> usize {
        match op {
            Op::Param(_) => 0,
            Op::Const(_) => 1,
            Op::Iota { .. } => 2,
            Op::Unary(_) => 3,
            Op::Binary(_) => 4,
            Op::Select => 5,
            Op::Cast => 6,
            Op::Reduce { .. } => 7,
            Op::ArgMax { .. } => 8,
            Op::MatMul => 9,
            Op::Einsum(_) => 10,
            Op::Conv { .. } => 11,
            Op::Pool { .. } => 12,
            Op::Reshape => 13,
            Op::Permute(_) => 14,
            Op::Broadcast => 15,
            Op::Slice { .. } => 16,
            Op::Concat { .. } => 17,
            Op::Pad { .. } => 18,
            Op::Gather { .. } => 19,
            Op::ScatterAdd { .. } => 20,
            Op::Rfft { .. } => 21,
            Op::Irfft { .. } => 22,
            Op::Real => 23,
            Op::Imag => 24,
            Op::Complex => 25,
            Op::RandUniform { .. } => 26,
            Op::RandNormal { .. } => 27,
            Op::Call(_) => 28,
            Op::Stack(_) => 29,
            Op::Vmap { .. } => 30,
            Op::Scan { .. } => 31,
            Op::ArgSort { .. } => 32,
            Op::StopGradient => 33,
        }
    }
    const VARIANTS: usize = 34;

    #[test]
    fn sample_uses_every_op_variant_and_name() {
        let p = sample_program();
        let insts: Vec<&Inst> = p.funcs.iter().flat_map(|f| &f.body).collect();
        let seen: BTreeSet<usize> = insts.iter().map(|i| variant(&i.op)).collect();
        assert_eq!(seen, (0..VARIANTS).collect());
        let names: BTreeSet<String> = insts.iter().map(|i| i.op.name()).collect();
        for u in UNARY_OPS {
            assert!(names.contains(super::super::ops::unary_name(u)), "{u:?}");
        }
        for b in BINARY_OPS {
            assert!(names.contains(super::super::ops::binary_name(b)), "{b:?}");
        }
        for n in ["reduce.sum", "reduce.mean", "reduce.max", "reduce.min", "pool.max", "pool.avg"] {
            assert!(names.contains(n), "{n}");
        }
    }
}
