//! `metrics.jsonl`: one flat JSON object per line, one line per finished epoch.
//!
//! Contract:
//! - A line is `{"epoch": 1, "step": 40, "train_loss": 0.52, "train_acc": 0.81,
//!   "test_loss": 0.61, "test_acc": 0.78, "lr": 0.001, "seconds": 1.5,
//!   "samples_per_s": 853.3}` (the loop's key order; `*_acc` only when the step reports
//!   `metric:correct`, other `metric:NAME` results as `train_NAME` / `test_NAME`, test keys
//!   only with a test set, `null` in epochs without evaluation). `epoch` counts finished
//!   epochs (1-based); `step` counts optimizer steps done.
//! - The writer is hand-written: strings are escaped per RFC 8259, finite floats print
//!   with Rust's `{:?}` (shortest text that reads back to the same `f64`, e.g. `0.1`,
//!   `1e-7`), NaN and infinities as `null`.
//! - [`read_metrics`] parses what the writer writes (flat objects of numbers, strings,
//!   booleans and nulls) so a resumed run can keep its history; anything else is an error.
//! - A resumed run first drops a torn last line (one without its newline, left by a kill
//!   or a full disk in the middle of an append), truncating the file to its last complete
//!   line with a warning ([`truncate_metrics`]).

use super::tmpfile::TempFile;
use super::{io_error, TrainError};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A JSON value of a metrics line.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

impl Value {
    /// The number (an integer as `f64`); `None` for null and non-numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Num(x) => Some(*x),
            _ => None,
        }
    }

    /// A float, `null` when it is not finite.
    pub fn num(x: f64) -> Value {
        if x.is_finite() {
            Value::Num(x)
        } else {
            Value::Null
        }
    }

    pub fn opt(x: Option<f64>) -> Value {
        x.map_or(Value::Null, Value::num)
    }
}

/// One line: keys in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub fields: Vec<(String, Value)>,
}

impl Record {
    pub fn push(&mut self, key: &str, value: Value) {
        self.fields.push((key.to_string(), value));
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The number under `key`; `None` when absent, null or not a number.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The `epoch` field.
    pub fn epoch(&self) -> Option<u64> {
        match self.get("epoch") {
            Some(Value::Int(e)) if *e >= 0 => Some(*e as u64),
            _ => None,
        }
    }

    /// The JSON text, without a newline.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            write_string(&mut s, k);
            s.push_str(": ");
            match v {
                Value::Int(i) => write!(s, "{i}").unwrap(),
                Value::Num(x) if x.is_finite() => write!(s, "{x:?}").unwrap(),
                Value::Num(_) | Value::Null => s.push_str("null"),
                Value::Str(t) => write_string(&mut s, t),
                Value::Bool(b) => write!(s, "{b}").unwrap(),
            }
        }
        s.push('}');
        s
    }

    /// Parses one line (see the module docs).
    pub fn parse(text: &str) -> Result<Record, String> {
        let mut p = Parser { s: text.as_bytes(), pos: 0 };
        let r = p.object()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(format!("trailing text at byte {}", p.pos));
        }
        Ok(r)
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parser for flat JSON objects.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.pos))
        }
    }

    fn object(&mut self) -> Result<Record, String> {
        self.expect(b'{')?;
        let mut r = Record::default();
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(r);
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value()?;
            r.fields.push((key, value));
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(r);
                }
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.pos)),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let rest = &self.s[self.pos..];
        for (word, v) in [("null", Value::Null), ("true", Value::Bool(true)), ("false", Value::Bool(false))] {
            if rest.starts_with(word.as_bytes()) {
                self.pos += word.len();
                return Ok(v);
            }
        }
        match rest.first() {
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(format!("expected a value at byte {}", self.pos)),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.pos < self.s.len() && matches!(self.s[self.pos], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ascii");
        if !text.contains(['.', 'e', 'E']) {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
        }
        text.parse::<f64>().map(Value::Num).map_err(|_| format!("bad number {text:?} at byte {start}"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.pos < self.s.len() && !matches!(self.s[self.pos], b'"' | b'\\') {
                self.pos += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?);
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc = *self.s.get(self.pos + 1).ok_or("unterminated string")?;
                    self.pos += 2;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = self.s.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).map_err(|e| e.to_string())?, 16)
                                .map_err(|e| e.to_string())?;
                            self.pos += 4;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(format!("bad escape at byte {}", self.pos - 1)),
                    }
                }
                _ => return Err("unterminated string".into()),
            }
        }
    }
}

/// Appends lines to `metrics.jsonl`, flushing each.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Opens `path` for appending (creating it), or truncates it when `append` is false.
    pub fn open(path: &Path, append: bool) -> Result<MetricsWriter, TrainError> {
        let mut opts = OpenOptions::new();
        opts.create(true);
        if append {
            opts.append(true);
        } else {
            opts.write(true).truncate(true);
        }
        let file = opts.open(path).map_err(|e| io_error(path, e))?;
        Ok(MetricsWriter { path: path.to_path_buf(), file })
    }

    pub fn append(&mut self, record: &Record) -> Result<(), TrainError> {
        let line = record.to_json() + "\n";
        self.file.write_all(line.as_bytes()).and_then(|_| self.file.flush()).map_err(|e| io_error(&self.path, e))
    }
}

/// Every record of a metrics file (none when it does not exist).
pub fn read_metrics(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            Record::parse(l)
                .map_err(|m| TrainError::Format { path: path.to_path_buf(), message: format!("line {}: {m}", i + 1) })
        })
        .collect()
}

/// Keeps the records of epochs `<= epochs_done` (a run resumed from a checkpoint of that
/// epoch drops lines written after it) and rewrites the file when that changes it. A torn
/// last line is dropped first ([`drop_torn_line`]).
pub fn truncate_metrics(path: &Path, epochs_done: u64) -> Result<Vec<Record>, TrainError> {
    if let Some(torn) = drop_torn_line(path)? {
        eprintln!(
            "warning: {}: dropped a partial last line ({torn} bytes) left by an interrupted write",
            path.display()
        );
    }
    let all = read_metrics(path)?;
    let n = all.len();
    let kept: Vec<Record> = all.into_iter().filter(|r| r.epoch().is_some_and(|e| e <= epochs_done)).collect();
    if kept.len() != n {
        let text: String = kept.iter().map(|r| r.to_json() + "\n").collect();
        let tmp = TempFile::new(path.with_extension("jsonl.tmp"));
        std::fs::write(tmp.path(), text).map_err(|e| io_error(tmp.path(), e))?;
        tmp.persist(path).map_err(|e| io_error(path, e))?;
    }
    Ok(kept)
}

/// A last line without its newline was torn by a kill or a full disk in the middle of an
/// append (the writer writes each line and its newline at once): truncates the file to
/// its last complete line and returns the bytes dropped. `None` when nothing was torn
/// (or the file does not exist).
pub fn drop_torn_line(path: &Path) -> Result<Option<usize>, TrainError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error(path, e))?;
    file.set_len(keep as u64).and_then(|_| file.sync_all()).map_err(|e| io_error(path, e))?;
    Ok(Some(bytes.len() - keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_lines() {
        let mut r = Record::default();
        r.push("epoch", Value::Int(3));
        r.push("train_loss", Value::num(0.1));
        r.push("tiny", Value::num(1e-7));
        r.push("big", Value::num(1e300));
        r.push("test_loss", Value::num(f64::NAN));
        r.push("inf", Value::num(f64::INFINITY));
        r.push("name", Value::Str("a\"b\\c\n\u{1}é".into()));
        r.push("ok", Value::Bool(true));
        let text = r.to_json();
        assert_eq!(
            text,
            r#"{"epoch": 3, "train_loss": 0.1, "tiny": 1e-7, "big": 1e300, "test_loss": null, "inf": null, "name": "a\"b\\c\n\u0001é", "ok": true}"#
        );
        let back = Record::parse(&text).unwrap();
        assert_eq!(back.epoch(), Some(3));
        assert_eq!(back.f64("train_loss"), Some(0.1));
        assert_eq!(back.f64("tiny"), Some(1e-7));
        assert_eq!(back.get("test_loss"), Some(&Value::Null));
        assert_eq!(back.get("name"), Some(&Value::Str("a\"b\\c\n\u{1}é".into())));
        // Floats read back bit-exactly.
        let x = 0.1f64 + 0.2; // 0.30000000000000004
        let mut r = Record::default();
        r.push("x", Value::num(x));
        assert_eq!(Record::parse(&r.to_json()).unwrap().f64("x").unwrap().to_bits(), x.to_bits());
    }

    #[test]
    fn a_torn_last_line_is_dropped_on_resume() {
        let dir = std::env::temp_dir().join(format!("archc-metrics-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let whole = "{\"epoch\": 1, \"train_loss\": 0.5}\n{\"epoch\": 2, \"train_loss\": 0.4}\n";
        std::fs::write(&path, format!("{whole}{{\"epoch\": 3, \"train_lo")).unwrap();
        assert!(read_metrics(&path).is_err(), "the torn line does not parse");
        let kept = truncate_metrics(&path, 2).unwrap();
        assert_eq!(kept.iter().map(|r| r.epoch().unwrap()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole, "truncated to the last complete line");
        assert_eq!(drop_torn_line(&path).unwrap(), None, "nothing more to drop");
        std::fs::write(&path, "{\"epo").unwrap();
        assert!(truncate_metrics(&path, 0).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in ["", "{", r#"{"a" 1}"#, r#"{"a": }"#, r#"{"a": 1} x"#, r#"{"a": [1]}"#, r#"{"a": "x"#] {
            assert!(Record::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Record::parse(" { } ").unwrap(), Record::default());
    }
}
