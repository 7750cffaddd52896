//! The real data sets that `make data` (`scripts/fetch_data.sh`) puts in the data
//! directory, loaded by name into [`Dataset`] parts.
//!
//! Contract:
//! - [`data_dir`] is what [`set_data_dir`] set (the CLI passes `$ARCHC_DATA` when set and
//!   non-empty), else `data/` in the repository root (found from this crate's build-time
//!   location).
//! - [`load_from`]`(name, dir)` returns the data set's parts by name. A missing file is
//!   [`DataError::Missing`] ("digits not found in data/: run `make data`"); a file with
//!   unexpected contents is an IO or [`DataError::Invalid`] error. Layouts (rows first,
//!   spatial fields channels-last, everything f32 except i64 labels):
//!
//! | name | parts | inputs | targets |
//! |---|---|---|---|
//! | `digits` | `all` (1797) | `x` f32[N, 64], pixels / 16 in [0, 1] | `label` i64[N], 0..9 |
//! | `permuted_digits` | `all` (1797 × 4 = 7188) | `x` f32[N·T, 64], `task` i64[N·T], 0..T-1 | `label` i64[N·T] |
//! | `mnist_5k` | `all` (5000, sorted by label) | `x` f32[N, 784], pixels / 255 | `label` i64[N] |
//! | `mnist1d` | `train` (4000), `test` (1000) | `x` f32[N, 40] (standardised by the generator) | `label` i64[N] |
//! | `darcy` | `train_16` (1000), `test_16` (50), `test_32` (50) | `x` f32[N, H, W, 1], coefficient 0 or 1 | `y` f32[N, H, W, 1], solution |
//! | `burgers` | `all` (1200) | `x` f32[N, 16, 1], initial condition | `y` f32[N, 17, 16], solution at 17 times (row 0 = `x`) |
//!
//!   Channels-last fields match the FNO examples (`Linear` lifts the last axis);
//!   [`append_grid`] adds the coordinate channels they take. `test_16` is `test_32`
//!   subsampled (`[:, ::2, ::2]`): the same 50 problems at two resolutions. Burgers'
//!   viscosity (one value, 0.01) is not a per-row tensor and is not returned.
//!
//!   `permuted_digits` is `digits` seen as [`PERMUTED_DIGITS_TASKS`] tasks (the
//!   permuted-MNIST benchmark of continual learning, on 8x8 digits): rows `t·N..(t+1)·N`
//!   are every digit with its 64 pixels permuted by task `t`'s fixed permutation
//!   (`x[t·N + i, j] = digits.x[i, perm_t[j]]`), `task` = `t`, the digit's label. Task 0
//!   is the identity; task `t >= 1` uses [`shuffle::permutation`]`(64,
//!   PERMUTED_DIGITS_SEED, t)` (see [`permuted_tasks`]). A seeded row split (`split =
//!   [0.8, 0.2]`) mixes tasks, so one digit may be in training under one task and in the
//!   test set under another.

use super::{shuffle, DataError, Dataset};
use crate::io::{read_csv, read_npz, read_pt, CsvOptions};
use crate::tensor::{Data, Tensor};
use archc_compiler::tir::DType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The data sets [`load_from`] knows.
pub const NAMES: [&str; 6] = ["digits", "permuted_digits", "mnist_5k", "mnist1d", "darcy", "burgers"];

/// The number of tasks of `permuted_digits`.
pub const PERMUTED_DIGITS_TASKS: usize = 4;

/// The seed of `permuted_digits`' pixel permutations (task `t` is stream `t`).
pub const PERMUTED_DIGITS_SEED: u64 = 2017;

/// Named parts of one data set.
pub type Parts = BTreeMap<String, Dataset>;

static DATA_DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets the data directory (the CLI, from `ARCHC_DATA`; tests may set it too).
pub fn set_data_dir(dir: PathBuf) {
    *DATA_DIR.write().unwrap_or_else(|e| e.into_inner()) = Some(dir);
}

/// The data directory (see the module docs).
pub fn data_dir() -> PathBuf {
    match DATA_DIR.read().unwrap_or_else(|e| e.into_inner()).clone() {
        Some(d) => d,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("data"),
    }
}

/// [`load_from`] the default [`data_dir`].
pub fn load(name: &str) -> Result<Parts, DataError> {
    load_from(name, &data_dir())
}

/// Loads data set `name` from `dir` (see the module docs for the layouts).
pub fn load_from(name: &str, dir: &Path) -> Result<Parts, DataError> {
    match name {
        "digits" => digits(dir),
        "permuted_digits" => permuted_digits(dir),
        "mnist_5k" => mnist_5k(dir),
        "mnist1d" => mnist1d(dir),
        "darcy" => darcy(dir),
        "burgers" => burgers(dir),
        _ => Err(DataError::Invalid(format!("unknown data set {name:?} (known: {})", NAMES.join(", ")))),
    }
}

/// `dir/file`, or `Missing` for data set `name`.
fn file(name: &str, dir: &Path, file: &str) -> Result<PathBuf, DataError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::Missing { name: name.into(), dir: dir.to_path_buf(), file: file.into() })
    }
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> DataError {
    DataError::Invalid(format!("{}: {message}", path.display()))
}

fn pairs(items: Vec<(&str, Tensor)>) -> Vec<(String, Tensor)> {
    items.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
}

fn parts(items: Vec<(&str, Dataset)>) -> Parts {
    items.into_iter().map(|(n, d)| (n.to_string(), d)).collect()
}

// ---- classification sets ----

fn digits(dir: &Path) -> Result<Parts, DataError> {
    let path = file("digits", dir, "digits.csv.gz")?;
    Ok(parts(vec![("all", csv_classes(&path, 64, 16.0)?)]))
}

fn permuted_digits(dir: &Path) -> Result<Parts, DataError> {
    let path = file("permuted_digits", dir, "digits.csv.gz")?;
    let all = csv_classes(&path, 64, 16.0)?;
    Ok(parts(vec![("all", permuted_tasks(&all, PERMUTED_DIGITS_TASKS, PERMUTED_DIGITS_SEED)?)]))
}

/// The permuted-tasks form of a classification set with inputs `x` f32[N, D] and
/// targets `label` (see the module docs): `tasks` copies of the rows, copy `t` with
/// the features permuted by `shuffle::permutation(D, seed, t)` (copy 0 unpermuted),
/// plus an input `task` i64 holding `t`.
pub fn permuted_tasks(ds: &Dataset, tasks: usize, seed: u64) -> Result<Dataset, DataError> {
    let bad = || DataError::Invalid("permuted_tasks needs inputs `x` f32[N, D] and targets `label` i64[N]".into());
    let x = ds.get("x").filter(|t| t.rank() == 2).ok_or_else(bad)?;
    let pixels = x.as_f32().ok_or_else(bad)?;
    let labels = ds.get("label").and_then(|t| t.as_i64()).ok_or_else(bad)?;
    let (n, d) = (x.shape[0], x.shape[1]);
    let mut xs = Vec::with_capacity(tasks * n * d);
    let (mut task, mut label) = (Vec::with_capacity(tasks * n), Vec::with_capacity(tasks * n));
    for t in 0..tasks {
        let perm: Vec<usize> = if t == 0 { (0..d).collect() } else { shuffle::permutation(d, seed, t as u64) };
        for row in pixels.chunks_exact(d) {
            xs.extend(perm.iter().map(|&j| row[j]));
        }
        task.extend(std::iter::repeat_n(t as i64, n));
        label.extend_from_slice(labels);
    }
    let tensor =
        |shape: Vec<usize>, data: Data| Tensor::new(shape, data).map_err(|e| DataError::Invalid(e.to_string()));
    let m = tasks * n;
    Dataset::new(
        pairs(vec![("x", tensor(vec![m, d], Data::F32(xs))?), ("task", tensor(vec![m], Data::I64(task))?)]),
        pairs(vec![("label", tensor(vec![m], Data::I64(label))?)]),
    )
}

fn mnist_5k(dir: &Path) -> Result<Parts, DataError> {
    let path = file("mnist_5k", dir, "mnist_5k.csv.gz")?;
    Ok(parts(vec![("all", csv_classes(&path, 784, 255.0)?)]))
}

/// A CSV of `width` pixels and a label per row; pixels divided by `max`.
fn csv_classes(path: &Path, width: usize, max: f32) -> Result<Dataset, DataError> {
    let table = read_csv(path, &CsvOptions::default())?;
    if table.features.shape[1] != width {
        return Err(invalid(path, format!("{} features per row, expected {width}", table.features.shape[1])));
    }
    let Data::F32(pixels) = table.features.data else { unreachable!("read_csv gives f32 features") };
    let x = Tensor::new(table.features.shape, Data::F32(pixels.into_iter().map(|p| p / max).collect()));
    let x = x.map_err(|e| invalid(path, e))?;
    check_labels(path, &table.labels, 10)?;
    Dataset::new(pairs(vec![("x", x)]), pairs(vec![("label", table.labels)]))
}

/// Labels must lie in `0..classes`.
fn check_labels(path: &Path, labels: &Tensor, classes: i64) -> Result<(), DataError> {
    let values = labels.as_i64().ok_or_else(|| invalid(path, format!("labels are {}", labels.dtype())))?;
    match values.iter().find(|&&l| !(0..classes).contains(&l)) {
        Some(l) => Err(invalid(path, format!("label {l} outside 0..{classes}"))),
        None => Ok(()),
    }
}

fn mnist1d(dir: &Path) -> Result<Parts, DataError> {
    let path = file("mnist1d", dir, "mnist1d.npz")?;
    let mut arrays = read_npz(&path)?;
    let mut part = |x: &str, y: &str| -> Result<Dataset, DataError> {
        let (Some(x), Some(y)) = (arrays.remove(x), arrays.remove(y)) else {
            return Err(invalid(&path, format!("needs arrays {x} and {y}")));
        };
        if x.rank() != 2 || !matches!(x.dtype(), DType::F32 | DType::F64) {
            return Err(invalid(&path, format!("signals are {}, expected f32[N, L]", x.type_string())));
        }
        check_labels(&path, &y, 10)?;
        Dataset::new(pairs(vec![("x", x.cast(DType::F32))]), pairs(vec![("label", y)]))
    };
    let train = part("x_train", "y_train")?;
    let test = part("x_test", "y_test")?;
    Ok(parts(vec![("train", train), ("test", test)]))
}

// ---- operator-learning sets ----

fn darcy(dir: &Path) -> Result<Parts, DataError> {
    let mut out = Parts::new();
    for part in ["train_16", "test_16", "test_32"] {
        let path = file("darcy", dir, &format!("darcy_{part}.pt"))?;
        out.insert(part.to_string(), darcy_part(&path)?);
    }
    Ok(out)
}

/// `x` bool[N, H, W] and `y` f32[N, H, W] to channels-last f32.
fn darcy_part(path: &Path) -> Result<Dataset, DataError> {
    let mut t = read_pt(path)?;
    let (Some(x), Some(y)) = (t.remove("x"), t.remove("y")) else {
        return Err(invalid(path, "needs tensors x and y"));
    };
    if x.rank() != 3 || x.shape != y.shape {
        return Err(invalid(path, format!("x {} and y {}: expected [N, H, W] both", x.type_string(), y.type_string())));
    }
    let channels_last = |t: Tensor| {
        let mut shape = t.shape.clone();
        shape.push(1);
        t.cast(DType::F32).reshape(&shape).map_err(|e| invalid(path, e))
    };
    Dataset::new(pairs(vec![("x", channels_last(x)?)]), pairs(vec![("y", channels_last(y)?)]))
}

fn burgers(dir: &Path) -> Result<Parts, DataError> {
    let path = file("burgers", dir, "burgers_lowres.pt")?;
    let mut t = read_pt(&path)?;
    let (Some(x), Some(y)) = (t.remove("input"), t.remove("output")) else {
        return Err(invalid(&path, "needs tensors input and output"));
    };
    if x.rank() != 2 || y.rank() != 3 {
        return Err(invalid(&path, format!("input {} and output {}", x.type_string(), y.type_string())));
    }
    let x = x.cast(DType::F32).reshape(&[x.shape[0], x.shape[1], 1]).map_err(|e| invalid(&path, e))?;
    let ds = Dataset::new(pairs(vec![("x", x)]), pairs(vec![("y", y.cast(DType::F32))]))?;
    Ok(parts(vec![("all", ds)]))
}

/// Appends normalised grid coordinates to a channels-last field: `t` f32[N, s_1, ...,
/// s_d, C] becomes f32[N, s_1, ..., s_d, C + d], channel `C + k` holding `i_k / (s_k - 1)`
/// (0 where `s_k` is 1), i.e. points evenly spaced over [0, 1] including both ends.
pub fn append_grid(t: &Tensor) -> Result<Tensor, DataError> {
    let Some(values) = t.as_f32().filter(|_| t.rank() >= 3 && t.shape[t.rank() - 1] > 0) else {
        return Err(DataError::Invalid(format!(
            "append_grid needs f32[N, ..., C] with C > 0, got {}",
            t.type_string()
        )));
    };
    let (spatial, c) = (&t.shape[1..t.rank() - 1], t.shape[t.rank() - 1]);
    let d = spatial.len();
    let points: usize = spatial.iter().product();
    let mut out = Vec::with_capacity(t.shape[0] * points * (c + d));
    for (p, chunk) in values.chunks_exact(c).enumerate() {
        out.extend_from_slice(chunk);
        out.extend(grid_point(p % points, spatial));
    }
    let mut shape = t.shape.clone();
    shape[t.rank() - 1] = c + d;
    Tensor::new(shape, Data::F32(out)).map_err(|e| DataError::Invalid(e.to_string()))
}

/// The coordinates of the `p`-th point (row-major) of a grid of `spatial` points.
fn grid_point(mut p: usize, spatial: &[usize]) -> Vec<f32> {
    let mut coords = vec![0.0; spatial.len()];
    for (k, &s) in spatial.iter().enumerate().rev() {
        let i = p % s;
        p /= s;
        coords[k] = if s > 1 { i as f32 / (s - 1) as f32 } else { 0.0 };
    }
    coords
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, d: usize) -> Dataset {
        let x = Tensor::new(vec![n, d], Data::F32((0..n * d).map(|v| v as f32).collect())).unwrap();
        let label = Tensor::new(vec![n], Data::I64((0..n as i64).map(|i| i % 10).collect())).unwrap();
        Dataset::new(pairs(vec![("x", x)]), pairs(vec![("label", label)])).unwrap()
    }

    #[test]
    fn permuted_tasks_repeat_the_rows_with_fixed_pixel_permutations() {
        let (n, d, tasks) = (3, 64, 4);
        let ds = toy(n, d);
        let p = permuted_tasks(&ds, tasks, PERMUTED_DIGITS_SEED).unwrap();
        assert_eq!(p.len(), n * tasks);
        let x = p.get("x").unwrap();
        assert_eq!(x.shape, vec![n * tasks, d]);
        let xs = x.as_f32().unwrap();
        let task = p.get("task").unwrap().as_i64().unwrap();
        let label = p.get("label").unwrap().as_i64().unwrap();
        let orig = ds.get("x").unwrap().as_f32().unwrap();
        // Task 0 is the data itself.
        assert_eq!(&xs[..n * d], orig);
        let mut perms = Vec::new();
        for t in 0..tasks {
            for i in 0..n {
                let r = t * n + i;
                assert_eq!(task[r], t as i64);
                assert_eq!(label[r], i as i64 % 10);
                let row = &xs[r * d..(r + 1) * d];
                let mut sorted = row.to_vec();
                sorted.sort_by(f32::total_cmp);
                assert_eq!(sorted, &orig[i * d..(i + 1) * d], "a permutation of the row's pixels");
            }
            // The permutation of task t, read off the first row (its pixels are 0..d).
            let perm: Vec<usize> = xs[t * n * d..t * n * d + d].iter().map(|&v| v as usize).collect();
            let want = if t == 0 { (0..d).collect() } else { shuffle::permutation(d, PERMUTED_DIGITS_SEED, t as u64) };
            assert_eq!(perm, want);
            perms.push(perm);
        }
        for a in 0..tasks {
            for b in a + 1..tasks {
                assert_ne!(perms[a], perms[b], "tasks {a} and {b} share a permutation");
            }
        }
        assert_eq!(permuted_tasks(&ds, tasks, PERMUTED_DIGITS_SEED).unwrap(), p, "deterministic");
    }

    #[test]
    fn permuted_digits_loads_when_digits_is_there() {
        match load("permuted_digits") {
            Ok(parts) => {
                let all = &parts["all"];
                assert_eq!(all.len(), 1797 * PERMUTED_DIGITS_TASKS);
                assert_eq!(all.get("x").unwrap().shape, vec![1797 * PERMUTED_DIGITS_TASKS, 64]);
                assert_eq!(all.get("task").unwrap().as_i64().unwrap()[1797], 1);
            }
            Err(DataError::Missing { .. }) => eprintln!("skipped: digits not fetched (make data)"),
            Err(e) => panic!("{e}"),
        }
    }
}
