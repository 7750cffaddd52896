//! The state of a training run and its checkpoint file.
//!
//! Contract:
//! - [`TrainState`] is everything a run needs to continue bit-for-bit: parameter values,
//!   optimizer state slots, the counters (`step`: optimizer steps done; `epoch`: epochs
//!   done, which is also the 0-based index of the epoch in progress; `batch_in_epoch`:
//!   batches of that epoch done), the run seed and batch size (the batch order is a pure
//!   function of `(seed, epoch, batch size)`, see `data::Dataset::batches`), and the
//!   running totals of the epoch in progress (so a run resumed mid-epoch reports the same
//!   epoch metrics).
//! - A checkpoint is one `.safetensors` file: `param/NAME` and `state/NAME` tensors,
//!   counters as i64 scalars `meta/step`, `meta/epoch`, `meta/batch_in_epoch`,
//!   `meta/seed` (the u64's bits), `meta/batch_size`, `meta/samples`, `meta/version`
//!   (= [`VERSION`]), and f64 scalars `meta/loss_sum`, `meta/seconds`,
//!   `meta/metric/NAME`.
//! - [`TrainState::save`] is atomic: it writes `.NAME.tmp` in the same directory, syncs
//!   it, and renames it over `NAME`, so a kill mid-write leaves the previous checkpoint;
//!   on any error (a full disk, a failed rename) the temporary file is removed.

use super::tmpfile::TempFile;
use super::{io_error, TrainError};
use crate::io::{read_safetensors, write_safetensors};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// The checkpoint layout version written to `meta/version`.
pub const VERSION: i64 = 1;

/// Running totals of one epoch's training batches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochTotals {
    /// Samples seen.
    pub samples: u64,
    /// Sum over batches of `loss * batch rows` (the loss is a batch mean).
    pub loss_sum: f64,
    /// Sum over batches of each `metric:NAME` (batch sums), by `NAME`.
    pub metric_sums: BTreeMap<String, f64>,
    /// Seconds spent in training steps.
    pub seconds: f64,
}

/// Everything needed to continue a run (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Parameter values by name (`fc.w`, without the `param:` prefix).
    pub params: BTreeMap<String, Tensor>,
    /// Optimizer state slots by name (`fc.w.m`, `step`, without the `state:` prefix).
    pub slots: BTreeMap<String, Tensor>,
    pub step: u64,
    pub epoch: u64,
    pub batch_in_epoch: u64,
    pub seed: u64,
    pub batch_size: u64,
    /// Totals of the epoch in progress (empty at an epoch boundary).
    pub partial: EpochTotals,
}

impl TrainState {
    /// The checkpoint's tensors (see the module docs).
    pub fn to_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, t) in &self.params {
            out.insert(format!("param/{name}"), t.clone());
        }
        for (name, t) in &self.slots {
            out.insert(format!("state/{name}"), t.clone());
        }
        let int = |v: u64| Tensor::scalar_i64(v as i64);
        out.insert("meta/version".into(), Tensor::scalar_i64(VERSION));
        out.insert("meta/step".into(), int(self.step));
        out.insert("meta/epoch".into(), int(self.epoch));
        out.insert("meta/batch_in_epoch".into(), int(self.batch_in_epoch));
        out.insert("meta/seed".into(), int(self.seed));
        out.insert("meta/batch_size".into(), int(self.batch_size));
        out.insert("meta/samples".into(), int(self.partial.samples));
        out.insert("meta/loss_sum".into(), Tensor::scalar_f64(self.partial.loss_sum));
        out.insert("meta/seconds".into(), Tensor::scalar_f64(self.partial.seconds));
        for (name, v) in &self.partial.metric_sums {
            out.insert(format!("meta/metric/{name}"), Tensor::scalar_f64(*v));
        }
        out
    }

    /// The state stored in checkpoint tensors; `Err` names what is missing or malformed.
    pub fn from_tensors(mut tensors: BTreeMap<String, Tensor>) -> Result<TrainState, String> {
        let mut int = |key: &str| -> Result<u64, String> {
            let t = tensors.remove(key).ok_or_else(|| format!("no {key}"))?;
            match t.as_i64() {
                Some([v]) if t.shape.is_empty() => Ok(*v as u64),
                _ => Err(format!("{key} is {}, expected i64[]", t.type_string())),
            }
        };
        let version = int("meta/version")? as i64;
        if version != VERSION {
            return Err(format!("checkpoint version {version}, this build reads {VERSION}"));
        }
        let (step, epoch, batch_in_epoch) = (int("meta/step")?, int("meta/epoch")?, int("meta/batch_in_epoch")?);
        let (seed, batch_size, samples) = (int("meta/seed")?, int("meta/batch_size")?, int("meta/samples")?);
        let mut float = |key: &str| -> Result<f64, String> {
            let t = tensors.remove(key).ok_or_else(|| format!("no {key}"))?;
            match t.as_f64() {
                Some([v]) if t.shape.is_empty() => Ok(*v),
                _ => Err(format!("{key} is {}, expected f64[]", t.type_string())),
            }
        };
        let (loss_sum, seconds) = (float("meta/loss_sum")?, float("meta/seconds")?);
        let mut state = TrainState {
            params: BTreeMap::new(),
            slots: BTreeMap::new(),
            step,
            epoch,
            batch_in_epoch,
            seed,
            batch_size,
            partial: EpochTotals { samples, loss_sum, metric_sums: BTreeMap::new(), seconds },
        };
        for (key, t) in tensors {
            if let Some(name) = key.strip_prefix("param/") {
                state.params.insert(name.to_string(), t);
            } else if let Some(name) = key.strip_prefix("state/") {
                state.slots.insert(name.to_string(), t);
            } else if let Some(name) = key.strip_prefix("meta/metric/") {
                match t.as_f64() {
                    Some([v]) if t.shape.is_empty() => state.partial.metric_sums.insert(name.to_string(), *v),
                    _ => return Err(format!("{key} is {}, expected f64[]", t.type_string())),
                };
            } else {
                return Err(format!("unexpected tensor {key}"));
            }
        }
        Ok(state)
    }

    /// Writes the checkpoint atomically (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let file = path.file_name().ok_or_else(|| TrainError::Spec(format!("{}: not a file path", path.display())))?;
        let tmp = TempFile::new(dir.join(format!(".{}.tmp", file.to_string_lossy())));
        write_safetensors(tmp.path(), &self.to_tensors())?;
        File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(|e| io_error(tmp.path(), e))?;
        tmp.persist(path).map_err(|e| io_error(path, e))?;
        // Make the rename itself durable; not every platform can sync a directory.
        let _ = File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    }

    /// Reads a checkpoint written by [`TrainState::save`].
    pub fn load(path: &Path) -> Result<TrainState, TrainError> {
        let tensors = read_safetensors(path)?;
        TrainState::from_tensors(tensors).map_err(|message| TrainError::Format {
            path: path.to_path_buf(),
            message: format!("checkpoint: {message}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrainState {
        let mut s = TrainState {
            params: BTreeMap::new(),
            slots: BTreeMap::new(),
            step: 17,
            epoch: 2,
            batch_in_epoch: 3,
            seed: u64::MAX - 5,
            batch_size: 8,
            partial: EpochTotals { samples: 24, loss_sum: 1.25, metric_sums: BTreeMap::new(), seconds: 0.5 },
        };
        s.params.insert("fc.w".into(), Tensor::from_f32(&[2, 2], vec![1.0, -0.0, f32::MIN_POSITIVE, 3.5]));
        s.slots.insert("fc.w.m".into(), Tensor::from_f32(&[2, 2], vec![0.1; 4]));
        s.slots.insert("step".into(), Tensor::scalar_i64(17));
        s.partial.metric_sums.insert("correct".into(), 20.0);
        s
    }

    #[test]
    fn checkpoint_round_trips_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("archc-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.safetensors");
        let s = sample();
        s.save(&path).unwrap();
        assert_eq!(TrainState::load(&path).unwrap(), s);
        assert!(!dir.join(".checkpoint.safetensors.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("archc-state-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("checkpoint.safetensors/x")).unwrap();
        assert!(sample().save(&dir.join("checkpoint.safetensors")).is_err());
        assert!(!dir.join(".checkpoint.safetensors.tmp").exists(), "the temporary file was left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_checkpoints_are_errors() {
        let mut t = sample().to_tensors();
        t.remove("meta/epoch");
        assert_eq!(TrainState::from_tensors(t).unwrap_err(), "no meta/epoch");
        let mut t = sample().to_tensors();
        t.insert("other".into(), Tensor::scalar_f32(1.0));
        assert!(TrainState::from_tensors(t).unwrap_err().contains("unexpected tensor other"));
        let mut t = sample().to_tensors();
        t.insert("meta/version".into(), Tensor::scalar_i64(99));
        assert!(TrainState::from_tensors(t).unwrap_err().contains("version 99"));
    }
}
