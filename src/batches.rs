//! `archc run --batch N`: the entry network run over whole input files, N rows at a time.
//!
//! Contract:
//! - Every input of the entry comes from an `--input NAME=PATH` file (none given: "--batch
//!   needs --input files"; some missing: an error naming them). Each file is cut along
//!   axis 0 into chunks of at most N rows, in order; the last chunk may be shorter. All
//!   files must have the same number of rows (an error names two that differ), at least
//!   one; an input with no axis 0 (a scalar, in the file or in the entry's type) is an
//!   error naming it.
//! - Axis 0 of each input's declared type is the batch: a lone size symbol (bound per
//!   chunk, so the last chunk may be shorter) or a constant `c`, with which every chunk
//!   must have exactly `c` rows (otherwise an error suggesting `--batch c`). Any other
//!   dim there (`2*B`) is refused.
//! - `--max-memory` is checked once, for the largest chunk (not the whole file), before
//!   anything runs.
//! - The chunks run one after another through one executor (compiled code is reused;
//!   the seed of every call is 0, as for a plain `run`). Each output's chunks are joined
//!   along axis 0. An output without axis 0 (a scalar), or whose declared axis 0 is not
//!   an input's batch dim, is refused before anything runs, naming it; at run time an
//!   output whose axis 0 differs from the chunk's rows is an error too.
//! - `--repeat` (timing of repeated runs of one input) is refused with `--batch`.
//! - A progress bar (chunks done) shows on stderr when it is a terminal and there is
//!   more than one chunk.
//!
//! With `--batch` equal to or larger than the row count, the result is that of a plain
//! `run` on the same files; otherwise it equals it up to the backend's arithmetic for
//! the smaller batch (row-wise networks; a network that mixes rows, e.g. BatchNorm in
//! training mode, gives per-chunk answers).

use crate::error::Error;
use archc_compiler::tir::{Dim, Program};
use archc_runtime::{io, Data, Executor, Tensor};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The entry's inputs read from their files, ready to be cut into chunks.
#[derive(Debug)]
pub struct Batches {
    /// One per entry argument, in the entry's order.
    inputs: Vec<Tensor>,
    /// Rows of every input.
    rows: usize,
    /// Rows per chunk (the last may have fewer).
    batch: usize,
}

/// Refusals that need no file: `--batch 0`, `--repeat`, no `--input` at all.
pub fn check_flags(batch: usize, repeat: usize, inputs: &[String]) -> Result<(), String> {
    if batch == 0 {
        return Err("--batch 0: a chunk needs at least one row".into());
    }
    if repeat > 0 {
        return Err(
            "--repeat times repeated runs of one input and --batch runs each chunk once: use one or the other".into()
        );
    }
    if inputs.is_empty() {
        return Err("--batch needs --input files (random inputs have no rows to cut)".into());
    }
    Ok(())
}

impl Batches {
    /// Reads the `--input NAME=PATH` files of the entry of `program`, checks them and the
    /// flags against the contract (module docs), and `--max-memory` for one chunk of
    /// `batch` rows.
    pub fn read(
        program: &Program,
        specs: &[String],
        batch: usize,
        repeat: usize,
        max_memory: Option<u128>,
    ) -> Result<Batches, String> {
        check_flags(batch, repeat, specs)?;
        let main = program.main();
        let mut files: HashMap<&str, PathBuf> = HashMap::new();
        for spec in specs {
            let (k, v) = spec.split_once('=').ok_or_else(|| format!("--input expects NAME=PATH, found `{spec}`"))?;
            if !main.arg_names.iter().any(|a| a == k) {
                return Err(format!("the network has no input `{k}`; inputs: {}", main.arg_names.join(", ")));
            }
            files.insert(k, PathBuf::from(v));
        }
        let missing: Vec<&str> = main.arg_names.iter().map(String::as_str).filter(|n| !files.contains_key(n)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "--batch needs an --input file for every input of the network; missing: {}",
                missing.join(", ")
            ));
        }
        let mut inputs = Vec::with_capacity(main.args.len());
        let mut first: Option<(&str, usize)> = None;
        for (name, (_, ty)) in main.arg_names.iter().zip(&main.args) {
            let path = &files[name.as_str()];
            let t = io::read_npy(path).map_err(|e| e.to_string())?;
            let Some(&rows) = t.shape.first() else {
                return Err(format!(
                    "input `{name}` ({}) is a scalar: --batch cuts every input along axis 0",
                    path.display()
                ));
            };
            if ty.shape.is_empty() {
                return Err(format!(
                    "input `{name}` of the network is a scalar: --batch cuts every input along axis 0"
                ));
            }
            match first {
                None => first = Some((name, rows)),
                Some((other, n)) if n != rows => {
                    let why = "--batch cuts every input along axis 0 into the same chunks";
                    return Err(format!(
                        "inputs `{other}` ({n} rows) and `{name}` ({rows} rows) differ in rows: {why}"
                    ));
                }
                Some(_) => {}
            }
            inputs.push(t);
        }
        let rows = first.map_or(0, |(_, n)| n);
        if rows == 0 {
            return Err("the input files have no rows: nothing to run".into());
        }
        let b = Batches { inputs, rows, batch };
        b.check_batch_dims(program)?;
        check_results(program)?;
        b.check_memory(program, max_memory)?;
        Ok(b)
    }

    /// The number of chunks.
    pub fn chunks(&self) -> usize {
        self.rows.div_ceil(self.batch)
    }

    /// Row ranges of the chunks, in order.
    fn ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.rows).step_by(self.batch).map(|s| s..(s + self.batch).min(self.rows))
    }

    /// Axis 0 of every declared input: a lone symbol, or a constant every chunk matches.
    fn check_batch_dims(&self, program: &Program) -> Result<(), String> {
        let main = program.main();
        let (first, last) = (self.batch.min(self.rows), self.rows - (self.chunks() - 1) * self.batch);
        for (name, (_, ty)) in main.arg_names.iter().zip(&main.args) {
            let d = &ty.shape[0];
            if let Some(c) = d.as_const() {
                if first as i64 == c && last as i64 == c {
                    continue;
                }
                let why = if c <= 0 || !self.rows.is_multiple_of(c as usize) {
                    format!(
                        "every chunk must have {c} rows, and the files' {} rows are not a multiple of {c}",
                        self.rows
                    )
                } else {
                    format!("chunks of {} rows do not fit; use --batch {c}", self.batch)
                };
                return Err(format!("input `{name}` has a batch of constant size {c} ({ty}): {why}"));
            } else if !matches!(d.symbols().as_slice(), [s] if *d == Dim::sym(s.clone())) {
                return Err(format!(
                    "axis 0 of input `{name}` is `{d}` ({ty}): --batch cuts inputs whose axis 0 is a size symbol or a \
                     constant"
                ));
            }
        }
        Ok(())
    }

    /// `--max-memory` for the largest chunk.
    fn check_memory(&self, program: &Program, max_memory: Option<u128>) -> Result<(), String> {
        let main = program.main();
        let chunk = self.batch.min(self.rows);
        let shapes: HashMap<String, Vec<usize>> = main
            .arg_names
            .iter()
            .zip(&self.inputs)
            .map(|(n, t)| {
                let mut s = t.shape.clone();
                s[0] = chunk;
                (n.clone(), s)
            })
            .collect();
        let env = crate::memory::bind(main, &shapes);
        crate::memory::check(program, "main", &env, max_memory)
    }

    /// Runs the entry once per chunk on `exec` and joins each output's chunks along
    /// axis 0, in the entry's result order.
    pub fn run(&self, program: &Program, exec: &mut dyn Executor) -> Result<Vec<Tensor>, Error> {
        let main = program.main();
        let bar = progress(self.chunks());
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::with_capacity(self.chunks()); main.result_names.len()];
        for range in self.ranges() {
            let chunk: Vec<Tensor> = self.inputs.iter().map(|t| rows(t, range.clone())).collect();
            let out = exec
                .run_func("main", &chunk, 0)
                .map_err(|e| Error::from(e).at(format!("rows {}..{} of the inputs", range.start, range.end)))?;
            for ((part, t), name) in parts.iter_mut().zip(out).zip(&main.result_names) {
                match t.shape.first() {
                    None => return Err(no_batch_axis(name, &t.type_string()).into()),
                    Some(&n) if n != range.len() => {
                        return Err(Error::User(format!(
                            "output `{name}` is {} for a chunk of {} rows: its axis 0 is not the batch, so its chunks \
                             cannot be joined (run without --batch)",
                            t.type_string(),
                            range.len()
                        )))
                    }
                    Some(_) => part.push(t),
                }
            }
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let mut joined = Vec::with_capacity(parts.len());
        for (name, part) in main.result_names.iter().zip(parts) {
            let t = if part.len() == 1 {
                part.into_iter().next().expect("one chunk")
            } else {
                let refs: Vec<&Tensor> = part.iter().collect();
                archc_runtime::interp::concat(&refs, 0).map_err(|e| format!("output `{name}`: {e}"))?
            };
            joined.push(t);
        }
        Ok(joined)
    }
}

/// Every output of the entry has the inputs' batch as its axis 0 (by type), so that its
/// chunks can be joined.
fn check_results(program: &Program) -> Result<(), String> {
    let main = program.main();
    let batch_dims: Vec<&Dim> = main.args.iter().map(|(_, t)| &t.shape[0]).collect();
    for (name, ty) in main.result_names.iter().zip(main.result_types()) {
        let Some(d) = ty.shape.first() else { return Err(no_batch_axis(name, &ty.to_string())) };
        if !batch_dims.contains(&d) {
            let mut names: Vec<String> = batch_dims.iter().map(|d| format!("`{d}`")).collect();
            names.sort();
            names.dedup();
            return Err(format!(
                "output `{name}` is {ty}: its axis 0 is not the inputs' batch ({}), so its chunks cannot be joined \
                 (run without --batch)",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

fn no_batch_axis(name: &str, ty: &str) -> String {
    format!("output `{name}` is a scalar ({ty}): it has no batch axis to join chunks along (run without --batch)")
}

/// Rows `range` of `t` (axis 0), contiguous.
fn rows(t: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    let row: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = range.len();
    let data: Data = t.data.slice(range.start * row..range.end * row);
    Tensor { shape, data }
}

/// Chunks done, on stderr when it is a terminal and there is more than one chunk.
fn progress(chunks: usize) -> Option<indicatif::ProgressBar> {
    if chunks < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(chunks as u64);
    let style = indicatif::ProgressStyle::with_template("run [{bar:30}] {pos}/{len} chunks ({elapsed}<{eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cut_contiguous_blocks() {
        let t = Tensor::from_f32(&[5, 2], (0..10).map(|i| i as f32).collect());
        let r = rows(&t, 3..5);
        assert_eq!(r.shape, vec![2, 2]);
        assert_eq!(r.as_f32().unwrap(), &[6.0, 7.0, 8.0, 9.0]);
    }

    /// Fails every run with the error it was made with.
    struct Failing(fn() -> archc_runtime::RunError);

    impl Executor for Failing {
        fn run_func(&mut self, _: &str, _: &[Tensor], _: u64) -> Result<Vec<Tensor>, archc_runtime::RunError> {
            Err((self.0)())
        }
        fn set_param_value(&mut self, _: &str, _: Tensor) -> Result<(), archc_runtime::RunError> {
            Ok(())
        }
    }

    /// A backend's own bug met by a chunk stays archc's (exit 2 in the CLI); a refused
    /// input stays the user's; both name the chunk's rows.
    #[test]
    fn a_chunk_keeps_its_run_error_kind() {
        let program = crate::tirfile::parse(
            "program Tiny\n\nfunc @main(%0: f32[B, 2] \"x\") -> (f32[B, 2] \"y\") {\n  return %0\n}\n",
        )
        .expect("TIR parses");
        let batches = Batches { inputs: vec![Tensor::from_f32(&[4, 2], vec![0.0; 8])], rows: 4, batch: 2 };
        let internal = || archc_runtime::RunError::Internal { func: "main".into(), message: "ABI mismatch".into() };
        let e = batches.run(&program, &mut Failing(internal)).unwrap_err();
        assert!(e.is_internal(), "{e}");
        assert!(e.to_string().starts_with("rows 0..2 of the inputs: "), "{e}");
        let user = || archc_runtime::RunError::Backend { func: "main".into(), message: "slice past the end".into() };
        let e = batches.run(&program, &mut Failing(user)).unwrap_err();
        assert!(!e.is_internal(), "{e}");
        assert!(e.to_string().contains("slice past the end"), "{e}");
    }

    #[test]
    fn flags_are_refused_before_reading() {
        assert!(check_flags(0, 0, &["x=a.npy".into()]).unwrap_err().contains("--batch 0"));
        assert!(check_flags(2, 3, &["x=a.npy".into()]).unwrap_err().contains("--repeat"));
        assert!(check_flags(2, 0, &[]).unwrap_err().contains("--batch needs --input files"));
    }
}
