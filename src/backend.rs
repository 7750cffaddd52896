//! Execution backends for the CLI: the reference interpreter and the MLIR CPU JIT, and
//! the MLIR text stages of `archc build --emit`.

use crate::driver::parse_pairs;
use crate::inputs::arg_shapes;
use archc_compiler::tir::Program;
use archc_runtime::{Executor, Interpreter};
use std::collections::HashMap;

/// `--dim B=32,N=64` as a map.
pub fn parse_dims(dim: Option<&str>) -> Result<HashMap<String, i64>, String> {
    let Some(d) = dim else { return Ok(HashMap::new()) };
    parse_pairs(d)?
        .into_iter()
        .map(|(k, v)| v.parse::<i64>().map(|n| (k.clone(), n)).map_err(|_| format!("--dim {k}={v}: not an int")))
        .collect()
}

/// The MLIR module of `entry`, specialised for the shapes `--dim` gives its arguments.
pub fn emit_mlir(program: &Program, entry: &str, dim: Option<&str>) -> Result<String, String> {
    let f = program.func(entry).ok_or_else(|| format!("the program has no function @{entry}"))?;
    let shapes = arg_shapes(f, &parse_dims(dim)?)?;
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    let m = archc_mlir::emit::emit_module(program, entry, &inputs, None).map_err(|e| e.to_string())?;
    Ok(m.text)
}

/// What executes a program.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The reference interpreter (every op, exact error messages; slow).
    Interp,
    /// MLIR lowered to LLVM and JIT-compiled for this CPU (compiled once per input shapes).
    MlirCpu,
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Interp
    }
}

/// An executor of `program` on `backend`.
pub fn executor<'p>(program: &'p Program, backend: Backend) -> Result<Box<dyn Executor + 'p>, String> {
    match backend {
        Backend::Interp => Ok(Box::new(Interpreter::new(program))),
        #[cfg(feature = "mlir")]
        Backend::MlirCpu => Ok(Box::new(archc_mlir::backend::MlirCpu::new(program))),
        #[cfg(not(feature = "mlir"))]
        Backend::MlirCpu => Err("this archc was built without the MLIR backend (cargo feature `mlir`)".into()),
    }
}
