//! Test helpers: hand-built TIR programs and tensor assertions.

use archc_compiler::tir::{DType, Dim, Func, Inst, Op, Program, TensorType, ValueId};
use archc_runtime::{Interpreter, RunError, Tensor};

/// A tensor type from dim texts: `ty(DType::F32, &["B", "4"])`.
pub fn ty(dtype: DType, dims: &[&str]) -> TensorType {
    TensorType::new(dtype, dims.iter().map(|d| Dim::parse(d).unwrap()).collect())
}

/// A tensor type with constant dims.
pub fn tt(dtype: DType, shape: &[usize]) -> TensorType {
    TensorType::new(dtype, shape.iter().map(|&d| Dim::constant(d as i64)).collect())
}

/// The concrete type of a tensor.
pub fn type_of(t: &Tensor) -> TensorType {
    tt(t.dtype(), &t.shape)
}

/// Builds one function instruction by instruction.
pub struct FuncBuilder {
    func: Func,
    next: u32,
}

impl FuncBuilder {
    pub fn new(name: &str) -> Self {
        let func = Func {
            name: name.into(),
            args: vec![],
            arg_names: vec![],
            body: vec![],
            results: vec![],
            result_names: vec![],
        };
        FuncBuilder { func, next: 0 }
    }

    fn fresh(&mut self) -> ValueId {
        self.next += 1;
        ValueId(self.next - 1)
    }

    pub fn arg(&mut self, ty: TensorType) -> ValueId {
        let v = self.fresh();
        self.func.args.push((v, ty));
        self.func.arg_names.push(format!("a{}", v.0));
        v
    }

    pub fn inst(&mut self, op: Op, args: &[ValueId], ty: TensorType) -> ValueId {
        let result = self.fresh();
        self.func.body.push(Inst::new(result, op, args.to_vec(), ty));
        result
    }

    /// An instruction with one result per type in `tys`.
    pub fn inst_multi(&mut self, op: Op, args: &[ValueId], tys: &[TensorType]) -> Vec<ValueId> {
        let results: Vec<(ValueId, TensorType)> = tys.iter().map(|t| (self.fresh(), t.clone())).collect();
        let ids = results.iter().map(|(v, _)| *v).collect();
        self.func.body.push(Inst::with_results(op, args.to_vec(), results));
        ids
    }

    pub fn finish(mut self, results: &[ValueId]) -> Func {
        self.func.results = results.to_vec();
        self.func.result_names = results.iter().map(|r| format!("r{}", r.0)).collect();
        self.func
    }
}

pub fn program(funcs: Vec<Func>) -> Program {
    Program { name: "test".into(), params: vec![], funcs }
}

/// Runs a one-instruction `main` whose args are typed exactly as `inputs`.
pub fn run_op(op: Op, inputs: &[Tensor], result: TensorType) -> Result<Tensor, RunError> {
    let mut f = FuncBuilder::new("main");
    let args: Vec<ValueId> = inputs.iter().map(|t| f.arg(type_of(t))).collect();
    let r = f.inst(op, &args, result);
    let p = program(vec![f.finish(&[r])]);
    Interpreter::new(&p).run("main", inputs).map(|mut v| v.remove(0))
}

/// `run_op`, unwrapped.
pub fn eval(op: Op, inputs: &[Tensor], result: TensorType) -> Tensor {
    run_op(op, inputs, result).unwrap_or_else(|e| panic!("{e}"))
}

/// The error message of a failing `run_op`.
pub fn eval_err(op: Op, inputs: &[Tensor], result: TensorType) -> String {
    match run_op(op, inputs, result) {
        Ok(t) => panic!("expected an error, got {t}"),
        Err(e) => e.to_string(),
    }
}

pub fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec())
}

pub fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape, v.to_vec())
}

pub fn bools(shape: &[usize], v: &[bool]) -> Tensor {
    Tensor::from_bool(shape, v.to_vec())
}

/// Asserts equal shape and dtype and values within `tol` (absolute and relative).
#[track_caller]
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f64) {
    if let Err(e) = got.check_close(want, tol, tol) {
        panic!("{e}\n got: {got}\nwant: {want}");
    }
}

/// Deterministic pseudo-random f32 values in [-1, 1) (a small LCG; no dependency).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
