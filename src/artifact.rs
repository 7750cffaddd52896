//! `.archx` artifacts from the command line: `archc build FILE --target cpu -o m.archx`
//! compiles the entry (or, with `--train`, the train and eval steps) ahead of time, its
//! host code for `--cpu` (default `x86-64-v3`); `archc run|train|eval m.archx` rebuilds
//! the program from the sources inside with the front end alone and runs the compiled
//! code (no LLVM needed). An artifact fixes what runs it: a `--backend` or `--device`
//! that contradicts its target is refused ([`check_backend`]). An artifact is native
//! code: [`open`] verifies it (names, sizes, digests; see `archc_mlir::aot`) and writes
//! its sources to a private folder only, but only artifacts one trusts should be run.

use crate::backend::Backend;
use crate::cli::Fail;
use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use archc_mlir::aot::{AotTarget, Artifact, Extracted, HostCpu};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Whether `path` names an artifact (by its extension).
pub fn is_artifact(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "archx")
}

/// The `.arch` sources of a check, by path relative to the main file's folder (the
/// standard library is built in and left out).
pub fn user_sources(main: &Path, sources: &SourceMap) -> Vec<(String, String)> {
    let dir = main.parent().map(|d| d.display().to_string()).unwrap_or_default();
    let mut out = Vec::new();
    for (_, f) in sources.files() {
        if f.name.starts_with("<stdlib>") {
            continue;
        }
        let rel = f.name.strip_prefix(&dir).map(|r| r.trim_start_matches('/')).unwrap_or(&f.name);
        out.push((rel.to_string(), f.text.clone()));
    }
    out.sort();
    out
}

/// What an artifact records besides its code.
pub struct Recorded {
    /// The name of the entry file among `sources`.
    pub main_source: String,
    /// The user's sources by path relative to the entry file's folder.
    pub sources: Vec<(String, String)>,
    /// The build options the runner repeats (`entry`, `args`, `train`, ...).
    pub options: Vec<(String, String)>,
}

/// Compiles `funcs` of `program` (those it has) into an artifact for `target`, its host
/// code for `cpu`. `dims` sizes the symbols the lowering cannot leave dynamic. A
/// backend's error says whose fault it is ([`Fail::backend`]).
#[cfg(feature = "mlir")]
pub fn build(
    target: AotTarget,
    cpu: HostCpu,
    program: &Program,
    funcs: &[&str],
    dims: &HashMap<String, i64>,
    recorded: Recorded,
) -> Result<Artifact, Fail> {
    use crate::inputs::arg_shapes;
    use archc_mlir::aot::{program_hash, FuncEntry};
    let mut entries: Vec<FuncEntry> = Vec::new();
    for name in funcs {
        let Some(f) = program.func(name) else { continue };
        let shapes = arg_shapes(f, dims).map_err(Fail::user)?;
        let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
        let mut syms: Vec<String> = f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
        syms.sort();
        syms.dedup();
        syms.retain(|s| !dims.contains_key(s));
        let entry = archc_mlir::aot::build::compile_function(program, name, &inputs, &syms, &target, &cpu)
            .map_err(|e| Fail::backend_in(&format!("cannot compile @{name}"), e))?;
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(Fail::user(format!("the program has none of the functions {}", funcs.join(", "))));
    }
    Ok(Artifact {
        target,
        cpu,
        program_hash: program_hash(program),
        main_source: recorded.main_source,
        options: recorded.options,
        sources: recorded.sources,
        funcs: entries,
    })
}

#[cfg(not(feature = "mlir"))]
pub fn build(
    _: AotTarget,
    _: HostCpu,
    _: &Program,
    _: &[&str],
    _: &HashMap<String, i64>,
    _: Recorded,
) -> Result<Artifact, Fail> {
    Err(Fail::user("this archc was built without the MLIR backend (cargo feature `mlir`), which compiles artifacts"))
}

/// An artifact opened for running: verified, its sources written into a private fresh
/// folder, which is removed when this is dropped.
pub struct Opened {
    pub artifact: Artifact,
    /// The main source's path in the folder.
    pub main: PathBuf,
    sources: Extracted,
}

impl Opened {
    /// The folder holding the sources.
    pub fn dir(&self) -> &Path {
        self.sources.dir()
    }
}

/// Reads an artifact (every member checked against the manifest's digests before
/// anything is written) and writes its sources into a private fresh folder.
pub fn open(path: &Path) -> Result<Opened, String> {
    let artifact = Artifact::read(path)?;
    let sources = artifact.extract_sources()?;
    Ok(Opened { main: sources.main.clone(), artifact, sources })
}

/// `--target cpu` or `--target cuda sm_80`, with the CPU of the host code.
fn target_text(art: &Artifact) -> String {
    match &art.target {
        AotTarget::Cpu => format!("--target cpu --cpu {}", art.cpu.llc_name()),
        AotTarget::Cuda(arch) => format!("--target cuda --gpu-arch {arch} --cpu {}", art.cpu.llc_name()),
    }
}

/// Refuses a `--backend` or `--device` that contradicts what `art` was built for: its
/// compiled code runs on the CPU (`mlir-cpu`, no device) or the GPU (`mlir-gpu`,
/// `--device` picks it), never in the interpreter.
pub fn check_backend(art: &Artifact, backend: Option<Backend>, device: Option<&str>) -> Result<(), String> {
    let runs_on = match art.target {
        AotTarget::Cpu => Backend::MlirCpu,
        AotTarget::Cuda(_) => Backend::MlirGpu,
    };
    let built = format!("contradicts the artifact, which was built with `{}`", target_text(art));
    if let Some(b) = backend.filter(|b| *b != runs_on) {
        return Err(format!(
            "--backend {} {built}: its compiled code runs with --backend {} only{}",
            backend_name(b),
            backend_name(runs_on),
            if b == Backend::Interp { " (run the .arch source for the interpreter)" } else { "" }
        ));
    }
    match (device, &art.target) {
        (Some(d), AotTarget::Cpu) => Err(format!("--device {d} {built} and runs on the CPU")),
        _ => Ok(()),
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Interp => "interp",
        Backend::MlirCpu => "mlir-cpu",
        Backend::MlirGpu => "mlir-gpu",
        Backend::Cranelift => "cranelift",
        Backend::Auto => "auto",
    }
}

/// A description of an artifact: the target options it was built with (e.g. `--target
/// cpu --cpu x86-64-v3`), then one line per function, e.g.
/// `main(f32[B, 64]) -> (f32[B, 10]) (dynamic B), 12 KiB`.
pub fn describe(art: &Artifact) -> String {
    let ty = |(dt, dims): &archc_mlir::emit::Ty| {
        archc_compiler::tir::TensorType { dtype: *dt, shape: dims.clone() }.to_string()
    };
    let funcs: Vec<String> = art
        .funcs
        .iter()
        .map(|f| {
            let ins: Vec<String> = f.sig.inputs.iter().map(ty).collect();
            let outs: Vec<String> = f.sig.outputs.iter().map(ty).collect();
            let dynamic: Vec<&str> = f.sig.dynamic.iter().map(|(s, ..)| s.as_str()).collect();
            let dynamic = if dynamic.is_empty() { String::new() } else { format!(" (dynamic {})", dynamic.join(", ")) };
            format!("{}({}) -> ({}){dynamic}, {} KiB", f.name, ins.join(", "), outs.join(", "), f.object.len() / 1024)
        })
        .collect();
    format!("built with `{}`\n{}", target_text(art), funcs.join("\n"))
}
