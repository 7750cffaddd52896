//! `.archx` artifacts from the command line: `archc build FILE --target cpu -o m.archx`
//! compiles the entry (or, with `--train`, the train and eval steps) ahead of time;
//! `archc run|train|eval m.archx` rebuilds the program from the sources inside with the
//! front end alone and runs the compiled code (no LLVM needed).

use archc_compiler::tir::Program;
use archc_grammar::span::SourceMap;
use archc_mlir::aot::{AotTarget, Artifact};
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

/// Compiles `funcs` of `program` (those it has) into an artifact. `dims` sizes the
/// symbols the lowering cannot leave dynamic.
#[cfg(feature = "mlir")]
pub fn build(
    target: AotTarget,
    program: &Program,
    funcs: &[&str],
    dims: &HashMap<String, i64>,
    main_source: &str,
    sources: Vec<(String, String)>,
    options: Vec<(String, String)>,
) -> Result<Artifact, String> {
    use crate::inputs::arg_shapes;
    use archc_mlir::aot::{program_hash, FuncEntry};
    let mut entries: Vec<FuncEntry> = Vec::new();
    for name in funcs {
        let Some(f) = program.func(name) else { continue };
        let shapes = arg_shapes(f, dims)?;
        let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
        let mut syms: Vec<String> = f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
        syms.sort();
        syms.dedup();
        syms.retain(|s| !dims.contains_key(s));
        let entry = archc_mlir::aot::build::compile_function(program, name, &inputs, &syms, &target)
            .map_err(|e| format!("cannot compile @{name}: {e}"))?;
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(format!("the program has none of the functions {}", funcs.join(", ")));
    }
    Ok(Artifact {
        target,
        program_hash: program_hash(program),
        main_source: main_source.to_string(),
        options,
        sources,
        funcs: entries,
    })
}

#[cfg(not(feature = "mlir"))]
pub fn build(
    _: AotTarget,
    _: &Program,
    _: &[&str],
    _: &HashMap<String, i64>,
    _: &str,
    _: Vec<(String, String)>,
    _: Vec<(String, String)>,
) -> Result<Artifact, String> {
    Err("this archc was built without the MLIR backend (cargo feature `mlir`), which compiles artifacts".into())
}

/// An artifact opened for running: its sources written into a fresh folder, which is
/// removed when this is dropped.
pub struct Opened {
    pub artifact: Artifact,
    /// The main source's path in the folder.
    pub main: PathBuf,
    dir: PathBuf,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads an artifact and writes its sources into a fresh folder.
pub fn open(path: &Path) -> Result<Opened, String> {
    let artifact = Artifact::read(path)?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("archc-archx-{}-{stem}", std::process::id()));
    let main = artifact.extract_sources(&dir)?;
    Ok(Opened { artifact, main, dir })
}

/// A one-line description of an artifact's functions, e.g.
/// `main(f32[B, 64]) -> f32[B, 10]; dynamic B`.
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
    funcs.join("\n")
}
