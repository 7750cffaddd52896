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
/// runs: (runs, launches, waits, driver allocations, graph replays).
#[derive(Debug, PartialEq)]
struct Profile {
    memory: String,
    first: [u64; 4],
    later: [u64; 5],
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
        out.push(Profile { memory: memory.to_string(), first: work(first), later: [runs, l, w, a, g] });
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
/// `ARCHC_FAKE_CUDA_REJECT_PTX` is set) is a one-line error naming the JIT log and a
/// non-zero exit, in either memory, never a crash.
#[test]
fn rejected_ptx_is_a_clear_error_in_either_memory() {
    for memory in ["device", "managed"] {
        let env = [("ARCHC_FAKE_CUDA_REJECT_PTX", "1"), ("ARCHC_GPU_MEMORY", memory)];
        let (code, stderr) = archc(&["run", "examples/mlp.arch", "--backend", "mlir-gpu"], &env);
        assert_eq!(code, Some(1), "{memory}: {stderr}");
        assert!(stderr.contains("cuModuleLoadDataEx; JIT log: ptxas fatal"), "{memory}: {stderr}");
    }
}
