//! Fields that stay in their files: where a field's elements lie in a `.npy` file, a
//! stored (uncompressed) `.npz` entry or a `.safetensors` file, read from headers only.
//!
//! Contract: each opener returns `Ok(None)` when the field cannot be read in place
//! (compressed, big-endian, Fortran order, or a dtype without a [`Stored`] form); the
//! caller then reads it whole. A header's shape is checked, in checked arithmetic,
//! against the bytes that follow it before a column is made, so a corrupt header is an
//! error, never a read past the data. Header sizes are capped ([`MAX_HEADER`]).

use super::column::{Column, Extent, FileStore, Stored};
use super::DataError;
use crate::io::IoError;
use npyz::{Endianness, Order, TypeChar};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The largest `.npy` or `.safetensors` header read.
pub const MAX_HEADER: u64 = 16 << 20;

/// Where one array lies: the file, its data's first byte, its dtype and shape.
pub struct Located {
    pub file: File,
    pub path: PathBuf,
    pub offset: u64,
    pub stored: Stored,
    pub shape: Vec<usize>,
}

impl Located {
    /// The data's size in bytes.
    pub fn bytes(&self) -> u64 {
        numel(&self.shape).unwrap_or(u64::MAX).saturating_mul(self.stored.size() as u64)
    }
}

/// Arrays joined along their first axis (one or more shards) as a column.
pub fn column(parts: Vec<Located>) -> Result<Column, DataError> {
    let first = parts.first().ok_or_else(|| DataError::Invalid("no data".into()))?;
    let (stored, mut shape) = (first.stored, first.shape.clone());
    if shape.is_empty() {
        return Err(DataError::Invalid(format!("{} holds a scalar: a data set needs rows", first.path.display())));
    }
    shape[0] = 0;
    let mut extents = Vec::with_capacity(parts.len());
    for p in parts {
        if p.stored != stored || p.shape.len() != shape.len() || p.shape[1..] != shape[1..] {
            return Err(DataError::Invalid(format!(
                "shard {} does not match the first: shards must agree in dtype and in every axis but the first",
                p.path.display()
            )));
        }
        shape[0] += p.shape[0];
        let elems = numel(&p.shape).ok_or_else(|| overflow(&p.path, &p.shape))?;
        extents.push(Extent { file: p.file, path: p.path, offset: p.offset, elems });
    }
    Column::file(FileStore::new(extents, stored), shape)
}

fn numel(shape: &[usize]) -> Option<u64> {
    shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64))
}

fn overflow(path: &Path, shape: &[usize]) -> DataError {
    DataError::Invalid(format!("{}: shape {shape:?} overflows", path.display()))
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io(IoError::Io { path: path.to_path_buf(), source })
}

fn format_err(path: &Path, m: impl std::fmt::Display) -> DataError {
    DataError::Io(IoError::Format { path: path.to_path_buf(), message: m.to_string() })
}

/// Bytes `[at, at + n)` of `file`.
fn read_at(file: &File, path: &Path, at: u64, n: u64) -> Result<Vec<u8>, DataError> {
    let mut buf = vec![0; n as usize];
    file.read_exact_at(&mut buf, at).map_err(read_err(path))?;
    Ok(buf)
}

/// Checks that `loc`'s data fits in the `room` bytes after its first byte.
fn fits(loc: Located, room: u64) -> Result<Located, DataError> {
    let need = numel(&loc.shape).and_then(|n| n.checked_mul(loc.stored.size() as u64));
    match need {
        Some(need) if need <= room => Ok(loc),
        _ => Err(format_err(&loc.path, format!("shape {:?} needs more data than the {room} bytes there", loc.shape))),
    }
}

/// The `.npy` image that starts at byte `start` of `file` and spans `len` bytes.
fn npy_at(file: File, path: &Path, start: u64, len: u64) -> Result<Option<Located>, DataError> {
    let prefix = read_at(&file, path, start, 12.min(len))?;
    if prefix.len() < 10 || !prefix.starts_with(b"\x93NUMPY") {
        return Err(format_err(path, "not a .npy file (bad magic)"));
    }
    let (hlen, pre) = match prefix[6] {
        1 => (u16::from_le_bytes([prefix[8], prefix[9]]) as u64, 10),
        _ if prefix.len() >= 12 => (u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes")) as u64, 12),
        _ => return Err(format_err(path, "malformed .npy header")),
    };
    if hlen > MAX_HEADER || pre + hlen > len {
        return Err(format_err(path, format!("a .npy header of {hlen} bytes does not fit")));
    }
    let header = read_at(&file, path, start, pre + hlen)?;
    let npy = npyz::NpyFile::new(&header[..]).map_err(|e| format_err(path, format!("malformed .npy header: {e}")))?;
    let npyz::DType::Plain(ts) = npy.dtype() else { return Ok(None) };
    let little = matches!(ts.endianness(), Endianness::Little | Endianness::Irrelevant);
    let Some(stored) = stored_of(ts.type_char(), ts.size_field()).filter(|_| little && npy.order() == Order::C) else {
        return Ok(None);
    };
    let shape: Vec<usize> = npy.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let offset = start + pre + hlen;
    fits(Located { file, path: path.to_path_buf(), offset, stored, shape }, len - pre - hlen).map(Some)
}

fn stored_of(kind: TypeChar, size: u64) -> Option<Stored> {
    Some(match (kind, size) {
        (TypeChar::Float, 4) => Stored::F32,
        (TypeChar::Float, 8) => Stored::F64,
        (TypeChar::Int, 1) => Stored::I8,
        (TypeChar::Int, 2) => Stored::I16,
        (TypeChar::Int, 4) => Stored::I32,
        (TypeChar::Int, 8) => Stored::I64,
        (TypeChar::Uint, 1) => Stored::U8,
        (TypeChar::Uint, 2) => Stored::U16,
        (TypeChar::Uint, 4) => Stored::U32,
        (TypeChar::Bool, 1) => Stored::Bool,
        _ => return None,
    })
}

fn open(path: &Path) -> Result<(File, u64), DataError> {
    let file = File::open(path).map_err(read_err(path))?;
    let len = file.metadata().map_err(read_err(path))?.len();
    Ok((file, len))
}

/// A whole `.npy` file.
pub fn npy(path: &Path) -> Result<Option<Located>, DataError> {
    let (file, len) = open(path)?;
    npy_at(file, path, 0, len)
}

/// The entry `key.npy` of a `.npz` file, when it is stored uncompressed (`Ok(None)`
/// when compressed or absent).
pub fn npz_entry(path: &Path, key: &str) -> Result<Option<Located>, DataError> {
    let mut zip = crate::io::open_zip(path)?;
    let Ok(entry) = zip.by_name(&format!("{key}.npy")) else { return Ok(None) };
    if entry.compression() != zip::CompressionMethod::Stored || entry.size() != entry.compressed_size() {
        return Ok(None);
    }
    let (Some(start), size) = (entry.data_start(), entry.size()) else { return Ok(None) };
    drop(entry);
    let (file, len) = open(path)?;
    if start.checked_add(size).is_none_or(|end| end > len) {
        return Err(format_err(path, format!("entry {key}.npy lies beyond the end of the archive")));
    }
    let entry_path = path.join(format!("{key}.npy"));
    npy_at(file, &entry_path, start, size).map(|loc| loc.map(|l| Located { path: path.to_path_buf(), ..l }))
}

/// The tensor `key` of a `.safetensors` file (`Ok(None)` when absent or of a dtype
/// without a [`Stored`] form).
pub fn safetensors(path: &Path, key: &str) -> Result<Option<Located>, DataError> {
    let (file, len) = open(path)?;
    let n = u64::from_le_bytes(read_at(&file, path, 0, 8)?.try_into().expect("8 bytes"));
    if n > MAX_HEADER || 8 + n > len {
        return Err(format_err(path, format!("a safetensors header of {n} bytes does not fit")));
    }
    let header: serde_json::Value = serde_json::from_slice(&read_at(&file, path, 8, n)?)
        .map_err(|e| format_err(path, format!("malformed safetensors header: {e}")))?;
    let Some(info) = header.get(key) else { return Ok(None) };
    let bad = || format_err(path, format!("malformed safetensors entry `{key}`"));
    let shape: Vec<usize> = info["shape"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    let offsets = info["data_offsets"].as_array().ok_or_else(bad)?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (b.as_u64().ok_or_else(bad)?, e.as_u64().ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    let Some(stored) = info["dtype"].as_str().and_then(stored_named) else { return Ok(None) };
    let data_start = 8 + n;
    if begin > end || end.checked_add(data_start).is_none_or(|e| e > len) {
        return Err(format_err(path, format!("entry `{key}` lies beyond the end of the file")));
    }
    let loc = Located { file, path: path.to_path_buf(), offset: data_start + begin, stored, shape };
    let want = loc.bytes();
    if want != end - begin {
        return Err(format_err(path, format!("entry `{key}` holds {} bytes, its shape needs {want}", end - begin)));
    }
    Ok(Some(loc))
}

fn stored_named(dtype: &str) -> Option<Stored> {
    Some(match dtype {
        "F32" => Stored::F32,
        "F64" => Stored::F64,
        "I8" => Stored::I8,
        "I16" => Stored::I16,
        "I32" => Stored::I32,
        "I64" => Stored::I64,
        "U8" => Stored::U8,
        "U16" => Stored::U16,
        "U32" => Stored::U32,
        "BOOL" => Stored::Bool,
        _ => return None,
    })
}
