//! Tensor files: `.npy` (one tensor) and `.safetensors` (a map name -> tensor).
//!
//! Contract:
//! - `.npy` (via `npyz`): writes f32 `<f4`, f64 `<f8`, i64 `<i8`, bool `|b1`, C order.
//!   Reads those (either byte order, C or Fortran order), and widens other integer types
//!   (`i1 i2 i4 u1 u2 u4 u8`) to i64. c64 and every other dtype are `UnsupportedDType`.
//! - `.safetensors` (via `safetensors`): f32, f64, i64, bool and c64 (`C64`: interleaved
//!   little-endian f32 pairs) both ways; other stored dtypes are `UnsupportedDType`.
//!   Names come back in a `BTreeMap` (sorted).
//!
//! Every error carries the path it concerns.

use crate::elem::C64;
use crate::tensor::{Data, Tensor};
use npyz::{Order, TypeChar, WriterBuilder};
use num_complex::Complex;
use safetensors::{Dtype as StDtype, SafeTensors};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// A failed read or write.
#[derive(Debug)]
pub enum IoError {
    /// The file could not be opened, read or written.
    Io { path: PathBuf, source: std::io::Error },
    /// The file's contents are malformed.
    Format { path: PathBuf, message: String },
    /// The element type cannot be stored in (or read from) this format.
    UnsupportedDType { path: PathBuf, dtype: String },
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            IoError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            IoError::Format { path, message } => write!(f, "{}: {message}", path.display()),
            IoError::UnsupportedDType { path, dtype } => {
                write!(f, "{}: unsupported element type {dtype}", path.display())
            }
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Io { path: path.to_path_buf(), source }
}

fn format_err(path: &Path, message: impl fmt::Display) -> IoError {
    IoError::Format { path: path.to_path_buf(), message: message.to_string() }
}

fn unsupported(path: &Path, dtype: impl fmt::Display) -> IoError {
    IoError::UnsupportedDType { path: path.to_path_buf(), dtype: dtype.to_string() }
}

// ---- .npy ----

/// Reads one tensor from a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, IoError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io_err(path))?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(io_err(path))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(unsupported(path, npy.dtype().descr()));
    };
    let size = ts.size_field();
    let data = match (ts.type_char(), size) {
        (TypeChar::Float, 4) => Data::F32(npy.into_vec().map_err(io_err(path))?),
        (TypeChar::Float, 8) => Data::F64(npy.into_vec().map_err(io_err(path))?),
        (TypeChar::Bool, 1) => Data::Bool(npy.into_vec().map_err(io_err(path))?),
        (TypeChar::Int | TypeChar::Uint, _) => Data::I64(read_ints(npy, ts.type_char(), size, path)?),
        _ => return Err(unsupported(path, ts)),
    };
    let tensor = Tensor::new(shape, data).map_err(|e| format_err(path, e))?;
    Ok(if order == Order::Fortran { from_fortran(tensor) } else { tensor })
}

/// Integer data of any width, widened to i64.
fn read_ints<R: std::io::Read>(
    npy: npyz::NpyFile<R>,
    kind: TypeChar,
    size: u64,
    path: &Path,
) -> Result<Vec<i64>, IoError> {
    fn widen<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
        v.into_iter().map(Into::into).collect()
    }
    let read = io_err(path);
    Ok(match (kind, size) {
        (TypeChar::Int, 1) => widen(npy.into_vec::<i8>().map_err(read)?),
        (TypeChar::Int, 2) => widen(npy.into_vec::<i16>().map_err(read)?),
        (TypeChar::Int, 4) => widen(npy.into_vec::<i32>().map_err(read)?),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(read)?,
        (TypeChar::Uint, 1) => widen(npy.into_vec::<u8>().map_err(read)?),
        (TypeChar::Uint, 2) => widen(npy.into_vec::<u16>().map_err(read)?),
        (TypeChar::Uint, 4) => widen(npy.into_vec::<u32>().map_err(read)?),
        (TypeChar::Uint, 8) => {
            let v = npy.into_vec::<u64>().map_err(read)?;
            v.into_iter()
                .map(|x| i64::try_from(x).map_err(|_| format_err(path, format!("u8 value {x} exceeds i64"))))
                .collect::<Result<_, _>>()?
        }
        _ => return Err(unsupported(path, format!("{}{size}", kind.to_str()))),
    })
}

/// Fortran-order data of `shape` is C-order data of the reversed shape, transposed.
fn from_fortran(t: Tensor) -> Tensor {
    let reversed: Vec<usize> = t.shape.iter().rev().copied().collect();
    let perm: Vec<usize> = (0..t.rank()).rev().collect();
    let c_order = Tensor { shape: reversed, data: t.data };
    crate::interp::permute(&c_order, &perm).expect("a valid permutation")
}

/// Writes one tensor to a `.npy` file (C order).
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<(), IoError> {
    let path = path.as_ref();
    match &tensor.data {
        Data::F32(v) => write_npy_values(path, &tensor.shape, v),
        Data::F64(v) => write_npy_values(path, &tensor.shape, v),
        Data::I64(v) => write_npy_values(path, &tensor.shape, v),
        Data::Bool(v) => write_npy_values(path, &tensor.shape, v),
        Data::C64(_) => Err(unsupported(path, "c64 (npy)")),
    }
}

fn write_npy_values<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[usize], values: &[T]) -> Result<(), IoError> {
    let file = File::create(path).map_err(io_err(path))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io_err(path))?;
    writer.extend(values.iter().copied()).map_err(io_err(path))?;
    writer.finish().map_err(io_err(path))
}

// ---- .safetensors ----

/// Reads every tensor of a `.safetensors` file.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>, IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format_err(path, e))?;
    st.iter()
        .map(|(name, view)| {
            let data = decode(view.dtype(), view.data())
                .ok_or_else(|| unsupported(path, format!("{:?} ({name})", view.dtype())))?;
            let t = Tensor::new(view.shape().to_vec(), data).map_err(|e| format_err(path, format!("{name}: {e}")))?;
            Ok((name.to_string(), t))
        })
        .collect()
}

/// Little-endian bytes to elements.
fn decode(dtype: StDtype, b: &[u8]) -> Option<Data> {
    fn words<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| c.try_into().expect("exact chunk"))
    }
    Some(match dtype {
        StDtype::F32 => Data::F32(words::<4>(b).map(f32::from_le_bytes).collect()),
        StDtype::F64 => Data::F64(words::<8>(b).map(f64::from_le_bytes).collect()),
        StDtype::I64 => Data::I64(words::<8>(b).map(i64::from_le_bytes).collect()),
        StDtype::BOOL => Data::Bool(b.iter().map(|&x| x != 0).collect()),
        StDtype::C64 => Data::C64(
            words::<8>(b)
                .map(|w| {
                    let (re, im) = w.split_at(4);
                    Complex::new(f32::from_le_bytes(re.try_into().unwrap()), f32::from_le_bytes(im.try_into().unwrap()))
                })
                .collect(),
        ),
        _ => return None,
    })
}

/// Elements to little-endian bytes, with the safetensors dtype.
fn encode(data: &Data) -> (StDtype, Vec<u8>) {
    match data {
        Data::F32(v) => (StDtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::F64(v) => (StDtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => (StDtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::Bool(v) => (StDtype::BOOL, v.iter().map(|&x| x as u8).collect()),
        Data::C64(v) => {
            (StDtype::C64, v.iter().flat_map(|z: &C64| [z.re.to_le_bytes(), z.im.to_le_bytes()]).flatten().collect())
        }
    }
}

/// One tensor, encoded, as `safetensors` wants to see it.
struct Encoded {
    dtype: StDtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for &Encoded {
    fn dtype(&self) -> StDtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes named tensors to a `.safetensors` file (any map or list of pairs).
pub fn write_safetensors<'a, K, I>(path: impl AsRef<Path>, tensors: I) -> Result<(), IoError>
where
    K: AsRef<str>,
    I: IntoIterator<Item = (K, &'a Tensor)>,
{
    let path = path.as_ref();
    let encoded: Vec<(String, Encoded)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let (dtype, bytes) = encode(&t.data);
            (name.as_ref().to_string(), Encoded { dtype, shape: t.shape.clone(), bytes })
        })
        .collect();
    let views = encoded.iter().map(|(name, e)| (name.as_str(), e));
    safetensors::serialize_to_file(views, None, path).map_err(|e| format_err(path, e))
}
