//! A data set whose fields may stay in their files: what a training run draws its
//! batches from.
//!
//! Contract: a [`Frame`] is a [`Dataset`] whose fields are [`Column`]s. It splits and
//! batches exactly as a `Dataset` does (the same seeds give the same rows, see the
//! `data` module docs), but [`Frame::split`] and [`Frame::view`] read nothing, and each
//! batch reads only its own rows. [`Frame::load`] reads every row into a `Dataset`.

use super::column::Column;
use super::{DataError, Dataset};
use crate::tensor::Tensor;

/// Named input and target columns that share their row count.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub inputs: Vec<(String, Column)>,
    pub targets: Vec<(String, Column)>,
}

impl From<Dataset> for Frame {
    fn from(ds: Dataset) -> Frame {
        let cols = |v: Vec<(String, Tensor)>| v.into_iter().map(|(n, t)| (n, Column::from(t))).collect();
        Frame { inputs: cols(ds.inputs), targets: cols(ds.targets) }
    }
}

impl Frame {
    /// Checks what [`Dataset::new`] checks.
    pub fn new(inputs: Vec<(String, Column)>, targets: Vec<(String, Column)>) -> Result<Frame, DataError> {
        let f = Frame { inputs, targets };
        super::check_fields(f.columns().map(|(n, c)| (n, c.shape())))?;
        Ok(f)
    }

    /// Every column, inputs first.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.inputs.iter().chain(&self.targets).map(|(n, c)| (n.as_str(), c))
    }

    /// The input or target called `name`.
    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    /// The number of rows (0 for a frame without columns).
    pub fn len(&self) -> usize {
        self.columns().next().map_or(0, |(_, c)| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `rows`, unread. Panics if a row is out of range.
    pub fn view(&self, rows: &[usize]) -> Frame {
        let view = |cs: &[(String, Column)]| cs.iter().map(|(n, c)| (n.clone(), c.view(rows))).collect();
        Frame { inputs: view(&self.inputs), targets: view(&self.targets) }
    }

    /// The rows `rows`, read. Panics if a row is out of range.
    pub fn select(&self, rows: &[usize]) -> Result<Dataset, DataError> {
        let read = |cs: &[(String, Column)]| -> Result<Vec<(String, Tensor)>, DataError> {
            cs.iter().map(|(n, c)| Ok((n.clone(), c.select(rows)?))).collect()
        };
        Ok(Dataset { inputs: read(&self.inputs)?, targets: read(&self.targets)? })
    }

    /// Every row, read.
    pub fn load(&self) -> Result<Dataset, DataError> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.select(&all)
    }

    /// Seeded parts of the rows, as [`Dataset::split`] cuts them, unread.
    pub fn split(&self, fractions: &[f64], seed: u64) -> Result<Vec<Frame>, DataError> {
        Ok(super::split_rows(self.len(), fractions, seed)?.iter().map(|rows| self.view(rows)).collect())
    }

    /// The mini-batches of one epoch, as [`Dataset::batches`] draws them, each read when
    /// it is reached. Panics if `batch_size` is 0.
    pub fn batches(&self, batch_size: usize, seed: u64, epoch: u64, drop_last: bool) -> FrameBatches<'_> {
        let order = super::epoch_order(self.len(), batch_size, seed, epoch, drop_last);
        FrameBatches { frame: self, order, batch_size, next: 0 }
    }
}

/// The batches of one epoch of a [`Frame`], in order.
pub struct FrameBatches<'a> {
    frame: &'a Frame,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Iterator for FrameBatches<'_> {
    type Item = Result<Dataset, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let batch = self.frame.select(&self.order[self.next..end]);
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }

    /// Skips `n` batches without reading them (a resumed run starts part-way).
    fn nth(&mut self, n: usize) -> Option<Self::Item> {
        self.next = self.next.saturating_add(n.saturating_mul(self.batch_size)).min(self.order.len());
        self.next()
    }
}

impl ExactSizeIterator for FrameBatches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Data;
    use archc_compiler::tir::DType;

    fn ds(n: usize) -> Dataset {
        let x = Tensor::new(vec![n, 2], Data::F32((0..2 * n).map(|v| v as f32).collect())).unwrap();
        let y = Tensor::new(vec![n], Data::I64((0..n as i64).collect())).unwrap();
        Dataset::new(vec![("x".into(), x)], vec![("y".into(), y)]).unwrap()
    }

    #[test]
    fn splits_and_batches_are_the_datasets() {
        let d = ds(23);
        let f = Frame::from(d.clone());
        let (dp, fp) = (d.split(&[0.7, 0.3], 5).unwrap(), f.split(&[0.7, 0.3], 5).unwrap());
        for (a, b) in dp.iter().zip(&fp) {
            assert_eq!(&b.load().unwrap(), a);
            let want: Vec<Dataset> = a.batches(4, 9, 2, true).collect();
            let got: Vec<Dataset> = b.batches(4, 9, 2, true).map(Result::unwrap).collect();
            assert_eq!(got, want);
        }
        assert!(Frame::new(
            vec![("x".into(), Column::from(Tensor::zeros(DType::F32, &[2])))],
            vec![("y".into(), Column::from(Tensor::zeros(DType::F32, &[3])))]
        )
        .is_err());
    }
}
