//! `ClifCpu`: the Cranelift tier as an [`Executor`]. Each function is compiled on its
//! first call and serves every later call, whatever the sizes of its inputs; parameters
//! are held by name and read in place by compiled code.

use crate::module::{compile, Compiled};
use archc_compiler::tir::Program;
use archc_runtime::interp::bind::bind_shapes;
use archc_runtime::interp::random::{init_param, param_shape};
use archc_runtime::{CompileTime, Executor, HostState, RunError, Tensor};
use std::collections::HashMap;
use std::time::Duration;

pub struct ClifCpu<'p> {
    program: &'p Program,
    compiled: HashMap<String, Compiled>,
    /// One value per declared parameter, in declaration order.
    params: Vec<Option<Tensor>>,
    /// The compile time of every function compiled so far, in order.
    pub timings: Vec<(String, Duration)>,
    /// Resident state (see `archc_runtime::resident`).
    state: HostState,
}

impl<'p> ClifCpu<'p> {
    pub fn new(program: &'p Program) -> Self {
        let params = vec![None; program.params.len()];
        ClifCpu { program, compiled: HashMap::new(), params, timings: Vec::new(), state: HostState::default() }
    }

    /// Materialises every declared parameter by its `Init` (the interpreter's values).
    pub fn init_params(&mut self, seed: u64) -> Result<(), RunError> {
        for (i, decl) in self.program.params.iter().enumerate() {
            let value =
                init_param(decl, seed).map_err(|message| RunError::Param { name: decl.name.clone(), message })?;
            self.params[i] = Some(value);
        }
        Ok(())
    }

    /// Compiles `func` unless it is compiled already.
    pub fn prepare(&mut self, func: &str) -> Result<&Compiled, RunError> {
        if !self.compiled.contains_key(func) {
            let c = compile(self.program, func)
                .map_err(|e| RunError::Backend { func: func.to_string(), message: e.to_string() })?;
            self.timings.push((func.to_string(), c.compile_time));
            self.compiled.insert(func.to_string(), c);
        }
        Ok(&self.compiled[func])
    }
}

impl Executor for ClifCpu<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        let f = self.program.func(func).ok_or_else(|| RunError::UnknownFunc(func.to_string()))?;
        // The interpreter's argument check gives the same message for bad inputs.
        let shapes: Vec<_> = inputs.iter().map(|t| (t.dtype(), t.shape())).collect();
        bind_shapes(f, &shapes).map_err(|message| RunError::Input { func: func.to_string(), message })?;
        self.prepare(func)?;
        let c = &self.compiled[func];
        for &i in &c.params_used {
            if self.params[i].is_none() {
                let name = self.program.params[i].name.clone();
                return Err(RunError::Param { name, message: "not set".into() });
            }
        }
        let params: Vec<Option<&Tensor>> = self.params.iter().map(|p| p.as_ref()).collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        c.run(&refs, &params, seed).map_err(|message| RunError::Backend { func: func.to_string(), message })
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        let e = |message: String| RunError::Param { name: name.to_string(), message };
        let i = self
            .program
            .params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| e("not declared by the program".into()))?;
        let decl = &self.program.params[i];
        let shape = param_shape(decl).map_err(e)?;
        if value.dtype() != decl.ty.dtype || value.shape() != shape.as_slice() {
            return Err(e(format!("value is {}, declared {}", value.type_string(), decl.ty)));
        }
        self.params[i] = Some(value);
        Ok(())
    }

    fn compile_times(&self) -> Vec<CompileTime> {
        let each = |(func, time): &(String, Duration)| CompileTime {
            tier: "cranelift",
            func: func.clone(),
            time: *time,
            detail: "every size".into(),
        };
        self.timings.iter().map(each).collect()
    }

    fn host_state(&mut self) -> Option<&mut HostState> {
        Some(&mut self.state)
    }
}
