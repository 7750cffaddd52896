//! The Cranelift IR of a few examples, snapshot-tested (`tests/snapshots`): the MLP's and
//! the MNIST-1D CNN's forward programs and the digits MLP's train step. The text is what
//! `archc build --emit clif` prints, deterministic for the same program.

mod common;

use common::{forward, repo, train_step};

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn forward_programs_snapshotted() {
    for name in ["mlp", "cnn_mnist1d"] {
        let p = forward(&repo().join(format!("examples/{name}.arch")));
        let text = archc_clif::emit_clif(&p, "main").expect("lowers");
        assert_eq!(text, archc_clif::emit_clif(&p, "main").expect("lowers"), "{name}: deterministic");
        snapshot(name, &text);
    }
}

#[test]
fn train_step_snapshotted() {
    let p = train_step(&repo().join("examples/train_digits.arch"), false).expect("a train block");
    snapshot("train_digits.train_step", &archc_clif::emit_clif(&p, "train_step").expect("lowers"));
}
