//! Numeric agreement with PyTorch: every `tests/fixtures/NAME.arch` is a tiny network
//! around one stdlib layer, and `tests/fixtures/NAME.safetensors` (written by
//! `scripts/gen_fixtures.py`, see there; `make fixtures`) holds its inputs `input.<arg>`,
//! every param and buffer under its TIR name, and PyTorch's output `output.<result>`.
//! The tests need neither Python nor torch.
//!
//! Each test checks the program, sets every param from the fixture (all of them must be
//! there, and nothing else), runs `main` on the fixture inputs in `arg_names` order and
//! compares each result with the stored output.
//!
//! Metric: `max |ours - torch| / max |torch|`, the largest absolute error relative to the
//! largest expected magnitude, must be at most 1e-5. Element-wise relative error is
//! ill-defined for outputs near zero (a conv or attention output has some), so it is only
//! printed (`cargo test --test numeric -- --nocapture`). The reference is computed in f64
//! from the same f32 weights and inputs, so the error measured is our f32 interpreter's.

mod common;

use archc_compiler::sema::Options;
use archc_runtime::{io, Interpreter, Tensor};
use std::collections::{BTreeMap, BTreeSet};

/// The bound on `max |ours - torch| / max |torch|`.
const TOL: f64 = 1e-5;

fn run_fixture(name: &str) {
    let dir = common::repo().join("tests/fixtures");
    let arch = dir.join(format!("{name}.arch"));
    let data = dir.join(format!("{name}.safetensors"));
    let out = common::check(&arch, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}:\n{}", arch.display(), common::rendered(&out));
    let program = out.program.expect("program built");
    let mut fixture: BTreeMap<String, Tensor> =
        io::read_safetensors(&data).unwrap_or_else(|e| panic!("{e} (run `make fixtures`)"));

    // Params and buffers: exactly the program's, each set from the fixture.
    let mut interp = Interpreter::new(&program);
    let declared: BTreeSet<&str> = program.params.iter().map(|p| p.name.as_str()).collect();
    for decl in &program.params {
        let t = fixture
            .remove(&decl.name)
            .unwrap_or_else(|| panic!("{name}: param @{} is not in {}", decl.name, data.display()));
        interp.set_param(&decl.name, t).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let stray: Vec<&String> =
        fixture.keys().filter(|k| !k.starts_with("input.") && !k.starts_with("output.")).collect();
    assert!(
        stray.is_empty(),
        "{name}: fixture tensors {stray:?} are not params of the program (declared: {declared:?})"
    );

    let main = program.main();
    let inputs: Vec<Tensor> = main
        .arg_names
        .iter()
        .map(|a| fixture.remove(&format!("input.{a}")).unwrap_or_else(|| panic!("{name}: no input.{a} in the fixture")))
        .collect();
    let results = interp.run("main", &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));

    for (r, got) in main.result_names.iter().zip(&results) {
        let want =
            fixture.remove(&format!("output.{r}")).unwrap_or_else(|| panic!("{name}: no output.{r} in the fixture"));
        assert_eq!(got.dtype(), want.dtype(), "{name}: output {r} dtype");
        let diff = got.compare(&want).unwrap_or_else(|e| panic!("{name}: output {r}: {e}"));
        let scale = want.to_f64_vec().expect("real output").iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(scale > 0.0, "{name}: output {r} is all zeros; a useless fixture");
        let rel = diff.max_abs / scale;
        eprintln!(
            "{name}.{r}: {}  max|err|/max|y| = {rel:.3e}  max|err| = {:.3e}  max elementwise rel = {:.3e}",
            got.type_string(),
            diff.max_abs,
            diff.max_rel
        );
        assert!(
            rel <= TOL,
            "{name}: output {r} disagrees with PyTorch: max|err|/max|y| = {rel:e} > {TOL:e} (max|err| {:e} at {:?}; got {}, expected {})",
            diff.max_abs,
            archc_runtime::tensor::unravel(diff.worst, &want.shape),
            got.to_f64_vec().unwrap()[diff.worst],
            want.to_f64_vec().unwrap()[diff.worst],
        );
    }
    let unused: Vec<&String> = fixture.keys().collect();
    assert!(unused.is_empty(), "{name}: fixture tensors {unused:?} were not used (inputs/outputs the network lacks)");
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_fixture(stringify!($name));
            }
        )*
    };
}

fixtures!(
    linear,
    conv1d,
    conv2d,
    mha,
    lstm,
    gru,
    spectral_conv1d,
    spectral_conv1d_all_modes,
    spectral_conv2d,
    layer_norm,
    batch_norm2d,
    group_norm,
    pool2d,
    transformer_encoder_layer,
);

/// Every fixture program has a test above and its data file beside it.
#[test]
fn every_fixture_is_tested() {
    common::assert_fixture_list("tests/fixtures", FIXTURES, "tests/numeric.rs");
}
