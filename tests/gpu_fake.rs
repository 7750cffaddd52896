//! The host side of the GPU backend without a GPU: archc runs against a stand-in for the
//! CUDA driver and cuBLAS (`runtime/cuda/fake`, built here), whose kernels do nothing but
//! whose device memory faults on any host access. What these tests check is the
//! orchestration, not numbers (the GPU tests in `tests/mlir.rs` check those on a GPU):
//! each run-time memory runs the digits train step with the expected launches, waits and
//! graph replays and never touches device memory from the host; a CUDA artifact loads and
//! trains; a product that would need the host falls back to managed memory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A folder holding the stand-in as `libcuda.so.1`, and `libcublas.so` linking to it (one
/// library, one state), built once per test process.
fn fake_cuda() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let repo = common::repo();
        let target = repo.join("target/fake-cuda");
        let built = Command::new(env!("CARGO"))
            .args(["build", "--release", "--offline", "--quiet", "--manifest-path"])
            .arg(repo.join("runtime/cuda/fake/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the CUDA stand-in builds");
        let dir = std::env::temp_dir().join(format!("archc-fake-cuda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::copy(target.join("release/libfakecuda.so"), dir.join("libcuda.so.1")).expect("copy");
        let cublas = dir.join("libcublas.so");
        let _ = std::fs::remove_file(&cublas);
        std::os::unix::fs::symlink("libcuda.so.1", &cublas).expect("link");
        dir
    })
}

/// `archc ARGS` with the stand-in on the loader's path and `env` set; (exit code, stderr).
fn archc(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = archc_output(args, env);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// [`archc`]'s whole output.
fn archc_output(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(args)
        .current_dir(common::repo())
        .env("LD_LIBRARY_PATH", fake_cuda())
        .env("ARCHC_GPU_PROFILE", "1")
        .env_remove("ARCHC_GPU_MEMORY")
        .env_remove("ARCHC_GPU_GRAPH")
        .envs(env.iter().copied())
        .output()
        .expect("archc runs")
}

/// One runner's profile: its memory, and per run counts of the first run and of all later
/// runs: (runs, launches, waits, driver allocations, graph replays), and the bytes all
/// later runs uploaded and downloaded.
#[derive(Debug, PartialEq)]
struct Profile {
    memory: String,
    first: [u64; 4],
    later: [u64; 5],
    moved: [u64; 2],
}

/// The profiles `ARCHC_GPU_PROFILE=1` printed, in order.
fn profiles(stderr: &str) -> Vec<Profile> {
    let mut out = Vec::new();
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let Some(memory) = line.strip_prefix("archc: gpu profile (").and_then(|m| m.split_once(") of ")).map(|m| m.0)
        else {
            continue;
        };
        let (first, later) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
        let count = |text: &str, what: &str| -> u64 {
            let at = text.find(what).unwrap_or_else(|| panic!("no `{what}` in `{text}`"));
            text[..at].split_whitespace().last().and_then(|n| n.parse().ok()).expect("a count")
        };
        let work = |text: &str| {
            ["launches", "waits", "driver allocations", "graph replays"].map(|what| count(text, &format!(" {what}")))
        };
        let [l, w, a, g] = work(later);
        let runs = later.trim().split_whitespace().next().and_then(|n| n.parse().ok()).expect("runs");
        let moved = ["bytes uploaded", "bytes downloaded"].map(|what| count(later, &format!(" {what}")));
        out.push(Profile { memory: memory.to_string(), first: work(first), later: [runs, l, w, a, g], moved });
    }
    out
}

const DIGITS: &str = "examples/train_digits.arch";
const STEPS: u64 = 6;

/// The train step's profile in one memory (`env`), after `STEPS` timed steps.
fn train_step_profile(env: &[(&str, &str)]) -> Profile {
    let steps = STEPS.to_string();
    let (code, stderr) = archc(&["train", DIGITS, "--backend", "mlir-gpu", "--time-steps", &steps], env);
    assert_eq!(code, Some(0), "{env:?}: {stderr}");
    let mut found = profiles(&stderr);
    assert_eq!(found.len(), 1, "one function ran: {stderr}");
    found.remove(0)
}

/// Each kernel of the digits train step is launched once per step (none from a host loop:
/// a bias gradient's sum over the batch once launched a kernel per row) and waited for.
#[test]
fn managed_memory_launches_each_kernel_once_and_waits_after_it() {
    // At the batch the train step runs with (split reductions depend on it).
    let out = archc_output(&["build", DIGITS, "--train", "--emit", "ptx", "--dim", "B=64"], &[]);
    let kernels = String::from_utf8_lossy(&out.stdout).matches(".entry ").count() as u64;
    assert!(kernels > 20, "the train step's kernels");
    let p = train_step_profile(&[("ARCHC_GPU_MEMORY", "managed")]);
    assert_eq!(p.memory, "Managed");
    let [runs, launches, waits, _, replays] = p.later;
    assert_eq!((runs, launches, replays), (STEPS, STEPS * kernels, 0), "{p:?}");
    assert!(waits >= launches, "a wait per launch at least: {p:?}");
}

#[test]
fn device_memory_waits_once_per_step_and_reuses_its_blocks() {
    let p = train_step_profile(&[("ARCHC_GPU_GRAPH", "0")]);
    assert_eq!(p.memory, "Device { graphs: false }");
    let [runs, launches, waits, allocations, replays] = p.later;
    assert_eq!((runs, waits, allocations, replays), (STEPS, STEPS, 0, 0), "{p:?}");
    assert_eq!(launches, STEPS * p.first[0], "every step launches what the first did: {p:?}");
}

/// Device memory with graphs is the default.
#[test]
fn graphs_capture_the_step_once_and_replay_it() {
    let p = train_step_profile(&[]);
    assert_eq!(p.memory, "Device { graphs: true }");
    let [runs, launches, waits, allocations, replays] = p.later;
    assert_eq!((runs, waits, allocations, replays), (STEPS, STEPS, 0, STEPS), "{p:?}");
    assert_eq!(launches, p.first[0], "the launches are captured once: {p:?}");
}

/// Parameters and optimizer state stay in device memory between steps: a step uploads its
/// batch and learning rate and downloads its loss and metric, nothing else.
#[test]
fn a_step_moves_only_its_batch_and_its_loss() {
    let p = train_step_profile(&[]);
    // x f32[64, 64], y i64[64] and lr, each at a 256-byte aligned offset.
    let batch = 64 * 64 * 4 + 64 * 8 + 256;
    // The loss and the metric, likewise.
    let loss = 256 + 4;
    assert_eq!(p.moved, [STEPS * batch, STEPS * loss], "{p:?}");
    // The parameters (and Adam's moments) alone are larger than that.
    let params = (64 * 128 + 128 + 128 * 10 + 10) * 4;
    assert!(params > batch, "{p:?}");
}

/// The device state's finiteness check, run in a child process of this test with the
/// stand-in driver loaded (its cuBLAS products compute on the host): NaN and infinity
/// are found wherever they are, in f32 and f64, beyond the first chunk too.
#[test]
fn device_state_finds_non_finite_values() {
    if std::env::var_os("ARCHC_FAKE_CHILD").is_none() {
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "device_state_finds_non_finite_values", "--nocapture", "--test-threads", "1"])
            .env("LD_LIBRARY_PATH", fake_cuda())
            .env("ARCHC_FAKE_CHILD", "1")
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    use archc_mlir::exec::gpu::state::{DeviceState, CHUNK};
    use archc_runtime::Tensor;
    let mut st = DeviceState::default();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut long = vec![1.5f32; CHUNK + 7];
    st.put("a", &Tensor::from_f32(&[3], vec![1.0, -2.0, 3.0])).unwrap();
    st.put("long", &Tensor::from_f32(&[CHUNK + 7], long.clone())).unwrap();
    st.put("i", &Tensor::from_i64(&[2], vec![1, 2])).unwrap();
    st.put("d", &Tensor::from_f64(&[2], vec![0.5, f64::INFINITY])).unwrap();
    assert_eq!(st.non_finite(&names(&["a", "long", "i"])).unwrap(), None);
    assert_eq!(st.non_finite(&names(&["a", "d", "long"])).unwrap().as_deref(), Some("d"));
    for at in [3, CHUNK + 5] {
        long[at] = f32::NAN;
        st.put("long", &Tensor::from_f32(&[CHUNK + 7], long.clone())).unwrap();
        assert_eq!(st.non_finite(&names(&["a", "long"])).unwrap().as_deref(), Some("long"), "NaN at {at}");
        long[at] = 1.5;
    }
    long[CHUNK + 6] = f32::NEG_INFINITY;
    st.put("long", &Tensor::from_f32(&[CHUNK + 7], long.clone())).unwrap();
    assert_eq!(st.non_finite(&names(&["long"])).unwrap().as_deref(), Some("long"));
    // Values come back as they went in; the generation counts (re)allocations only.
    let generation = st.generation();
    st.put("a", &Tensor::from_f32(&[3], vec![4.0, 5.0, 6.0])).unwrap();
    assert_eq!(st.generation(), generation);
    assert_eq!(st.read("a").unwrap().to_f64_vec().unwrap(), vec![4.0, 5.0, 6.0]);
    assert_eq!(st.read("long").unwrap().as_f32().unwrap(), long.as_slice());
    let e = st.non_finite(&names(&["nothing"])).unwrap_err();
    assert_eq!(e, archc_mlir::Error::State("resident state nothing: no such state".into()));
    assert!(!e.is_internal(), "{e}");
}

/// `ARCHC_GPU_PROFILE=kernels` times every launch and product of a step on its own in
/// device memory, and a graph replay as one piece (no event recorded inside a capture:
/// the stand-in refuses those).
#[test]
fn kernel_profiles_time_each_piece_of_work() {
    let steps = STEPS.to_string();
    let args = ["train", DIGITS, "--backend", "mlir-gpu", "--time-steps", &steps];
    let pieces = |stderr: &str| -> (u64, Vec<String>) {
        assert!(!stderr.contains("kernel times lost"), "{stderr}");
        let (_, rest) = stderr.split_once("GPU time per later run: ").unwrap_or_else(|| panic!("{stderr}"));
        let n = rest.split(" ms in ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok());
        let listed = rest.lines().skip(1).take_while(|l| l.starts_with("    ")).map(str::to_string).collect();
        (n.expect("a count of pieces"), listed)
    };
    let (code, stderr) = archc(&args, &[("ARCHC_GPU_GRAPH", "0"), ("ARCHC_GPU_PROFILE", "kernels")]);
    assert_eq!(code, Some(0), "{stderr}");
    let p = &profiles(&stderr)[0];
    let per_step = (p.later[1] / p.later[0] + 5) as usize; // launches and the five products per step
    let (n, listed) = pieces(&stderr);
    assert_eq!(n as usize, per_step, "{stderr}");
    assert_eq!(listed.len(), per_step.min(20), "{stderr}");
    assert!(listed.iter().any(|l| l.contains("cublasSgemm_v2 m=128 n=64 k=64")), "{stderr}");
    // Launches are numbered per run: every number listed is below one run's launch count
    // (which launches are among the 20 longest depends on timing).
    let launches = (p.later[1] / p.later[0]) as usize;
    let numbers: Vec<usize> =
        listed.iter().filter_map(|l| l.split("launch ").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
    assert!(!numbers.is_empty() && numbers.iter().all(|&n| n < launches), "launches are numbered per run: {stderr}");
    let (code, stderr) = archc(&args, &[("ARCHC_GPU_GRAPH", "1"), ("ARCHC_GPU_PROFILE", "kernels")]);
    assert_eq!(code, Some(0), "{stderr}");
    let (n, listed) = pieces(&stderr);
    assert_eq!((n, listed.len()), (1, 1), "{stderr}");
    assert!(listed[0].ends_with("x1   graph replay"), "{stderr}");
}

#[test]
fn a_product_that_needs_the_host_falls_back_to_managed_memory() {
    let env = [("ARCHC_GPU_GRAPH", "0"), ("ARCHC_GPU_HOST_GEMM", "1")];
    let (code, stderr) = archc(&["train", DIGITS, "--backend", "mlir-gpu", "--time-steps", "3"], &env);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("needs host-accessible memory; using managed memory for this function from now on"),
        "{stderr}"
    );
    assert_eq!(profiles(&stderr)[0].memory, "Managed", "{stderr}");
}

#[test]
fn cuda_artifacts_load_and_train_with_graphs() {
    let dir = std::env::temp_dir().join(format!("archc-fake-cuda-aot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let art = dir.join("digits.archx").display().to_string();
    let (code, stderr) = archc(&["build", DIGITS, "--train", "--target", "cuda", "-o", &art], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = dir.join("run").display().to_string();
    let data = common::repo().join("data").display().to_string();
    let data = std::env::var("ARCHC_DATA").unwrap_or(data);
    let env = [("ARCHC_GPU_GRAPH", "1"), ("ARCHC_DATA", data.as_str())];
    let (code, stderr) = archc(&["train", &art, "--epochs", "1", "--quiet", "--out", &out], &env);
    assert_eq!(code, Some(0), "{stderr}");
    let found = profiles(&stderr);
    assert_eq!(found.len(), 2, "train and eval steps: {stderr}");
    assert!(found.iter().all(|p| p.memory == "Device { graphs: true }" && p.later[4] > 0), "{found:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every example's forward (`run`, three repeats) and every training example's train step
/// (`--time-steps 3`) with graphs on: none touches device memory from the host (the
/// stand-in would crash), and each either runs in device memory with its graph replayed
/// or, where host code touches buffers (random draws, host loops), in managed memory.
#[test]
fn every_example_and_train_step_runs_with_graphs() {
    let mut failures = Vec::new();
    let mut devices = 0;
    for path in common::arch_files("examples") {
        let file = path.display().to_string();
        let forward = ["run", file.as_str(), "--backend", "mlir-gpu", "--repeat", "3"];
        let train = ["train", file.as_str(), "--backend", "mlir-gpu", "--time-steps", "3"];
        let is_training = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("train_"));
        let runs: &[&[&str]] = if is_training { &[&forward, &train] } else { &[&forward] };
        for args in runs {
            let (code, stderr) = archc(args, &[("ARCHC_GPU_GRAPH", "1")]);
            let found = profiles(&stderr);
            let ok = code == Some(0)
                && !found.is_empty()
                && found.iter().all(|p| match p.memory.as_str() {
                    "Device { graphs: true }" => p.later[4] > 0,
                    "Managed" => true,
                    _ => false,
                });
            devices += found.iter().filter(|p| p.memory != "Managed").count();
            if !ok {
                failures.push(format!("archc {}: {code:?}\n{stderr}", args.join(" ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(devices >= 20, "most run in device memory: {devices}");
}

/// `archc devices` names the device, its architecture and memory, and the cuBLAS found.
#[test]
fn devices_lists_the_gpu_and_cublas() {
    let out = archc_output(&["devices"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().next().is_some_and(|l| l.starts_with("cpu: ") && l.ends_with(" cores")), "{text}");
    assert!(text.contains("cuda: driver 13.0, device 0: archc fake GPU (sm_90, 1.0 GiB)"), "{text}");
    assert!(text.contains("cublas: cuBLAS 130000 (libcublas.so)"), "{text}");
}

/// PTX the driver rejects (the stand-in rejects every module while
/// `ARCHC_FAKE_CUDA_REJECT_PTX` is set) is a one-line internal error naming the JIT log
/// (archc emitted that PTX: exit 2), in either memory, never a crash.
#[test]
fn rejected_ptx_is_a_clear_error_in_either_memory() {
    for memory in ["device", "managed"] {
        let env = [("ARCHC_FAKE_CUDA_REJECT_PTX", "1"), ("ARCHC_GPU_MEMORY", memory)];
        let (code, stderr) = archc(&["run", "examples/mlp.arch", "--backend", "mlir-gpu"], &env);
        assert_eq!(code, Some(2), "{memory}: {stderr}");
        assert!(stderr.contains("internal error: @main: CUDA error"), "{memory}: {stderr}");
        assert!(stderr.contains("cuModuleLoadDataEx; JIT log: ptxas fatal"), "{memory}: {stderr}");
    }
}
