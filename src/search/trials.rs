//! `trials.jsonl`: one line per evaluated candidate, appended as each trial ends, so a search killed at any point loses at most the trial it was running.
//!
//! A line: `{"trial": 3, "status": "ok", "choices": {"depth": "2", ...}, "assignment":
//! {"depth": 0, ...}, "metrics": {"synflow": 1.5e3, ...}, "seconds": 0.02}`; a failed
//! trial has `"status": "failed"` and `"error"`, a candidate over `--max-latency`
//! `"status": "rejected"` and its latency in `"error"`. Reading drops a torn last line (the
//! write a kill interrupted); any other unreadable line is an error.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;

/// One evaluated candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    pub index: usize,
    /// `name = label` of every decision.
    pub choices: Vec<(String, String)>,
    /// `name = option index` of every decision.
    pub assignment: Vec<(String, usize)>,
    /// Objective name and value, in the search's order; empty when failed.
    pub metrics: Vec<(String, f64)>,
    pub error: Option<String>,
    pub seconds: f64,
}

impl Trial {
    /// The candidate's identity, as `Candidate::key` writes it.
    pub fn key(&self) -> String {
        let parts: Vec<String> = self.assignment.iter().map(|(n, i)| format!("{n}={i}")).collect();
        parts.join(",")
    }

    /// Whether the candidate was over the latency budget (measured, not evaluated): such
    /// trials do not count towards `--budget`.
    pub fn over_budget(&self) -> bool {
        self.error.as_deref().is_some_and(|e| e.starts_with(super::evaluate::OVER_BUDGET))
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    pub fn to_json(&self) -> String {
        let choices: Map<String, Value> = self.choices.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let assignment: Map<String, Value> = self.assignment.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let metrics: Map<String, Value> = self.metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut line = json!({
            "trial": self.index,
            "status": match (&self.error, self.over_budget()) {
                (None, _) => "ok",
                (Some(_), false) => "failed",
                (Some(_), true) => "rejected",
            },
            "choices": choices,
            "assignment": assignment,
            "metrics": metrics,
            "seconds": self.seconds,
        });
        if let Some(e) = &self.error {
            line["error"] = json!(e);
        }
        line.to_string()
    }

    pub fn parse(line: &str) -> Result<Trial, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let obj = |k: &str| v.get(k).and_then(Value::as_object).ok_or(format!("no `{k}` object"));
        let choices = obj("choices")?.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()));
        let assignment = obj("assignment")?
            .iter()
            .map(|(k, v)| v.as_u64().map(|i| (k.clone(), i as usize)).ok_or(format!("`{k}` is not an option index")))
            .collect::<Result<Vec<_>, String>>()?;
        let metrics = obj("metrics")?
            .iter()
            .map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)).ok_or(format!("metric `{k}` is not a number")))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Trial {
            index: v.get("trial").and_then(Value::as_u64).ok_or("no `trial` number")? as usize,
            choices: choices.collect(),
            assignment,
            metrics,
            error: v.get("error").and_then(Value::as_str).map(str::to_string),
            seconds: v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }
}

/// The trials of `path` (none when it does not exist).
pub fn read(path: &Path) -> Result<Vec<Trial>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match Trial::parse(line) {
            Ok(t) => out.push(t),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(format!("{} line {}: {e}", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// Rewrites `path` with `trials` (dropping a torn line before appending resumes).
pub fn rewrite(path: &Path, trials: &[Trial]) -> Result<(), String> {
    let text: String = trials.iter().map(|t| format!("{}\n", t.to_json())).collect();
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Appends one trial. The line is handed to the operating system at once (a killed
/// search keeps it); it is not synced to the disk per trial, which would cost more than
/// scoring a candidate with a proxy.
pub fn append(path: &Path, trial: &Trial) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
    f.write_all(format!("{}\n", trial.to_json()).as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(i: usize, err: Option<&str>) -> Trial {
        Trial {
            index: i,
            choices: vec![("depth".into(), "2".into()), ("repeat_0.1.op".into(), "skip".into())],
            assignment: vec![("depth".into(), 0), ("repeat_0.1.op".into(), 3)],
            metrics: if err.is_some() { vec![] } else { vec![("synflow".into(), 12.5), ("params".into(), 3e4)] },
            error: err.map(str::to_string),
            seconds: 0.25,
        }
    }

    #[test]
    fn trials_round_trip_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("trials.jsonl");
        let (a, b) = (trial(0, None), trial(1, Some("worker killed")));
        append(&path, &a).expect("append");
        append(&path, &b).expect("append");
        assert_eq!(read(&path).expect("reads"), vec![a.clone(), b.clone()]);
        assert_eq!(a.key(), "depth=0,repeat_0.1.op=3");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"trial\": 2, \"sta").expect("write");
        assert_eq!(read(&path).expect("torn line dropped"), vec![a, b]);
        std::fs::write(&path, "garbage\n{}\n").expect("write");
        assert!(read(&path).is_err());
    }
}
