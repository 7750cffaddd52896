//! The check that an artifact's manifest states the signatures of the program its
//! sources build: the loader trusts them to size buffers and parameter arguments, so a
//! changed one would let compiled code read and write out of bounds.
//!
//! Contract: [`check`] emits each function of the artifact again from the rebuilt
//! program (the front end and the MLIR emitter only, no LLVM), with the manifest's
//! dynamic symbols dynamic and its other sizes as stated, and refuses the artifact unless
//! inputs, outputs, dynamic symbols (and the axes they are read from), parameters (names,
//! types, order) and parameter globals are all equal. The error names the function and
//! the first difference.

use super::{AotTarget, Artifact, FuncEntry};
use crate::emit::{emit_module_dynamic, Module, Shape, Target, Ty};
use archc_compiler::tir::{Program, TensorType};
use archc_runtime::interp::bind::{eval_shape, DimEnv};

/// Refuses `art` unless every function's signature is the one `program` gives.
pub fn check(program: &Program, art: &Artifact) -> Result<(), String> {
    for f in &art.funcs {
        let rebuilt = rebuild(program, f, &art.target)
            .map_err(|e| mismatch(&f.name, &format!("cannot be rebuilt as the manifest states it ({e})")))?;
        compare(&f.sig, &rebuilt).map_err(|what| mismatch(&f.name, &what))?;
    }
    Ok(())
}

fn mismatch(func: &str, what: &str) -> String {
    format!("the artifact's manifest does not match its sources: @{func} {what}; rebuild the artifact")
}

/// `f` emitted from `program` for inputs like the manifest's, its dynamic symbols
/// dynamic (each given a distinct size to bind the rest).
fn rebuild(program: &Program, f: &FuncEntry, target: &AotTarget) -> Result<Module, String> {
    let syms: Vec<String> = f.sig.dynamic.iter().map(|(s, ..)| s.clone()).collect();
    let env: DimEnv = syms.iter().enumerate().map(|(k, s)| (s.clone(), 3 + 2 * k as i64)).collect();
    let inputs: Vec<Shape> =
        f.sig.inputs.iter().map(|(dt, dims)| Ok((*dt, eval_shape(dims, &env)?))).collect::<Result<_, String>>()?;
    let target = match target {
        AotTarget::Cpu => Target::Cpu,
        AotTarget::Cuda(_) => Target::Gpu,
    };
    emit_module_dynamic(program, &f.name, &inputs, &syms, None, target).map_err(|e| e.0)
}

/// The first difference between the manifest's signature and the rebuilt one.
fn compare(manifest: &Module, rebuilt: &Module) -> Result<(), String> {
    types("input", &manifest.inputs, &rebuilt.inputs)?;
    types("output", &manifest.outputs, &rebuilt.outputs)?;
    if manifest.dynamic != rebuilt.dynamic {
        return Err(format!(
            "reads dynamic sizes {} in the manifest, {} when rebuilt",
            dynamic_text(&manifest.dynamic),
            dynamic_text(&rebuilt.dynamic)
        ));
    }
    params(&manifest.params, &rebuilt.params)?;
    if manifest.param_globals != rebuilt.param_globals {
        return Err("sets its parameters through other globals than when rebuilt".into());
    }
    Ok(())
}

fn types(what: &str, manifest: &[Ty], rebuilt: &[Ty]) -> Result<(), String> {
    if manifest.len() != rebuilt.len() {
        return Err(format!("has {} {what}s in the manifest, {} when rebuilt", manifest.len(), rebuilt.len()));
    }
    for (i, (m, r)) in manifest.iter().zip(rebuilt).enumerate() {
        if m != r {
            return Err(format!("{what} {i} is {} in the manifest, {} when rebuilt", ty_text(m), ty_text(r)));
        }
    }
    Ok(())
}

fn params(manifest: &[(String, Shape)], rebuilt: &[(String, Shape)]) -> Result<(), String> {
    if manifest.len() != rebuilt.len() {
        return Err(format!("has {} parameters in the manifest, {} when rebuilt", manifest.len(), rebuilt.len()));
    }
    for (i, ((mn, ms), (rn, rs))) in manifest.iter().zip(rebuilt).enumerate() {
        if mn != rn || ms != rs {
            let (m, r) = (shape_text(ms), shape_text(rs));
            return Err(format!("parameter {i} is {mn}: {m} in the manifest, {rn}: {r} when rebuilt"));
        }
    }
    Ok(())
}

fn ty_text((dt, dims): &Ty) -> String {
    TensorType { dtype: *dt, shape: dims.clone() }.to_string()
}

fn shape_text((dt, sizes): &Shape) -> String {
    archc_runtime::tensor::type_string(*dt, sizes)
}

/// `B (input 0, axis 0)`, or `none`.
fn dynamic_text(dynamic: &[(String, usize, usize)]) -> String {
    let items: Vec<String> = dynamic.iter().map(|(s, i, a)| format!("{s} (input {i}, axis {a})")).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
