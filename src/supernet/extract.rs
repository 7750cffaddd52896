//! `archc supernet extract DIR --choices NAME=VALUE,... -o NAME`: one subnet of a trained
//! supernet as a plain program and its weights, without retraining.
//!
//! Contract:
//! - `NAME.arch` is the space file with every `choose` resolved to the subnet's option
//!   (the export `archc search` writes for its winner, `search::export`); it checks with
//!   no choice left.
//! - `NAME.safetensors` holds its parameters by its own names: the supernet's weights
//!   (named with option tags, `conv1d_op1_0`) matched to the subnet's parameters in
//!   declaration order, then renamed and cut to the plain program's sizes
//!   (`search::plain_weights`). Buffers (BatchNorm statistics) are recalibrated for the
//!   subnet first, on the first [`CALIBRATION_BATCHES`] training batches (see
//!   `train::Run::calibrate`). `archc eval NAME.arch --checkpoint NAME.safetensors`
//!   evaluates it.
//! - The subnet's test loss and accuracy with those weights are printed.

use super::build::build;
use super::space::Subnets;
use super::train::Run;
use crate::backend::Backend;
use crate::driver::FsModules;
use crate::search::cli::{plain_program, read, validate};
use archc_compiler::sema::modules::ChoiceMode;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use archc_runtime::train::TrainData;
use archc_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file names of a supernet folder.
pub const WEIGHTS_FILE: &str = "supernet.safetensors";
pub const MANIFEST_FILE: &str = "supernet.json";

/// A trained supernet opened again: its space file, the file's text, a run holding its
/// weights and the train block's data.
pub struct Opened<'a, 's> {
    pub file: &'a SpaceFile<'s>,
    pub text: &'a str,
    pub run: Run<'a>,
    pub data: TrainData,
}

/// Opens the supernet in `dir` (its manifest names the space file) and calls `f` on it.
pub fn with_supernet<T>(
    dir: &Path,
    backend: Option<Backend>,
    color: bool,
    f: impl FnOnce(&mut Opened) -> Result<T, String>,
) -> Result<T, String> {
    let manifest = dir.join(MANIFEST_FILE);
    let text = read(&manifest)?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a supernet manifest ({e})", manifest.display()))?;
    let space_path =
        PathBuf::from(json["space"].as_str().ok_or_else(|| format!("{}: no `space`", manifest.display()))?);
    let text = read(&space_path)?;
    let modules = FsModules { dir: space_path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&space_path.display().to_string(), &text, &modules);
    validate(&file, color)?;
    let (space, structures) = Subnets::enumerate(&file, &Options::default())?;
    // A run over part of the space (`proxyless --choices`) stored only that part.
    let (space, structures) = match json["pins"].as_str() {
        Some(pins) => space.pinned(structures, &crate::driver::parse_pairs(pins)?)?,
        None => (space, structures),
    };
    let built = build(&file, &structures, None)?;
    let exec = crate::backend::executor(&built.program, backend, None)?;
    let mut run = Run { exec, program: &built.program, space: &space, built: &built };
    let stored = crate::weights::read(&dir.join(WEIGHTS_FILE))?.params;
    run.init(built.cfg.seed)?;
    for p in &built.program.params {
        let t = stored.get(&p.name).ok_or_else(|| format!("{WEIGHTS_FILE} has no `{}`", p.name))?;
        run.exec.put_state(&format!("param:{}", p.name), t.clone()).map_err(|e| e.to_string())?;
    }
    let data = crate::training::train_data_for(&built.cfg, &built.program, "s0.grad_step")?;
    let mut opened = Opened { file: &file, text: &text, run, data };
    let result = f(&mut opened);
    drop(opened);
    result
}

/// Writes `out.arch` and `out.safetensors` for the subnet `choices` of the supernet in
/// `dir` (see the module docs).
pub fn extract(dir: &Path, choices: &str, out: &Path, backend: Option<Backend>, color: bool) -> Result<(), String> {
    with_supernet(dir, backend, color, |o| {
        let given = crate::driver::parse_pairs(choices)?;
        let plain_opts = Options { choices: ChoiceMode::Explicit(given.clone()), ..Options::default() };
        let cand = o.file.build(&plain_opts);
        let made: Vec<(String, String)> =
            cand.decisions.iter().map(|d| (d.name.clone(), d.options[d.chosen].clone())).collect();
        crate::choices::check_names(&given, &made, &crate::choices::declared(o.file.sources()))?;
        let candidate = cand.program.map_err(|d| format!("the subnet does not build: {}", first(&d)))?;
        let assignment = cand.decisions.iter().map(|d| (d.name.clone(), d.chosen)).collect::<Vec<_>>();
        let leaf = o.run.space.find(&assignment).ok_or("internal: the subnet is not among the supernet's")?;
        let cfg = &o.run.built.cfg;
        let batch = cfg.batch as usize;
        let calibration = super::train::calibration_batches(&o.data.train, batch, cfg.seed, 0)?;
        o.run.calibrate(leaf, &calibration)?;
        let scores = o.data.test.as_ref().map(|test| o.run.evaluate(leaf, test, batch)).transpose()?;
        let weights = o.run.weights()?;

        // The supernet's names (option tags) to the candidate's, by declaration order.
        let tagged_opts = Options { option_tags: true, ..plain_opts };
        let tagged =
            o.file.build(&tagged_opts).program.map_err(|d| format!("the subnet does not build: {}", first(&d)))?;
        let trained = by_candidate_names(&tagged, &candidate, &weights)?;
        let (plain_text, plain) = plain_program(o.file, o.text, &cand.decisions)?;
        let plain = plain.ok_or("the exported program does not build")?;
        let tensors = crate::search::plain_weights::for_plain(&candidate, &plain, &trained)?;
        write_subnet(out, dir, choices, &plain_text, &tensors)?;
        if let Some((loss, acc)) = scores {
            println!("test loss {loss:.4}, test accuracy {acc:.4} (shared weights, no retraining)");
        }
        Ok(())
    })
}

/// `out.arch` and `out.safetensors`.
fn write_subnet(out: &Path, dir: &Path, choices: &str, text: &str, tensors: &[(String, Tensor)]) -> Result<(), String> {
    let arch = out.with_extension("arch");
    let head = format!(
        "// Subnet {choices} of the supernet in {}, every decision resolved; the comments below are the space's.\n",
        dir.display()
    );
    std::fs::write(&arch, format!("{head}{text}")).map_err(|e| format!("cannot write {}: {e}", arch.display()))?;
    let st = out.with_extension("safetensors");
    archc_runtime::io::write_safetensors(&st, tensors.iter().map(|(k, t)| (k, t))).map_err(|e| e.to_string())?;
    println!("program: {}\nweights: {} (the supernet's, BatchNorm recalibrated)", arch.display(), st.display());
    Ok(())
}

/// `archc supernet search` (see `super::search`).
pub fn search_cmd(args: &super::cli::SearchArgs, color: bool) -> Result<(), String> {
    let kind: crate::search::strategy::Kind = args.strategy.parse()?;
    let with_latency = match args.objective.as_str() {
        "accuracy" => args.max_latency.is_some(),
        "accuracy,latency" => true,
        other => return Err(format!("--objective {other}: expected `accuracy` or `accuracy,latency`")),
    };
    let spec = super::search::SearchSpec { kind, budget: args.budget, seed: args.seed, max_latency: args.max_latency };
    with_supernet(&args.dir, args.backend, color, |o| {
        let settings = crate::search::evaluate::Settings {
            backend: args.backend,
            train_epochs: 1,
            latency_runs: 10,
            proxy_batch: 2,
            max_latency: None,
        };
        let mut evaluator = crate::search::evaluate::Evaluator::new(o.file, settings);
        let objective = [crate::search::objective::Objective::Latency];
        let mut measure = |c: &crate::search::space::Candidate| -> Result<f64, String> {
            let m = evaluator.evaluate(c, &objective, &args.dir)?;
            Ok(m[0].1)
        };
        let log_path = args.dir.join("search.jsonl");
        let mut log =
            std::fs::File::create(&log_path).map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
        let latency: Option<super::search::Measure> = if with_latency { Some(&mut measure) } else { None };
        let scored = super::search::search(&mut o.run, &o.data, &spec, latency, |s| {
            use std::io::Write;
            let line = serde_json::json!({
                "choices": choices_text(&s.candidate),
                "accuracy": s.accuracy,
                "latency_ms": s.latency,
            });
            writeln!(log, "{line}").map_err(|e| format!("cannot write {}: {e}", log_path.display()))
        })?;
        let best = scored
            .iter()
            .filter(|s| s.accuracy.is_some())
            .max_by(|a, b| a.accuracy.partial_cmp(&b.accuracy).unwrap_or(std::cmp::Ordering::Equal))
            .ok_or("no subnet was scored (all over --max-latency?)")?;
        let latency = best.latency.map_or(String::new(), |l| format!(", {l:.3} ms"));
        println!(
            "{} subnets evaluated (search.jsonl); best: test accuracy {:.4}{latency}\n  archc supernet extract {} --choices {} -o best",
            scored.len(),
            best.accuracy.unwrap_or(f64::NAN),
            args.dir.display(),
            choices_text(&best.candidate)
        );
        Ok(())
    })
}

/// `name=value,...` as `--choices` takes it (non-int options by index).
pub(super) fn choices_text(c: &crate::search::space::Candidate) -> String {
    let parts: Vec<String> = c
        .labels()
        .into_iter()
        .zip(&c.chosen)
        .map(|((n, l), i)| match l.parse::<i64>() {
            Ok(_) => format!("{n}={l}"),
            Err(_) => format!("{n}={i}"),
        })
        .collect();
    parts.join(",")
}

/// The first diagnostic's message.
fn first(d: &[archc_compiler::diag::Diagnostic]) -> String {
    d.first().map_or(String::new(), |d| d.message.clone())
}

/// `weights` (the supernet's, named by the `tagged` build) by the `candidate` build's
/// names: the two builds declare the same parameters in the same order.
fn by_candidate_names(
    tagged: &archc_compiler::tir::Program,
    candidate: &archc_compiler::tir::Program,
    weights: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, String> {
    if tagged.params.len() != candidate.params.len() {
        return Err("internal: the subnet's builds declare different parameters".into());
    }
    let mut out = BTreeMap::new();
    for (t, c) in tagged.params.iter().zip(&candidate.params) {
        if t.ty != c.ty {
            return Err(format!("internal: `{}` is {}, `{}` is {}", t.name, t.ty, c.name, c.ty));
        }
        let w = weights.get(&t.name).ok_or_else(|| format!("the supernet has no `{}`", t.name))?;
        out.insert(c.name.clone(), w.clone());
    }
    Ok(out)
}
