//! `archc search SPACE.arch`: the command line of a multi-trial search, and
//! `archc search-trial SPEC` (one trial in a process of its own, for `--workers` and for
//! cluster schedulers: the spec is JSON on the command line, the result one JSON line on
//! standard output).
//!
//! Output folder (`--out`, default `runs/search/<file stem>`): `trials.jsonl`,
//! `best.arch` (the winner as a plain program), `best.txt` (the winner's `--choices`),
//! `best.safetensors` (when the winner was trained), `pareto.svg` (with two objectives
//! or more), and `trials/NNNNN/` (each trained trial's run folder).

use super::evaluate::{self, Evaluator, Metrics};
use super::objective::{self, Objective};
use super::run::{self, FileSpace, InProcess, Loop, Runner};
use super::space::{Candidate, Space};
use super::strategy::{self, Kind};
use super::trials::Trial;
use crate::backend::Backend;
use crate::driver::FsModules;
use crate::render::render;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// The search space: a `.arch` file with `choose` decisions and a `train` block (its
    /// data, loss and optimizer serve every objective that needs them).
    pub file: PathBuf,
    /// random, evolution (regularized: tournament and aging), mcts (UCT over the
    /// decisions) or grid (every candidate, in order; for small spaces).
    #[arg(long, default_value = "evolution")]
    pub strategy: String,
    /// Trials to run (candidates evaluated).
    #[arg(long, default_value_t = 100)]
    pub budget: usize,
    /// Comma list; the first is optimised, all are recorded: synflow, naswot, jacob_cov,
    /// grad_norm, snip, hidden_cov (training-free, one minibatch), accuracy (after
    /// --train-epochs), latency (median forward ms), params, flops.
    #[arg(long, default_value = "synflow")]
    pub objective: String,
    /// The output folder (default `runs/search/<file stem>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seeds the strategy (the same seed repeats the same search).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the search recorded in the output folder's trials.jsonl.
    #[arg(long)]
    pub resume: bool,
    /// Replace a search already in the output folder.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Run each trial in an `archc search-trial` process, this many at a time.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Successive halving with this η (≥ 2; needs accuracy as the first objective):
    /// after the trials, the best 1/η train on to η times --train-epochs, the best 1/η
    /// of those to η² times, ... until one is left; it is the winner.
    #[arg(long, value_name = "ETA")]
    pub halving: Option<usize>,
    /// Evaluate each round of this many trials on as many threads of this process
    /// (asks and tells go in rounds, as with --workers; 1: one trial at a time).
    #[arg(long, default_value_t = 1, conflicts_with = "workers")]
    pub threads: usize,
    /// Epochs each candidate trains for the accuracy objective.
    #[arg(long, default_value_t = 3)]
    pub train_epochs: u64,
    /// What runs latency and training (default mlir-cpu, or interp without MLIR).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Evolution: population size (also the number of random trials first).
    #[arg(long, default_value_t = 20)]
    pub population: usize,
    /// Evolution: tournament size.
    #[arg(long, default_value_t = 5)]
    pub tournament: usize,
    /// MCTS: the UCT exploration constant (scores normalised to [0, 1]); small values
    /// exploit more, which suits budgets far smaller than the space.
    #[arg(long, default_value_t = 0.5)]
    pub exploration: f64,
    /// Training rows the proxies see.
    #[arg(long, default_value_t = 64)]
    pub proxy_batch: usize,
    /// Timed forward runs per latency measurement (the median is kept).
    #[arg(long, default_value_t = 10)]
    pub latency_runs: usize,
    /// A latency budget: candidates whose forward (median of --latency-runs, at the
    /// train block's batch, on --backend) is slower are recorded as rejected trials,
    /// never trained, and not counted in --budget (at most 10 per trial of it). MS in milliseconds, or a `.arch` file with a train block: as fast
    /// as its network, measured in the same way when the search starts.
    #[arg(long, value_name = "MS|FILE")]
    pub max_latency: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs a search; prints the best trials and writes the output folder.
pub fn search(args: &SearchArgs, color: bool) -> Result<(), String> {
    if args.budget == 0 {
        return Err("--budget 0: a search needs at least one trial".into());
    }
    if !(args.exploration.is_finite() && args.exploration >= 0.0) {
        return Err(format!("--exploration {}: must be a finite number ≥ 0", args.exploration));
    }
    if args.threads == 0 {
        return Err("--threads 0: at least one trial must run at a time".into());
    }
    if args.workers == 0 {
        return Err("--workers 0: at least one trial must run at a time".into());
    }
    let objectives = objective::parse_list(&args.objective)?;
    if let Some(eta) = args.halving {
        if eta < 2 {
            return Err(format!("--halving {eta}: η must be at least 2"));
        }
        if objectives[0] != Objective::Accuracy {
            return Err("--halving promotes by accuracy: make `accuracy` the first --objective".into());
        }
    }
    let kind: Kind = args.strategy.parse()?;
    let text = read(&args.file)?;
    let modules = FsModules { dir: args.file.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&args.file.display().to_string(), &text, &modules);
    let args = &with_latency_budget(args, &file)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.file));
    validate(&file, color)?;
    prepare_out(&out, args)?;
    let settings = eval_settings(args);
    let mut eval = Evaluator::new(&file, settings);
    let lp = Loop {
        budget: args.budget,
        workers: args.workers,
        ahead: 1,
        objectives: objectives.clone(),
        log: out.join("trials.jsonl"),
        resume: args.resume,
    };
    let ss = strategy::Settings {
        seed: args.seed,
        population: args.population.max(1),
        sample: args.tournament.clamp(1, args.population.max(1)),
        exploration: args.exploration,
        ..strategy::Settings::default()
    };
    let mut strat = strategy::make(kind, &ss);
    let mut space = FileSpace { file: &file, built: eval.built.clone(), validate_only: false };
    let bar = progress_bar(args);
    let mut report = |t: &Trial, all: &[Trial]| show_progress(&bar, t, all, objectives[0]);
    eprintln!(
        "searching {} with {kind}, {} trials, objective{} {} into {}",
        args.file.display(),
        args.budget,
        if objectives.len() > 1 { "s" } else { "" },
        objectives.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
        out.display()
    );
    let outcome = if args.workers > 1 {
        let mut runner = Processes { args: args.clone(), objectives: objectives.clone(), out: out.clone() };
        // The processes build their candidates themselves.
        space.validate_only = true;
        let outcome = run::search(&mut space, strat.as_mut(), &mut runner, &lp, &mut report);
        space.validate_only = false;
        outcome?
    } else if args.threads > 1 {
        let setup = super::threads::Setup {
            path: &args.file,
            text: &text,
            settings: eval_settings(args),
            objectives: objectives.clone(),
            out: out.clone(),
        };
        let lp = Loop { workers: args.threads, ahead: run::AHEAD, ..lp };
        std::thread::scope(|s| {
            let mut runner = super::threads::spawn(s, args.threads, &setup, space.built.clone())?;
            run::search(&mut space, strat.as_mut(), &mut runner, &lp, &mut report)
        })?
    } else {
        let mut runner = InProcess { eval: &mut eval, objectives: objectives.clone(), out: out.clone() };
        run::search(&mut space, strat.as_mut(), &mut runner, &lp, &mut report)?
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let winner = match args.halving {
        Some(eta) => halve(&mut eval, &mut space, &outcome.trials, eta, args.train_epochs.max(1), &out)?,
        None => None,
    };
    finish(&file, &text, &out, &outcome, &objectives, winner)
}

/// Successive halving after the trials; prints each rung; the index of the trial left.
fn halve(
    eval: &mut Evaluator,
    space: &mut FileSpace,
    trials: &[Trial],
    eta: usize,
    epochs: u64,
    out: &Path,
) -> Result<Option<usize>, String> {
    eprintln!("successive halving (η = {eta}) of the trials' best, from {epochs} epochs");
    let promotions = super::halving::run(eval, space, trials, eta, epochs, out)?;
    for p in &promotions {
        let shown = match &p.accuracy {
            Ok(a) => format!("accuracy {a:.4}"),
            Err(e) => format!("failed: {e}"),
        };
        println!("rung {}: trial {} at {} epochs: {shown}", p.rung, p.trial, p.epochs);
    }
    let last = promotions.iter().map(|p| p.rung).max();
    let best = promotions
        .iter()
        .filter(|p| Some(p.rung) == last)
        .filter_map(|p| p.accuracy.as_ref().ok().map(|a| (p.trial, *a)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Ok(best.map(|(t, _)| t))
}

pub(crate) fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn default_out(file: &Path) -> PathBuf {
    let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    PathBuf::from("runs").join("search").join(stem)
}

/// The file must check, be a space (have decisions) and have a `train` block.
pub(crate) fn validate(file: &SpaceFile, color: bool) -> Result<(), String> {
    let shown = |ds: &[archc_compiler::diag::Diagnostic], msg: &str| {
        eprint!("{}", render(ds, file.sources(), color));
        msg.to_string()
    };
    if !file.diagnostics.is_empty() {
        return Err(shown(&file.diagnostics, "the space file has errors"));
    }
    let root = file.build_assigned(&Options::default(), &[], None);
    if let Err(ds) = &root.program {
        return Err(shown(
            ds,
            "the space's first candidate does not build (archc check shows every failing combination)",
        ));
    }
    if root.decisions.is_empty() {
        return Err("this file has no `choose`: there is nothing to search (archc train trains it)".into());
    }
    file.train_config(&Options::default())
        .map(|_| ())
        .map_err(|ds| shown(&ds, "archc search needs the space's `train` block (its data, loss and optimizer)"))
}

/// Refuses to mix two searches in one folder.
fn prepare_out(out: &Path, args: &SearchArgs) -> Result<(), String> {
    let log = out.join("trials.jsonl");
    if log.exists() && !args.resume && !args.overwrite {
        return Err(format!(
            "{} already holds a search; pass --resume to continue it, --overwrite to replace it, or another --out",
            out.display()
        ));
    }
    if args.overwrite {
        for stale in ["trials.jsonl", "halving.jsonl", "best.arch", "best.txt", "best.safetensors", "pareto.svg"] {
            let _ = std::fs::remove_file(out.join(stale));
        }
        let _ = std::fs::remove_dir_all(out.join("trials"));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))
}

fn eval_settings(args: &SearchArgs) -> evaluate::Settings {
    evaluate::Settings {
        backend: args.backend,
        train_epochs: args.train_epochs.max(1),
        latency_runs: args.latency_runs.max(1),
        proxy_batch: args.proxy_batch.max(2),
        max_latency: args.max_latency.as_deref().and_then(|s| s.parse().ok()),
    }
}

/// `args` with `--max-latency` as milliseconds: a number as given (positive, finite), a
/// file's network measured as candidates of `space` are (the same backend, runs and
/// batch size).
fn with_latency_budget(args: &SearchArgs, space: &SpaceFile) -> Result<SearchArgs, String> {
    let Some(given) = &args.max_latency else { return Ok(args.clone()) };
    let ms = match given.parse::<f64>() {
        Ok(ms) if ms.is_finite() && ms > 0.0 => ms,
        Ok(_) => return Err(format!("--max-latency {given}: must be a positive number of milliseconds")),
        Err(_) => reference_latency(args, Path::new(given), space)?,
    };
    Ok(SearchArgs { max_latency: Some(ms.to_string()), ..args.clone() })
}

/// The latency of the network of `path`, which must have no choices and the batch size
/// of `space` (checked before anything is measured).
fn reference_latency(args: &SearchArgs, path: &Path, space: &SpaceFile) -> Result<f64, String> {
    let text = read(path).map_err(|e| format!("--max-latency: {e} (give milliseconds or a .arch file)"))?;
    let modules = FsModules { dir: path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&path.display().to_string(), &text, &modules);
    if !file.diagnostics.is_empty() {
        return Err(format!("--max-latency {}: the file has errors (archc check shows them)", path.display()));
    }
    let batch_of = |f: &SpaceFile| f.train_config(&Options::default()).map(|c| c.batch).ok();
    if let (Some(b), Some(batch)) = (batch_of(space), batch_of(&file)) {
        if b != batch {
            return Err(format!(
                "--max-latency {}: its train block's batch is {batch}, the space's {b}; latencies compare at one batch size",
                path.display()
            ));
        }
    }
    let mut eval = Evaluator::new(&file, evaluate::Settings { max_latency: None, ..eval_settings(args) });
    let (ms, batch) = eval.network_latency().map_err(|e| format!("--max-latency {}: {e}", path.display()))?;
    eprintln!("latency budget: {ms:.3} ms per forward of {batch} samples ({})", path.display());
    Ok(ms)
}

fn progress_bar(args: &SearchArgs) -> Option<indicatif::ProgressBar> {
    if args.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(args.budget as u64);
    let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} trials  {elapsed_precise}  {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn show_progress(bar: &Option<indicatif::ProgressBar>, t: &Trial, all: &[Trial], primary: Objective) {
    let Some(bar) = bar else { return };
    bar.set_position(all.iter().filter(|t| !t.over_budget()).count() as u64);
    if let Some(best) = run::best(all, primary).and_then(|b| b.metric(primary.name())) {
        bar.set_message(format!("best {primary} {best:.4}{}", primary.unit()));
    }
    if let Some(e) = t.error.as_ref().filter(|_| !t.over_budget()) {
        bar.println(format!("trial {} failed: {e}", t.index));
    }
}

/// Prints the best trials; writes best.arch, best.txt, best.safetensors and pareto.svg.
fn finish(
    file: &SpaceFile,
    text: &str,
    out: &Path,
    outcome: &run::Outcome,
    objs: &[Objective],
    winner: Option<usize>,
) -> Result<(), String> {
    let trials = &outcome.trials;
    let rejected = trials.iter().filter(|t| t.over_budget()).count();
    let failed = trials.iter().filter(|t| t.error.is_some()).count() - rejected;
    let rejected = match rejected {
        0 => String::new(),
        n => format!(", {n} over --max-latency"),
    };
    println!(
        "{} trials ({} replayed from trials.jsonl, {failed} failed{rejected}){}",
        trials.len(),
        outcome.replayed,
        if outcome.exhausted { "; every candidate of the space was evaluated" } else { "" }
    );
    let best = match winner {
        Some(i) => trials.get(i),
        None => run::best(trials, objs[0]),
    };
    let Some(best) = best else {
        return Err(format!("no trial succeeded; see {}", out.join("trials.jsonl").display()));
    };
    print_top(trials, objs);
    let choices: Vec<String> = best
        .choices
        .iter()
        .zip(&best.assignment)
        .map(|((k, v), (_, i))| match v.contains([',', '=', ' ', '[']) {
            // `--choices` takes a non-int option by its index.
            true => format!("{k}={i}"),
            false => format!("{k}={v}"),
        })
        .collect();
    let assignment: Vec<String> = best.assignment.iter().map(|(k, i)| format!("{k}={i}")).collect();
    write(&out.join("best.txt"), &format!("--choices {}\nassign {}\n", choices.join(","), assignment.join(",")))?;
    let kept = if winner.is_some() { ", the one successive halving kept (halving.jsonl)" } else { "" };
    println!("best: trial {} ({}){kept}", best.index, metrics_line(best, objs));
    let plain = export_best(file, text, out, best)?;
    let ckpt = run::trial_dir(out, best.index).join(archc_runtime::train::CHECKPOINT_FILE);
    if ckpt.exists() {
        best_weights(file, best, plain.as_ref(), &ckpt, out)?;
    }
    if objs.len() > 1 {
        let svg = super::pareto::render(trials, objs)?;
        write(&out.join("pareto.svg"), &svg)?;
        let front = super::pareto::front(trials, objs);
        println!(
            "Pareto front: {} trials (pareto.svg): {:?}",
            front.len(),
            front.iter().map(|&i| trials[i].index).collect::<Vec<_>>()
        );
    }
    print_ranks(trials, objs);
    println!("trials: {}", out.join("trials.jsonl").display());
    Ok(())
}

/// best.safetensors: the trained weights for best.arch (renamed and cut to its sizes),
/// or, without a plain program, the candidate's checkpoint as it is.
fn best_weights(
    file: &SpaceFile,
    best: &Trial,
    plain: Option<&Program>,
    ckpt: &Path,
    out: &Path,
) -> Result<(), String> {
    let dest = out.join("best.safetensors");
    let cand = file.build_assigned(&Options::default(), &best.assignment, None).program.ok();
    let mapped = match (cand, plain) {
        (Some(c), Some(p)) => {
            let trained = crate::weights::read(ckpt)?.params;
            Some(super::plain_weights::for_plain(&c, p, &trained))
        }
        _ => None,
    };
    match mapped {
        Some(Ok(tensors)) => {
            archc_runtime::io::write_safetensors(&dest, tensors.iter().map(|(k, t)| (k, t)))
                .map_err(|e| e.to_string())?;
            println!("weights: {} (best.arch's, trained; the run: {})", dest.display(), ckpt.display());
        }
        other => {
            if let Some(Err(e)) = other {
                println!("best.arch's weights cannot be cut from the checkpoint: {e}");
            }
            std::fs::copy(ckpt, &dest).map_err(|e| format!("cannot copy {}: {e}", ckpt.display()))?;
            println!("weights: {} (the trained candidate's checkpoint, for the space file)", dest.display());
        }
    }
    Ok(())
}

/// The candidate that made `decisions` as a plain program (see `export`): its text and,
/// checked beside the space file, its program.
pub(crate) fn plain_program(
    file: &SpaceFile,
    text: &str,
    decisions: &[archc_compiler::sema::modules::ChoiceRecord],
) -> Result<(String, Option<Program>), String> {
    let plain = super::export::export(text, main_file(file), decisions)?;
    let src = std::fs::canonicalize(&file.sources().files().next().map(|(_, f)| f.name.clone()).unwrap_or_default());
    let modules = FsModules { dir: src.ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default() };
    let plain = super::export::absolute_data_paths(&plain, &modules.dir);
    let check = archc_compiler::sema::check_file("plain.arch", &plain, &modules, &Options::default());
    match (check.diagnostics.first(), check.decisions.is_empty()) {
        (None, true) => Ok((plain, check.program)),
        (Some(d), _) => Err(format!("the exported program does not build ({})", d.message)),
        (None, false) => Err("the exported program still has choices".into()),
    }
}

/// best.arch, or a note of why the winner has no plain form; its program when written.
fn export_best(file: &SpaceFile, text: &str, out: &Path, best: &Trial) -> Result<Option<Program>, String> {
    let b = file.build_assigned(&Options::default(), &best.assignment, None);
    let exported = plain_program(file, text, &b.decisions);
    match exported {
        Ok((plain, program)) => {
            let space = file.sources().files().next().map(|(_, f)| f.name.clone()).unwrap_or_default();
            let head = format!(
                "// The winner of `archc search` over {space} (trial {}, choices in best.txt), every\n\
                 // decision resolved; the comments below are the space's.\n",
                best.index
            );
            write(&out.join("best.arch"), &format!("{head}{plain}"))?;
            println!("program: {} (every choice resolved)", out.join("best.arch").display());
            Ok(program)
        }
        Err(e) => {
            println!("no best.arch: {e}; best.txt holds the --choices that select it");
            Ok(None)
        }
    }
}

/// The id of the space's main file (the first one the source map holds).
fn main_file(file: &SpaceFile) -> archc_grammar::span::FileId {
    file.sources().files().next().map(|(id, _)| id).unwrap_or(archc_grammar::span::FileId(0))
}

fn print_top(trials: &[Trial], objs: &[Objective]) {
    let primary = objs[0];
    let mut ok: Vec<&Trial> = trials.iter().filter(|t| t.metric(primary.name()).is_some()).collect();
    ok.sort_by(|a, b| {
        let s = |t: &Trial| primary.score(t.metric(primary.name()).unwrap_or(f64::NAN));
        s(b).total_cmp(&s(a))
    });
    println!("top trials by {primary}:");
    for t in ok.iter().take(5) {
        let c: Vec<String> = t.choices.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  #{:<4} {}  {}", t.index, metrics_line(t, objs), c.join(" "));
    }
}

/// With several objectives: how each ranks the trials as the first one does.
fn print_ranks(trials: &[Trial], objs: &[Objective]) {
    if objs.len() < 2 {
        return;
    }
    println!("rank correlation of each objective's value with {}:", objs[0]);
    for (o, n, tau, rho) in super::rank::against_primary(trials, objs) {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:+.3}"));
        println!("  {:<10} Kendall tau {}  Spearman rho {}  ({n} trials)", o.name(), f(tau), f(rho));
    }
}

fn metrics_line(t: &Trial, objs: &[Objective]) -> String {
    let parts: Vec<String> =
        objs.iter().filter_map(|o| t.metric(o.name()).map(|v| format!("{o} {}{}", show(v), o.unit()))).collect();
    parts.join(", ")
}

fn show(v: f64) -> String {
    if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs each trial as `archc search-trial SPEC`, `workers` at a time.
struct Processes {
    args: SearchArgs,
    objectives: Vec<Objective>,
    out: PathBuf,
}

impl Runner for Processes {
    fn run(&mut self, first: usize, cands: &[Candidate]) -> Vec<Result<Metrics, String>> {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return cands.iter().map(|_| Err(format!("cannot find the archc executable: {e}"))).collect(),
        };
        let children: Vec<Result<std::process::Child, String>> = cands
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let spec = trial_spec(&self.args, &self.objectives, c, &run::trial_dir(&self.out, first + i));
                std::process::Command::new(&exe)
                    .args(["search-trial", &spec.to_string()])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("cannot start a worker: {e}"))
            })
            .collect();
        children.into_iter().map(|c| c.and_then(collect_worker).and_then(|v| parse_metrics(&v))).collect()
    }
}

/// A trial as JSON: everything `archc search-trial` needs.
pub fn trial_spec(args: &SearchArgs, objs: &[Objective], cand: &Candidate, dir: &Path) -> Value {
    let abs = std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone());
    json!({
        "file": abs.display().to_string(),
        "assignment": cand.assignment(),
        "objectives": objs.iter().map(|o| o.name()).collect::<Vec<_>>(),
        "dir": dir.display().to_string(),
        "backend": args.backend.and_then(|b| b.to_possible_value()).map(|v| v.get_name().to_string()),
        "train_epochs": args.train_epochs,
        "latency_runs": args.latency_runs,
        "proxy_batch": args.proxy_batch,
        "max_latency": args.max_latency.as_deref().and_then(|s| s.parse::<f64>().ok()),
    })
}

/// Waits for a worker; its last stdout line is its result.
fn collect_worker(child: std::process::Child) -> Result<Value, String> {
    let out = child.wait_with_output().map_err(|e| format!("worker: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok()) {
        Some(v) => Ok(v),
        None => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            Err(format!(
                "the worker exited ({}) without a result: {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
        }
    }
}

fn parse_metrics(v: &Value) -> Result<Metrics, String> {
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(e.to_string());
    }
    let m = v.get("metrics").and_then(Value::as_object).ok_or("the worker's result has no metrics")?;
    m.iter()
        .map(|(k, x)| Ok((k.parse::<Objective>()?, x.as_f64().ok_or(format!("metric `{k}` is not a number"))?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_worker_is_a_failed_trial_not_a_lost_search() {
        let child = std::process::Command::new("sh")
            .args(["-c", "echo started; kill -9 $$"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let e = collect_worker(child).unwrap_err();
        assert!(e.contains("without a result") && e.contains("signal"), "{e}");
    }

    #[test]
    fn worker_results_parse_into_metrics_or_errors() {
        let m = parse_metrics(&json!({"metrics": {"synflow": 2.5, "params": 10.0}})).expect("metrics");
        assert_eq!(m.len(), 2);
        assert_eq!(parse_metrics(&json!({"error": "boom"})).unwrap_err(), "boom");
        assert!(parse_metrics(&json!({"metrics": {"speed": 1.0}})).is_err());
    }
}

/// `archc search-trial SPEC`: evaluates one trial; prints `{"metrics": {..}}` or
/// `{"error": ".."}` as its last line (exit 0 either way: a failed trial is a result).
pub fn trial(spec: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(spec).map_err(|e| format!("the trial spec is not JSON: {e}"))?;
    let result = run_trial(&v);
    let line = match result {
        Ok(m) => {
            let map: serde_json::Map<String, Value> =
                m.into_iter().map(|(o, x)| (o.name().to_string(), json!(x))).collect();
            json!({ "metrics": map })
        }
        Err(e) => json!({ "error": e }),
    };
    println!("{line}");
    Ok(())
}

fn run_trial(v: &Value) -> Result<Metrics, String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).ok_or(format!("the trial spec has no `{k}`"));
    let n = |k: &str, d: u64| v.get(k).and_then(Value::as_u64).unwrap_or(d);
    let path = PathBuf::from(s("file")?);
    let assignment: Vec<(String, usize)> = serde_json::from_value(v.get("assignment").cloned().unwrap_or_default())
        .map_err(|e| format!("the trial spec's assignment: {e}"))?;
    let objectives = v
        .get("objectives")
        .and_then(Value::as_array)
        .ok_or("the trial spec has no objectives")?
        .iter()
        .map(|o| o.as_str().unwrap_or_default().parse::<Objective>())
        .collect::<Result<Vec<_>, _>>()?;
    let backend = match v.get("backend").and_then(Value::as_str) {
        Some(b) => Some(Backend::from_str(b, false)?),
        None => None,
    };
    let settings = evaluate::Settings {
        backend,
        train_epochs: n("train_epochs", 3).max(1),
        latency_runs: n("latency_runs", 10).max(1) as usize,
        proxy_batch: n("proxy_batch", 64).max(2) as usize,
        max_latency: v.get("max_latency").and_then(Value::as_f64),
    };
    let text = read(&path)?;
    let modules = FsModules { dir: path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&path.display().to_string(), &text, &modules);
    let cand = FileSpace { file: &file, built: Default::default(), validate_only: false }
        .resolve(&assignment, super::space::Rest::First)?;
    Evaluator::new(&file, settings).evaluate(&cand, &objectives, Path::new(s("dir")?))
}
