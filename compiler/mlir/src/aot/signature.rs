//! The check that an artifact's manifest states the signatures of the program its
//! sources build: the loader trusts them to size buffers and parameter arguments, so a
//! changed one would let compiled code read and write out of bounds.
//!
//! Contract: [`check`] emits each function of the artifact again from the rebuilt
//! program (the front end and the MLIR emitter only, no LLVM), with the manifest's
//! dynamic symbols dynamic and its other sizes as stated, and refuses the artifact unless
//! inputs, outputs, dynamic symbols (and the axes they are read from), parameters (names,
//! types, order) and parameter globals are all equal. The error
//! ([`ArtifactError::Mismatch`]) names the function and the first difference.

use super::{AotTarget, Artifact, FuncEntry};
use crate::emit::{emit_module_dynamic, Module, Shape, Target, Ty};
use crate::error::{ArtifactError, Error, Result};
use archc_compiler::tir::{Program, TensorType};
use archc_runtime::interp::bind::{eval_shape, DimEnv};

/// Refuses `art` unless every function's signature is the one `program` gives.
pub fn check(program: &Program, art: &Artifact) -> Result<()> {
    for f in &art.funcs {
        let rebuilt = rebuild(program, f, &art.target)
            .map_err(|e| mismatch(&f.name, format!("cannot be rebuilt as the manifest states it ({e})")))?;
        if let Some(what) = difference(&f.sig, &rebuilt) {
            return Err(mismatch(&f.name, what));
        }
    }
    Ok(())
}

fn mismatch(func: &str, what: String) -> Error {
    Error::Artifact(ArtifactError::Mismatch { func: func.to_string(), what })
}

/// `f` emitted from `program` for inputs like the manifest's, its dynamic symbols
/// dynamic (each given a distinct size to bind the rest).
fn rebuild(program: &Program, f: &FuncEntry, target: &AotTarget) -> Result<Module> {
    let syms: Vec<String> = f.sig.dynamic.iter().map(|(s, ..)| s.clone()).collect();
    let env: DimEnv = syms.iter().enumerate().map(|(k, s)| (s.clone(), 3 + 2 * k as i64)).collect();
    let input = |(dt, dims): &Ty| Ok((*dt, eval_shape(dims, &env).map_err(Error::Input)?));
    let inputs: Vec<Shape> = f.sig.inputs.iter().map(input).collect::<Result<_>>()?;
    let target = match target {
        AotTarget::Cpu => Target::Cpu,
        AotTarget::Cuda(_) => Target::Gpu,
    };
    Ok(emit_module_dynamic(program, &f.name, &inputs, &syms, None, target)?)
}

/// The first difference between the manifest's signature and the rebuilt one, if any.
fn difference(manifest: &Module, rebuilt: &Module) -> Option<String> {
    let dynamic = || {
        (manifest.dynamic != rebuilt.dynamic).then(|| {
            let (m, r) = (dynamic_text(&manifest.dynamic), dynamic_text(&rebuilt.dynamic));
            format!("reads dynamic sizes {m} in the manifest, {r} when rebuilt")
        })
    };
    let globals = || {
        (manifest.param_globals != rebuilt.param_globals)
            .then(|| "sets its parameters through other globals than when rebuilt".to_string())
    };
    types("input", &manifest.inputs, &rebuilt.inputs)
        .or_else(|| types("output", &manifest.outputs, &rebuilt.outputs))
        .or_else(dynamic)
        .or_else(|| params(&manifest.params, &rebuilt.params))
        .or_else(globals)
}

/// The first difference between the `what`s (`input`, `output`) of the two signatures.
fn types(what: &str, manifest: &[Ty], rebuilt: &[Ty]) -> Option<String> {
    if manifest.len() != rebuilt.len() {
        return Some(format!("has {} {what}s in the manifest, {} when rebuilt", manifest.len(), rebuilt.len()));
    }
    let (i, (m, r)) = manifest.iter().zip(rebuilt).enumerate().find(|(_, (m, r))| m != r)?;
    Some(format!("{what} {i} is {} in the manifest, {} when rebuilt", ty_text(m), ty_text(r)))
}

/// The first difference between the parameters of the two signatures.
fn params(manifest: &[(String, Shape)], rebuilt: &[(String, Shape)]) -> Option<String> {
    if manifest.len() != rebuilt.len() {
        return Some(format!("has {} parameters in the manifest, {} when rebuilt", manifest.len(), rebuilt.len()));
    }
    let (i, ((mn, ms), (rn, rs))) = manifest.iter().zip(rebuilt).enumerate().find(|(_, (m, r))| m != r)?;
    let (m, r) = (shape_text(ms), shape_text(rs));
    Some(format!("parameter {i} is {mn}: {m} in the manifest, {rn}: {r} when rebuilt"))
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
