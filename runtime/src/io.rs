//! Tensor files: `.npy` (one tensor), `.npz` and `.safetensors` (maps name -> tensor),
//! numeric CSV (optionally gzipped) and PyTorch zip checkpoints (`.pt`, read only).
//!
//! Contract:
//! - `.npy` (via `npyz`): writes f32 `<f4`, f64 `<f8`, i64 `<i8`, bool `|b1`, c64 `<c8`
//!   (numpy's complex64), C order. Reads those (either byte order, C or Fortran order),
//!   and widens other integer types (`i1 i2 i4 u1 u2 u4 u8`) to i64. Every other dtype
//!   (complex128 included) is `UnsupportedDType`.
//!   The header's shape is checked against the file's length before any data is read, so
//!   a malformed header is an error, never a huge allocation.
//! - `.npz` (a zip of `.npy` entries, stored or deflated, as `numpy.savez[_compressed]`
//!   writes): every entry must be a `.npy`; names come back without the `.npy` suffix, in
//!   a `BTreeMap`. Errors inside an entry name the path `file.npz/entry.npy`. An entry
//!   is read no further than the size its zip header declares (one that inflates beyond
//!   it is an error), and its `.npy` shape times the element size must fit the entry.
//! - `.safetensors` (via `safetensors`): f32, f64, i64, bool and c64 (`C64`: interleaved
//!   little-endian f32 pairs) both ways; other stored dtypes are `UnsupportedDType`.
//!   Names come back in a `BTreeMap` (sorted).
//! - CSV ([`read_csv`]): gzip is detected by its magic bytes. Comma-separated numeric
//!   rows become f32 features `[N, F]` and i64 labels `[N]` (label column configurable,
//!   default last; labels must be integral). A first row that does not parse as numbers is
//!   a header and is skipped; any later such row, or a row of another width, is an error.
//!   A line longer than [`MAX_CSV_LINE`] bytes is an error ([`read_csv_capped`] takes
//!   the cap), found without reading more of it than the cap.
//! - PyTorch `.pt` ([`read_pt`], module `torch`): the zip format of `torch.save`, read
//!   without PyTorch by a small pickle reader; see that module for what is supported.
//!
//! Every error carries the path it concerns. Malformed files give errors, never panics.

use crate::elem::C64;
use crate::tensor::{Data, Tensor};
use npyz::{Order, TypeChar, WriterBuilder};
use num_complex::Complex;
use safetensors::{Dtype as StDtype, SafeTensors};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

mod pickle;
mod table;
mod torch;

pub use table::{read_table, Table};
pub use torch::read_pt;

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

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |source| IoError::Io { path: path.to_path_buf(), source }
}

pub(crate) fn format_err(path: &Path, message: impl fmt::Display) -> IoError {
    IoError::Format { path: path.to_path_buf(), message: message.to_string() }
}

pub(crate) fn unsupported(path: &Path, dtype: impl fmt::Display) -> IoError {
    IoError::UnsupportedDType { path: path.to_path_buf(), dtype: dtype.to_string() }
}

// ---- .npy ----

/// Reads one tensor from a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    npy_from_bytes(&bytes, path)
}

/// Parses a whole `.npy` image; `path` names it in errors.
fn npy_from_bytes(bytes: &[u8], path: &Path) -> Result<Tensor, IoError> {
    check_npy_shape(bytes).map_err(|m| format_err(path, m))?;
    let npy = npyz::NpyFile::new(bytes).map_err(io_err(path))?;
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
        (TypeChar::Complex, 8) => Data::C64(npy.into_vec().map_err(io_err(path))?),
        (TypeChar::Int | TypeChar::Uint, _) => Data::I64(read_ints(npy, ts.type_char(), size, path)?),
        _ => return Err(unsupported(path, ts)),
    };
    let tensor = Tensor::new(shape, data).map_err(|e| format_err(path, e))?;
    Ok(if order == Order::Fortran { from_fortran(tensor) } else { tensor })
}

/// Checks, before `npyz` sees it, that the header's shape has no more elements than the
/// file has data bytes (every supported element takes at least one byte), so that a
/// corrupt shape cannot overflow or make `npyz` reserve an absurd buffer.
fn check_npy_shape(bytes: &[u8]) -> Result<(), String> {
    let bad = || "malformed .npy header".to_string();
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a .npy file (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        _ if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        _ => return Err(bad()),
    };
    let header = bytes.get(start..start.saturating_add(len)).ok_or_else(bad)?;
    let header = std::str::from_utf8(header).map_err(|_| bad())?;
    let after = &header[header.find("'shape'").ok_or_else(bad)?..];
    let open = after.find('(').ok_or_else(bad)?;
    let close = after.find(')').ok_or_else(bad)?;
    let dims = after.get(open + 1..close).ok_or_else(bad)?;
    let mut numel: u64 = 1;
    for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: u64 = d.trim_end_matches('L').parse().map_err(|_| bad())?;
        numel = numel.checked_mul(d).ok_or_else(|| format!("shape ({dims}) overflows"))?;
    }
    let item = descr_item_size(header).unwrap_or(1);
    let needed = numel.checked_mul(item).ok_or_else(|| format!("shape ({dims}) overflows"))?;
    let data_len = (bytes.len() - start - len) as u64;
    if needed > data_len {
        return Err(format!("shape ({dims}) of {item}-byte elements needs more data than the file's {data_len} bytes"));
    }
    Ok(())
}

/// The element size a plain `'descr'` such as `'<f4'` or `'|u1'` declares.
fn descr_item_size(header: &str) -> Option<u64> {
    let after = &header[header.find("'descr'")? + "'descr'".len()..];
    let quoted = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('\'')?;
    let descr = &quoted[..quoted.find('\'')?];
    let digits = descr.trim_start_matches(|c: char| !c.is_ascii_digit());
    digits.parse().ok().filter(|&n| n > 0)
}

/// Integer data of any width, widened to i64.
fn read_ints<R: Read>(npy: npyz::NpyFile<R>, kind: TypeChar, size: u64, path: &Path) -> Result<Vec<i64>, IoError> {
    let read = io_err(path);
    let fail = |m: String| format_err(path, m);
    Ok(match (kind, size) {
        (TypeChar::Int, 1) => widen_ints(npy.into_vec::<i8>().map_err(read)?).map_err(fail)?,
        (TypeChar::Int, 2) => widen_ints(npy.into_vec::<i16>().map_err(read)?).map_err(fail)?,
        (TypeChar::Int, 4) => widen_ints(npy.into_vec::<i32>().map_err(read)?).map_err(fail)?,
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(read)?,
        (TypeChar::Uint, 1) => widen_ints(npy.into_vec::<u8>().map_err(read)?).map_err(fail)?,
        (TypeChar::Uint, 2) => widen_ints(npy.into_vec::<u16>().map_err(read)?).map_err(fail)?,
        (TypeChar::Uint, 4) => widen_ints(npy.into_vec::<u32>().map_err(read)?).map_err(fail)?,
        (TypeChar::Uint, 8) => {
            let v = npy.into_vec::<u64>().map_err(read)?;
            v.into_iter()
                .map(|x| i64::try_from(x).map_err(|_| format_err(path, format!("u8 value {x} exceeds i64"))))
                .collect::<Result<_, _>>()?
        }
        _ => return Err(unsupported(path, format!("{}{size}", kind.to_str()))),
    })
}

/// Integers widened to i64 in a buffer allocated fallibly: the widened data is up to
/// eight times the stored bytes, and running out of memory is an error, not an abort.
pub(crate) fn widen_ints<T: Into<i64>>(v: Vec<T>) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(v.len()).map_err(|_| format!("out of memory widening {} integers to i64", v.len()))?;
    out.extend(v.into_iter().map(Into::into));
    Ok(out)
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
    let bytes = npy_bytes(path, tensor)?;
    std::fs::write(path, bytes).map_err(io_err(path))
}

fn npy_to_writer<W: Write, T: npyz::AutoSerialize + Copy>(w: W, shape: &[usize], values: &[T]) -> std::io::Result<()> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(w).begin_nd()?;
    writer.extend(values.iter().copied())?;
    writer.finish()
}

/// One tensor as the bytes of a `.npy` file.
fn npy_bytes(path: &Path, tensor: &Tensor) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    let shape = &tensor.shape;
    let result = match &tensor.data {
        Data::F32(v) => npy_to_writer(&mut out, shape, v),
        Data::F64(v) => npy_to_writer(&mut out, shape, v),
        Data::I64(v) => npy_to_writer(&mut out, shape, v),
        Data::Bool(v) => npy_to_writer(&mut out, shape, v),
        Data::C64(v) => npy_to_writer(&mut out, shape, v),
    };
    result.map_err(io_err(path))?;
    Ok(out)
}

// ---- zip archives (.npz, .pt) ----

/// The most bytes one archive entry may declare (a guard against zip bombs).
const MAX_ENTRY_BYTES: u64 = 1 << 32;

/// Deflate cannot inflate one byte to more than about 1032, so a first buffer of this
/// many times the compressed size (capped by the declared size) suffices.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Opens a zip archive.
pub(crate) fn open_zip(path: &Path) -> Result<zip::ZipArchive<BufReader<File>>, IoError> {
    let file = File::open(path).map_err(io_err(path))?;
    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| format_err(path, format!("not a zip archive: {e}")))
}

/// The whole contents of entry `index`: never more than the size its header declares
/// (an entry that inflates beyond it is an error, read no further), at most
/// [`MAX_ENTRY_BYTES`], CRC-checked by `zip`.
pub(crate) fn zip_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    path: &Path,
) -> Result<(String, Vec<u8>), IoError> {
    zip_entry_limited(zip, index, path, u64::MAX)
}

/// [`zip_entry`], refusing an entry that declares more than `limit` bytes before any of
/// it is read.
pub(crate) fn zip_entry_limited<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    path: &Path,
    limit: u64,
) -> Result<(String, Vec<u8>), IoError> {
    let entry = zip.by_index(index).map_err(|e| format_err(path, e))?;
    let name = entry.name().to_string();
    let entry_path = path.join(&name);
    let declared = entry.size();
    if declared > MAX_ENTRY_BYTES {
        return Err(format_err(&entry_path, format!("entry declares {declared} bytes, more than 4 GiB")));
    }
    if declared > limit {
        return Err(format_err(&entry_path, format!("entry declares {declared} bytes, expected at most {limit}")));
    }
    // A forged header may declare any compressed size; the compressed bytes cannot be
    // more than the archive holds, so the first reservation is bounded by the file.
    let archive_len = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    let compressed = entry.compressed_size().min(archive_len);
    let first = declared.min(compressed.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(64));
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(first as usize).map_err(|_| format_err(&entry_path, "out of memory"))?;
    entry.take(declared + 1).read_to_end(&mut bytes).map_err(io_err(&entry_path))?;
    if bytes.len() as u64 > declared {
        return Err(format_err(&entry_path, format!("entry inflates beyond the {declared} bytes its header declares")));
    }
    Ok((name, bytes))
}

/// Reads every array of a `.npz` file (names without `.npy`).
pub fn read_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>, IoError> {
    let path = path.as_ref();
    let mut zip = open_zip(path)?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let (name, bytes) = zip_entry(&mut zip, i, path)?;
        if name.ends_with('/') {
            continue;
        }
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(format_err(path, format!("entry {name:?} is not a .npy array")));
        };
        out.insert(key.to_string(), npy_from_bytes(&bytes, &path.join(&name))?);
    }
    Ok(out)
}

/// Writes named tensors to a `.npz` file (stored, uncompressed, like `numpy.savez`).
pub fn write_npz<'a, K, I>(path: impl AsRef<Path>, tensors: I) -> Result<(), IoError>
where
    K: AsRef<str>,
    I: IntoIterator<Item = (K, &'a Tensor)>,
{
    let path = path.as_ref();
    let file = File::create(path).map_err(io_err(path))?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    let zip_err = |e: zip::result::ZipError| format_err(path, e);
    for (name, tensor) in tensors {
        let bytes = npy_bytes(path, tensor)?;
        zip.start_file(format!("{}.npy", name.as_ref()), options).map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io_err(path))?;
    }
    zip.finish().map_err(zip_err)?.flush().map_err(io_err(path))
}

// ---- CSV ----

/// How [`read_csv`] splits a row into features and a label.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvOptions {
    /// The label's column index; `None` means the last column.
    pub label_column: Option<usize>,
}

/// A labelled table: `features` f32 `[N, F]`, `labels` i64 `[N]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledTable {
    pub features: Tensor,
    pub labels: Tensor,
}

/// The longest CSV line [`read_csv`] accepts, in bytes (a row of 100,000 features
/// takes about 1 MiB).
pub const MAX_CSV_LINE: usize = 16 << 20;

/// Reads a numeric CSV file, gzipped or not (see the module docs).
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<LabeledTable, IoError> {
    read_csv_capped(path.as_ref(), options, MAX_CSV_LINE)
}

/// [`read_csv`] with lines capped at `max_line` bytes: a longer line is an error naming
/// it, found without holding more than `max_line` bytes of it.
pub fn read_csv_capped(path: &Path, options: &CsvOptions, max_line: usize) -> Result<LabeledTable, IoError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let gzipped = reader.fill_buf().map_err(io_err(path))?.starts_with(&[0x1f, 0x8b]);
    let mut text: Box<dyn BufRead> =
        if gzipped { Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader))) } else { Box::new(reader) };
    let mut table = CsvBuilder::default();
    let mut line = Vec::new();
    for line_no in 1.. {
        if !read_line_capped(&mut text, &mut line, max_line).map_err(io_err(path))? {
            break;
        }
        if line.len() > max_line {
            return Err(format_err(path, format!("line {line_no} is longer than {max_line} bytes")));
        }
        let text = std::str::from_utf8(&line).map_err(|_| format_err(path, format!("line {line_no} is not UTF-8")))?;
        table.row(line_no, text, options).map_err(|m| format_err(path, m))?;
    }
    table.finish().map_err(|m| format_err(path, m))
}

/// Reads the next line (without its `\n`) into `line`, keeping at most `max + 1` bytes
/// of it (more means too long; the caller reports it). `false` at the end of the input.
pub(crate) fn read_line_capped(r: &mut dyn BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
    line.clear();
    let mut any = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = (max + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() || line.len() > max {
            return Ok(true);
        }
    }
}

/// Rows parsed so far.
#[derive(Default)]
struct CsvBuilder {
    features: Vec<f32>,
    labels: Vec<i64>,
    width: Option<usize>,
    seen_row: bool,
}

impl CsvBuilder {
    /// Adds line `line_no` (1-based) unless it is blank or the header.
    fn row(&mut self, line_no: usize, line: &str, options: &CsvOptions) -> Result<(), String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        let first = !self.seen_row;
        self.seen_row = true;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let label_at = options.label_column.unwrap_or(fields.len() - 1);
        if label_at >= fields.len() {
            return Err(format!("line {line_no}: no label column {label_at} in {} columns", fields.len()));
        }
        if first && fields.iter().any(|f| f.parse::<f64>().is_err()) {
            return Ok(()); // a header
        }
        match self.width {
            None if fields.len() < 2 => return Err(format!("line {line_no}: a row needs features and a label")),
            None => self.width = Some(fields.len()),
            Some(w) if w != fields.len() => {
                return Err(format!("line {line_no}: {} columns, expected {w}", fields.len()));
            }
            Some(_) => {}
        }
        for (col, field) in fields.iter().enumerate() {
            if col == label_at {
                self.labels.push(parse_label(field).map_err(|m| format!("line {line_no}, column {col}: {m}"))?);
            } else {
                let x = field.parse::<f32>();
                self.features.push(x.map_err(|_| format!("line {line_no}, column {col}: {field:?} is not a number"))?);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<LabeledTable, String> {
        let Some(width) = self.width else { return Err("no data rows".into()) };
        let n = self.labels.len();
        let features = Tensor::new(vec![n, width - 1], Data::F32(self.features)).map_err(|e| e.to_string())?;
        let labels = Tensor::new(vec![n], Data::I64(self.labels)).map_err(|e| e.to_string())?;
        Ok(LabeledTable { features, labels })
    }
}

/// An integral label (`3`, `3.0`, `-1`).
fn parse_label(field: &str) -> Result<i64, String> {
    if let Ok(v) = field.parse::<i64>() {
        return Ok(v);
    }
    match field.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
        Ok(_) => Err(format!("label {field:?} is not an integer")),
        Err(_) => Err(format!("{field:?} is not a number")),
    }
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
