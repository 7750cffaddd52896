//! `.npy` and `.safetensors` round trips and error reporting.

mod common;

use archc_compiler::tir::DType;
use archc_runtime::io::{read_npy, read_safetensors, write_npy, write_safetensors, IoError};
use archc_runtime::Tensor;
use common::npy_bytes;
use num_complex::Complex;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archc-runtime-io-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn samples() -> Vec<Tensor> {
    vec![
        Tensor::from_f32(&[2, 3], vec![1.5, -2.0, 3.25, 0.0, f32::INFINITY, -0.0]),
        Tensor::scalar_f64(std::f64::consts::PI),
        Tensor::from_i64(&[3], vec![i64::MIN, 0, i64::MAX]),
        Tensor::from_bool(&[2, 2], vec![true, false, false, true]),
        Tensor::zeros(DType::F32, &[0, 4]),
    ]
}

#[test]
fn npy_round_trips() {
    let dir = scratch("npy");
    for (i, t) in samples().into_iter().enumerate() {
        let path = dir.join(format!("t{i}.npy"));
        write_npy(&path, &t).unwrap();
        assert_eq!(read_npy(&path).unwrap(), t, "{}", t.type_string());
    }
}

#[test]
fn npy_errors_name_the_path() {
    let dir = scratch("npy-errors");
    // complex64 is numpy's `<c8`; complex128 is not read.
    let path = dir.join("z.npy");
    let z = Tensor::from_c64(&[2, 1], vec![Complex::new(1.0, 2.0), Complex::new(-0.5, f32::INFINITY)]);
    write_npy(&path, &z).unwrap();
    assert!(std::fs::read(&path).unwrap().windows(5).any(|w| w == b"'<c8'"));
    assert_eq!(read_npy(&path).unwrap(), z);
    let data: Vec<u8> = [1f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&path, npy_bytes("<c16", false, "(1,)", &data)).unwrap();
    let e = read_npy(&path).unwrap_err();
    assert!(matches!(e, IoError::UnsupportedDType { .. }) && e.to_string().contains("z.npy"), "{e}");
    let missing = dir.join("missing.npy");
    let e = read_npy(&missing).unwrap_err();
    assert!(matches!(e, IoError::Io { .. }) && e.to_string().contains("missing.npy"), "{e}");
    std::fs::write(dir.join("junk.npy"), b"not an npy file").unwrap();
    assert!(read_npy(dir.join("junk.npy")).unwrap_err().to_string().contains("junk.npy"));
}

#[test]
fn npy_reads_fortran_order_big_endian_and_narrow_ints() {
    let dir = scratch("npy-layouts");
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    let data: Vec<u8> = [1f32, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join("f.npy"), npy_bytes("<f4", true, "(2, 3)", &data)).unwrap();
    let t = read_npy(dir.join("f.npy")).unwrap();
    assert_eq!(t, Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));

    let data: Vec<u8> = [0.5f64, -8.0].iter().flat_map(|x| x.to_be_bytes()).collect();
    std::fs::write(dir.join("be.npy"), npy_bytes(">f8", false, "(2,)", &data)).unwrap();
    assert_eq!(read_npy(dir.join("be.npy")).unwrap(), Tensor::from_f64(&[2], vec![0.5, -8.0]));

    let data: Vec<u8> = [-3i32, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join("i4.npy"), npy_bytes("<i4", false, "(2,)", &data)).unwrap();
    assert_eq!(read_npy(dir.join("i4.npy")).unwrap(), Tensor::from_i64(&[2], vec![-3, 7]));

    std::fs::write(dir.join("u1.npy"), npy_bytes("|u1", false, "(1, 1)", &[200])).unwrap();
    assert_eq!(read_npy(dir.join("u1.npy")).unwrap(), Tensor::from_i64(&[1, 1], vec![200]));

    std::fs::write(dir.join("f2.npy"), npy_bytes("<f2", false, "(1,)", &[0, 60])).unwrap();
    let e = read_npy(dir.join("f2.npy")).unwrap_err();
    assert!(matches!(e, IoError::UnsupportedDType { .. }), "{e}");
}

#[test]
fn safetensors_round_trips_every_dtype() {
    let dir = scratch("safetensors");
    let mut map: BTreeMap<String, Tensor> =
        samples().into_iter().enumerate().map(|(i, t)| (format!("t{i}"), t)).collect();
    map.insert("enc.0.z".into(), Tensor::from_c64(&[2], vec![Complex::new(1.0, -2.0), Complex::new(0.5, 3.0)]));
    let path = dir.join("all.safetensors");
    write_safetensors(&path, &map).unwrap();
    assert_eq!(read_safetensors(&path).unwrap(), map);
    // Any iterator of pairs works, e.g. a parameter HashMap.
    let params: HashMap<String, Tensor> = map.clone().into_iter().collect();
    write_safetensors(&path, &params).unwrap();
    assert_eq!(read_safetensors(&path).unwrap(), map);
}

#[test]
fn safetensors_errors_name_the_path() {
    let dir = scratch("safetensors-errors");
    std::fs::write(dir.join("bad.safetensors"), b"\x05\x00\x00\x00\x00\x00\x00\x00{oops").unwrap();
    let e = read_safetensors(dir.join("bad.safetensors")).unwrap_err();
    assert!(matches!(e, IoError::Format { .. }) && e.to_string().contains("bad.safetensors"), "{e}");
    let e = read_safetensors(dir.join("none.safetensors")).unwrap_err();
    assert!(matches!(e, IoError::Io { .. }) && e.to_string().contains("none.safetensors"), "{e}");
}
