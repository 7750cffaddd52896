//! `archc adapt FILE`: per-sample layer-loop adaptation of a trained network.
//!
//! The file has a `train` block (the network trained and its data set) and an `adapt`
//! block naming that network's stack. With the `train` block's checkpoint, every sample
//! of a part of the data set gets its own chain of the stack's blocks (searched as the
//! `adapt` block says), or the chains of `--chains FILE` are run, or `--bench N` times
//! chain evaluation. Results go to `--out` (default `runs/NAME/adapt`).
//!
//! Contract: a file that does not check, an `adapt` block naming a network the `train`
//! block does not train or no stack of it, and a checkpoint of another network are
//! user errors shown as diagnostics at the `adapt` block's target; other failures are
//! one-line errors. Nothing is written before the search has finished.

use super::chain::{Chain, Space};
use super::deploy::{bench, run_chains};
use super::exec::{Runner, State};
use super::lockstep::{adapt_all, Outcome, Problem, Totals};
use super::report;
use super::score::Score;
use super::search::SearchSpec;
use super::split::{split, Split};
use crate::backend::Backend;
use crate::render::render;
use crate::training;
use archc_compiler::diag::Diagnostic;
use archc_compiler::sema::adapt::{find_stack, settings, AdaptSettings, SearchKind};
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_grammar::ast::{AdaptDef, Item};
use archc_grammar::span::SourceMap;
use archc_runtime::data::Dataset;
use archc_runtime::Tensor;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The arguments of `archc adapt`.
#[derive(clap::Args, Clone, Debug)]
pub struct AdaptArgs {
    /// The `.arch` file with a `train` and an `adapt` block.
    pub file: PathBuf,
    /// The trained weights (default: runs/NAME/checkpoint.safetensors).
    #[arg(long, visible_alias = "weights")]
    pub checkpoint: Option<PathBuf>,
    /// The part of the data set: `test` (the `train` block's test part), `train`, or a
    /// named part of the data set.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Where to write chains.jsonl, summary.json and adapt.svg (default runs/NAME/adapt).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The score chains are searched by, instead of the `adapt` block's: oracle, loss
    /// (both read the label: analysis only), confidence, entropy, margin, agreement.
    #[arg(long, value_name = "NAME")]
    pub score: Option<String>,
    /// MCTS simulations per sample, instead of the `adapt` block's.
    #[arg(long, value_name = "N")]
    pub simulations: Option<u64>,
    /// Seed of the searches (sample i's search draws from seed and i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adapt only the first N samples of the part.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Run these chains instead of searching: a chains.jsonl (lines with `index` and
    /// `chain`), as `archc adapt` writes it.
    #[arg(long, value_name = "FILE", conflicts_with = "bench")]
    pub chains: Option<PathBuf>,
    /// Time N distinct (sample, chain) evaluations, uncached, and report the rate and
    /// the compile count instead of searching.
    #[arg(long, value_name = "N")]
    pub bench: Option<usize>,
    /// The most (sample, chain) pairs per evaluation batch.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// What runs the network: interp, mlir-cpu (default) or cranelift.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Everything a mode needs: the settings, the cut network with its data and weights.
struct Loaded {
    settings: AdaptSettings,
    split: Split,
    data: Dataset,
    input_names: Vec<String>,
    labels: Option<Vec<usize>>,
    weights: Vec<(String, Tensor)>,
}

/// Runs `archc adapt` (see the module docs); `Err` holds the message to print (empty
/// when diagnostics were printed already).
pub fn run(args: &AdaptArgs, color: bool) -> Result<(), String> {
    let loaded = load(args, color)?;
    let mut runner = Runner::new(&loaded.split, args.backend.unwrap_or_default())?;
    for (name, t) in &loaded.weights {
        runner.set_param(name, t.clone())?;
    }
    let st = runner.prefix(inputs(&loaded, args.limit)?)?;
    let out = out_dir(args);
    if let Some(n) = args.bench {
        return bench_mode(&mut runner, &st, &loaded, n, args);
    }
    if let Some(path) = &args.chains {
        return chains_mode(&mut runner, &st, &loaded, path, args);
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("error: cannot create {}: {e}", out.display()))?;
    search_mode(&mut runner, &st, &loaded, args, &out)
}

fn default_dir(file: &Path) -> PathBuf {
    PathBuf::from("runs").join(file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default())
}

fn out_dir(args: &AdaptArgs) -> PathBuf {
    args.out.clone().unwrap_or_else(|| default_dir(&args.file).join("adapt"))
}

/// Checks the file, reads both blocks, cuts the network and loads data and weights.
fn load(args: &AdaptArgs, color: bool) -> Result<Loaded, String> {
    let user = |e: String| format!("error: {e}");
    let checked =
        crate::driver::check_path(&args.file, &Options { check_all: true, ..Options::default() }).map_err(user)?;
    let fail = |ds: &[Diagnostic], sources: &SourceMap| {
        eprint!("{}", render(ds, sources, color));
        format!("error: {} failed", args.file.display())
    };
    if !checked.diagnostics.is_empty() {
        return Err(fail(&checked.diagnostics, &checked.sources));
    }
    let def = adapt_block(checked.ast.as_ref()).ok_or_else(|| {
        user(format!(
            "{} has no `adapt` block; add `adapt Model.stack {{ moves: .., search: .., score: .. }}`",
            args.file.display()
        ))
    })?;
    let settings = settings(&def).map_err(|ds| fail(&ds, &checked.sources))?;
    let (out, _) = training::read_config(&args.file, &Options::default()).map_err(user)?;
    if !out.diagnostics.is_empty() {
        return Err(fail(&out.diagnostics, &out.sources));
    }
    let cfg = out.config.ok_or_else(|| user("no train configuration".into()))?;
    let split = cut(&cfg, &def, &settings).map_err(|d| fail(&[d], &checked.sources))?;
    let (data, input_names) = part(&cfg, &args.split).map_err(user)?;
    let labels = labels(&data, &cfg.spec.target);
    let ckpt = args.checkpoint.clone().unwrap_or_else(|| default_dir(&args.file).join("checkpoint.safetensors"));
    let weights = weights(&ckpt, &split, &settings).map_err(|d| fail(&[d], &checked.sources))?;
    Ok(Loaded { settings, split, data, input_names, labels, weights })
}

fn adapt_block(ast: Option<&archc_grammar::ast::Module>) -> Option<AdaptDef> {
    ast?.items.iter().find_map(|i| match i {
        Item::Adapt(a) => Some(a.clone()),
        _ => None,
    })
}

/// The trained network cut around the `adapt` block's stack, scored on the loss's output.
fn cut(cfg: &TrainConfig, def: &AdaptDef, s: &AdaptSettings) -> Result<Split, Diagnostic> {
    if cfg.program.name != s.model {
        return Err(Diagnostic::error(
            format!("`adapt` names `{}`, but the `train` block trains `{}`", s.model, cfg.program.name),
            s.model_span,
        )
        .with_help("adaptation runs the network the `train` block trains, with its checkpoint"));
    }
    let target = def.target.first().ok_or_else(|| Diagnostic::error("`adapt` needs a target", s.span))?;
    let (name, _) = find_stack(&cfg.program, target, &def.target[1..])?;
    let mut split =
        split(&cfg.program, &name).map_err(|e| Diagnostic::error(e, s.stack_span.unwrap_or(s.model_span)))?;
    split.output = cfg.program.main().result_names.iter().position(|n| *n == cfg.spec.output).unwrap_or(0);
    Ok(split)
}

/// The data part `name` (`test`, `train` or a named part), with the network's input
/// names in order.
fn part(cfg: &TrainConfig, name: &str) -> Result<(Dataset, Vec<String>), String> {
    let mut cfg = cfg.clone();
    if !matches!(name, "test" | "train") {
        cfg.data.test_part = Some(name.to_string());
        cfg.data.split = None;
    }
    let program = training::train_program(&cfg).map_err(|e| format!("cannot build the eval step: {e}"))?;
    let data = training::train_data(&cfg, &program)?;
    let inputs = cfg.program.main().arg_names.clone();
    let ds = match name {
        "train" => data.train,
        _ => data.test.ok_or_else(|| match name {
            "test" => "this data set has no test part; pass --split train or a part's name".to_string(),
            p => training::no_part(&cfg.data.name, p),
        })?,
    };
    Ok((ds.load().map_err(|e| e.to_string())?, inputs))
}

/// The class labels of the data, when its target is a vector of class indices.
fn labels(data: &Dataset, target: &str) -> Option<Vec<usize>> {
    let t = data.get(target)?;
    let v = t.as_i64()?;
    (t.rank() == 1).then(|| v.iter().map(|&x| x.max(0) as usize).collect())
}

/// The checkpoint's values for every parameter of the network; a diagnostic at the
/// `adapt` target when it holds another network's.
fn weights(path: &Path, split: &Split, s: &AdaptSettings) -> Result<Vec<(String, Tensor)>, Diagnostic> {
    let read = crate::weights::read(path).map_err(|e| {
        Diagnostic::error(format!("cannot read the checkpoint: {e}"), s.model_span)
            .with_help("train this file first (`archc train FILE`) or pass --checkpoint")
    })?;
    let mut values = Vec::new();
    let mut wrong = Vec::new();
    for p in &split.program.params {
        let want: Option<Vec<usize>> = p.ty.const_shape();
        match read.params.get(&p.name) {
            Some(t) if Some(t.shape.clone()) == want && t.dtype() == p.ty.dtype => {
                values.push((p.name.clone(), t.clone()))
            }
            Some(t) => wrong.push(format!("`{}` is {} there, {} here", p.name, t.type_string(), p.ty)),
            None => wrong.push(format!("`{}` is missing", p.name)),
        }
    }
    if wrong.is_empty() {
        return Ok(values);
    }
    let more = if wrong.len() > 3 { format!(" (and {} more)", wrong.len() - 3) } else { String::new() };
    wrong.truncate(3);
    Err(Diagnostic::error(
        format!("{} holds the weights of another network than `{}`", path.display(), s.model),
        s.model_span,
    )
    .with_label(format!("{}{more}", wrong.join("; ")))
    .with_help("pass the checkpoint `archc train` wrote for this file"))
}

/// The network's inputs for the first `limit` samples.
fn inputs(l: &Loaded, limit: Option<usize>) -> Result<Vec<Tensor>, String> {
    let n = limit.unwrap_or(usize::MAX).min(l.data.len());
    let rows: Vec<usize> = (0..n).collect();
    let ds = l.data.select(&rows);
    l.input_names
        .iter()
        .map(|name| ds.get(name).cloned().ok_or_else(|| format!("error: the data set has no `{name}` for the network")))
        .collect()
}

fn space(l: &Loaded) -> Space {
    let s = &l.settings;
    let length = s.length.map(|(a, b)| (a as usize, b as usize));
    Space::new(l.split.depth(), s.skip, s.repeat_max.map(|m| m as usize), length)
}

fn progress(args: &AdaptArgs, len: u64) -> indicatif::ProgressBar {
    let target = if !args.quiet && std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    };
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), target);
    let style = indicatif::ProgressStyle::with_template("adapt [{bar:30}] {pos}/{len} chains scored ({elapsed}<{eta})")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn search_mode(runner: &mut Runner, st: &State, l: &Loaded, args: &AdaptArgs, out: &Path) -> Result<(), String> {
    let s = &l.settings;
    let score = Score::parse(args.score.as_deref().unwrap_or(&s.score)).map_err(|e| format!("error: --score: {e}"))?;
    if score.needs_label() && l.labels.is_none() {
        return Err(format!("error: the score `{}` reads labels, and this data set has none", score.name()));
    }
    let mut kind = s.search.clone();
    if let (SearchKind::Mcts { simulations, .. }, Some(n)) = (&mut kind, args.simulations) {
        *simulations = n.max(1);
    }
    let spec = SearchSpec { kind: kind.clone(), length_penalty: s.length_penalty, seed: args.seed };
    let problem = Problem {
        space: space(l),
        spec,
        score,
        labels: l.labels.clone().map(|v| truncate(v, st.len())),
        batch: args.batch,
    };
    let budget = match kind {
        SearchKind::Mcts { simulations, .. } => simulations,
        _ => 1,
    };
    let bar = progress(args, st.len() as u64 * budget);
    let (outcomes, totals) = adapt_all(runner, st, &problem, |n| bar.inc(n))?;
    bar.finish_and_clear();
    write_results(out, l, &problem, &outcomes, &totals, runner)
}

fn truncate(mut v: Vec<usize>, n: usize) -> Vec<usize> {
    v.truncate(n);
    v
}

fn write_results(
    out: &Path,
    l: &Loaded,
    problem: &Problem,
    outcomes: &[Outcome],
    totals: &Totals,
    runner: &Runner,
) -> Result<(), String> {
    let depth = l.split.depth();
    let lines: String = outcomes.iter().enumerate().map(|(i, o)| report::chain_line(i, o) + "\n").collect();
    report::write(&out.join("chains.jsonl"), &lines).map_err(|e| format!("error: {e}"))?;
    let acc = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / outcomes.len().max(1) as f64;
    let labelled = problem.labels.is_some();
    let (fixed, adapted) = (acc(Outcome::correct_before), acc(Outcome::correct_after));
    let search = match &problem.spec.kind {
        SearchKind::Mcts { simulations, epsilon } => {
            json!({"kind": "mcts", "simulations": simulations, "epsilon": epsilon})
        }
        SearchKind::Greedy => json!({"kind": "greedy"}),
        SearchKind::Beam { width } => json!({"kind": "beam", "width": width}),
    };
    let sp = &problem.space;
    let summary = json!({
        "model": l.settings.model,
        "stack": l.split.blocks.first().map(|b| b.rsplit_once('.').map_or(b.as_str(), |(base, _)| base)),
        "depth": depth,
        "samples": outcomes.len(),
        "score": problem.score.name(),
        "search": search,
        "length_penalty": problem.spec.length_penalty,
        "seed": problem.spec.seed,
        "moves": {"skip": sp.skip, "repeat": sp.repeat, "max_uses": sp.max_uses, "min_length": sp.min_len, "max_length": sp.max_len},
        "accuracy_fixed": if labelled { json!(fixed) } else { json!(null) },
        "accuracy_adapted": if labelled { json!(adapted) } else { json!(null) },
        "mean_depth_fixed": depth,
        "mean_depth_adapted": report::mean_depth(outcomes),
        "cola": if labelled { report::cola_stats(outcomes, depth) } else { json!(null) },
        "chains_evaluated": totals.evaluations,
        "cache_hits": totals.cache_hits,
        "compile_count": runner.compiles(),
        "static_shape_modules": runner.shapes.len(),
        "function_calls": runner.calls,
        "seconds": totals.seconds,
        "evaluations_per_second": totals.evaluations as f64 / totals.seconds.max(1e-9),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| format!("error: {e}"))? + "\n";
    report::write(&out.join("summary.json"), &text).map_err(|e| format!("error: {e}"))?;
    let lengths: Vec<usize> = outcomes.iter().map(|o| o.chain.len()).collect();
    let svg = report::render_svg(&lengths, depth, labelled.then_some((fixed, adapted)))
        .map_err(|e| format!("error: adapt.svg: {e}"))?;
    report::write(&out.join("adapt.svg"), &svg).map_err(|e| format!("error: {e}"))?;
    print_summary(&summary, out);
    Ok(())
}

fn print_summary(s: &serde_json::Value, out: &Path) {
    let f = |k: &str| s[k].as_f64().map_or("-".to_string(), |v| format!("{v:.4}"));
    say(&format!(
        "{} samples, score {}, {} chains evaluated ({:.0}/s), {} modules compiled",
        s["samples"],
        s["score"].as_str().unwrap_or(""),
        s["chains_evaluated"],
        s["evaluations_per_second"].as_f64().unwrap_or(0.0),
        s["compile_count"]
    ));
    say(&format!("accuracy: fixed {} -> adapted {}", f("accuracy_fixed"), f("accuracy_adapted")));
    say(&format!(
        "mean depth: fixed {} -> adapted {:.3}",
        s["mean_depth_fixed"],
        s["mean_depth_adapted"].as_f64().unwrap_or(0.0)
    ));
    let c = &s["cola"];
    if !c.is_null() {
        let pct = |k: &str| c[k].as_f64().map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
        say(&format!(
            "correct samples with a shorter correct chain: {} of {}; wrong samples with a correct chain: {} of {}",
            pct("correct_with_shorter_correct_chain"),
            c["correct_fixed"],
            pct("wrong_with_some_correct_chain"),
            c["wrong_fixed"]
        ));
    }
    say(&format!("results: {}", out.display()));
}

fn chains_mode(runner: &mut Runner, st: &State, l: &Loaded, path: &Path, args: &AdaptArgs) -> Result<(), String> {
    let chains = read_chains(path, l.split.depth(), st.len()).map_err(|e| format!("error: {}: {e}", path.display()))?;
    let preds = run_chains(runner, st, &chains, args.batch)?;
    let depth: f64 = chains.iter().map(|(_, c)| c.len() as f64).sum::<f64>() / chains.len().max(1) as f64;
    say(&format!("{} samples run with their chains, mean depth {depth:.3} (fixed {})", chains.len(), l.split.depth()));
    if let Some(labels) = &l.labels {
        let right = chains.iter().zip(&preds).filter(|((i, _), p)| labels.get(*i) == Some(p)).count();
        say(&format!("accuracy: {:.4}", right as f64 / chains.len().max(1) as f64));
    }
    say(&format!("{} modules compiled", runner.compiles()));
    Ok(())
}

/// The `(index, chain)` lines of a chains.jsonl.
fn read_chains(path: &Path, depth: usize, samples: usize) -> Result<Vec<(usize, Chain)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |e: String| format!("line {}: {e}", n + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let index = v["index"].as_u64().ok_or_else(|| at("no `index`".into()))? as usize;
        if index >= samples {
            return Err(at(format!("sample {index} does not exist (the part has {samples})")));
        }
        let blocks = v["chain"].as_array().ok_or_else(|| at("no `chain` list".into()))?;
        let text: Vec<String> = blocks.iter().map(|b| b.to_string()).collect();
        out.push((index, Chain::parse(&text.join(","), depth).map_err(at)?));
    }
    Ok(out)
}

fn bench_mode(runner: &mut Runner, st: &State, l: &Loaded, n: usize, args: &AdaptArgs) -> Result<(), String> {
    let b = bench(runner, st, &space(l), n, args.batch, args.seed)?;
    say(&format!(
        "{} distinct (sample, chain) evaluations in {:.3} s: {:.0} per second (batches of {}; first batch {:.3} s)",
        b.evaluations,
        b.seconds,
        b.per_second(),
        b.batch,
        b.warmup_seconds
    ));
    say(&format!(
        "modules compiled: {} after the first batch, {} after all; {} distinct (function, batch size) calls \
         (what compiling each batch size apart would compile)",
        b.compiles_after_warmup, b.compiles, b.static_modules
    ));
    Ok(())
}

/// Prints a result line; a closed pipe (`archc adapt ... | head`) ends output quietly.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
