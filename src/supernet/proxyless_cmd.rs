//! `archc supernet proxyless SPACE.arch --latency-bound MS`: the command around
//! [`super::proxyless`]. It measures the latency table, trains the supernet and the
//! architecture together, and writes to the run folder:
//! - `metrics.jsonl`: per epoch the losses, the expected latency, `λ`, the derived
//!   subnet's test loss and accuracy (shared weights, buffers recalibrated);
//! - `proxyless.json`: the latency table, every learned choice's probabilities, the
//!   derived subnet (its `--choices`, table and measured latency, the bound);
//! - `supernet.safetensors` and `supernet.json` (with the pins), so that
//!   `archc supernet extract DIR --choices ...` writes any subnet, the derived one first.

use super::build::{add_gated, build};
use super::extract::{choices_text, MANIFEST_FILE, WEIGHTS_FILE};
use super::proxyless::{
    arch_choices, derive, fastest, leaf_of, search, ArchChoice, EpochStats, LatencyTable, Search, Spec,
};
use super::search::View;
use super::space::{Kind, Subnets};
use super::train::Run;
use crate::driver::FsModules;
use crate::search::cli::{read, validate};
use crate::search::evaluate::{Evaluator, Settings};
use crate::search::objective::Objective;
use crate::search::space::{Candidate, Rest, Space};
use archc_compiler::sema::params::elastic_symbol_name;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rounds of the latency table's measurements.
const TABLE_ROUNDS: usize = 3;

/// Runs `archc supernet proxyless` (see the module docs).
pub fn proxyless_cmd(args: &super::cli::ProxylessArgs, color: bool) -> Result<(), String> {
    let text = read(&args.file)?;
    let modules = FsModules { dir: args.file.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&args.file.display().to_string(), &text, &modules);
    validate(&file, color)?;
    let pins = args.choices.as_deref().map(crate::driver::parse_pairs).transpose()?.unwrap_or_default();
    let (space, structures) = Subnets::enumerate(&file, &Options::default())?;
    let (space, structures) = space.pinned(structures, &pins)?;
    let fixed: Vec<(String, usize)> = space
        .names()
        .into_iter()
        .filter(|n| space.kind(n) != Kind::Layer)
        .filter_map(|n| space.taken(&n).first().map(|&i| (n, i)))
        .collect();
    let mut built = build(&file, &structures, None)?;
    let gates = add_gated(&mut built, &file, &fixed)?;
    let (choices, fixed_gates) = arch_choices(&space, &gates)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        PathBuf::from("runs").join("proxyless").join(stem)
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    eprintln!(
        "archc: ProxylessNAS over {} choice{} among layers ({} subnets, {} structures); measuring the latency table",
        choices.len(),
        if choices.len() == 1 { "" } else { "s" },
        space.leaves.len(),
        structures.len()
    );
    let settings = Settings {
        backend: args.backend,
        train_epochs: 1,
        latency_runs: args.latency_runs,
        proxy_batch: 2,
        max_latency: None,
    };
    let mut evaluator = Evaluator::new(&file, settings);
    let mut measure = |leaf: usize| -> Result<f64, String> {
        let cand = candidate(&space, leaf)?;
        Ok(evaluator.evaluate(&cand, &[Objective::Latency], &out)?[0].1)
    };
    let table = latency_table(&space, &choices, &mut measure)?;
    print_table(&space, &fixed, &choices, &table);
    let (fast, fast_lat) = fastest(&table);
    if fast_lat > args.latency_bound {
        return Err(format!(
            "no subnet meets --latency-bound {} ms: the fastest by the table, {}, takes {fast_lat:.3} ms",
            args.latency_bound,
            choices_text(&candidate(&space, leaf_of(&space, &choices, &fast))?)
        ));
    }
    let data = crate::training::train_data_for(&built.cfg, &built.program, "s0.grad_step")?;
    let exec = crate::backend::executor(&built.program, args.backend, None)?;
    let mut run = Run { exec, program: &built.program, space: &space, built: &built };
    run.init(built.cfg.seed)?;
    let spec = Spec {
        epochs: args.epochs.unwrap_or(built.cfg.epochs),
        warmup: args.warmup,
        arch_lr: args.arch_lr,
        arch_beta2: args.arch_beta2,
        arch_every: args.arch_every,
        bound: args.latency_bound,
        lambda: args.latency_weight,
        rho: args.dual_rate,
    };
    let metrics = out.join("metrics.jsonl");
    let mut log = std::fs::File::create(&metrics).map_err(|e| format!("cannot write {}: {e}", metrics.display()))?;
    let mut s = Search::new(&mut run, choices, table.clone(), fixed_gates, spec.lambda);
    let steps = search(&mut s, &data, &spec, |epoch, stats, s| {
        let line = epoch_line(epoch, stats, &s.choices);
        eprintln!("{line}");
        writeln!(log, "{line}").map_err(|e| format!("cannot write {}: {e}", metrics.display()))
    })?;
    let (picks, table_lat) = derive(&s.choices, &table, spec.bound).unwrap_or_else(|| fastest(&table));
    let leaf = leaf_of(&space, &s.choices, &picks);
    let cand = candidate(&space, leaf)?;
    let measured = measure(leaf)?;
    let choices_arg = choices_text(&cand);
    let compiles = s.run.exec.compile_times().len();
    let summary = serde_json::json!({
        "bound_ms": spec.bound,
        "derived": choices_arg,
        "derived_table_latency_ms": table_lat,
        "derived_measured_latency_ms": measured,
        "lambda": s.lambda,
        "steps": steps,
        "compiled_functions": compiles,
        "latency_table": table_json(&s.choices, &table),
        "choices": s.choices.iter().map(|c| choice_json(&space, &fixed, c)).collect::<Vec<_>>(),
    });
    let path = out.join("proxyless.json");
    std::fs::write(&path, format!("{summary:#}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    save_supernet(s.run, &out, &args.file, args.choices.as_deref(), steps, compiles)?;
    println!(
        "derived: {choices_arg} ({table_lat:.3} ms by the table, {measured:.3} ms measured; bound {} ms); \
         {steps} steps, {compiles} compiled functions\n  train it: archc train {} --choices {choices_arg}\n  \
         or take it from the shared weights: archc supernet extract {} --choices {choices_arg} -o derived",
        spec.bound,
        args.file.display(),
        out.display()
    );
    Ok(())
}

/// Leaf `leaf` as a search candidate (its decisions and options).
fn candidate(space: &Subnets, leaf: usize) -> Result<Candidate, String> {
    View(space).resolve(&space.leaves[leaf].assignment, Rest::First)
}

/// The latency table (see `super::proxyless`): `measure` times a leaf's forward.
fn latency_table(
    space: &Subnets,
    choices: &[ArchChoice],
    measure: &mut dyn FnMut(usize) -> Result<f64, String>,
) -> Result<LatencyTable, String> {
    let zeros = vec![0usize; choices.len()];
    let mut leaves = vec![leaf_of(space, choices, &zeros)];
    for (ci, c) in choices.iter().enumerate() {
        for k in 1..c.options.len() {
            let mut picks = zeros.clone();
            picks[ci] = k;
            leaves.push(leaf_of(space, choices, &picks));
        }
    }
    // Interleaved rounds, the least median kept: a burst of load on the machine slows
    // one round of a subnet, not all of them.
    let mut times = vec![f64::INFINITY; leaves.len()];
    for _ in 0..TABLE_ROUNDS {
        for (t, &leaf) in times.iter_mut().zip(&leaves) {
            *t = t.min(measure(leaf)?);
        }
    }
    let reference = times[0];
    let mut rest = times[1..].iter();
    let delta = choices
        .iter()
        .map(|c| {
            std::iter::once(0.0).chain((1..c.options.len()).map(|_| rest.next().expect("timed") - reference)).collect()
        })
        .collect();
    Ok(LatencyTable { reference, delta })
}

/// Option `o` of choice `name` as shown: its label with the size symbol of every pinned
/// width replaced by the width (`Conv1d(32, 32, 3)`, not `Conv1d(elastic_width, ...)`).
fn label(space: &Subnets, fixed: &[(String, usize)], name: &str, o: usize) -> String {
    let mut symbols: Vec<(String, &String)> = fixed
        .iter()
        .filter(|(n, _)| space.kind(n) == Kind::Width)
        .map(|(n, i)| (elastic_symbol_name(n), &space.options[n][*i]))
        .collect();
    symbols.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    symbols.iter().fold(space.options[name][o].clone(), |l, (s, v)| l.replace(s.as_str(), v))
}

fn print_table(space: &Subnets, fixed: &[(String, usize)], choices: &[ArchChoice], table: &LatencyTable) {
    eprintln!("latency table (ms; every choice at its first option: {:.3} ms):", table.reference);
    for (c, row) in choices.iter().zip(&table.delta) {
        let cells: Vec<String> =
            c.options.iter().zip(row).map(|(&o, d)| format!("{} {d:+.3}", label(space, fixed, &c.name, o))).collect();
        eprintln!("  {}: {}", c.name, cells.join(" | "));
    }
}

fn table_json(choices: &[ArchChoice], table: &LatencyTable) -> serde_json::Value {
    let rows: serde_json::Map<String, serde_json::Value> =
        choices.iter().zip(&table.delta).map(|(c, d)| (c.name.clone(), serde_json::json!(d))).collect();
    serde_json::json!({ "reference_ms": table.reference, "delta_ms": rows })
}

fn choice_json(space: &Subnets, fixed: &[(String, usize)], c: &ArchChoice) -> serde_json::Value {
    let labels: Vec<String> = c.options.iter().map(|&o| label(space, fixed, &c.name, o)).collect();
    serde_json::json!({ "name": c.name, "options": labels, "probabilities": c.probs(), "logits": c.alpha })
}

/// One `metrics.jsonl` line.
fn epoch_line(epoch: u64, s: &EpochStats, choices: &[ArchChoice]) -> String {
    let mut rec = serde_json::Map::new();
    rec.insert("epoch".into(), (epoch + 1).into());
    rec.insert("train_loss".into(), s.train_loss.into());
    if let Some(l) = s.arch_loss {
        rec.insert("arch_loss".into(), l.into());
    }
    rec.insert("expected_latency_ms".into(), s.expected_latency.into());
    rec.insert("lambda".into(), s.lambda.into());
    if let Some((loss, acc)) = s.derived {
        rec.insert("derived_test_loss".into(), loss.into());
        rec.insert("derived_test_acc".into(), acc.into());
    }
    let probs: serde_json::Map<String, serde_json::Value> = choices
        .iter()
        .map(|c| {
            (c.name.clone(), serde_json::json!(c.probs().iter().map(|p| (p * 1e4).round() / 1e4).collect::<Vec<_>>()))
        })
        .collect();
    rec.insert("probabilities".into(), probs.into());
    serde_json::Value::Object(rec).to_string()
}

/// `supernet.safetensors` and `supernet.json`, as `archc supernet train` writes them,
/// with the pins that restrict the space.
fn save_supernet(
    run: &mut Run,
    out: &Path,
    file: &Path,
    pins: Option<&str>,
    steps: u64,
    compiles: usize,
) -> Result<(), String> {
    let weights = run.weights()?;
    let path = out.join(WEIGHTS_FILE);
    let kept = weights.iter().filter(|(k, _)| !k.starts_with("arch_gate."));
    archc_runtime::io::write_safetensors(&path, kept.map(|(k, v)| (k.as_str(), v))).map_err(|e| e.to_string())?;
    let manifest = serde_json::json!({
        "space": std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()).display().to_string(),
        "rule": "ProxylessNAS",
        "pins": pins,
        "steps": steps,
        "subnets": run.space.leaves.len(),
        "compiled_functions": compiles,
    });
    let path = out.join(MANIFEST_FILE);
    std::fs::write(&path, format!("{manifest:#}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
