//! Symbolic dims at run time: binding a function's size symbols from its inputs, and
//! evaluating declared types to concrete shapes.
//!
//! Binding: every argument dim that is a bare symbol (`B`) binds to the input's size
//! (the same symbol twice must agree); then a dim linear in one still-unbound symbol
//! (`2 * N + 1`) is solved for it when the solution is a non-negative integer; finally
//! every argument dim is evaluated and must equal the input's size.

use crate::tensor::{type_string, Tensor};
use archc_compiler::tir::{DType, Dim, Func};
use std::collections::HashMap;

/// Symbol values of one function activation.
pub type DimEnv = HashMap<String, i64>;

/// Binds `func`'s size symbols from `inputs`, checking count, dtypes, ranks and sizes.
pub fn bind_args(func: &Func, inputs: &[&Tensor]) -> Result<DimEnv, String> {
    let shapes: Vec<(DType, &[usize])> = inputs.iter().map(|x| (x.dtype(), x.shape.as_slice())).collect();
    bind_shapes(func, &shapes)
}

/// [`bind_args`] on the dtypes and shapes of the inputs alone (compilers specialising a
/// function for concrete shapes use it without any data).
pub fn bind_shapes(func: &Func, inputs: &[(DType, &[usize])]) -> Result<DimEnv, String> {
    if inputs.len() != func.args.len() {
        return Err(format!("expects {} inputs, got {}", func.args.len(), inputs.len()));
    }
    let mut env = DimEnv::new();
    for (i, ((_, ty), &(dtype, shape))) in func.args.iter().zip(inputs).enumerate() {
        if ty.dtype != dtype || ty.rank() != shape.len() {
            return Err(format!("input {i} is {}, expected {ty}", type_string(dtype, shape)));
        }
        for (d, &size) in ty.shape.iter().zip(shape) {
            bind_bare(d, size as i64, &mut env)
                .map_err(|m| format!("input {i} ({}): {m}", type_string(dtype, shape)))?;
        }
    }
    solve_linear(func, inputs, &mut env);
    for (i, ((_, ty), &(dtype, shape))) in func.args.iter().zip(inputs).enumerate() {
        let want = eval_shape(&ty.shape, &env).map_err(|m| format!("input {i}: {m}"))?;
        if want != shape {
            return Err(format!("input {i} is {}, expected {ty} = {want:?}", type_string(dtype, shape)));
        }
    }
    Ok(env)
}

fn bind_bare(d: &Dim, size: i64, env: &mut DimEnv) -> Result<(), String> {
    let Some(name) = bare_symbol(d) else { return Ok(()) };
    match env.get(&name) {
        Some(&v) if v != size => Err(format!("{name} is {v} elsewhere but {size} here")),
        _ => {
            env.insert(name, size);
            Ok(())
        }
    }
}

/// The symbol when `d` is exactly one symbol.
pub fn bare_symbol(d: &Dim) -> Option<String> {
    let syms = d.symbols();
    (syms.len() == 1 && *d == Dim::sym(syms[0].clone())).then(|| syms[0].clone())
}

/// Repeatedly solves dims `a * S + b` (after substituting bound symbols) for `S`.
fn solve_linear(func: &Func, inputs: &[(DType, &[usize])], env: &mut DimEnv) {
    loop {
        let mut progress = false;
        for ((_, ty), (_, shape)) in func.args.iter().zip(inputs) {
            for (d, &size) in ty.shape.iter().zip(shape.iter()) {
                if let Some((s, v)) = solve_one(d, size as i64, env) {
                    env.insert(s, v);
                    progress = true;
                }
            }
        }
        if !progress {
            return;
        }
    }
}

/// The one unbound symbol of `d` and its value when `d` (after substituting `env`) is
/// `a * S + b` and `size` gives a non-negative integer `S`.
pub fn solve_one(d: &Dim, size: i64, env: &DimEnv) -> Option<(String, i64)> {
    let unbound: Vec<String> = d.symbols().into_iter().filter(|s| !env.contains_key(s)).collect();
    let [s] = unbound.as_slice() else { return None };
    let bound: HashMap<String, Dim> = env.iter().map(|(k, v)| (k.clone(), Dim::constant(*v))).collect();
    let d = d.subst(&bound);
    let at = |v: i64| d.eval(&HashMap::from([(s.clone(), v)]));
    let b = at(0)?;
    let a = at(1)? - b;
    let linear = Dim::sym(s.clone()).mul(&Dim::constant(a)).add(&Dim::constant(b));
    let ok = a != 0 && d == linear && (size - b) % a == 0 && (size - b) / a >= 0;
    ok.then(|| (s.clone(), (size - b) / a))
}

/// The value of a dim; an error names unbound symbols.
pub fn eval_dim(d: &Dim, env: &DimEnv) -> Result<i64, String> {
    d.eval(env).ok_or_else(|| {
        let missing: Vec<String> = d.symbols().into_iter().filter(|s| !env.contains_key(s)).collect();
        format!("dim `{d}` has unbound symbol(s) {}", missing.join(", "))
    })
}

/// Concrete sizes of a declared shape (each must be non-negative).
pub fn eval_shape(dims: &[Dim], env: &DimEnv) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|d| {
            let v = eval_dim(d, env)?;
            usize::try_from(v).map_err(|_| format!("dim `{d}` is negative ({v})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use archc_compiler::tir::{DType, TensorType, ValueId};

    fn func(shapes: &[&[&str]]) -> Func {
        let args = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let dims = s.iter().map(|d| Dim::parse(d).unwrap()).collect();
                (ValueId(i as u32), TensorType::new(DType::F32, dims))
            })
            .collect();
        Func { name: "f".into(), args, arg_names: vec![], body: vec![], results: vec![], result_names: vec![] }
    }

    #[test]
    fn binds_bare_and_linear_symbols() {
        let f = func(&[&["B", "2 * N + 1"], &["B", "N", "4"]]);
        let x = Tensor::zeros(DType::F32, &[3, 7]);
        let y = Tensor::zeros(DType::F32, &[3, 3, 4]);
        let env = bind_args(&f, &[&x, &y]).unwrap();
        assert_eq!((env["B"], env["N"]), (3, 3));
        let f = func(&[&["2 * N"]]);
        assert_eq!(bind_args(&f, &[&Tensor::zeros(DType::F32, &[8])]).unwrap()["N"], 4);
        assert!(bind_args(&f, &[&Tensor::zeros(DType::F32, &[7])]).is_err());
    }

    #[test]
    fn rejects_inconsistent_inputs() {
        let f = func(&[&["B", "4"], &["B"]]);
        let x = Tensor::zeros(DType::F32, &[2, 4]);
        let e = bind_args(&f, &[&x, &Tensor::zeros(DType::F32, &[3])]).unwrap_err();
        assert!(e.contains("B is 2 elsewhere but 3 here"), "{e}");
        let e = bind_args(&f, &[&Tensor::zeros(DType::F32, &[2, 5]), &Tensor::zeros(DType::F32, &[2])]).unwrap_err();
        assert!(e.contains("expected f32[B, 4]"), "{e}");
        assert!(bind_args(&f, &[&x]).is_err());
        let e = bind_args(&f, &[&x.cast(DType::F64), &Tensor::zeros(DType::F32, &[2])]).unwrap_err();
        assert!(e.contains("input 0 is f64[2, 4]"), "{e}");
    }
}
