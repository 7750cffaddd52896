//! Numeric tables with named columns: `.csv` files, gzipped or not, as a `train`
//! block's `file("data.csv", x = ["a", "b"], y = "c")` reads them.
//!
//! Contract:
//! - The first non-blank line is the header: the column names, separated like the rows
//!   (commas, or tabs when the header has no comma). Names are trimmed and may be
//!   quoted (`"price"`); two equal names are an error.
//! - Every other non-blank line is a row of exactly one number per column (`1`, `-2.5`,
//!   `3e-4`, `nan`, `inf`); an empty or non-numeric field is an error naming the line and
//!   the column. Lines longer than [`super::MAX_CSV_LINE`] bytes are refused without
//!   holding them.
//! - Values are kept as f64; [`Table::columns`] gives a column (`[N]`) or several stacked
//!   (`[N, k]`) as f32, the layout of the network's inputs.

use super::{format_err, io_err, IoError, MAX_CSV_LINE};
use crate::tensor::{Data, Tensor};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A table read by [`read_table`]: named columns, values row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub rows: usize,
    values: Vec<f64>,
}

impl Table {
    /// The index of column `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Column `name` as f32 `[N]`; `None` if there is no such column.
    pub fn column(&self, name: &str) -> Option<Tensor> {
        let c = self.index(name)?;
        let width = self.names.len();
        let v: Vec<f32> = (0..self.rows).map(|r| self.values[r * width + c] as f32).collect();
        Tensor::new(vec![self.rows], Data::F32(v)).ok()
    }

    /// Columns `names` stacked as f32 `[N, k]`; `Err(name)` for the first unknown one.
    pub fn columns(&self, names: &[String]) -> Result<Tensor, String> {
        let idx: Vec<usize> = names.iter().map(|n| self.index(n).ok_or_else(|| n.clone())).collect::<Result<_, _>>()?;
        let width = self.names.len();
        let mut v = Vec::with_capacity(self.rows * idx.len());
        for r in 0..self.rows {
            v.extend(idx.iter().map(|&c| self.values[r * width + c] as f32));
        }
        Tensor::new(vec![self.rows, idx.len()], Data::F32(v)).map_err(|e| e.to_string())
    }
}

/// Reads a table with a header row (see the module docs).
pub fn read_table(path: impl AsRef<Path>) -> Result<Table, IoError> {
    let path = path.as_ref();
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let gzipped = reader.fill_buf().map_err(io_err(path))?.starts_with(&[0x1f, 0x8b]);
    let mut text: Box<dyn BufRead> =
        if gzipped { Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader))) } else { Box::new(reader) };
    let mut builder: Option<Builder> = None;
    let mut line = Vec::new();
    for line_no in 1.. {
        if !super::read_line_capped(&mut text, &mut line, MAX_CSV_LINE).map_err(io_err(path))? {
            break;
        }
        if line.len() > MAX_CSV_LINE {
            return Err(format_err(path, format!("line {line_no} is longer than {MAX_CSV_LINE} bytes")));
        }
        let text = std::str::from_utf8(&line).map_err(|_| format_err(path, format!("line {line_no} is not UTF-8")))?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match &mut builder {
            None => {
                builder = Some(Builder::header(text).map_err(|m| format_err(path, format!("line {line_no}: {m}")))?)
            }
            Some(b) => b.row(text).map_err(|m| format_err(path, format!("line {line_no}: {m}")))?,
        }
    }
    let b = builder.ok_or_else(|| format_err(path, "empty file: a table needs a header row"))?;
    Ok(Table { rows: b.rows, names: b.names, values: b.values })
}

struct Builder {
    names: Vec<String>,
    sep: char,
    rows: usize,
    values: Vec<f64>,
}

impl Builder {
    fn header(line: &str) -> Result<Builder, String> {
        let sep = if line.contains(',') { ',' } else { '\t' };
        let names: Vec<String> = line.split(sep).map(|n| n.trim().trim_matches('"').to_string()).collect();
        if names.iter().all(|n| n.parse::<f64>().is_ok()) {
            return Err("the first line holds numbers: a table needs a header row naming its columns".into());
        }
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(format!("column {} has no name", i + 1));
            }
            if names[..i].contains(n) {
                return Err(format!("column name {n:?} is used twice"));
            }
        }
        Ok(Builder { names, sep, rows: 0, values: Vec::new() })
    }

    fn row(&mut self, line: &str) -> Result<(), String> {
        let start = self.values.len();
        for (col, field) in line.split(self.sep).enumerate() {
            let Some(name) = self.names.get(col) else {
                self.values.truncate(start);
                return Err(format!("more than the header's {} columns", self.names.len()));
            };
            let field = field.trim();
            let v = field.parse::<f64>().map_err(|_| format!("column {name:?}: {field:?} is not a number"))?;
            self.values.push(v);
        }
        let got = self.values.len() - start;
        if got != self.names.len() {
            return Err(format!("{got} columns, the header has {}", self.names.len()));
        }
        self.rows += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn columns_by_name_one_or_stacked() {
        let (_d, p) = write("a, \"b\",c\n1,2,3\n\n4,5.5,6e1\n");
        let t = read_table(&p).unwrap();
        assert_eq!(t.names, ["a", "b", "c"]);
        assert_eq!(t.rows, 2);
        assert_eq!(t.column("b").unwrap().data, Data::F32(vec![2.0, 5.5]));
        let s = t.columns(&["c".into(), "a".into()]).unwrap();
        assert_eq!((s.shape.clone(), s.data), (vec![2, 2], Data::F32(vec![3.0, 1.0, 60.0, 4.0])));
        assert_eq!(t.columns(&["a".into(), "d".into()]), Err("d".into()));
    }

    #[test]
    fn bad_tables_name_the_line() {
        for (text, want) in [
            ("1,2\n3,4\n", "header row"),
            ("a,a\n1,2\n", "used twice"),
            ("a,b\n1,x\n", "line 2: column \"b\": \"x\" is not a number"),
            ("a,b\n1\n", "line 2: 1 columns, the header has 2"),
            ("a,b\n1,2,3\n", "line 2: more than"),
            ("", "empty file"),
        ] {
            let (_d, p) = write(text);
            let e = read_table(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
