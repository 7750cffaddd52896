//! The data-file target: small valid files of every format the runtime reads, built here,
//! mutated, and handed to their reader.
//!
//! Contract: [`Seeds::build`] writes one valid file per format with archc's own writers
//! (`.npy`, `.npz`, `.safetensors`) or by hand (a PyTorch zip checkpoint with a protocol-2
//! pickle, CSV plain and gzipped) and keeps their bytes; [`mutate`] edits them at the byte
//! level or, for the zip formats, edits a member and zips it again, so the readers see
//! both broken archives and well-formed archives with hostile contents. [`read`] writes
//! the bytes to a scratch file and runs the reader: it returns what the reader said; a
//! panic propagates to the harness.

use crate::input::DataKind;
use crate::mutate;
use crate::rng::Rng;
use archc_runtime::io::{self, CsvOptions};
use archc_runtime::Tensor;
use std::io::{Cursor, Read, Write};
use std::path::Path;

/// One valid file per format.
#[derive(Clone, Debug)]
pub struct Seeds {
    pub files: Vec<(DataKind, Vec<u8>)>,
}

impl Seeds {
    /// Builds the seed files in `dir`.
    pub fn build(dir: &Path) -> Result<Seeds, String> {
        let a = Tensor::from_f32(&[2, 3], vec![1.5, -2.0, 3.25, 0.0, 7.0, -0.5]);
        let b = Tensor::from_i64(&[4], vec![3, -1, 1 << 40, 0]);
        let named = [("a", &a), ("b", &b)];
        let file = |ext: &str| dir.join(format!("seed.{ext}"));
        let err = |e: io::IoError| e.to_string();
        io::write_npy(file("npy"), &a).map_err(err)?;
        io::write_npz(file("npz"), named).map_err(err)?;
        io::write_safetensors(file("safetensors"), named).map_err(err)?;
        let read = |ext: &str| std::fs::read(file(ext)).map_err(|e| e.to_string());
        let csv = b"1.0,2.5,-3,0\n4,5e-1,6,1\n0,0,0,2\n".to_vec();
        Ok(Seeds {
            files: vec![
                (DataKind::Npy, read("npy")?),
                (DataKind::Npz, read("npz")?),
                (DataKind::Safetensors, read("safetensors")?),
                (DataKind::Pt, pt_checkpoint()),
                (DataKind::CsvGz, gzip(&csv)),
                (DataKind::Csv, csv),
            ],
        })
    }
}

/// A mutated seed: 1 to 4 byte edits, or (zip formats, half the time) one member edited
/// and the archive rebuilt; 8-byte-aligned words now and then set to edge sizes.
pub fn mutate(kind: DataKind, seed: &[u8], r: &mut Rng) -> Vec<u8> {
    let zipped = matches!(kind, DataKind::Npz | DataKind::Pt);
    if zipped && r.chance(0.5) {
        if let Some(out) = mutate_member(seed, r) {
            return out;
        }
    }
    if kind == DataKind::CsvGz && r.chance(0.5) {
        return gzip(&mutate::bytes(&gunzip(seed), 1 + r.below(4), r));
    }
    let mut out = mutate::bytes(seed, 1 + r.below(4), r);
    if r.chance(0.2) {
        set_word(&mut out, r);
    }
    out
}

/// Overwrites a little-endian `u32` or `u64` with an edge value (sizes, offsets, counts).
fn set_word(b: &mut [u8], r: &mut Rng) {
    let edges: [u64; 6] = [0, 1, 0xffff_ffff, 1 << 31, u64::MAX, 1 << 40];
    let v = *r.pick(&edges);
    let width = if r.chance(0.5) { 4 } else { 8 };
    if b.len() < width {
        return;
    }
    let at = r.below(b.len() - width + 1);
    b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// The archive with one member's bytes edited (text digits in headers count as bytes).
fn mutate_member(zip: &[u8], r: &mut Rng) -> Option<Vec<u8>> {
    let mut members = unzip(zip)?;
    if members.is_empty() {
        return None;
    }
    let i = r.below(members.len());
    members[i].1 = mutate::bytes(&members[i].1, 1 + r.below(3), r);
    if r.chance(0.3) {
        set_word(&mut members[i].1, r);
    }
    let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    Some(zip_bytes(&refs, r.chance(0.3)))
}

/// Runs the reader for `kind` on `bytes`, through a file `scratch` (its extension set).
pub fn read(kind: DataKind, bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let path = scratch.with_extension(kind.ext());
    std::fs::write(&path, bytes).map_err(|e| format!("scratch file: {e}"))?;
    let done = |r: Result<(), io::IoError>| r.map_err(|e| e.to_string());
    match kind {
        DataKind::Npy => done(io::read_npy(&path).map(drop)),
        DataKind::Npz => done(io::read_npz(&path).map(drop)),
        DataKind::Safetensors => done(io::read_safetensors(&path).map(drop)),
        DataKind::Pt => done(io::read_pt(&path).map(drop)),
        DataKind::Csv | DataKind::CsvGz => {
            let label_column = if bytes.len() % 3 == 0 { Some(0) } else { None };
            done(io::read_csv(&path, &CsvOptions { label_column }).map(drop))
        }
    }
}

// ---------------------------------------------------------------- archives

/// A zip of `(name, bytes)` members, stored or deflated.
pub fn zip_bytes(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options).expect("in-memory zip member");
        zip.write_all(bytes).expect("in-memory write");
    }
    zip.finish().expect("in-memory zip").into_inner()
}

/// The members of a (seed) archive; `None` when it does not read.
fn unzip(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).ok()?;
        let mut b = Vec::new();
        f.read_to_end(&mut b).ok()?;
        out.push((f.name().to_string(), b));
    }
    Some(out)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("in-memory gzip");
    enc.finish().expect("in-memory gzip")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(bytes).take(1 << 20).read_to_end(&mut out);
    out
}

// ---------------------------------------------------------------- PyTorch checkpoint

/// A protocol-2 pickle, written opcode by opcode.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn unicode(&mut self, s: &str) -> &mut Self {
        self.op(b'X').bytes(&(s.len() as u32).to_le_bytes()).bytes(s.as_bytes())
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b'c').bytes(format!("{module}\n{name}\n").as_bytes())
    }
    fn int(&mut self, v: u8) -> &mut Self {
        self.op(b'K').op(v)
    }
    fn ints(&mut self, v: &[u8]) -> &mut Self {
        self.op(b'(');
        for &x in v {
            self.int(x);
        }
        self.op(b't')
    }
    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`.
    fn tensor(&mut self, class: &str, key: &str, numel: u8, size: &[u8], stride: &[u8]) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(b'(').op(b'(').unicode("storage").global("torch", class).unicode(key).unicode("cpu").int(numel);
        self.op(b't').op(b'Q').int(0).ints(size).ints(stride).op(0x89);
        self.global("collections", "OrderedDict").op(b')').op(b'R').op(b't').op(b'R')
    }
}

/// A checkpoint `{"x": f32[2, 3], "y": i64[3]}` as `torch.save` writes it.
fn pt_checkpoint() -> Vec<u8> {
    let mut p = Pickle::default();
    p.op(0x80).op(2).op(b'}').op(b'(');
    p.unicode("x").tensor("FloatStorage", "0", 6, &[2, 3], &[3, 1]);
    p.unicode("y").tensor("LongStorage", "1", 3, &[3], &[1]);
    p.op(b'u').op(b'.');
    let x: Vec<u8> = (0..6).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
    let y: Vec<u8> = [-7i64, 70000, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let entries: [(&str, &[u8]); 5] = [
        ("archive/data.pkl", &p.0),
        ("archive/data/0", &x),
        ("archive/data/1", &y),
        ("archive/version", b"3\n"),
        ("archive/byteorder", b"little"),
    ];
    zip_bytes(&entries, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_reads() {
        let dir = std::env::temp_dir().join(format!("archc-fuzz-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let seeds = Seeds::build(&dir).unwrap();
        for (kind, bytes) in &seeds.files {
            read(*kind, bytes, &dir.join("probe")).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
