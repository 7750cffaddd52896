//! Data sets for training: named input and target tensors that share a leading row
//! dimension, seeded splits and shuffled mini-batches, and loaders for the real data sets
//! fetched by `make data` ([`sets`]).
//!
//! Contract:
//! - A [`Dataset`] holds tensors of rank >= 1 with equal first dimensions (the rows) and
//!   distinct names; [`Dataset::new`] checks it.
//! - [`Dataset::split`]`(fractions, seed)` shuffles the rows with
//!   [`shuffle::permutation`]`(n, seed, SPLIT_STREAM)` and cuts the shuffled order at
//!   `floor(n * (f_1 + ... + f_k))`; when the fractions sum to 1 the last part ends at `n`
//!   exactly (so `[0.8, 0.2]` of 1797 rows is 1437 / 360). Rows keep the shuffled order.
//! - [`Dataset::batches`]`(batch_size, seed, epoch, drop_last)` visits the rows in the
//!   order [`shuffle::permutation`]`(n, seed, epoch)` in chunks of `batch_size`: every row
//!   exactly once per epoch (the last, shorter chunk is dropped when `drop_last`). Each
//!   batch is a `Dataset` whose tensors are the gathered rows.
//! - The same seed gives the same splits and batches on every machine (see [`shuffle`]).
//! - A [`Frame`] splits and batches the same way over [`Column`]s, which may stay in
//!   their files until a batch reads its rows (see [`frame`], [`column`]).

pub mod column;
pub mod files;
pub mod frame;
pub mod sets;
pub mod shuffle;
pub mod stored;

pub use column::Column;
pub use frame::Frame;
pub use sets::{append_grid, data_dir, load, load_from, NAMES};

use crate::io::IoError;
use crate::tensor::{Data, Tensor};
use std::fmt;
use std::path::PathBuf;

/// The ChaCha stream of [`Dataset::split`] (batches use the epoch as their stream).
pub const SPLIT_STREAM: u64 = u64::MAX;

/// A failed load or an invalid data set.
#[derive(Debug)]
pub enum DataError {
    /// The data directory lacks a data set's file.
    Missing { name: String, dir: PathBuf, file: String },
    /// A file could not be read.
    Io(IoError),
    /// Tensors or arguments that do not make a data set.
    Invalid(String),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DataError::Missing { name, dir, file } => {
                let dir = dir.display().to_string();
                let slash = if dir.ends_with('/') { "" } else { "/" };
                write!(f, "{name} not found in {dir}{slash} (no {file}): run `make data`, or set ARCHC_DATA to a data directory")
            }
            DataError::Io(e) => e.fmt(f),
            DataError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IoError> for DataError {
    fn from(e: IoError) -> DataError {
        DataError::Io(e)
    }
}

/// Named inputs and targets, one row per sample (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub inputs: Vec<(String, Tensor)>,
    pub targets: Vec<(String, Tensor)>,
}

impl Dataset {
    /// Checks that the tensors share their first dimension and have distinct names.
    pub fn new(inputs: Vec<(String, Tensor)>, targets: Vec<(String, Tensor)>) -> Result<Dataset, DataError> {
        let ds = Dataset { inputs, targets };
        check_fields(ds.tensors().map(|(n, t)| (n, t.shape.as_slice())))?;
        Ok(ds)
    }

    /// Every tensor, inputs first.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.inputs.iter().chain(&self.targets).map(|(n, t)| (n.as_str(), t))
    }

    /// The number of rows (0 for a data set without tensors).
    pub fn len(&self) -> usize {
        self.tensors().next().map_or(0, |(_, t)| t.shape[0])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input or target called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The rows `rows`, in that order (repeats allowed). Panics if a row is out of range.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let gather = |ts: &[(String, Tensor)]| ts.iter().map(|(n, t)| (n.clone(), gather_rows(t, rows))).collect();
        Dataset { inputs: gather(&self.inputs), targets: gather(&self.targets) }
    }

    /// Seeded parts of the rows (see the module docs).
    pub fn split(&self, fractions: &[f64], seed: u64) -> Result<Vec<Dataset>, DataError> {
        Ok(split_rows(self.len(), fractions, seed)?.iter().map(|rows| self.select(rows)).collect())
    }

    /// The mini-batches of one epoch (see the module docs). Panics if `batch_size` is 0.
    pub fn batches(&self, batch_size: usize, seed: u64, epoch: u64, drop_last: bool) -> Batches<'_> {
        Batches { data: self, order: epoch_order(self.len(), batch_size, seed, epoch, drop_last), batch_size, next: 0 }
    }
}

/// The rows of one epoch in visiting order (see the module docs). Panics if
/// `batch_size` is 0.
fn epoch_order(n: usize, batch_size: usize, seed: u64, epoch: u64, drop_last: bool) -> Vec<usize> {
    assert!(batch_size > 0, "batch size must be positive");
    let mut order = shuffle::permutation(n, seed, epoch);
    if drop_last {
        order.truncate(order.len() / batch_size * batch_size);
    }
    order
}

/// Checks that fields `(name, shape)` have distinct names and equal first dimensions.
fn check_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a [usize])>) -> Result<(), DataError> {
    let mut rows = None;
    let mut names = std::collections::BTreeSet::new();
    for (name, shape) in fields {
        if !names.insert(name) {
            return Err(DataError::Invalid(format!("tensor name {name} used twice")));
        }
        let Some(&n) = shape.first() else {
            return Err(DataError::Invalid(format!("{name} is a scalar: a data set needs rows")));
        };
        if *rows.get_or_insert(n) != n {
            return Err(DataError::Invalid(format!("{name} has {n} rows, expected {}", rows.unwrap())));
        }
    }
    Ok(())
}

/// The rows of each seeded part of `n` rows cut by `fractions` (see the module docs).
pub fn split_rows(n: usize, fractions: &[f64], seed: u64) -> Result<Vec<Vec<usize>>, DataError> {
    let bounds = split_bounds(n, fractions)?;
    let order = shuffle::permutation(n, seed, SPLIT_STREAM);
    let mut start = 0;
    Ok(bounds
        .into_iter()
        .map(|end| {
            let part = order[start..end].to_vec();
            start = end;
            part
        })
        .collect())
}

/// The end of each part of `n` rows cut by `fractions` (see the module docs).
pub fn split_bounds(n: usize, fractions: &[f64]) -> Result<Vec<usize>, DataError> {
    if fractions.iter().any(|f| !f.is_finite() || *f < 0.0) {
        return Err(DataError::Invalid(format!("split fractions {fractions:?} must be finite and non-negative")));
    }
    let total: f64 = fractions.iter().sum();
    if total > 1.0 + 1e-9 {
        return Err(DataError::Invalid(format!("split fractions {fractions:?} sum to {total} > 1")));
    }
    let mut acc = 0.0;
    let mut bounds: Vec<usize> = fractions
        .iter()
        .map(|f| {
            acc += f;
            (acc * n as f64 + 1e-9).floor().min(n as f64) as usize
        })
        .collect();
    if (total - 1.0).abs() <= 1e-9 {
        if let Some(last) = bounds.last_mut() {
            *last = n;
        }
    }
    Ok(bounds)
}

/// The batches of one epoch, in order.
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Dataset;

    fn next(&mut self) -> Option<Dataset> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let batch = self.data.select(&self.order[self.next..end]);
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// Rows `rows` of `t` (rank >= 1, along its first dimension), stacked. Panics if a row
/// is out of range.
pub fn gather_rows(t: &Tensor, rows: &[usize]) -> Tensor {
    fn gather<T: Copy>(v: &[T], width: usize, rows: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(rows.len() * width);
        for &r in rows {
            out.extend_from_slice(&v[r * width..(r + 1) * width]);
        }
        out
    }
    let width: usize = t.shape[1..].iter().product();
    let data = match &t.data {
        Data::F32(v) => Data::F32(gather(v, width, rows)),
        Data::F64(v) => Data::F64(gather(v, width, rows)),
        Data::I64(v) => Data::I64(gather(v, width, rows)),
        Data::Bool(v) => Data::Bool(gather(v, width, rows)),
        Data::C64(v) => Data::C64(gather(v, width, rows)),
    };
    let mut shape = t.shape.clone();
    shape[0] = rows.len();
    Tensor { shape, data }
}
