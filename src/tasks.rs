//! Class-incremental training: a `train` block's `tasks: [[0, 1], [2, 3], ..]` trains
//! one task after another on the same network, and measures what each task keeps.
//!
//! Contract:
//! - Task `k` trains on the training rows whose `label` is in its classes, for the
//!   block's `epochs`, with the block's optimizer, schedule and seed, starting from the
//!   parameters task `k - 1` ended with (task 0 from `init` where it names them, else
//!   the declared initialisers); the
//!   optimizer's state starts afresh each task. Its run goes to `DIR/task_K` (metrics,
//!   curves, checkpoint), evaluated on that task's test rows.
//! - After each task, every task's test rows are evaluated with the network as it is
//!   then: `accuracy[k][j]`, all classes competing (class-incremental).
//! - The summary: the mean accuracy over all tasks after the last, and the forgetting
//!   of Chaudhry et al. 2018 (the mean over every task but the last of its best accuracy
//!   after any earlier task minus its accuracy at the end). It is printed as a table and
//!   written to `DIR/tasks.json`; the last task's checkpoint is copied to
//!   `DIR/checkpoint.safetensors`, so `archc eval` reads the final network.

use crate::error::Error;
use crate::training;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::tir::Program;
use archc_runtime::data::Frame;
use archc_runtime::tensor::Tensor;
use archc_runtime::train::{train_with, TrainData, CHECKPOINT_FILE};
use archc_runtime::Executor;
use std::collections::BTreeMap;
use std::path::Path;

/// The field whose classes split the rows into tasks.
pub const LABEL: &str = "label";

/// What a task sequence measured (see the module docs).
#[derive(Clone, Debug)]
pub struct TasksReport {
    pub tasks: Vec<Vec<i64>>,
    /// `accuracy[k][j]`: task `j`'s test accuracy after training task `k`.
    pub accuracy: Vec<Vec<f64>>,
    pub mean_accuracy: f64,
    pub forgetting: f64,
}

impl TasksReport {
    fn new(tasks: Vec<Vec<i64>>, accuracy: Vec<Vec<f64>>) -> TasksReport {
        let last = accuracy.last().cloned().unwrap_or_default();
        let mean_accuracy = last.iter().sum::<f64>() / last.len().max(1) as f64;
        TasksReport { forgetting: forgetting(&accuracy), tasks, accuracy, mean_accuracy }
    }

    /// The accuracy matrix as a table, one row per task trained.
    pub fn table(&self) -> String {
        let heads: Vec<String> = self.tasks.iter().enumerate().map(|(j, t)| format!(" task {j} {t:?} ")).collect();
        let mut s = String::from("after task |");
        for h in &heads {
            s += &format!("{h}|");
        }
        for (k, row) in self.accuracy.iter().enumerate() {
            s += &format!("\n{k:>10} |");
            for (a, h) in row.iter().zip(&heads) {
                s += &format!("{:>width$.4} |", a, width = h.len());
            }
        }
        s + &format!("\nmean accuracy {:.4}, forgetting {:.4}", self.mean_accuracy, self.forgetting)
    }
}

/// Chaudhry et al.'s forgetting of an accuracy matrix (0 for fewer than two rows).
pub fn forgetting(acc: &[Vec<f64>]) -> f64 {
    let Some((last, earlier)) = acc.split_last() else { return 0.0 };
    if earlier.is_empty() {
        return 0.0;
    }
    let drops: Vec<f64> = (0..last.len() - 1)
        .map(|j| earlier.iter().map(|row| row[j]).fold(f64::NEG_INFINITY, f64::max) - last[j])
        .collect();
    drops.iter().sum::<f64>() / drops.len().max(1) as f64
}

/// The labels of every row of `frame`.
fn labels_of(frame: &Frame) -> Result<Vec<i64>, String> {
    let column = frame.get(LABEL).ok_or_else(|| {
        format!("`tasks` splits the rows by their `{LABEL}`, and this data set has no `{LABEL}` field")
    })?;
    let all: Vec<usize> = (0..frame.len()).collect();
    let labels = column.select(&all).map_err(|e| e.to_string())?;
    let type_string = labels.type_string();
    labels.as_i64().map(<[i64]>::to_vec).ok_or_else(|| format!("`{LABEL}` is {type_string}, not i64 classes"))
}

/// The positions of the `labels` that are one of `classes`.
fn rows_of(labels: &[i64], classes: &[i64]) -> Vec<usize> {
    labels.iter().enumerate().filter(|(_, l)| classes.contains(l)).map(|(i, _)| i).collect()
}

/// The accuracy among `eval_step`'s metrics: the built-in `accuracy`, or a metric
/// named `accuracy`.
fn accuracy_of(metrics: &[(String, f64)]) -> Result<f64, String> {
    metrics
        .iter()
        .find(|(n, _)| n == "metric:correct" || n == "metric:accuracy")
        .map(|(_, v)| *v)
        .ok_or_else(|| "`tasks` measures accuracy: add `accuracy` to the block's metrics".to_string())
}

/// Copies `from` to `to`, removing whatever `to` was first (never writing through a link).
fn copy_fresh(from: &Path, to: &Path) -> Result<(), String> {
    match std::fs::remove_file(to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", to.display())),
        _ => {}
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("{}: {e}", to.display()))
}

/// Trains the tasks of `cfg` in order into `dir` (see the module docs).
pub fn train_tasks(
    cfg: &TrainConfig,
    (program, init): (&Program, Option<BTreeMap<String, Tensor>>),
    data: &TrainData,
    dir: &Path,
    progress: bool,
    exec: &mut dyn Executor,
) -> Result<TasksReport, Error> {
    let tasks = cfg.tasks.clone().ok_or("internal: a task sequence without tasks")?;
    let test = data.test.as_ref().ok_or("`tasks` needs a test part to measure forgetting")?;
    let (train_labels, test_labels) = (labels_of(&data.train)?, labels_of(test)?);
    let mut parts = Vec::new();
    for (k, classes) in tasks.iter().enumerate() {
        let (train, held) = (rows_of(&train_labels, classes), rows_of(&test_labels, classes));
        if train.is_empty() || held.is_empty() {
            return Err(format!("task {k} (classes {classes:?}) has no training or no test rows").into());
        }
        parts.push((data.train.view(&train), test.view(&held)));
    }
    let mut params = init;
    let mut accuracy = Vec::new();
    for (k, (train, held)) in parts.iter().enumerate() {
        let mut spec = training::loop_spec(cfg, train.len());
        spec.init_params = params.take();
        let task_data =
            TrainData { train: train.clone(), test: Some(held.clone()), input_names: data.input_names.clone() };
        let task_dir = dir.join(format!("task_{k}"));
        eprintln!("task {k}: classes {:?}, {} train / {} test rows", tasks[k], train.len(), held.len());
        let report = train_with(program, &spec, &task_data, &task_dir, false, progress, exec)?;
        let now = report.state.params;
        let row = parts
            .iter()
            .map(|(_, held)| {
                training::evaluate(program, &now, held, cfg.batch as usize, exec)
                    .and_then(|m| accuracy_of(&m).map_err(Error::from))
            })
            .collect::<Result<Vec<f64>, Error>>()?;
        accuracy.push(row);
        params = Some(now);
        if k + 1 == parts.len() {
            copy_fresh(&task_dir.join(CHECKPOINT_FILE), &dir.join(CHECKPOINT_FILE))?;
        }
    }
    let report = TasksReport::new(tasks, accuracy);
    let json = serde_json::json!({
        "tasks": report.tasks,
        "accuracy": report.accuracy,
        "mean_accuracy": report.mean_accuracy,
        "forgetting": report.forgetting,
    });
    let json = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    let path = dir.join("tasks.json");
    std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::forgetting;

    #[test]
    fn forgetting_is_the_mean_drop_from_the_best_earlier_accuracy() {
        assert_eq!(forgetting(&[vec![0.9, 0.0]]), 0.0);
        // Task 0: best 0.9 (after task 0), 0.5 at the end; task 1 is the last: not counted.
        let acc = [vec![0.9, 0.0, 0.0], vec![0.7, 0.8, 0.0], vec![0.5, 0.6, 0.9]];
        // Task 0 drops 0.4, task 1 drops 0.2.
        assert!((forgetting(&acc) - 0.3).abs() < 1e-12);
    }
}
