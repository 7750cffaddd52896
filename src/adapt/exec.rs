//! Running chains: many (sample, chain) pairs at once on the resident weights.
//!
//! The prefix runs once per sample ([`Runner::prefix`]); the pairs of one call of
//! [`Runner::eval`] are then walked as a trie of their chains: the samples whose chains
//! share a first block run it as one batch, then split by their second block, and so
//! on; every finished pair's state goes through one batched suffix call. Each function
//! (prefix, each block, suffix) is compiled once, with its batch size dynamic, so new
//! chains never compile anything: [`Runner::compiles`] counts the modules compiled.
//!
//! Contract: a pair's output is the network's output for that sample with the stack
//! running that chain, in the pairs' order, whatever other pairs share the call (the
//! trained order reproduces `@main`'s output exactly with the interpreter).

use super::split::{Split, Src, PREFIX, SUFFIX};
use crate::backend::Backend;
use archc_runtime::data::gather_rows;
use archc_runtime::{Data, Executor, Interpreter, Tensor};
use std::collections::HashSet;

/// What runs the functions: the interpreter, the MLIR CPU backend or the Cranelift tier.
enum Engine<'p> {
    Interp(Interpreter<'p>),
    Clif(archc_clif::ClifCpu<'p>),
    #[cfg(feature = "mlir")]
    Cpu(archc_mlir::backend::MlirCpu<'p>),
}

/// The cut network on an engine, with its weights set.
pub struct Runner<'p> {
    split: &'p Split,
    engine: Engine<'p>,
    /// Function calls made so far.
    pub calls: u64,
    /// Every (function, batch size) called: what a backend compiling each shape
    /// separately would have compiled.
    pub shapes: HashSet<(String, usize)>,
}

/// The per-sample values chains start from: the network's inputs and the prefix's
/// results, one row per sample.
pub struct State {
    pub inputs: Vec<Tensor>,
    pub prefix: Vec<Tensor>,
}

impl State {
    fn get(&self, s: Src) -> &Tensor {
        match s {
            Src::Input(i) => &self.inputs[i],
            Src::Prefix(i) => &self.prefix[i],
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.inputs.first().map_or(0, |t| t.shape.first().copied().unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'p> Runner<'p> {
    /// A runner of `split` on `backend` (the interpreter, `mlir-cpu` or `cranelift`).
    pub fn new(split: &'p Split, backend: Backend) -> Result<Runner<'p>, String> {
        let engine = match backend {
            Backend::Interp => Engine::Interp(Interpreter::new(&split.program)),
            #[cfg(feature = "mlir")]
            Backend::MlirCpu => {
                let syms = batch_symbols(&split.program);
                let syms: Vec<&str> = syms.iter().map(String::as_str).collect();
                Engine::Cpu(archc_mlir::backend::MlirCpu::new(&split.program).with_dynamic(&syms))
            }
            #[cfg(not(feature = "mlir"))]
            Backend::MlirCpu => {
                return Err("this archc was built without the MLIR backend (cargo feature `mlir`)".into())
            }
            Backend::Cranelift => Engine::Clif(archc_clif::ClifCpu::new(&split.program)),
            Backend::MlirGpu => {
                return Err("`archc adapt` runs on the interpreter, mlir-cpu or cranelift, not mlir-gpu yet".into())
            }
            Backend::Auto => {
                return Err("`archc adapt` compiles each function once for every batch size, so it has no use \
                            for tiering: pick --backend cranelift (compiles at once) or mlir-cpu (faster code)"
                    .into())
            }
        };
        Ok(Runner { split, engine, calls: 0, shapes: HashSet::new() })
    }

    fn exec(&mut self) -> &mut dyn Executor {
        match &mut self.engine {
            Engine::Interp(i) => i,
            Engine::Clif(c) => c,
            #[cfg(feature = "mlir")]
            Engine::Cpu(c) => c,
        }
    }

    /// The modules compiled so far (0 for the interpreter, which compiles nothing).
    pub fn compiles(&self) -> usize {
        match &self.engine {
            Engine::Interp(_) => 0,
            Engine::Clif(c) => c.timings.len(),
            #[cfg(feature = "mlir")]
            Engine::Cpu(c) => c.timings.len(),
        }
    }

    /// Sets a parameter of the network.
    pub fn set_param(&mut self, name: &str, value: Tensor) -> Result<(), String> {
        self.exec().set_param_value(name, value).map_err(|e| e.to_string())
    }

    fn call(&mut self, func: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        self.calls += 1;
        let rows = inputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(0);
        self.shapes.insert((func.to_string(), rows));
        self.exec().run_func(func, inputs, 0).map_err(|e| e.to_string())
    }

    /// Runs the prefix on `inputs` (the network's inputs, one row per sample).
    pub fn prefix(&mut self, inputs: Vec<Tensor>) -> Result<State, String> {
        let prefix = if self.split.has_prefix { self.call(PREFIX, &inputs)? } else { Vec::new() };
        Ok(State { inputs, prefix })
    }

    /// The network's first output for each pair `(sample, chain)`, as rows of one tensor
    /// in the pairs' order.
    pub fn eval(&mut self, st: &State, pairs: &[(usize, &[usize])]) -> Result<Tensor, String> {
        if pairs.is_empty() {
            return Err("no chains to evaluate".into());
        }
        let samples: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let h = gather_rows(st.get(self.split.operands[0]), &samples);
        let mut done: Vec<(Vec<usize>, Tensor)> = Vec::new();
        let group: Vec<usize> = (0..pairs.len()).collect();
        self.descend(st, pairs, group, h, 0, &mut done)?;
        let order: Vec<usize> = done.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        let parts: Vec<Tensor> = done.into_iter().map(|(_, t)| t).collect();
        let mut args = vec![concat_rows(&parts)?];
        let rows: Vec<usize> = order.iter().map(|&p| pairs[p].0).collect();
        for &s in &self.split.suffix_args {
            args.push(gather_rows(st.get(s), &rows));
        }
        let out =
            self.call(SUFFIX, &args)?.into_iter().nth(self.split.output).ok_or("the network has no such output")?;
        let mut back = vec![0; order.len()];
        for (row, &p) in order.iter().enumerate() {
            back[p] = row;
        }
        Ok(gather_rows(&out, &back))
    }

    /// Runs position `pos` of the chains of `group` (pairs whose state is `h`, row by row)
    /// and deeper; finished groups with their states go to `done`.
    fn descend(
        &mut self,
        st: &State,
        pairs: &[(usize, &[usize])],
        group: Vec<usize>,
        h: Tensor,
        pos: usize,
        done: &mut Vec<(Vec<usize>, Tensor)>,
    ) -> Result<(), String> {
        let (ended, going): (Vec<usize>, Vec<usize>) = (0..group.len()).partition(|&r| pairs[group[r]].1.len() == pos);
        if !ended.is_empty() {
            done.push((ended.iter().map(|&r| group[r]).collect(), take_rows(&h, &ended, group.len())));
        }
        let mut next: Vec<usize> = going.iter().map(|&r| pairs[group[r]].1[pos]).collect();
        next.sort_unstable();
        next.dedup();
        for b in next {
            let rows: Vec<usize> = going.iter().copied().filter(|&r| pairs[group[r]].1[pos] == b).collect();
            let sub: Vec<usize> = rows.iter().map(|&r| group[r]).collect();
            let mut args = vec![take_rows(&h, &rows, group.len())];
            let samples: Vec<usize> = sub.iter().map(|&p| pairs[p].0).collect();
            for &s in &self.split.operands[1..] {
                args.push(gather_rows(st.get(s), &samples));
            }
            let func = self.split.blocks[b].clone();
            let out = self.call(&func, &args)?.into_iter().next().ok_or_else(|| format!("@{func} returned nothing"))?;
            self.descend(st, pairs, sub, out, pos + 1, done)?;
        }
        Ok(())
    }
}

/// Rows `rows` of `h` (all `n` of them: `h` itself).
fn take_rows(h: &Tensor, rows: &[usize], n: usize) -> Tensor {
    if rows.len() == n {
        h.clone()
    } else {
        gather_rows(h, rows)
    }
}

/// The size symbols of the network's inputs' first axes (the batch).
#[cfg(feature = "mlir")]
fn batch_symbols(program: &archc_compiler::tir::Program) -> Vec<String> {
    let mut syms: Vec<String> = program
        .main()
        .args
        .iter()
        .flat_map(|(_, t)| t.shape.first().map(|d| d.symbols()).unwrap_or_default())
        .collect();
    syms.sort();
    syms.dedup();
    syms
}

/// `parts` stacked along their first axis (one dtype, equal trailing shapes).
pub fn concat_rows(parts: &[Tensor]) -> Result<Tensor, String> {
    let first = parts.first().ok_or("nothing to concatenate")?;
    if parts.iter().any(|p| p.shape[1..] != first.shape[1..] || p.dtype() != first.dtype()) {
        return Err("internal: chain states of different types".into());
    }
    fn join<T: Clone>(parts: &[&Vec<T>]) -> Vec<T> {
        parts.iter().flat_map(|v| v.iter().cloned()).collect()
    }
    macro_rules! cat {
        ($variant:ident) => {{
            let vs: Vec<_> = parts
                .iter()
                .filter_map(|p| match &p.data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                })
                .collect();
            Data::$variant(join(&vs))
        }};
    }
    let data = match &first.data {
        Data::F32(_) => cat!(F32),
        Data::F64(_) => cat!(F64),
        Data::I64(_) => cat!(I64),
        Data::Bool(_) => cat!(Bool),
        Data::C64(_) => cat!(C64),
    };
    let mut shape = first.shape.clone();
    shape[0] = parts.iter().map(|p| p.shape[0]).sum();
    Tensor::new(shape, data).map_err(|e| e.to_string())
}
