//! Hostile data files are refused by their declared sizes, never inflated or allocated
//! first: zip members that inflate beyond their headers (`.npz`, `.pt`), element counts
//! that do not fit their member, and CSV lines above the line cap. Every input is built
//! small here; the bombs declare a few hundred bytes and inflate to a few hundred KB.

mod common;

use archc_runtime::io::{read_csv, read_csv_capped, read_npz, read_pt, CsvOptions, IoError};
use common::npy_bytes;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archc-hostile-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A deflated zip of `(name, bytes)` entries, in memory.
fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Rewrites the uncompressed size that the local and central headers of entry `name`
/// declare: the entry still inflates to its real length.
fn declare_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for (sig, size_at, name_len_at, name_at) in [(b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)] {
        for i in 0..zip.len().saturating_sub(name_at) {
            let len = |z: &[u8]| u16::from_le_bytes([z[i + name_len_at], z[i + name_len_at + 1]]) as usize;
            if &zip[i..i + 4] == sig && zip.get(i + name_at..i + name_at + len(zip)) == Some(name.as_bytes()) {
                zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
    }
    assert_eq!(patched, 2, "the local and central headers of {name}");
}

/// A `.npy` image of `n` bytes of `|u1` zeros.
fn npy_u1(n: usize) -> Vec<u8> {
    npy_bytes("|u1", false, &format!("({n},)"), &vec![0u8; n])
}

fn error_text(result: Result<impl std::fmt::Debug, IoError>) -> String {
    result.expect_err("a hostile input must be an error").to_string()
}

#[test]
fn npz_member_inflating_beyond_its_header_is_refused() {
    let dir = scratch("npz-bomb");
    let npy = npy_u1(400_000);
    let mut zip = zip_bytes(&[("x.npy", &npy)]);
    assert!(zip.len() < 4_000, "a small file: {} bytes", zip.len());
    declare_size(&mut zip, "x.npy", 1_000);
    let path = dir.join("bomb.npz");
    std::fs::write(&path, &zip).unwrap();
    let err = error_text(read_npz(&path));
    assert!(err.contains("inflates beyond the 1000 bytes its header declares"), "{err}");
    assert!(err.contains("x.npy"), "{err}");
}

#[test]
fn npy_shape_is_checked_against_the_element_size() {
    let dir = scratch("npy-shape");
    // 800 bytes of data under a shape of 800 eight-byte elements.
    let mut npy = npy_u1(800);
    let at = npy.windows(3).position(|w| w == b"|u1").unwrap();
    npy[at..at + 3].copy_from_slice(b"<f8");
    let path = dir.join("short.npz");
    std::fs::write(&path, zip_bytes(&[("x.npy", &npy)])).unwrap();
    let err = error_text(read_npz(&path));
    assert!(err.contains("of 8-byte elements needs more data than the file's 800 bytes"), "{err}");
}

/// A torch.save pickle of one `ByteStorage` tensor of `numel` elements, key `0`.
fn byte_tensor_pickle(numel: i64) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    let unicode = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    unicode(&mut p, "storage");
    p.extend(b"ctorch\nByteStorage\n");
    unicode(&mut p, "0");
    unicode(&mut p, "cpu");
    p.push(0x8a); // LONG1, 8 bytes
    p.push(8);
    p.extend(numel.to_le_bytes());
    p.extend(b"tQK\x00"); // the persistent id, offset 0
    p.push(0x8a);
    p.push(8);
    p.extend(numel.to_le_bytes());
    p.extend(b"\x85K\x01\x85\x89tR."); // size (numel,), stride (1,), False, call
    p
}

#[test]
fn pt_storage_inflating_beyond_its_header_is_refused() {
    let dir = scratch("pt-bomb");
    let storage = vec![0u8; 400_000];
    let pkl = byte_tensor_pickle(1_000);
    let mut zip = zip_bytes(&[("archive/data.pkl", &pkl), ("archive/data/0", &storage)]);
    declare_size(&mut zip, "archive/data/0", 1_000);
    let path = dir.join("bomb.pt");
    std::fs::write(&path, &zip).unwrap();
    let err = error_text(read_pt(&path));
    assert!(err.contains("inflates beyond the 1000 bytes its header declares"), "{err}");
    // The honest archive reads.
    let honest = dir.join("honest.pt");
    std::fs::write(&honest, zip_bytes(&[("archive/data.pkl", &pkl), ("archive/data/0", &storage[..1_000])])).unwrap();
    assert_eq!(read_pt(&honest).unwrap()["tensor"].shape, [1_000]);
}

#[test]
fn pt_element_counts_are_checked_before_reading() {
    let dir = scratch("pt-count");
    let storage = vec![0u8; 1_000];
    for (numel, want) in [(1_001, "1000 bytes for 1001 elements"), (i64::MAX, "elements of 1 bytes")] {
        let path = dir.join(format!("count-{numel}.pt"));
        let pkl = byte_tensor_pickle(numel);
        std::fs::write(&path, zip_bytes(&[("archive/data.pkl", &pkl), ("archive/data/0", &storage)])).unwrap();
        let err = error_text(read_pt(&path));
        assert!(err.contains(want), "{err}");
    }
}

/// A small CSV of three rows, then one line of `long` bytes.
fn csv_with_long_line(path: &Path, long: usize) {
    let mut text = String::from("a,b,label\n1,2,0\n3,4,1\n");
    text.push_str(&"9".repeat(long - 4));
    text.push_str(",1,0\n");
    std::fs::write(path, text).unwrap();
}

#[test]
fn csv_lines_above_the_cap_are_refused() {
    let dir = scratch("csv-line");
    let path = dir.join("long.csv");
    csv_with_long_line(&path, 200);
    let err = error_text(read_csv_capped(&path, &CsvOptions::default(), 100));
    assert!(err.contains("line 4 is longer than 100 bytes"), "{err}");
    // Under a cap it fits, the same file reads (one long number is a fine feature).
    let table = read_csv_capped(&path, &CsvOptions::default(), 300).unwrap();
    assert_eq!(table.features.shape, [3, 2]);
    assert_eq!(read_csv(&path, &CsvOptions::default()).unwrap(), table);
}

#[test]
fn csv_line_cap_holds_for_gzip_and_a_line_without_newline() {
    let dir = scratch("csv-gz");
    let path = dir.join("long.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"1,2,0\n").unwrap();
    enc.write_all("7".repeat(5_000).as_bytes()).unwrap(); // no newline at the end
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    let err = error_text(read_csv_capped(&path, &CsvOptions::default(), 1_000));
    assert!(err.contains("line 2 is longer than 1000 bytes"), "{err}");
}
