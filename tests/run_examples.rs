//! Every example builds and runs in the reference interpreter on random inputs, and every
//! output has its declared shape (symbolic dims: `B = 2`, others 16).

mod common;

use archc::inputs::default_dim;
use archc_compiler::sema::Options;
use archc_runtime::Interpreter;
use std::collections::HashMap;

#[test]
fn every_example_runs_with_declared_output_shapes() {
    for path in common::arch_files("examples") {
        let out = common::check(&path, &Options::default());
        assert!(out.diagnostics.is_empty(), "{}:\n{}", path.display(), common::rendered(&out));
        let program = out.program.expect("program");
        let main = program.main();
        let inputs = common::random_inputs(main);
        let mut interp = Interpreter::new(&program);
        interp.init_params(0).expect("params initialise");
        let outputs = interp.run("main", &inputs).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut env = HashMap::new();
        for (_, t) in &main.args {
            for d in &t.shape {
                for s in d.symbols() {
                    let v = default_dim(&s);
                    env.insert(s, v);
                }
            }
        }
        for (ty, got) in main.result_types().iter().zip(&outputs) {
            let want: Vec<usize> = ty.shape.iter().map(|d| d.eval(&env).expect("sized") as usize).collect();
            assert_eq!(got.shape(), want.as_slice(), "{}: output shape", path.display());
            assert_eq!(got.dtype(), ty.dtype, "{}: output dtype", path.display());
            let finite = got.to_f64_vec().is_none_or(|v| v.iter().all(|x| x.is_finite()));
            assert!(finite, "{}: output has NaN or Inf", path.display());
        }
    }
}
