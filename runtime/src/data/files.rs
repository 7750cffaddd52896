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
//! fields are matched by position; [`Frame::new`] checks that the counts agree.
//! Values keep their stored dtype (integers widen to i64; the caller converts them to
//! the network's types); every reader checks sizes before it allocates (see
//! [`crate::io`]).
//!
//! A field of more than [`FileSource::stream_above`] bytes stays in its file, each batch
//! reading its rows (see [`super::column`]), when it is stored uncompressed: `.npy`
//! files and shards, `.npz` entries written by `numpy.savez` (not `savez_compressed`),
//! and `.safetensors`, little-endian and in C order. Other fields are read whole.

use super::column::Column;
use super::{stored, DataError, Frame};
use crate::io::{self, read_npy};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Fields larger than this many bytes stay in their files by default.
pub const STREAM_ABOVE: u64 = 64 << 20;

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
    /// Fields of more bytes than this stay in their files where they can (see the
    /// module docs; [`STREAM_ABOVE`] by default).
    pub stream_above: u64,
}

impl FileSource {
    /// `fields` of `path`, with the default [`STREAM_ABOVE`].
    pub fn new(path: Option<PathBuf>, fields: Vec<(String, Select)>) -> FileSource {
        FileSource { path, fields, stream_above: STREAM_ABOVE }
    }
}

/// Reads the fields of `src` as one data set (every field an input; the caller decides
/// which feed the loss).
pub fn load(src: &FileSource) -> Result<Frame, DataError> {
    if let Some(p) = src.path.as_ref().filter(|p| !p.exists()) {
        return Err(DataError::Invalid(format!("{} does not exist", p.display())));
    }
    let above = src.stream_above;
    let columns = match &src.path {
        None => src
            .fields
            .iter()
            .map(|(n, s)| Ok((n.clone(), npy_file(n, s, above)?)))
            .collect::<Result<Vec<_>, DataError>>()?,
        Some(p) if p.is_dir() => folder(p, &src.fields, above)?,
        Some(p) => match kind(p) {
            Kind::Table => in_memory(table(p, &src.fields)?),
            Kind::Named => named(p, &src.fields, above)?,
            Kind::Unknown => return Err(DataError::Invalid(unknown_kind(p))),
        },
    };
    Frame::new(columns, Vec::new())
}

fn in_memory(fields: Vec<(String, Tensor)>) -> Vec<(String, Column)> {
    fields.into_iter().map(|(n, t)| (n, Column::from(t))).collect()
}

/// Located arrays as a column: left in the file when larger than `above` bytes, else
/// read now.
fn located(parts: Vec<stored::Located>, above: u64) -> Result<Column, DataError> {
    let bytes = parts.iter().fold(0u64, |n, p| n.saturating_add(p.bytes()));
    let column = stored::column(parts)?;
    if bytes > above {
        Ok(column)
    } else {
        column.tensor().map(Column::from)
    }
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

fn npy_file(field: &str, s: &Select, above: u64) -> Result<Column, DataError> {
    match s {
        Select::Name(p) => match stored::npy(Path::new(p))? {
            Some(loc) => located(vec![loc], above),
            None => Ok(Column::from(read_npy(p)?)),
        },
        Select::Columns(_) => Err(not_a_name(field, "a .npy file")),
    }
}

/// `.npz`, `.safetensors`, `.pt`: named tensors; those stored in place as columns, the
/// rest from one read of the whole file.
fn named(p: &Path, fields: &[(String, Select)], above: u64) -> Result<Vec<(String, Column)>, DataError> {
    let name = p.to_string_lossy().to_lowercase();
    let locate = |key: &str| match () {
        _ if name.ends_with(".npz") => stored::npz_entry(p, key),
        _ if name.ends_with(".safetensors") => stored::safetensors(p, key),
        _ => Ok(None),
    };
    let mut all: Option<BTreeMap<String, Tensor>> = None;
    let mut out = Vec::new();
    for (field, s) in fields {
        let Select::Name(key) = s else { return Err(not_a_name(field, &p.display().to_string())) };
        if let Some(loc) = locate(key)? {
            out.push((field.clone(), located(vec![loc], above)?));
            continue;
        }
        if all.is_none() {
            all = Some(read_named(p, &name)?);
        }
        let all = all.as_mut().expect("read");
        let keys: Vec<String> = all.keys().cloned().collect();
        let t = all.remove(key).ok_or_else(|| missing(p, field, key, "arrays", &keys))?;
        out.push((field.clone(), Column::from(t)));
    }
    Ok(out)
}

fn read_named(p: &Path, name: &str) -> Result<BTreeMap<String, Tensor>, DataError> {
    Ok(if name.ends_with(".npz") {
        io::read_npz(p)?
    } else if name.ends_with(".safetensors") {
        io::read_safetensors(p)?
    } else {
        io::read_pt(p)?
    })
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
fn folder(dir: &Path, fields: &[(String, Select)], above: u64) -> Result<Vec<(String, Column)>, DataError> {
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
        out.push((field.clone(), shards(&files, above)?));
    }
    Ok(out)
}

/// Shards in place when every one can be, else read and joined.
fn shards(files: &[PathBuf], above: u64) -> Result<Column, DataError> {
    let found: Vec<Option<stored::Located>> = files.iter().map(|f| stored::npy(f)).collect::<Result<_, _>>()?;
    match found.into_iter().collect::<Option<Vec<_>>>() {
        Some(parts) => located(parts, above),
        None => Ok(Column::from(join_shards(files)?)),
    }
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
        let src = FileSource::new(Some(d.path().into()), vec![("x".into(), name("x")), ("t".into(), name("y"))]);
        let ds = load(&src).unwrap();
        assert_eq!(ds.get("x").unwrap().tensor().unwrap().data, Data::F32(vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]));
        assert_eq!(ds.get("t").unwrap().shape(), [3]);
        let bad = FileSource::new(Some(d.path().into()), vec![("z".into(), name("z"))]);
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("has no `z`") && e.contains("x.1, x.10, x.2, y"), "{e}");
    }

    #[test]
    fn shards_that_disagree_are_refused() {
        let d = tempfile::tempdir().unwrap();
        io::write_npy(d.path().join("x.0.npy"), &t(vec![1, 2], vec![0.0, 0.0])).unwrap();
        io::write_npy(d.path().join("x.1.npy"), &t(vec![1, 3], vec![0.0; 3])).unwrap();
        let src = FileSource::new(Some(d.path().into()), vec![("x".into(), name("x"))]);
        assert!(load(&src).unwrap_err().to_string().contains("shards must agree"));
    }

    #[test]
    fn npz_fields_by_name_and_rows_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.npz");
        io::write_npz(&p, [("a", &t(vec![2, 1], vec![1.0, 2.0])), ("b", &t(vec![3], vec![0.0; 3]))]).unwrap();
        let one = FileSource::new(Some(p.clone()), vec![("x".into(), name("a"))]);
        assert_eq!(load(&one).unwrap().get("x").unwrap().shape(), [2, 1]);
        let two = FileSource::new(Some(p.clone()), vec![("x".into(), name("a")), ("y".into(), name("b"))]);
        assert!(load(&two).unwrap_err().to_string().contains("rows"));
        let cols = FileSource::new(Some(p), vec![("x".into(), Select::Columns(vec!["a".into()]))]);
        assert!(load(&cols).unwrap_err().to_string().contains("selects from a CSV file"));
    }

    #[test]
    fn csv_columns_and_npy_pairs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        std::fs::write(&p, "a,b,c\n1,2,3\n4,5,6\n").unwrap();
        let fields = vec![("x".into(), Select::Columns(vec!["a".into(), "c".into()])), ("y".into(), name("b"))];
        let src = FileSource::new(Some(p.clone()), fields);
        let ds = load(&src).unwrap();
        assert_eq!(ds.get("x").unwrap().tensor().unwrap().data, Data::F32(vec![1.0, 3.0, 4.0, 6.0]));
        let e = load(&FileSource::new(Some(p), vec![("y".into(), name("price"))])).unwrap_err();
        assert!(e.to_string().contains("has no `price` (for field `y`); its columns: a, b, c"), "{e}");
        let x = d.path().join("x.npy");
        io::write_npy(&x, &t(vec![2], vec![1.0, 2.0])).unwrap();
        let pairs = FileSource::new(None, vec![("x".into(), Select::Name(x.to_string_lossy().into()))]);
        assert_eq!(load(&pairs).unwrap().len(), 2);
        let e = load(&FileSource::new(Some(d.path().join("d.txt")), vec![])).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    /// Every in-place source read in place (threshold 0) gives what reading it whole
    /// gives; a compressed `.npz` entry is read whole.
    #[test]
    fn fields_in_place_read_as_whole_files() {
        let d = tempfile::tempdir().unwrap();
        let x = t(vec![5, 2], (0..10).map(|v| v as f32 * 0.5).collect());
        let y = Tensor::new(vec![5], Data::I64(vec![3, 1, 4, 1, 5])).unwrap();
        let p = |n: &str| d.path().join(n);
        io::write_npz(p("d.npz"), [("x", &x), ("y", &y)]).unwrap();
        io::write_safetensors(p("d.safetensors"), [("x", &x), ("y", &y)]).unwrap();
        std::fs::create_dir(p("shards")).unwrap();
        io::write_npy(p("shards/x.0.npy"), &crate::data::gather_rows(&x, &[0, 1])).unwrap();
        io::write_npy(p("shards/x.1.npy"), &crate::data::gather_rows(&x, &[2, 3, 4])).unwrap();
        io::write_npy(p("shards/y.npy"), &y).unwrap();
        for path in ["d.npz", "d.safetensors", "shards"] {
            let mut src = FileSource::new(Some(p(path)), vec![("x".into(), name("x")), ("y".into(), name("y"))]);
            let whole = load(&src).unwrap();
            src.stream_above = 0;
            let lazy = load(&src).unwrap();
            assert!(lazy.columns().all(|(_, c)| c.in_file()) && !whole.get("x").unwrap().in_file(), "{path}");
            assert_eq!(lazy.load().unwrap(), whole.load().unwrap(), "{path}");
            assert_eq!(lazy.select(&[4, 0]).unwrap().get("x").unwrap(), &crate::data::gather_rows(&x, &[4, 0]));
        }
        let mut zipped = FileSource::new(Some(p("z.npz")), vec![("x".into(), name("x"))]);
        zipped.stream_above = 0;
        let mut npz = zip::ZipWriter::new(std::fs::File::create(p("z.npz")).unwrap());
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        npz.start_file("x.npy", deflated).unwrap();
        io::write_npy(p("x.npy"), &x).unwrap();
        std::io::Write::write_all(&mut npz, &std::fs::read(p("x.npy")).unwrap()).unwrap();
        npz.finish().unwrap();
        let f = load(&zipped).unwrap();
        assert!(!f.get("x").unwrap().in_file());
        assert_eq!(f.get("x").unwrap().tensor().unwrap(), x);
    }

    /// A header whose shape needs more bytes than follow it is refused before any read.
    #[test]
    fn a_lying_header_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let x = d.path().join("x.npy");
        io::write_npy(&x, &t(vec![4], vec![1.0; 4])).unwrap();
        let mut bytes = std::fs::read(&x).unwrap();
        let at = bytes.windows(2).position(|w| w == b"(4").unwrap();
        bytes[at + 1] = b'9';
        std::fs::write(&x, &bytes).unwrap();
        let mut src = FileSource::new(None, vec![("x".into(), Select::Name(x.to_string_lossy().into()))]);
        src.stream_above = 0;
        let e = load(&src).unwrap_err().to_string();
        assert!(e.contains("needs more data"), "{e}");
    }
}
