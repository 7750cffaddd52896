//! Ahead-of-time artifacts: examples compiled to `.archx` (shared objects with dynamic
//! sizes), written, read back and run through the loader, match the interpreter at two
//! sizes; a train step runs from an artifact too.

#![cfg(feature = "mlir")]

mod common;

use archc::inputs::arg_shapes;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_mlir::aot::build::compile_function;
use archc_mlir::aot::{program_hash, AotTarget, Artifact, HostCpu};
use archc_mlir::exec::artifact::AotExecutor;
use archc_runtime::{Executor, Interpreter, Tensor};
use std::collections::HashMap;

fn forward(name: &str) -> Program {
    let out = common::check(&common::repo().join("examples").join(name), &Options::default());
    out.program.expect("example builds")
}

/// An artifact of `func` of `program` with every input size symbol asked to be dynamic.
fn artifact(program: &Program, func: &str) -> Artifact {
    let f = program.func(func).expect("func");
    let shapes = arg_shapes(f, &HashMap::new()).expect("shapes");
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    let mut syms: Vec<String> = f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
    syms.sort();
    syms.dedup();
    let cpu = HostCpu::host_default();
    let entry = compile_function(program, func, &inputs, &syms, &AotTarget::Cpu, &cpu).expect("compiles");
    Artifact {
        target: AotTarget::Cpu,
        cpu,
        program_hash: program_hash(program),
        main_source: "model.arch".into(),
        options: Vec::new(),
        sources: vec![("model.arch".into(), "network N { }".into())],
        funcs: vec![entry],
    }
}

#[test]
fn artifacts_round_trip_and_match_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("archc-aot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for name in ["mlp.arch", "transformer.arch", "cnn_mnist1d.arch", "fno1d.arch", "gru_classifier.arch"] {
        let program = forward(name);
        let art = artifact(&program, "main");
        let path = dir.join(format!("{name}.archx"));
        art.write(&path).expect("writes");
        let back = Artifact::read(&path).expect("reads");
        assert_eq!(back.funcs[0].sig, art.funcs[0].sig, "{name}: signature round trip");
        assert_eq!(back, art, "{name}: round trip");
        let mut exec = AotExecutor::new(&program, &back).expect("loads");
        exec.init_params(0).expect("params");
        let mut interp = Interpreter::new(&program);
        interp.init_params(0).expect("params");
        let dynamic: Vec<&str> = back.funcs[0].sig.dynamic.iter().map(|(s, ..)| s.as_str()).collect();
        assert!(dynamic.contains(&"B"), "{name}: batch not dynamic ({dynamic:?})");
        let second: HashMap<String, i64> =
            dynamic.iter().map(|s| (s.to_string(), if *s == "B" { 3 } else { 12 })).collect();
        for dims in [HashMap::new(), second] {
            let inputs = common::random_inputs_with(program.main(), &dims);
            let want = interp.run_func("main", &inputs, 7).expect("interpreter");
            let got = exec.run_func("main", &inputs, 7).unwrap_or_else(|e| panic!("{name} {dims:?}: {e}"));
            for (g, w) in got.iter().zip(&want) {
                let e = common::scaled_error(g, w);
                assert!(e < 1e-5, "{name} {dims:?}: scaled error {e:.3e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With every loop parallel (`CpuOptions::parallel_min_work` 1, `ARCHC_PAR_MIN=1`), an artifact calls the OpenMP entry
/// points (the variadic fork call through its slot) and still matches the interpreter.
#[test]
fn artifacts_run_parallel_loops() {
    let program = forward("fno1d.arch");
    let f = program.main();
    let dims = HashMap::from([("B".to_string(), 5)]);
    let shapes = arg_shapes(f, &dims).expect("shapes");
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    // Static sizes: the selection of parallel loops needs constant trip counts. Other
    // tests of this process compiling meanwhile compare results, which the choice of
    // parallel loops does not change.
    let every_loop = archc_mlir::jit::CpuOptions { parallel_min_work: Some(1), ..Default::default() };
    archc_mlir::jit::configure(every_loop);
    let entry = compile_function(&program, "main", &inputs, &[], &AotTarget::Cpu, &HostCpu::host_default());
    archc_mlir::jit::configure(archc_mlir::jit::CpuOptions::default());
    let mut art = artifact(&program, "main");
    art.funcs = vec![entry.expect("compiles")];
    let object = &art.funcs[0].object;
    assert!(object.windows(16).any(|w| w == b"__kmpc_fork_call"), "no parallel region in the object");
    let mut exec = AotExecutor::new(&program, &art).expect("loads");
    exec.init_params(0).expect("params");
    let mut interp = Interpreter::new(&program);
    interp.init_params(0).expect("params");
    let inputs = common::random_inputs_with(program.main(), &dims);
    let want = interp.run_func("main", &inputs, 7).expect("interpreter");
    let got = exec.run_func("main", &inputs, 7).expect("artifact runs");
    let e = common::scaled_error(&got[0], &want[0]);
    assert!(e < 1e-5, "scaled error {e:.3e}");
}

#[test]
fn artifacts_refuse_other_programs_and_shapes() {
    let program = forward("mlp.arch");
    let art = artifact(&program, "main");
    let other = forward("transformer.arch");
    let e = AotExecutor::new(&other, &art).err().expect("refused");
    assert_eq!(e, archc_mlir::Error::Artifact(archc_mlir::ArtifactError::OtherProgram));
    assert!(e.to_string().contains("different program") && !e.is_internal(), "{e}");
    let mut exec = AotExecutor::new(&program, &art).expect("loads");
    exec.init_params(0).expect("params");
    let f = program.main();
    let bad = vec![Tensor::zeros(f.args[0].1.dtype, &[2, 5])];
    let e = exec.run_func("main", &bad, 0).err().expect("refused").to_string();
    assert!(e.contains("artifact built for"), "{e}");
}

/// Runs archc in `dir`; stdout on success.
fn archc(dir: &std::path::Path, args: &[&str]) -> String {
    let data = std::env::var("ARCHC_DATA").unwrap_or_else(|_| common::repo().join("data").display().to_string());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(args)
        .current_dir(dir)
        .env("ARCHC_DATA", data)
        .output()
        .expect("archc runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "archc {args:?} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Runs archc in `dir`, which must fail as a user error (exit 1, not a signal); stderr.
fn archc_fails(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("archc runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "archc {args:?}: {:?}\n{err}", out.status);
    err
}

/// The number after `key` in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("no `{key}` in\n{text}")) + key.len()..];
    rest.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no number after `{key}`"))
}

/// The command line end to end: an artifact of the digits train step trains like the
/// JIT does and its checkpoint evaluates; a forward artifact runs at another batch size.
#[test]
fn cli_builds_trains_evaluates_and_runs_artifacts() {
    let dir = std::env::temp_dir().join(format!("archc-aot-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ex = |name: &str| common::repo().join("examples").join(name).display().to_string();
    archc(&dir, &["build", &ex("train_digits.arch"), "--train", "--target", "cpu", "-o", "digits.archx"]);
    let aot = archc(&dir, &["train", "digits.archx", "--epochs", "3", "--out", "aot", "--quiet"]);
    let jit = archc(&dir, &["train", &ex("train_digits.arch"), "--epochs", "3", "--out", "jit", "--quiet"]);
    let (a, j) = (number_after(&aot, "test loss"), number_after(&jit, "test loss"));
    assert!((a - j).abs() < 1e-3 * j.abs().max(1.0), "test loss: artifact {a}, JIT {j}");
    let test_line = aot.lines().find(|l| l.starts_with("test loss")).expect("a test line");
    let acc = number_after(test_line, "accuracy");
    assert!(acc > 0.75, "test accuracy after 3 epochs: {acc}\n{aot}");
    let eval = archc(&dir, &["eval", "digits.archx", "--checkpoint", "aot/checkpoint.safetensors"]);
    assert!((number_after(&eval, "loss:") - a).abs() < 1e-4, "eval of the checkpoint:\n{eval}");
    archc(&dir, &["build", &ex("mlp.arch"), "--target", "cpu", "-o", "mlp.archx"]);
    let ran = archc(&dir, &["run", "mlp.archx", "--dim", "B=5"]);
    let want = archc(&dir, &["run", &ex("mlp.arch"), "--dim", "B=5", "--backend", "interp"]);
    assert!(ran.contains("f32[5, 10]"), "{ran}");
    for key in ["mean", "std"] {
        let (g, w) = (number_after(&ran, key), number_after(&want, key));
        assert!((g - w).abs() < 1e-5, "{key}: artifact {g}, interpreter {w}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// CUDA artifacts build without a GPU or CUDA toolkit: the kernels' PTX is inside the
/// shared object, the CUDA runtime is reached through slots, the batch is dynamic; the
/// manifest round-trips. Loading one needs a device: without one the error says so.
#[test]
fn cuda_artifacts_build_without_a_gpu() {
    let program = forward("mlp.arch");
    let f = program.main();
    let shapes = arg_shapes(f, &HashMap::new()).expect("shapes");
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    let target = AotTarget::Cuda("sm_80".into());
    let cpu = HostCpu::host_default();
    let entry = compile_function(&program, "main", &inputs, &["B".to_string()], &target, &cpu).expect("compiles");
    let contains = |needle: &str| entry.object.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(".target sm_80") && contains(".entry"), "no PTX kernels in the object");
    assert!(contains("archc_slot.mgpuLaunchKernel") && contains("archc_slot.mgpuModuleLoad"), "no CUDA slots");
    assert_eq!(entry.sig.dynamic.len(), 1, "batch not dynamic");
    assert_eq!(entry.sig.param_globals.len(), entry.sig.params.len());
    let art = Artifact {
        target,
        cpu,
        program_hash: program_hash(&program),
        main_source: "model.arch".into(),
        options: Vec::new(),
        sources: vec![("model.arch".into(), "network N { }".into())],
        funcs: vec![entry],
    };
    let path = std::env::temp_dir().join(format!("archc-aot-cuda-{}.archx", std::process::id()));
    art.write(&path).expect("writes");
    let back = Artifact::read(&path).expect("reads");
    let _ = std::fs::remove_file(&path);
    assert_eq!(back, art, "round trip");
    if archc_cuda::cuda().is_err() {
        let e = AotExecutor::new(&program, &back).err().expect("no device");
        assert!(matches!(e, archc_mlir::Error::Gpu(_)), "{e}");
        assert!(e.to_string().contains("CUDA"), "{e}");
        eprintln!("skipped running the CUDA artifact: no CUDA device");
    }
}

/// `--cpu` picks the CPU of the host code and the manifest records it: an x86-64-v2
/// artifact runs like the JIT; an x86-64-v4 one, on a CPU without AVX-512, is refused
/// with the missing features (not killed by an illegal instruction); unknown names are
/// refused up front.
#[cfg(target_arch = "x86_64")]
#[test]
fn cli_builds_for_the_cpu_asked_for() {
    let dir = std::env::temp_dir().join(format!("archc-aot-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mlp = common::repo().join("examples/mlp.arch").display().to_string();
    archc(&dir, &["build", &mlp, "--target", "cpu", "--cpu", "x86-64-v2", "-o", "v2.archx"]);
    let art = Artifact::read(&dir.join("v2.archx")).expect("reads");
    assert_eq!(art.cpu, HostCpu::X86Level(2));
    let ran = archc(&dir, &["run", "v2.archx", "--dim", "B=3"]);
    let want = archc(&dir, &["run", &mlp, "--dim", "B=3", "--backend", "mlir-cpu"]);
    for key in ["mean", "std"] {
        let (g, w) = (number_after(&ran, key), number_after(&want, key));
        assert!((g - w).abs() < 1e-5, "{key}: artifact {g}, JIT {w}");
    }
    archc(&dir, &["build", &mlp, "--target", "cpu", "--cpu", "x86-64-v4", "-o", "v4.archx"]);
    if std::arch::is_x86_feature_detected!("avx512f") {
        archc(&dir, &["run", "v4.archx"]);
    } else {
        let e = archc_fails(&dir, &["run", "v4.archx"]);
        assert!(e.contains("this artifact was built for x86-64-v4 (AVX-512); this CPU lacks avx512f"), "{e}");
    }
    let e = archc_fails(&dir, &["build", &mlp, "--target", "cpu", "--cpu", "skylake", "-o", "bad.archx"]);
    assert!(
        e.contains("unknown CPU `skylake` for --cpu: expected x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or native"),
        "{e}"
    );
    assert!(!dir.join("bad.archx").exists(), "an artifact was written for an unknown CPU");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Backend errors keep whose fault they are up to the exit code: a size the emitter
/// cannot leave dynamic is the user's (exit 1, `error: ...`); a tool that fails on what
/// archc built (here the C compiler, `CC=false`) is archc's own by the backend's
/// classification (exit 2, `internal error: ...`), and no artifact is written.
#[test]
fn cli_exit_codes_follow_the_backend_error_kind() {
    let dir = std::env::temp_dir().join(format!("archc-aot-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mlp = common::repo().join("examples/mlp.arch").display().to_string();
    let e = archc_fails(&dir, &["build", &mlp, "--emit", "mlir", "--dynamic", "Q"]);
    assert!(e.contains("error: @main: size `Q` is not the size of an input axis"), "{e}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(["build", &mlp, "--target", "cpu", "-o", "m.archx"])
        .current_dir(&dir)
        .env("CC", "false")
        .output()
        .expect("archc runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{:?}\n{err}", out.status);
    assert!(err.starts_with("internal error: cannot compile @main: false failed:"), "{err}");
    assert!(!dir.join("m.archx").exists(), "an artifact was written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An artifact fixes what runs it: `--backend` or `--device` contradicting its target
/// is refused with the target named; the matching backend is accepted.
#[test]
fn cli_refuses_backends_that_contradict_the_artifact() {
    let dir = std::env::temp_dir().join(format!("archc-aot-backend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mlp = common::repo().join("examples/mlp.arch").display().to_string();
    archc(&dir, &["build", &mlp, "--target", "cpu", "-o", "cpu.archx"]);
    let ran = archc(&dir, &["run", "cpu.archx", "--backend", "mlir-cpu"]);
    assert!(ran.contains("f32[2, 10]"), "{ran}");
    let built = format!(
        "contradicts the artifact, which was built with `--target cpu --cpu {}`",
        HostCpu::host_default().llc_name()
    );
    for backend in ["mlir-gpu", "interp"] {
        let e = archc_fails(&dir, &["run", "cpu.archx", "--backend", backend]);
        assert!(e.contains(&format!("--backend {backend} {built}: ")), "{e}");
        assert!(e.contains("runs with --backend mlir-cpu only"), "{e}");
    }
    let e = archc_fails(&dir, &["eval", "cpu.archx", "--backend", "interp"]);
    assert!(e.contains("--backend interp contradicts the artifact") && e.contains("for the interpreter"), "{e}");
    let e = archc_fails(&dir, &["run", "cpu.archx", "--device", "cuda:0"]);
    assert!(e.contains(&format!("--device cuda:0 {built} and runs on the CPU")), "{e}");
    archc(&dir, &["build", &mlp, "--target", "cuda", "-o", "cuda.archx"]);
    let e = archc_fails(&dir, &["run", "cuda.archx", "--backend", "mlir-cpu"]);
    assert!(
        e.contains("--backend mlir-cpu contradicts the artifact, which was built with `--target cuda --gpu-arch sm_80"),
        "{e}"
    );
    assert!(e.contains("runs with --backend mlir-gpu only"), "{e}");
    // Sources too: `--device` with a backend that is not the GPU's is refused.
    for backend in [None, Some("interp"), Some("mlir-cpu")] {
        let mut args = vec!["run", mlp.as_str(), "--device", "cuda:1"];
        args.extend(backend.iter().flat_map(|b| ["--backend", *b]));
        let e = archc_fails(&dir, &args);
        assert!(
            e.contains("--device cuda:1 selects a GPU, but the backend is") && e.contains("add --backend mlir-gpu"),
            "{e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
