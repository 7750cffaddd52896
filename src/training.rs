//! `archc train` and `archc eval`: a `train` block, its data set and the training loop.
//!
//! The data set's tensors are matched to the train step's arguments. A built-in data
//! set's first input feeds the model's first input and its first target the loss
//! target (a loss written as an expression reads the targets by their own names); a
//! `file(...)` source is read field by field under the step's argument names (paths
//! relative to the `.arch` file). A data tensor is reshaped to the argument's type when
//! the element counts agree (`mnist1d` rows of 40 into `f32[B, 1, 40]`), converted to
//! its dtype where no value changes (integers and f64 to f32, integral floats to i64;
//! anything else is an error naming the field), and Darcy inputs get their grid
//! coordinates appended when the model asks for three channels.
//!
//! A loss or metric written as an expression may read data fields, whose types come from
//! the data: [`read_config`] reads the block, loads the training part when the loss needs
//! field types, and reads the block again with them.

use crate::driver::FsModules;
use crate::error::Error;
use archc_compiler::autodiff::build_train_program;
use archc_compiler::autodiff::loss::Loss;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::loss_expr::DataField;
use archc_compiler::sema::train_config::{DataSpec, FieldSelect, FileData, ScheduleSpec, TrainConfig};
use archc_compiler::sema::{train_file, Options, TrainOutput};
use archc_compiler::tir::{DType, Program, TensorType};
use archc_runtime::data::{self, files, Column, Frame};
use archc_runtime::train::{LoopSpec, Schedule, TrainData};
use archc_runtime::{RunError, Tensor};
use std::path::{Path, PathBuf};

/// Reads the `train` block of `path` (see the module docs): data paths resolved, and a
/// loss that reads data fields typed from the data (an unreadable data set is then a
/// diagnostic at the data source).
pub fn read_config(path: &Path, opts: &Options) -> Result<(TrainOutput, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let modules = FsModules { dir: dir.clone() };
    let name = path.display().to_string();
    let mut out = train_file(&name, &text, &modules, opts);
    resolve_paths(&mut out, &dir);
    let Some(cfg) = out.config.as_ref().filter(|c| !c.pending.is_empty()) else { return Ok((out, text)) };
    match field_types(cfg) {
        Ok(fields) => {
            out = train_file(&name, &text, &modules, &Options { data_fields: Some(fields), ..opts.clone() });
            resolve_paths(&mut out, &dir);
        }
        Err(e) => {
            let span = cfg.data.span;
            out.diagnostics.push(Diagnostic::error(format!("cannot read the data the loss needs: {e}"), span));
            out.config = None;
        }
    }
    Ok((out, text))
}

/// `file(...)` paths joined to the `.arch` file's folder.
fn resolve_paths(out: &mut TrainOutput, dir: &Path) {
    if let Some(cfg) = out.config.as_mut() {
        resolve_data_paths(cfg, dir);
    }
}

/// `cfg`'s `file(...)` paths joined to `dir`, the `.arch` file's folder.
pub fn resolve_data_paths(cfg: &mut TrainConfig, dir: &Path) {
    if let Some(file) = cfg.data.file.as_mut() {
        resolve_file(file, dir);
    }
}

fn resolve_file(file: &mut FileData, dir: &Path) {
    let join = |p: &mut String| *p = dir.join(&*p).display().to_string();
    if let Some(test) = &mut file.test {
        resolve_file(test, dir);
    }
    match &mut file.path {
        Some(p) => join(p),
        None => {
            for f in &mut file.fields {
                if let FieldSelect::Name(p) = &mut f.select {
                    join(p);
                }
            }
        }
    }
}

/// The dtype and row shape of every field of the training part a loss can read. A
/// file's field the loss names but the file lacks is left out: the loss's diagnostic
/// then points at the name.
pub fn field_types(cfg: &TrainConfig) -> Result<Vec<DataField>, String> {
    let mut inputs: Vec<String> = cfg.program.main().arg_names.clone();
    inputs.retain(|a| !a.starts_with("choice:"));
    let field = |(n, c): (&str, &Column)| DataField { name: n.to_string(), dtype: field_dtype(c.dtype()), row: row(c) };
    let all: Vec<String> = inputs.iter().chain(&cfg.pending).cloned().collect();
    // One read of every field; only when a file lacks one, field by field.
    let (train, pending) = match (&cfg.data.file, parts(&cfg.data, &all)) {
        (_, Ok((train, _))) => (train, Vec::new()),
        (Some(_), Err(_)) => (parts(&cfg.data, &inputs)?.0, cfg.pending.clone()),
        (None, Err(e)) => return Err(e),
    };
    let mut out: Vec<DataField> = train.columns().map(field).collect();
    for name in &pending {
        if let Ok((part, _)) = parts(&cfg.data, std::slice::from_ref(name)) {
            out.extend(part.columns().map(field));
        }
    }
    // A built-in set's first input feeds the model's first input, under its name.
    if let (Some(first), Some((_, t))) = (cfg.program.main().arg_names.first(), train.inputs.first()) {
        if !out.iter().any(|f| &f.name == first) {
            out.push(DataField { name: first.clone(), dtype: field_dtype(t.dtype()), row: row(t) });
        }
    }
    Ok(out)
}

fn row(c: &Column) -> Vec<u64> {
    c.shape().iter().skip(1).map(|&d| d as u64).collect()
}

/// Data are f32 where they are stored as f64 (numpy's default).
fn field_dtype(d: DType) -> DType {
    if d == DType::F64 {
        DType::F32
    } else {
        d
    }
}

/// The train program (`train_step`, `eval_step`) of a configuration.
pub fn train_program(cfg: &TrainConfig) -> Result<Program, String> {
    if !cfg.pending.is_empty() {
        return Err(format!("the loss reads data fields of unknown type: {}", cfg.pending.join(", ")));
    }
    build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec)
}

/// Loads and splits the data set, fitted to the train step's argument types.
pub fn train_data(cfg: &TrainConfig, program: &Program) -> Result<TrainData, String> {
    train_data_for(cfg, program, "train_step")
}

/// [`train_data`] fitted to the step `step` of `program`.
pub fn train_data_for(cfg: &TrainConfig, program: &Program, step: &str) -> Result<TrainData, String> {
    let step = program.func(step).ok_or_else(|| format!("internal: no {step}"))?;
    let data_args: Vec<String> = step
        .arg_names
        .iter()
        .take_while(|n| !n.starts_with("param:") && !n.starts_with("state:") && *n != "lr")
        .filter(|n| !n.starts_with("choice:"))
        .cloned()
        .collect();
    let (train, test) = parts(&cfg.data, &data_args)?;
    // A loss written as an expression reads a built-in set's targets by their names.
    let rename_target = !matches!(cfg.spec.loss, Loss::Func { .. }) && cfg.data.file.is_none();
    let arg = |name: &str| -> Option<TensorType> {
        step.arg_names.iter().position(|n| n == name).map(|i| step.args[i].1.clone())
    };
    // The step's first argument is the model's first input.
    let model_input = step.arg_names.first().cloned().ok_or("the model has no input")?;
    let fit = |ds: Frame| -> Result<Frame, String> {
        let mut inputs = Vec::new();
        for (i, (name, t)) in ds.inputs.into_iter().enumerate() {
            let target = if i == 0 && cfg.data.file.is_none() { model_input.clone() } else { name };
            let t = match arg(&target) {
                Some(ty) => fit_column(t, &ty, &target)?,
                None => t,
            };
            inputs.push((target, t));
        }
        let mut targets = Vec::new();
        for (i, (name, t)) in ds.targets.into_iter().enumerate() {
            let target = if i == 0 && rename_target { cfg.spec.target.clone() } else { name };
            let t = match arg(&target) {
                Some(ty) => fit_column(t, &ty, &target)?,
                None => t,
            };
            targets.push((target, t));
        }
        Frame::new(inputs, targets).map_err(|e| e.to_string())
    };
    Ok(TrainData::new(fit(train)?, test.map(fit).transpose()?))
}

/// The training part and the test part (if any) of a data set; of a `file(...)` source,
/// the fields `fields`.
fn parts(spec: &DataSpec, fields: &[String]) -> Result<(Frame, Option<Frame>), String> {
    if let Some(file) = &spec.file {
        return file_parts(spec, file, fields);
    }
    let mut parts = data::load(&spec.name).map_err(|e| e.to_string())?;
    if let Some(fractions) = &spec.split {
        let whole = match (&spec.train_part, parts.len()) {
            (Some(p), _) => parts.remove(p).ok_or_else(|| format!("{} has no part `{p}`", spec.name))?,
            (None, 1) => parts.into_values().next().expect("one part"),
            (None, _) => parts.remove("train").ok_or_else(|| format!("{}: which part to split?", spec.name))?,
        };
        return split_train_test(&Frame::from(whole), fractions, spec.split_seed);
    }
    let pick =
        |parts: &mut std::collections::BTreeMap<String, data::Dataset>, want: &Option<String>, prefix: &str| match want
        {
            Some(p) => parts.remove(p),
            None => {
                let key = parts.keys().find(|k| k.starts_with(prefix)).cloned();
                key.and_then(|k| parts.remove(&k))
            }
        };
    let train = pick(&mut parts, &spec.train_part, "train")
        .ok_or_else(|| format!("{} has no training part; give `split = [..]` or `train = \"part\"`", spec.name))?;
    let test = pick(&mut parts, &spec.test_part, "test");
    Ok((train.into(), test.map(Frame::from)))
}

fn file_parts(spec: &DataSpec, file: &FileData, fields: &[String]) -> Result<(Frame, Option<Frame>), String> {
    let train = files::load(&file_source(file, fields)).map_err(|e| e.to_string())?;
    if let Some(test) = &file.test {
        let test = files::load(&file_source(test, fields)).map_err(|e| format!("the test file: {e}"))?;
        return Ok((train, Some(test)));
    }
    match &spec.split {
        Some(fractions) => split_train_test(&train, fractions, spec.split_seed),
        None => Ok((train, None)),
    }
}

/// The first two parts of a seeded split: training and (when there is one) test.
fn split_train_test(whole: &Frame, fractions: &[f64], seed: u64) -> Result<(Frame, Option<Frame>), String> {
    let mut split = whole.split(fractions, seed).map_err(|e| e.to_string())?;
    let test = (split.len() > 1).then(|| split.remove(1));
    Ok((split.remove(0), test))
}

/// The fields `fields` of a `file(...)` source, each by its mapping.
fn file_source(file: &FileData, fields: &[String]) -> files::FileSource {
    let select = |f: &String| match file.select(f) {
        FieldSelect::Name(n) => files::Select::Name(n),
        FieldSelect::Columns(c) => files::Select::Columns(c),
    };
    files::FileSource::new(
        file.path.as_ref().map(PathBuf::from),
        fields.iter().map(|f| (f.clone(), select(f))).collect(),
    )
}

/// Converts a data tensor to `dtype` where no value changes (see the module docs).
fn conform_dtype(t: Tensor, dtype: DType, name: &str) -> Result<Tensor, String> {
    let from = t.dtype();
    match (from, dtype) {
        _ if from == dtype => Ok(t),
        (DType::F64 | DType::I64 | DType::Bool, DType::F32) | (DType::F32 | DType::I64 | DType::Bool, DType::F64) => {
            Ok(t.cast(dtype))
        }
        (DType::F32 | DType::F64, DType::I64) => {
            let v = t.to_f64_vec().unwrap_or_default();
            match v.iter().position(|x| x.fract() != 0.0 || !x.is_finite() || x.abs() > 9.0e15) {
                None => Ok(t.cast(DType::I64)),
                Some(i) => Err(format!(
                    "data for `{name}` holds {} (element {i}), but the network reads `{name}` as integers (i64)",
                    v[i]
                )),
            }
        }
        (DType::Bool, DType::I64) => Ok(t.cast(DType::I64)),
        _ => Err(format!("data for `{name}` is {}, which does not convert to the network's {}", from, dtype)),
    }
}

/// Reshapes (or, for three-channel grids, extends) a data tensor to an argument type.
fn fit_tensor(t: Tensor, ty: &TensorType, name: &str) -> Result<Tensor, String> {
    let t = conform_dtype(t, ty.dtype, name)?;
    let rows = t.shape[0];
    let tail: Option<Vec<usize>> = ty.shape[1..].iter().map(|d| d.as_const().map(|c| c as usize)).collect();
    let Some(tail) = tail else {
        // Symbolic (grid) dims: only the channel count can be fitted, by adding the grid.
        let want_c = ty.shape.last().and_then(|d| d.as_const());
        if t.rank() == ty.rank() && want_c == Some(3) && t.shape.last() == Some(&1) {
            return data::append_grid(&t).map_err(|e| e.to_string());
        }
        return Ok(t);
    };
    let mut want = vec![rows];
    want.extend(&tail);
    if t.shape == want {
        return Ok(t);
    }
    if t.numel() == want.iter().product::<usize>() {
        return t.reshape(&want).map_err(|e| e.to_string());
    }
    if tail.last() == Some(&3) && t.shape.last() == Some(&1) {
        let g = data::append_grid(&t).map_err(|e| e.to_string())?;
        if g.shape == want {
            return Ok(g);
        }
    }
    Err(format!("data for `{name}` has shape {:?}, which does not fit {ty}", t.shape))
}

/// [`fit_tensor`] for a column: one in memory is fitted as a tensor; one left in its
/// file gets its dtype and row shape changed without reading (integral floats as
/// labels are checked by one pass over the file).
fn fit_column(c: Column, ty: &TensorType, name: &str) -> Result<Column, String> {
    let tail: Option<Vec<usize>> = ty.shape[1..].iter().map(|d| d.as_const().map(|c| c as usize)).collect();
    let (true, Some(tail)) = (c.in_file(), tail) else {
        return fit_tensor(c.tensor().map_err(|e| e.to_string())?, ty, name).map(Column::from);
    };
    let from = c.dtype();
    if from.is_float() && ty.dtype == DType::I64 {
        if let Some((i, v)) = first_fraction(&c)? {
            return Err(format!(
                "data for `{name}` holds {v} (element {i}), but the network reads `{name}` as integers (i64)"
            ));
        }
    } else if from != ty.dtype {
        // The same conversions as for a tensor, decided on an empty one.
        conform_dtype(Tensor::zeros(from, &[0]), ty.dtype, name)?;
    }
    let mut want = vec![c.len()];
    want.extend(&tail);
    let shape = c.shape().to_vec();
    c.with_dtype(ty.dtype)
        .with_shape(&want)
        .ok_or_else(|| format!("data for `{name}` has shape {shape:?}, which does not fit {ty}"))
}

/// The first element of a float column that is not an integer an i64 holds exactly.
fn first_fraction(c: &Column) -> Result<Option<(usize, f64)>, String> {
    let width: usize = c.shape()[1..].iter().product::<usize>().max(1);
    let chunk = (1usize << 20).div_ceil(width).max(1);
    for start in (0..c.len()).step_by(chunk) {
        let rows: Vec<usize> = (start..(start + chunk).min(c.len())).collect();
        let v = c.select(&rows).map_err(|e| e.to_string())?.to_f64_vec().unwrap_or_default();
        if let Some(i) = v.iter().position(|x| x.fract() != 0.0 || !x.is_finite() || x.abs() > 9.0e15) {
            return Ok(Some((start * width + i, v[i])));
        }
    }
    Ok(None)
}

/// The loop settings of a configuration (steps per epoch sizes `step` schedules).
pub fn loop_spec(cfg: &TrainConfig, train_rows: usize) -> LoopSpec {
    let per_epoch = (train_rows as u64).div_ceil(cfg.batch.max(1));
    let schedule = match &cfg.schedule {
        ScheduleSpec::Constant => Schedule::Constant { lr: cfg.lr },
        ScheduleSpec::Step { step_size, gamma } => {
            Schedule::Step { lr: cfg.lr, step_size: step_size * per_epoch, gamma: *gamma }
        }
        ScheduleSpec::Cosine { warmup, min_lr } => {
            Schedule::Cosine { lr: cfg.lr, warmup: *warmup, total: None, min_lr: *min_lr }
        }
        ScheduleSpec::OneCycle { max_lr, pct_start } => Schedule::OneCycle {
            max_lr: if max_lr.is_nan() { cfg.lr } else { *max_lr },
            total: None,
            pct_start: *pct_start,
            div_factor: 25.0,
            final_div_factor: 1e4,
        },
    };
    let mut spec = LoopSpec::new(cfg.epochs, cfg.batch as usize, cfg.seed, schedule);
    spec.eval_every = cfg.eval_every;
    spec
}

/// Test loss and metrics (divided by the number of samples) of `params` on `test`,
/// through `eval_step` in chunks of `batch` rows.
pub fn evaluate(
    program: &Program,
    params: &std::collections::BTreeMap<String, Tensor>,
    test: &Frame,
    batch: usize,
    exec: &mut dyn archc_runtime::Executor,
) -> Result<Vec<(String, f64)>, Error> {
    let f = program.func("eval_step").ok_or_else(|| {
        Error::Run(RunError::Internal {
            func: "eval_step".into(),
            message: "the train program has no eval_step".into(),
        })
    })?;
    let n = test.len();
    let mut sums: Vec<(String, f64)> = f.result_names.iter().map(|r| (r.clone(), 0.0)).collect();
    let mut start = 0;
    while start < n {
        let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
        let chunk = test.select(&rows).map_err(|e| e.to_string())?;
        let mut inputs = Vec::new();
        for name in &f.arg_names {
            let t = match name.strip_prefix("param:") {
                Some(p) => params.get(p).ok_or_else(|| format!("the checkpoint has no parameter `{p}`"))?.clone(),
                None => chunk.get(name).ok_or_else(|| format!("the data set has no `{name}`"))?.clone(),
            };
            inputs.push(t);
        }
        let out = exec.run_func("eval_step", &inputs, 0)?;
        for ((name, acc), t) in sums.iter_mut().zip(out) {
            let v = t.to_f64_vec().and_then(|v| v.first().copied()).unwrap_or(f64::NAN);
            *acc += if name == "loss" { v * rows.len() as f64 } else { v };
        }
        start += batch;
    }
    Ok(sums.into_iter().map(|(k, v)| (k, v / n.max(1) as f64)).collect())
}

/// The forward's outputs (`main`, the executor's parameters already set) on every row
/// of `test`, in chunks of `batch` rows, joined along the batch axis: (name, tensor) per
/// output. An output without a batch axis (a scalar) is an error naming it.
pub fn predict(
    program: &Program,
    test: &Frame,
    batch: usize,
    exec: &mut dyn archc_runtime::Executor,
) -> Result<Vec<(String, Tensor)>, Error> {
    let main = program.main();
    let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); main.result_names.len()];
    for start in (0..test.len()).step_by(batch.max(1)) {
        let rows: Vec<usize> = (start..(start + batch).min(test.len())).collect();
        let chunk = test.select(&rows).map_err(|e| e.to_string())?;
        let inputs = main
            .arg_names
            .iter()
            .map(|n| chunk.get(n).cloned().ok_or_else(|| format!("the data set has no `{n}` for the network's input")))
            .collect::<Result<Vec<_>, _>>()?;
        let out = exec.run_func("main", &inputs, 0)?;
        for (part, t) in parts.iter_mut().zip(out) {
            part.push(t);
        }
    }
    let mut joined = Vec::with_capacity(parts.len());
    for (name, part) in main.result_names.iter().zip(parts) {
        if part.first().is_some_and(|t| t.rank() == 0) {
            return Err(format!("output `{name}` has no batch axis: nothing to write per sample").into());
        }
        let refs: Vec<&Tensor> = part.iter().collect();
        let t = archc_runtime::interp::concat(&refs, 0).map_err(|e| format!("output `{name}`: {e}"))?;
        joined.push((name.clone(), t));
    }
    Ok(joined)
}

/// The size symbols of step `func` when it runs on batches of `batch` rows of `data`
/// (for `--max-memory`): each data field's shape, its first axis cut to the batch.
pub fn step_env(program: &Program, func: &str, data: &Frame, batch: u64) -> std::collections::HashMap<String, i64> {
    let Some(f) = program.func(func) else { return Default::default() };
    let rows = (data.len() as u64).min(batch.max(1)) as usize;
    let shapes = data
        .columns()
        .map(|(name, c)| {
            let mut shape = c.shape().to_vec();
            if let Some(first) = shape.first_mut() {
                *first = rows;
            }
            (name.to_string(), shape)
        })
        .collect();
    crate::memory::bind(f, &shapes)
}

/// The data set as the CLI names it: a built-in's name, or the data file's name.
pub fn data_label(spec: &DataSpec) -> String {
    let file = spec.file.as_ref().and_then(|f| f.path.as_deref());
    let name = file.and_then(|p| Path::new(p).file_name()).map(|n| n.to_string_lossy().to_string());
    name.unwrap_or_else(|| spec.name.clone())
}

/// `data has no part `x`; its parts: train, test_32`.
pub fn no_part(name: &str, part: &str) -> String {
    match data::load(name) {
        Ok(parts) => {
            let names: Vec<&str> = parts.keys().map(String::as_str).collect();
            format!("{name} has no part `{part}`; its parts: {}", names.join(", "))
        }
        Err(e) => format!("{name} has no part `{part}` ({e})"),
    }
}

/// One line of a run's final metrics: `train loss 0.1234 accuracy 0.9722`, or for a
/// regression `test loss 0.0012 rel_l2 0.0312` (every `PART_NAME` field of the record).
pub fn summary_line(record: Option<&archc_runtime::train::Record>, part: &str) -> String {
    let prefix = format!("{part}_");
    let mut line = part.to_string();
    let fields = record.map(|r| r.fields.as_slice()).unwrap_or_default();
    for (key, value) in fields {
        let Some(name) = key.strip_prefix(&prefix) else { continue };
        let shown = if name == "acc" { "accuracy" } else { name };
        let v = value.as_f64().map_or("-".to_string(), |v| format!("{v:.4}"));
        line.push_str(&format!(" {shown} {v}"));
    }
    if line == part {
        line.push_str(" -");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use archc_runtime::train::{Record, Value};

    #[test]
    fn summary_lines_name_the_metrics_a_run_has() {
        let mut r = Record::default();
        r.push("epoch", Value::Int(3));
        r.push("train_loss", Value::num(0.5));
        r.push("train_rel_l2", Value::num(0.25));
        r.push("test_loss", Value::num(0.75));
        r.push("test_acc", Value::num(0.9));
        assert_eq!(summary_line(Some(&r), "train"), "train loss 0.5000 rel_l2 0.2500");
        assert_eq!(summary_line(Some(&r), "test"), "test loss 0.7500 accuracy 0.9000");
        assert_eq!(summary_line(None, "test"), "test -");
    }
}
