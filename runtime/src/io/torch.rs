//! PyTorch zip checkpoints (`torch.save`, PyTorch >= 1.6), read without PyTorch.
//!
//! Contract of [`read_pt`]:
//! - The archive holds `<prefix>/data.pkl` (the pickle, see [`super::pickle`]) and one
//!   raw little-endian storage per key at `<prefix>/data/<key>`; `<prefix>` is whatever
//!   single folder holds `data.pkl` (`archive` for newer writers, the file's stem for
//!   older ones, e.g. `burgers_lowres`). A `<prefix>/byteorder` other than `little` is
//!   an error.
//! - The pickled value is flattened into names: dict keys (strings or integers) and list
//!   or tuple indices joined by `.`, e.g. `{"x": t}` -> `x`, `{"a": [t, u]}` -> `a.0`,
//!   `a.1`; a bare tensor is named `tensor`. Values that are not tensors are skipped.
//! - Each tensor is its storage viewed through (offset, shape, strides), materialised
//!   row-major: a column-major tensor (strides `1, N, N*H`) comes back with its logical
//!   shape and values. Storage types: float, double, long, int, short, char, byte, bool;
//!   f32, f64 and bool keep their type, integers widen to i64. Half, bfloat16, complex
//!   and untyped storages are errors naming the storage class.
//! - A view reaching outside its storage, a storage shorter than its declared size or a
//!   view with more than [`MAX_VIEW_RATIO`] times the storage's elements is a format
//!   error. A storage's declared element count times its element size is checked
//!   against the member's declared size before the member is read, and a member that
//!   inflates beyond its declared size is an error (a zip bomb is refused, not inflated).

use super::pickle::{unpickle, StorageDType, TensorRef, Value};
use super::{format_err, open_zip, unsupported, widen_ints, zip_entry, zip_entry_limited, IoError};
use crate::tensor::{view_indices, Data, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::path::Path;

/// A view may repeat storage elements (stride 0), but not beyond this factor.
pub const MAX_VIEW_RATIO: u64 = 64;

/// Reads every tensor of a PyTorch zip checkpoint (see the module docs).
pub fn read_pt(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>, IoError> {
    let path = path.as_ref();
    let mut zip = open_zip(path)?;
    let prefix =
        pickle_prefix(&zip).ok_or_else(|| format_err(path, "no <folder>/data.pkl: not a torch.save archive"))?;
    check_byteorder(&mut zip, &prefix, path)?;
    let (_, pkl) = entry_by_name(&mut zip, &format!("{prefix}/data.pkl"), path)?;
    let root = unpickle(&pkl).map_err(|e| format_err(path, format!("data.pkl: {e}")))?;
    let mut refs = Vec::new();
    flatten(root, String::new(), &mut refs);
    let mut storages: HashMap<String, Data> = HashMap::new();
    let mut out = BTreeMap::new();
    for (name, tref) in refs {
        let key = &tref.storage.key;
        if !storages.contains_key(key) {
            let data = read_storage(&mut zip, &prefix, &tref, path)?;
            storages.insert(key.clone(), data);
        }
        let tensor = view(&storages[key], &tref).map_err(|m| format_err(path, format!("tensor {name}: {m}")))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// The folder holding `data.pkl`.
fn pickle_prefix<R: Read + Seek>(zip: &zip::ZipArchive<R>) -> Option<String> {
    zip.file_names()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .find(|p| !p.is_empty() && !p.contains('/'))
        .map(str::to_string)
}

fn entry_by_name<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    path: &Path,
) -> Result<(String, Vec<u8>), IoError> {
    let index = zip.index_for_name(name).ok_or_else(|| format_err(path, format!("missing entry {name}")))?;
    zip_entry(zip, index, path)
}

fn check_byteorder<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, prefix: &str, path: &Path) -> Result<(), IoError> {
    let name = format!("{prefix}/byteorder");
    if zip.index_for_name(&name).is_none() {
        return Ok(()); // older writers: always little-endian
    }
    let (_, order) = entry_by_name(zip, &name, path)?;
    match String::from_utf8_lossy(&order).trim() {
        "little" => Ok(()),
        other => Err(unsupported(path, format!("byte order {other:?}"))),
    }
}

/// Collects the tensors of `v`, named by their path from the root.
fn flatten(v: Value, name: String, out: &mut Vec<(String, TensorRef)>) {
    let join = |key: &str| if name.is_empty() { key.to_string() } else { format!("{name}.{key}") };
    match v {
        Value::Tensor(t) => out.push((if name.is_empty() { "tensor".into() } else { name }, t)),
        Value::Dict(d) => {
            for (k, v) in d.items {
                match k {
                    Value::Str(k) => flatten(v, join(&k), out),
                    Value::Int(k) => flatten(v, join(&k.to_string()), out),
                    _ => {}
                }
            }
        }
        Value::List(s) | Value::Tuple(s) => {
            for (i, v) in s.items.into_iter().enumerate() {
                flatten(v, join(&i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// The storage of `tref`, decoded (integers widened to i64). The declared element count
/// times the element size is checked against the member's declared size before any of
/// it is read, and the member may not inflate beyond its declared size.
fn read_storage<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    prefix: &str,
    tref: &TensorRef,
    path: &Path,
) -> Result<Data, IoError> {
    let s = &tref.storage;
    let name = format!("{prefix}/data/{}", s.key);
    let index = zip.index_for_name(&name).ok_or_else(|| format_err(path, format!("missing entry {name}")))?;
    let declared = zip.by_index(index).map_err(|e| format_err(path, e))?.size();
    let size = s.dtype.size() as u64;
    let needed = s.numel.checked_mul(size).filter(|&n| n <= declared);
    if needed.is_none() || declared % size != 0 {
        let msg = format!("{name}: {declared} bytes for {} elements of {} bytes", s.numel, size);
        return Err(format_err(path, msg));
    }
    let (_, bytes) = zip_entry_limited(zip, index, path, declared)?;
    if bytes.len() as u64 != declared {
        return Err(format_err(path, format!("{name}: {} bytes, its header declares {declared}", bytes.len())));
    }
    decode_le(s.dtype, &bytes).map_err(|m| format_err(path, format!("{name}: {m}")))
}

/// Little-endian storage bytes to elements (widened integers allocated fallibly).
fn decode_le(dtype: StorageDType, b: &[u8]) -> Result<Data, String> {
    fn words<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N).map(|c| f(c.try_into().expect("exact chunk"))).collect()
    }
    Ok(match dtype {
        StorageDType::F32 => Data::F32(words(b, f32::from_le_bytes)),
        StorageDType::F64 => Data::F64(words(b, f64::from_le_bytes)),
        StorageDType::I64 => Data::I64(words(b, i64::from_le_bytes)),
        StorageDType::I32 => Data::I64(widen_ints(words(b, i32::from_le_bytes))?),
        StorageDType::I16 => Data::I64(widen_ints(words(b, i16::from_le_bytes))?),
        StorageDType::I8 => Data::I64(widen_ints(b.iter().map(|&x| x as i8).collect())?),
        StorageDType::U8 => Data::I64(widen_ints(b.to_vec())?),
        StorageDType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
    })
}

/// The row-major tensor that `tref` views in `storage`.
fn view(storage: &Data, tref: &TensorRef) -> Result<Tensor, String> {
    let len = storage.len() as u64;
    let numel = tref.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).ok_or("shape overflows")?;
    if numel > len.max(1).saturating_mul(MAX_VIEW_RATIO) {
        return Err(format!("{numel} elements viewed from a storage of {len}"));
    }
    let shape: Vec<usize> = tref.shape.iter().map(|&d| d as usize).collect();
    if numel == 0 {
        return Tensor::new(shape, storage.slice(0..0)).map_err(|e| e.to_string());
    }
    let last = tref
        .shape
        .iter()
        .zip(&tref.strides)
        .try_fold(tref.offset, |acc, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| x.checked_add(acc)));
    match last {
        Some(last) if last < len => {}
        _ => {
            return Err(format!(
                "view (offset {}, strides {:?}) reaches outside {len} elements",
                tref.offset, tref.strides
            ))
        }
    }
    let strides: Vec<usize> = tref.strides.iter().map(|&s| s as usize).collect();
    let idx = view_indices(&shape, tref.offset as usize, &strides);
    Tensor::new(shape, storage.take(&idx)).map_err(|e| e.to_string())
}
