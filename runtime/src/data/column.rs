//! One field of a data set: its values in memory, or in a file and read on demand.
//!
//! Contract:
//! - A [`Column`] has a shape (rows first) and a dtype; [`Column::select`] returns the
//!   rows asked for as a tensor of that dtype and row shape. A column stored in a file
//!   reads only those rows, by positioned reads (a run of consecutive rows in one read),
//!   so memory holds what was selected and nothing more: a data set larger than memory
//!   trains one batch at a time, the operating system's page cache doing the caching.
//! - [`Column::view`] is some of the rows, in some order, without reading anything;
//!   views of views compose.
//! - [`Column::with_dtype`] converts elements as [`Tensor::cast`] does, at each read for
//!   a file column; [`Column::with_shape`] gives rows another shape of the same element
//!   count. Neither reads the file.
//! - A file column holds its file open. A file that shrinks while it is read gives an
//!   I/O error at the read, never a crash or a short tensor.

use super::DataError;
use crate::tensor::{type_string, Data, Tensor};
use archc_compiler::tir::DType;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// How elements are stored in a file (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    Bool,
}

impl Stored {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Stored::I8 | Stored::U8 | Stored::Bool => 1,
            Stored::I16 | Stored::U16 => 2,
            Stored::F32 | Stored::I32 | Stored::U32 => 4,
            Stored::F64 | Stored::I64 => 8,
        }
    }

    /// The dtype the elements read as (integers widen to i64).
    pub fn dtype(self) -> DType {
        match self {
            Stored::F32 => DType::F32,
            Stored::F64 => DType::F64,
            Stored::Bool => DType::Bool,
            _ => DType::I64,
        }
    }

    /// Little-endian bytes (a whole number of elements) to elements.
    fn decode(self, b: &[u8]) -> Data {
        fn words<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            b.chunks_exact(N).map(|c| c.try_into().expect("exact chunk"))
        }
        match self {
            Stored::F32 => Data::F32(words::<4>(b).map(f32::from_le_bytes).collect()),
            Stored::F64 => Data::F64(words::<8>(b).map(f64::from_le_bytes).collect()),
            Stored::I64 => Data::I64(words::<8>(b).map(i64::from_le_bytes).collect()),
            Stored::I32 => Data::I64(words::<4>(b).map(|w| i32::from_le_bytes(w) as i64).collect()),
            Stored::U32 => Data::I64(words::<4>(b).map(|w| u32::from_le_bytes(w) as i64).collect()),
            Stored::I16 => Data::I64(words::<2>(b).map(|w| i16::from_le_bytes(w) as i64).collect()),
            Stored::U16 => Data::I64(words::<2>(b).map(|w| u16::from_le_bytes(w) as i64).collect()),
            Stored::I8 => Data::I64(b.iter().map(|&x| x as i8 as i64).collect()),
            Stored::U8 => Data::I64(b.iter().map(|&x| x as i64).collect()),
            Stored::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
        }
    }
}

/// A run of elements in a file: `elems` elements from byte `offset` on.
#[derive(Debug)]
pub struct Extent {
    pub file: File,
    pub path: PathBuf,
    pub offset: u64,
    pub elems: u64,
}

/// Elements stored in files: the extents joined in order, one flat array.
#[derive(Debug)]
pub struct FileStore {
    extents: Vec<Extent>,
    /// The first element of each extent.
    starts: Vec<u64>,
    stored: Stored,
}

impl FileStore {
    pub fn new(extents: Vec<Extent>, stored: Stored) -> FileStore {
        let mut starts = Vec::with_capacity(extents.len());
        let mut at = 0u64;
        for e in &extents {
            starts.push(at);
            at += e.elems;
        }
        FileStore { extents, starts, stored }
    }

    /// Every element.
    pub fn elems(&self) -> u64 {
        self.extents.last().map_or(0, |e| self.starts[self.starts.len() - 1] + e.elems)
    }

    /// Appends the bytes of elements `[start, start + count)` to `out`.
    fn read(&self, start: u64, count: u64, out: &mut Vec<u8>) -> Result<(), DataError> {
        let size = self.stored.size() as u64;
        let (mut at, end) = (start, start + count);
        while at < end {
            let k = self.starts.partition_point(|&s| s <= at) - 1;
            let e = &self.extents[k];
            let n = (end - at).min(self.starts[k] + e.elems - at);
            let from = out.len();
            out.resize(from + (n * size) as usize, 0);
            let pos = e.offset + (at - self.starts[k]) * size;
            e.file
                .read_exact_at(&mut out[from..], pos)
                .map_err(|err| DataError::Invalid(format!("cannot read {} at byte {pos}: {err}", e.path.display())))?;
            at += n;
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Store {
    Memory(Tensor),
    File(FileStore),
}

/// A data set's field (see the module docs).
#[derive(Clone, Debug)]
pub struct Column {
    store: Arc<Store>,
    /// Rows of the store, in order (`None`: all of them).
    rows: Option<Arc<[usize]>>,
    shape: Vec<usize>,
    dtype: DType,
}

impl PartialEq for Column {
    /// Equal shapes, dtypes and values (a file column is read to compare).
    fn eq(&self, other: &Column) -> bool {
        self.shape == other.shape && self.dtype == other.dtype && self.tensor().ok() == other.tensor().ok()
    }
}

impl From<Tensor> for Column {
    fn from(t: Tensor) -> Column {
        Column { shape: t.shape.clone(), dtype: t.dtype(), store: Arc::new(Store::Memory(t)), rows: None }
    }
}

impl Column {
    /// The elements of `store` as rows of `shape` (whose element count must be the
    /// store's).
    pub fn file(store: FileStore, shape: Vec<usize>) -> Result<Column, DataError> {
        let numel = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        if numel != Some(store.elems()) || shape.is_empty() {
            return Err(DataError::Invalid(format!(
                "shape {shape:?} does not match the {} stored elements",
                store.elems()
            )));
        }
        Ok(Column { dtype: store.stored.dtype(), store: Arc::new(Store::File(store)), rows: None, shape })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `f32[N, 4]` and the like.
    pub fn type_string(&self) -> String {
        type_string(self.dtype, &self.shape)
    }

    /// Whether the values stay in a file until read.
    pub fn in_file(&self) -> bool {
        matches!(*self.store, Store::File(_))
    }

    /// Elements per row.
    fn row_elems(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// The store's rows behind this column's `rows`. Panics if a row is out of range.
    fn stored_rows(&self, rows: &[usize]) -> Vec<usize> {
        let n = self.len();
        let at = |r: usize| {
            assert!(r < n, "row {r} of {n}");
            self.rows.as_ref().map_or(r, |v| v[r])
        };
        rows.iter().map(|&r| at(r)).collect()
    }

    /// Rows `rows` of this column, without reading. Panics if a row is out of range.
    pub fn view(&self, rows: &[usize]) -> Column {
        let mapped: Arc<[usize]> = self.stored_rows(rows).into();
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        Column { store: self.store.clone(), rows: Some(mapped), shape, dtype: self.dtype }
    }

    /// The rows `rows`, read (see the module docs). Panics if a row is out of range.
    pub fn select(&self, rows: &[usize]) -> Result<Tensor, DataError> {
        let stored = self.stored_rows(rows);
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let data = match &*self.store {
            Store::Memory(t) => super::gather_rows(t, &stored).data,
            Store::File(f) => read_rows(f, &stored, self.row_elems())?,
        };
        let data = if data.dtype() == self.dtype { data } else { data.cast(self.dtype) };
        Tensor::new(shape, data).map_err(|e| DataError::Invalid(e.to_string()))
    }

    /// Every row, read.
    pub fn tensor(&self) -> Result<Tensor, DataError> {
        if let (Store::Memory(t), None) = (&*self.store, &self.rows) {
            if t.dtype() == self.dtype && t.shape == self.shape {
                return Ok(t.clone());
            }
        }
        let all: Vec<usize> = (0..self.len()).collect();
        self.select(&all)
    }

    /// Rows converted to `dtype` when read.
    pub fn with_dtype(mut self, dtype: DType) -> Column {
        self.dtype = dtype;
        self
    }

    /// Rows of `shape` (its first dimension the row count, its element count per row
    /// this column's); `None` if it does not fit.
    pub fn with_shape(mut self, shape: &[usize]) -> Option<Column> {
        let same = shape.first() == Some(&self.len()) && shape[1..].iter().product::<usize>() == self.row_elems();
        same.then(|| {
            self.shape = shape.to_vec();
            self
        })
    }
}

/// Rows `rows` of a file store with `width` elements per row; consecutive rows in one
/// read.
fn read_rows(f: &FileStore, rows: &[usize], width: usize) -> Result<Data, DataError> {
    let mut bytes = Vec::new();
    let size = f.stored.size();
    bytes
        .try_reserve_exact(rows.len().saturating_mul(width).saturating_mul(size))
        .map_err(|_| DataError::Invalid(format!("out of memory reading {} rows of {width} elements", rows.len())))?;
    let mut i = 0;
    while i < rows.len() {
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[j - 1] + 1 {
            j += 1;
        }
        f.read((rows[i] * width) as u64, ((j - i) * width) as u64, &mut bytes)?;
        i = j;
    }
    Ok(f.stored.decode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn store(dir: &std::path::Path, parts: &[&[f32]]) -> FileStore {
        let extents = parts
            .iter()
            .enumerate()
            .map(|(k, vals)| {
                let path = dir.join(format!("p{k}"));
                let mut f = File::create(&path).unwrap();
                f.write_all(b"hdr").unwrap();
                for v in *vals {
                    f.write_all(&v.to_le_bytes()).unwrap();
                }
                Extent { file: File::open(&path).unwrap(), path, offset: 3, elems: vals.len() as u64 }
            })
            .collect();
        FileStore::new(extents, Stored::F32)
    }

    #[test]
    fn rows_read_across_extents_in_any_order() {
        let d = tempfile::tempdir().unwrap();
        let c = Column::file(store(d.path(), &[&[0.0, 1.0, 2.0], &[3.0, 4.0, 5.0, 6.0, 7.0]]), vec![4, 2]).unwrap();
        let t = c.select(&[1, 3, 0, 1]).unwrap();
        assert_eq!(t.shape, vec![4, 2]);
        assert_eq!(t.data, Data::F32(vec![2.0, 3.0, 6.0, 7.0, 0.0, 1.0, 2.0, 3.0]));
        let v = c.view(&[3, 2, 1]).view(&[2, 0]);
        assert_eq!(v.tensor().unwrap().data, Data::F32(vec![2.0, 3.0, 6.0, 7.0]));
        let ints = v.with_dtype(DType::I64).with_shape(&[2, 2, 1]).unwrap();
        assert_eq!(ints.tensor().unwrap(), Tensor::new(vec![2, 2, 1], Data::I64(vec![2, 3, 6, 7])).unwrap());
        assert!(c.clone().with_shape(&[2, 4]).is_none());
        assert!(Column::file(store(d.path(), &[&[1.0]]), vec![2]).is_err());
    }

    #[test]
    fn a_file_that_shrank_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let c = Column::file(store(d.path(), &[&[0.0, 1.0, 2.0, 3.0]]), vec![4]).unwrap();
        std::fs::OpenOptions::new().write(true).open(d.path().join("p0")).unwrap().set_len(7).unwrap();
        assert_eq!(c.select(&[0]).unwrap().data, Data::F32(vec![0.0]));
        let e = c.select(&[3]).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("p0"), "{e}");
    }

    #[test]
    fn memory_columns_view_and_convert() {
        let t = Tensor::new(vec![3, 1], Data::I64(vec![5, 6, 7])).unwrap();
        let c = Column::from(t).view(&[2, 0]).with_dtype(DType::F32);
        assert_eq!(c.tensor().unwrap(), Tensor::new(vec![2, 1], Data::F32(vec![7.0, 5.0])).unwrap());
        assert!(!c.in_file());
    }
}
