//! Data sets from the user's own files, as a `train` block's `file(...)` names them.
//!
//! Contract: [`load`] reads exactly the fields asked for, each by its selector, from
//! one of these sources (chosen by the path):
//!
//! | source | a field `NAME` is |
//! |---|---|
//! | `PATH.npz`, `PATH.safetensors`, `PATH.pt` | the array or tensor called `NAME` |
//! | `PATH.csv`, `PATH.csv.gz` | the column `NAME` (`[N]`), or a list of columns (`[N, k]`), f32 |
//! | a folder | `NAME.npy`, or its shards `NAME.0.npy`, `NAME.1.npy`, ... joined along the rows in numeric order |
//! | no path | the `.npy` file the selector names (one file per field) |
//!
//! An absent field, column or file is an error naming it and listing what the source
//! has. Shards must agree in dtype and in every axis but the first. Rows of different
//! fields are matched by position; [`Dataset::new`] checks that the counts agree.
//! Values keep their stored dtype (the caller converts them to the network's types);
//! every reader checks sizes before it allocates (see [`crate::io`]).

use super::{DataError, Dataset};
use crate::io::{self, read_npy};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a field is found in its source.
#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    /// The array, tensor, column or file of this name.
    Name(String),
    /// CSV columns, stacked as `[N, k]`.
    Columns(Vec<String>),
}

/// A data file (or folder; `None`: one `.npy` file per field) and the fields to read.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSource {
    pub path: Option<PathBuf>,
    /// `(field name in the data set, how to find it)`.
    pub fields: Vec<(String, Select)>,
}

/// Reads the fields of `src` as one data set (every field an input; the caller decides
/// which feed the loss).
pub fn load(src: &FileSource) -> Result<Dataset, DataError> {
    if let Some(p) = src.path.as_ref().filter(|p| !p.exists()) {
        return Err(DataError::Invalid(format!("{} does not exist", p.display())));
    }
    let tensors = match &src.path {
        None => {
            src.fields.iter().map(|(n, s)| Ok((n.clone(), npy_file(n, s)?))).collect::<Result<Vec<_>, DataError>>()?
        }
        Some(p) if p.is_dir() => folder(p, &src.fields)?,
        Some(p) => match kind(p) {
            Kind::Table => table(p, &src.fields)?,
            Kind::Named => named(p, &src.fields)?,
            Kind::Unknown => return Err(DataError::Invalid(unknown_kind(p))),
        },
    };
    Dataset::new(tensors, Vec::new())
}

enum Kind {
    Table,
    Named,
    Unknown,
}

fn kind(p: &Path) -> Kind {
    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if name.ends_with(".csv") || name.ends_with(".csv.gz") || name.ends_with(".tsv") {
        Kind::Table
    } else if [".npz", ".safetensors", ".pt", ".pth"].iter().any(|e| name.ends_with(e)) {
        Kind::Named
    } else {
        Kind::Unknown
    }
}

fn unknown_kind(p: &Path) -> String {
    let what = if p.exists() { "is not a data file archc reads" } else { "does not exist" };
    format!("{} {what}: give a .npz, .safetensors, .pt, .csv or .csv.gz file, or a folder of .npy files", p.display())
}

fn not_a_name(field: &str, what: &str) -> DataError {
    DataError::Invalid(format!("field `{field}`: a list of columns selects from a CSV file, not from {what}"))
}

fn npy_file(field: &str, s: &Select) -> Result<Tensor, DataError> {
    match s {
        Select::Name(p) => Ok(read_npy(p)?),
        Select::Columns(_) => Err(not_a_name(field, "a .npy file")),
    }
}

/// `.npz`, `.safetensors`, `.pt`: named tensors.
fn named(p: &Path, fields: &[(String, Select)]) -> Result<Vec<(String, Tensor)>, DataError> {
    let name = p.to_string_lossy().to_lowercase();
    let mut all: BTreeMap<String, Tensor> = if name.ends_with(".npz") {
        io::read_npz(p)?
    } else if name.ends_with(".safetensors") {
        io::read_safetensors(p)?
    } else {
        io::read_pt(p)?
    };
    let keys: Vec<String> = all.keys().cloned().collect();
    let mut out = Vec::new();
    for (field, s) in fields {
        let Select::Name(key) = s else { return Err(not_a_name(field, &p.display().to_string())) };
        let t = all.remove(key).ok_or_else(|| missing(p, field, key, "arrays", &keys))?;
        out.push((field.clone(), t));
    }
    Ok(out)
}

fn table(p: &Path, fields: &[(String, Select)]) -> Result<Vec<(String, Tensor)>, DataError> {
    let t = io::read_table(p)?;
    let mut out = Vec::new();
    for (field, s) in fields {
        let v = match s {
            Select::Name(c) => t.column(c).ok_or_else(|| missing(p, field, c, "columns", &t.names))?,
            Select::Columns(cs) => t.columns(cs).map_err(|c| missing(p, field, &c, "columns", &t.names))?,
        };
        out.push((field.clone(), v));
    }
    Ok(out)
}

fn missing(p: &Path, field: &str, key: &str, what: &str, have: &[String]) -> DataError {
    let shown: Vec<&str> = have.iter().take(20).map(String::as_str).collect();
    let more = if have.len() > 20 { format!(", ... ({} in all)", have.len()) } else { String::new() };
    let whose = if field == key { String::new() } else { format!(" (for field `{field}`)") };
    DataError::Invalid(format!("{} has no `{key}`{whose}; its {what}: {}{more}", p.display(), shown.join(", ")))
}

/// A folder: `NAME.npy` or the shards `NAME.K.npy`.
fn folder(dir: &Path, fields: &[(String, Select)]) -> Result<Vec<(String, Tensor)>, DataError> {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| DataError::Invalid(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".npy"))
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for (field, s) in fields {
        let Select::Name(key) = s else { return Err(not_a_name(field, &dir.display().to_string())) };
        let files = shard_files(dir, key, &entries);
        if files.is_empty() {
            let stems: Vec<String> = entries.iter().map(|e| e.trim_end_matches(".npy").to_string()).collect();
            return Err(missing(dir, field, key, ".npy files", &stems));
        }
        out.push((field.clone(), join_shards(&files)?));
    }
    Ok(out)
}

/// `KEY.npy` alone, else `KEY.<k>.npy` for every number `k`, in numeric order.
fn shard_files(dir: &Path, key: &str, entries: &[String]) -> Vec<PathBuf> {
    let whole = format!("{key}.npy");
    if entries.contains(&whole) {
        return vec![dir.join(whole)];
    }
    let prefix = format!("{key}.");
    let mut shards: Vec<(u64, &String)> = entries
        .iter()
        .filter_map(|e| {
            let k = e.strip_prefix(&prefix)?.strip_suffix(".npy")?;
            k.parse::<u64>().ok().filter(|_| k.bytes().all(|b| b.is_ascii_digit())).map(|k| (k, e))
        })
        .collect();
    shards.sort();
    shards.into_iter().map(|(_, e)| dir.join(e)).collect()
}

fn join_shards(files: &[PathBuf]) -> Result<Tensor, DataError> {
    let parts: Vec<Tensor> = files.iter().map(read_npy).collect::<Result<_, _>>()?;
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let first = &parts[0];
    for (p, f) in parts.iter().zip(files).skip(1) {
        let same_tail = p.rank() == first.rank() && p.rank() >= 1 && p.shape[1..] == first.shape[1..];
        if p.dtype() != first.dtype() || !same_tail {
            return Err(DataError::Invalid(format!(
                "shard {} is {} but {} is {}: shards must agree in dtype and in every axis but the first",
                f.display(),
                p.type_string(),
                files[0].display(),
                first.type_string()
            )));
        }
    }
    if first.rank() == 0 {
        return Err(DataError::Invalid(format!("{} holds a scalar: a data set needs rows", files[0].display())));
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    crate::interp::concat(&refs, 0).map_err(DataError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Data;

    fn t(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor::new(shape, Data::F32(v)).unwrap()
    }

    fn name(s: &str) -> Select {
        Select::Name(s.into())
    }

    #[test]
    fn a_folder_joins_shards_in_numeric_order() {
        let d = tempfile::tempdir().unwrap();
        for (k, v) in [(10, 3.0), (2, 2.0), (1, 1.0)] {
            io::write_npy(d.path().join(format!("x.{k}.npy")), &t(vec![1, 2], vec![v, v])).unwrap();
        }
        io::write_npy(d.path().join("y.npy"), &t(vec![3], vec![7.0, 8.0, 9.0])).unwrap();
        let src =
            FileSource { path: Some(d.path().into()), fields: vec![("x".into(), name("x")), ("t".into(), name("y"))] };
        let ds = load(&src).unwrap();
        assert_eq!(ds.get("x").unwrap().data, Data::F32(vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]));
        assert_eq!(ds.get("t").unwrap().shape, vec![3]);
        let bad = FileSource { path: Some(d.path().into()), fields: vec![("z".into(), name("z"))] };
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("has no `z`") && e.contains("x.1, x.10, x.2, y"), "{e}");
    }

    #[test]
    fn shards_that_disagree_are_refused() {
        let d = tempfile::tempdir().unwrap();
        io::write_npy(d.path().join("x.0.npy"), &t(vec![1, 2], vec![0.0, 0.0])).unwrap();
        io::write_npy(d.path().join("x.1.npy"), &t(vec![1, 3], vec![0.0; 3])).unwrap();
        let src = FileSource { path: Some(d.path().into()), fields: vec![("x".into(), name("x"))] };
        assert!(load(&src).unwrap_err().to_string().contains("shards must agree"));
    }

    #[test]
    fn npz_fields_by_name_and_rows_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.npz");
        io::write_npz(&p, [("a", &t(vec![2, 1], vec![1.0, 2.0])), ("b", &t(vec![3], vec![0.0; 3]))]).unwrap();
        let one = FileSource { path: Some(p.clone()), fields: vec![("x".into(), name("a"))] };
        assert_eq!(load(&one).unwrap().get("x").unwrap().shape, vec![2, 1]);
        let two = FileSource { path: Some(p.clone()), fields: vec![("x".into(), name("a")), ("y".into(), name("b"))] };
        assert!(load(&two).unwrap_err().to_string().contains("rows"));
        let cols = FileSource { path: Some(p), fields: vec![("x".into(), Select::Columns(vec!["a".into()]))] };
        assert!(load(&cols).unwrap_err().to_string().contains("selects from a CSV file"));
    }

    #[test]
    fn csv_columns_and_npy_pairs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        std::fs::write(&p, "a,b,c\n1,2,3\n4,5,6\n").unwrap();
        let src = FileSource {
            path: Some(p.clone()),
            fields: vec![("x".into(), Select::Columns(vec!["a".into(), "c".into()])), ("y".into(), name("b"))],
        };
        let ds = load(&src).unwrap();
        assert_eq!(ds.get("x").unwrap().data, Data::F32(vec![1.0, 3.0, 4.0, 6.0]));
        let e = load(&FileSource { path: Some(p), fields: vec![("y".into(), name("price"))] }).unwrap_err();
        assert!(e.to_string().contains("has no `price` (for field `y`); its columns: a, b, c"), "{e}");
        let x = d.path().join("x.npy");
        io::write_npy(&x, &t(vec![2], vec![1.0, 2.0])).unwrap();
        let pairs = FileSource { path: None, fields: vec![("x".into(), Select::Name(x.to_string_lossy().into()))] };
        assert_eq!(load(&pairs).unwrap().len(), 2);
        let e = load(&FileSource { path: Some(d.path().join("d.txt")), fields: vec![] }).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
