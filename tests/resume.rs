//! `archc train --resume` after a run stopped mid-epoch ends with the same weights,
//! bit for bit, as an uninterrupted run (digits MLP, real data; skipped with a note
//! when the data set has not been fetched).

mod common;

use archc::training::{loop_spec, read_config, train_data, train_program};
use archc_compiler::sema::Options;
use archc_runtime::train::train;

#[test]
fn resuming_mid_epoch_is_bit_identical() {
    if !archc_runtime::data::data_dir().join("digits.csv.gz").exists() {
        eprintln!("skipped: digits not fetched (run `make data`)");
        return;
    }
    let (out, _) = read_config(&common::repo().join("examples/train_digits.arch"), &Options::default()).expect("read");
    let mut cfg = out.config.expect("train config");
    cfg.epochs = 3;
    let program = train_program(&cfg).expect("train step");
    let data = train_data(&cfg, &program).expect("data");
    let spec = loop_spec(&cfg, data.train.len());
    let tmp = std::env::temp_dir().join(format!("archc-resume-{}", std::process::id()));
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    let whole = train(&program, &spec, &data, &a, false, false).expect("uninterrupted run");
    let mut stopping = spec.clone();
    stopping.stop_after_steps = Some(30); // 23 steps per epoch: stops inside epoch 2
    let first = train(&program, &stopping, &data, &b, false, false).expect("first part");
    assert!(first.stopped_early, "the first part stops early");
    let resumed = train(&program, &spec, &data, &b, true, false).expect("resumed run");
    assert!(resumed.resumed);
    assert_eq!(whole.state.params.keys().collect::<Vec<_>>(), resumed.state.params.keys().collect::<Vec<_>>());
    for (name, t) in &whole.state.params {
        let r = &resumed.state.params[name];
        assert_eq!(t.as_f32(), r.as_f32(), "parameter {name} differs after resuming");
    }
    assert_eq!(whole.test_acc, resumed.test_acc);
    let _ = std::fs::remove_dir_all(&tmp);
}
