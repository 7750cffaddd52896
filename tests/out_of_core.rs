//! A data set larger than the memory the process may use trains: `archc train` runs
//! under a data-segment limit (`ulimit -d`, which counts the heap and every private
//! writable mapping, not the page cache) of 448 MiB on a 640 MiB `.npy` data set, and
//! its fields are read a batch at a time. The control: the same file with a header that
//! makes it unreadable in place (Fortran order) is read whole, and the same command
//! then fails under the same limit, so the limit does bite.
//!
//! The interpreter runs the steps: the LLVM JIT reserves address space for its threads
//! that would count against the limit without being used.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Output};

const ROWS: usize = 40_960;
const FEATURES: usize = 4_096;
const LIMIT_KIB: u64 = 448 << 10;

/// A `.npy` v1 header for f32 data of `shape` (the dict padded to 64 bytes).
fn npy_header(shape: &str, fortran: bool) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': ({shape}), }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// `x` uniform in [-1, 1) from a fixed generator and `y = x . w`, row by row.
fn write_data(dir: &Path) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let w: Vec<f32> = (0..FEATURES).map(|_| uniform() * 1.7 / (FEATURES as f32).sqrt()).collect();
    let mut x = BufWriter::new(std::fs::File::create(dir.join("x.npy")).expect("x.npy"));
    let mut y = BufWriter::new(std::fs::File::create(dir.join("y.npy")).expect("y.npy"));
    x.write_all(&npy_header(&format!("{ROWS}, {FEATURES}"), false)).expect("write");
    y.write_all(&npy_header(&format!("{ROWS}, 1"), false)).expect("write");
    let mut row = vec![0f32; FEATURES];
    for _ in 0..ROWS {
        row.iter_mut().for_each(|v| *v = uniform());
        let target: f32 = row.iter().zip(&w).map(|(a, b)| a * b).sum();
        row.iter().for_each(|v| x.write_all(&v.to_le_bytes()).expect("write"));
        y.write_all(&target.to_le_bytes()).expect("write");
    }
    x.flush().expect("flush");
    y.flush().expect("flush");
}

/// `archc train` on `arch` under the memory limit.
fn train_limited(arch: &Path, out: &Path) -> Output {
    let archc = env!("CARGO_BIN_EXE_archc");
    let script = format!(
        "ulimit -d {LIMIT_KIB} && exec '{archc}' train '{}' --backend interp --out '{}'",
        arch.display(),
        out.display()
    );
    Command::new("bash").args(["-c", &script]).output().expect("bash runs")
}

/// The last line of a run's metrics.
fn last_metrics(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics.jsonl");
    serde_json::from_str(text.lines().last().expect("a line")).expect("json")
}

#[test]
fn a_data_set_larger_than_the_memory_limit_trains() {
    let d = tempfile::tempdir().expect("tempdir");
    let data = d.path().join("big");
    std::fs::create_dir(&data).expect("dir");
    write_data(&data);
    let bytes = std::fs::metadata(data.join("x.npy")).expect("x.npy").len();
    assert!(bytes > (LIMIT_KIB << 10) * 4 / 3, "the data ({bytes} bytes) must well exceed the limit");
    let arch = d.path().join("big.arch");
    std::fs::write(
        &arch,
        format!(
            "use nn.Linear\n\nnetwork Lin {{\n    input x: f32[B, {FEATURES}]\n    let fc = Linear({FEATURES}, 1)\n    \
             output pred = x |> fc\n}}\n\ntrain Lin on file(\"big\", split = [0.9, 0.1]) {{\n    \
             loss: mse(pred, y)\n    optimizer: adam(lr = 1e-3)\n    batch: 256\n    epochs: 1\n}}\n"
        ),
    )
    .expect("write");

    let run = d.path().join("run");
    let out = train_limited(&arch, &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "training under the limit failed: {stderr}");
    // y has variance 1.7^2 / 3 ~ 0.96: a linear model that learned nothing scores about that.
    let test_loss = last_metrics(&run)["test_loss"].as_f64().expect("test loss");
    println!("test loss after one epoch under the limit: {test_loss:.5}");
    assert!(test_loss < 0.1, "test loss {test_loss} after an epoch: the model did not learn");

    // The control: Fortran order cannot be read in place, so the file is read whole.
    let header = npy_header(&format!("{ROWS}, {FEATURES}"), true);
    assert_eq!(header.len(), npy_header(&format!("{ROWS}, {FEATURES}"), false).len());
    let mut f = std::fs::OpenOptions::new().write(true).open(data.join("x.npy")).expect("open");
    f.write_all(&header).expect("rewrite the header");
    drop(f);
    let out = train_limited(&arch, &d.path().join("control"));
    assert!(!out.status.success(), "reading the whole file should not fit under the limit");
}
