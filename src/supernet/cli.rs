//! `archc supernet train SPACE.arch` and `archc supernet extract DIR`: the command line
//! of supernets (see the parent module).

use super::build::{build, Built};
use super::space::Subnets;
use super::train::{train, EpochStats, Run, SampleRule, Shrink};
use crate::backend::Backend;
use crate::driver::FsModules;
use crate::search::cli::{read, validate};
use archc_compiler::sema::modules::on_big_stack;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum SupernetCmd {
    /// Train one weight set for every subnet of a space (its `train` block gives data,
    /// loss, optimizer, batch, epochs and seed), subnets sampled every step.
    Train(TrainArgs),
    /// Write one subnet of a trained supernet as a plain program (`NAME.arch`) with its
    /// weights (`NAME.safetensors`), BatchNorm recalibrated, no retraining; prints its
    /// test accuracy.
    Extract(ExtractArgs),
    /// Search the subnets of a trained supernet, each scored with the shared weights
    /// (no training); writes DIR/search.jsonl and prints the best with its `extract`
    /// command.
    Search(SearchArgs),
    /// ProxylessNAS: learn each choice among layers (binary gates, architecture steps
    /// alternating with weight steps) under a latency bound measured on the backend;
    /// prints the derived subnet and the commands that train or extract it.
    Proxyless(ProxylessArgs),
}

#[derive(Args, Debug)]
pub struct ProxylessArgs {
    /// The space: a `.arch` file with choices among layers and a `train` block.
    pub file: PathBuf,
    /// The latency bound in ms per forward of the train block's batch on --backend
    /// (the table the command prints first shows what the subnets take).
    #[arg(long, value_name = "MS")]
    pub latency_bound: f64,
    /// Pins: `NAME=VALUE,...` (ints by value, other options by index); every decision
    /// that is not a choice among layers (a depth, a width) must be pinned.
    #[arg(long)]
    pub choices: Option<String>,
    /// The run folder (default runs/proxyless/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Epochs (default: the train block's).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// The fraction of the epochs that trains the weights only (paths uniform).
    #[arg(long, default_value_t = 0.25)]
    pub warmup: f64,
    /// The architecture logits' learning rate (Adam).
    #[arg(long, default_value_t = 0.05)]
    pub arch_lr: f64,
    /// Weight steps per architecture step (the reference code's 5).
    #[arg(long, default_value_t = 1)]
    pub arch_every: u64,
    /// Adam's second-moment decay for the architecture logits. The reference's 0.999
    /// remembers a gradient's scale for about a thousand steps: in a short run the
    /// large gradients of the first architecture steps then keep the later steps small;
    /// 0.9 follows the scale as the loss falls.
    #[arg(long, default_value_t = 0.999)]
    pub arch_beta2: f64,
    /// The starting weight λ of the latency term `λ · E[latency] / bound`.
    #[arg(long, default_value_t = 0.1)]
    pub latency_weight: f64,
    /// How fast λ grows while the expected latency is over the bound (dual ascent).
    #[arg(long, default_value_t = 0.01)]
    pub dual_rate: f64,
    /// Timed forward runs per entry of the latency table (the median is kept).
    #[arg(long, default_value_t = 30)]
    pub latency_runs: usize,
    /// What runs the steps and the latency table (default mlir-cpu, or interp without
    /// MLIR).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The folder `archc supernet train` wrote.
    pub dir: PathBuf,
    /// random, evolution, mcts or grid (as for `archc search`).
    #[arg(long, default_value = "evolution")]
    pub strategy: String,
    /// Subnets to evaluate.
    #[arg(long, default_value_t = 30)]
    pub budget: usize,
    /// `accuracy`, or `accuracy,latency` to time every subnet too.
    #[arg(long, default_value = "accuracy")]
    pub objective: String,
    /// A latency budget in ms per forward of the train block's batch: slower subnets
    /// are recorded, not scored.
    #[arg(long, value_name = "MS")]
    pub max_latency: Option<f64>,
    /// Seeds the strategy.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// What runs the subnets (default mlir-cpu, or interp without MLIR).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The folder `archc supernet train` wrote.
    pub dir: PathBuf,
    /// The subnet: `NAME=VALUE,...` (ints by value, other options by index), as for
    /// `archc train --choices`; unnamed choices take their first option.
    #[arg(long)]
    pub choices: String,
    /// The output name: writes NAME.arch and NAME.safetensors.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// What runs the recalibration and the evaluation (default mlir-cpu, or interp
    /// without MLIR).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The space: a `.arch` file with `choose` decisions and a `train` block.
    pub file: PathBuf,
    /// The run folder (default runs/supernet/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How each step picks its subnets.
    #[arg(long, value_enum, default_value_t = RuleArg::Sandwich)]
    pub rule: RuleArg,
    /// Random subnets per step (`sandwich`: besides the largest and the smallest).
    #[arg(long, default_value_t = 2)]
    pub subnets: usize,
    /// When the dimensions become elastic: `none` (from the first step), `progressive`
    /// (Once-for-All: the largest subnet for the first quarter of the steps, then layer
    /// choices, then depths, then widths, a quarter each) or `delayed` (DεpS: the largest
    /// subnet until `--delay` of the steps, then everything).
    #[arg(long, value_enum, default_value_t = ShrinkArg::None)]
    pub shrink: ShrinkArg,
    /// With `--shrink delayed`: the fraction of the steps that trains the largest subnet
    /// only.
    #[arg(long, default_value_t = 0.5)]
    pub delay: f64,
    /// ε-shrinking (DεpS): the gradients of each step's subnets other than the largest
    /// are weighed by ε, rising linearly from 0 when shrinking starts to 1 after this
    /// fraction of the steps, so that the subnets' effective learning rate warms up
    /// while the largest keeps its own. 0 (the default) weighs every subnet alike.
    /// Needs `--rule sandwich`.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub ramp: f64,
    /// In-place distillation (BigNAS; Once-for-All distils too): the largest subnet of
    /// each step learns from the labels, the others from `(1 - W) · labels + W · the
    /// largest's predictions` (its probabilities for cross_entropy). 1 is BigNAS's
    /// choice. Needs `--rule sandwich`.
    #[arg(long, value_name = "W")]
    pub distill: Option<f64>,
    /// Epochs (default: the train block's).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// What runs the steps (default mlir-cpu, or interp without MLIR).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

/// `--shrink`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShrinkArg {
    None,
    Progressive,
    Delayed,
}

/// `--rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuleArg {
    /// The largest, the smallest and `--subnets` random subnets, gradients summed
    /// (BigNAS, US-Nets).
    Sandwich,
    /// `--subnets` random subnets (Once-for-All's sampling per step).
    Random,
    /// One random subnet (single-path one-shot, SPOS).
    Spos,
    /// One subnet of the nested sequence from smallest to largest (SortedNet).
    Sorted,
}

impl TrainArgs {
    fn shrink(&self) -> Result<Shrink, String> {
        if !(0.0..=1.0).contains(&self.delay) {
            return Err(format!("--delay {}: expected a fraction of the steps, from 0 to 1", self.delay));
        }
        if !(0.0..=1.0).contains(&self.ramp) {
            return Err(format!("--ramp {}: expected a fraction of the steps, from 0 to 1", self.ramp));
        }
        if self.ramp > 0.0 && self.rule != RuleArg::Sandwich {
            return Err("--ramp needs --rule sandwich: the largest subnet of each step keeps its weight".into());
        }
        Ok(match self.shrink {
            ShrinkArg::None => Shrink::None,
            ShrinkArg::Progressive => Shrink::Progressive,
            ShrinkArg::Delayed => Shrink::Delayed(self.delay),
        })
    }

    /// `--distill`, checked.
    fn distill(&self) -> Result<Option<f64>, String> {
        let Some(w) = self.distill else { return Ok(None) };
        if !(0.0..=1.0).contains(&w) {
            return Err(format!("--distill {w}: expected the teacher's weight in the targets, from 0 to 1"));
        }
        if self.rule != RuleArg::Sandwich {
            return Err("--distill needs --rule sandwich: the largest subnet of each step is the teacher".into());
        }
        Ok(Some(w))
    }

    fn rule(&self) -> SampleRule {
        match self.rule {
            RuleArg::Sandwich => SampleRule::Sandwich { n: self.subnets },
            RuleArg::Random => SampleRule::Random { n: self.subnets },
            RuleArg::Spos => SampleRule::Uniform,
            RuleArg::Sorted => SampleRule::Sorted,
        }
    }
}

/// Runs `archc supernet ...`.
pub fn run(cmd: &SupernetCmd, color: bool) -> Result<(), String> {
    match cmd {
        SupernetCmd::Train(args) => on_big_stack(|| train_cmd(args, color)),
        SupernetCmd::Extract(a) => {
            on_big_stack(|| super::extract::extract(&a.dir, &a.choices, &a.out, a.backend, color))
        }
        SupernetCmd::Search(a) => on_big_stack(|| super::extract::search_cmd(a, color)),
        SupernetCmd::Proxyless(a) => on_big_stack(|| {
            if !(0.0..=1.0).contains(&a.warmup) || !(a.latency_bound > 0.0) {
                return Err(format!(
                    "--warmup {} must be a fraction from 0 to 1 and --latency-bound {} a positive time",
                    a.warmup, a.latency_bound
                ));
            }
            super::proxyless_cmd::proxyless_cmd(a, color)
        }),
    }
}

fn train_cmd(args: &TrainArgs, color: bool) -> Result<(), String> {
    let text = read(&args.file)?;
    let modules = FsModules { dir: args.file.parent().map(Path::to_path_buf).unwrap_or_default() };
    let file = SpaceFile::open(&args.file.display().to_string(), &text, &modules);
    validate(&file, color)?;
    let (distill, shrink) = (args.distill()?, args.shrink()?);
    let (space, structures) = Subnets::enumerate(&file, &Options::default())?;
    let built = build(&file, &structures, distill)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        PathBuf::from("runs").join("supernet").join(stem)
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    eprintln!(
        "archc: supernet of {} subnets in {} structures ({} parameters shared)",
        space.leaves.len(),
        structures.len(),
        built.program.params.len()
    );
    let data = crate::training::train_data_for(&built.cfg, &built.program, "s0.grad_step")?;
    let exec = crate::backend::executor(&built.program, args.backend, None)?;
    let mut run = Run { exec, program: &built.program, space: &space, built: &built };
    run.init(built.cfg.seed)?;
    let epochs = args.epochs.unwrap_or(built.cfg.epochs);
    let metrics = out.join("metrics.jsonl");
    let mut log = std::fs::File::create(&metrics).map_err(|e| format!("cannot write {}: {e}", metrics.display()))?;
    let steps = train(&mut run, &data, args.rule(), shrink, args.ramp, epochs, |epoch, s| {
        let line = epoch_line(epoch, s);
        eprintln!("{line}");
        writeln!(log, "{line}").map_err(|e| format!("cannot write {}: {e}", metrics.display()))
    })?;
    let compiles = run.exec.compile_times().len();
    save(&mut run, &out, args, &built, steps, compiles)?;
    println!(
        "supernet trained: {steps} steps, {} subnets in {} structures, {compiles} compiled functions; weights in {}",
        space.leaves.len(),
        structures.len(),
        out.join(super::extract::WEIGHTS_FILE).display()
    );
    Ok(())
}

/// One `metrics.jsonl` line.
fn epoch_line(epoch: u64, s: &EpochStats) -> String {
    let mut rec = serde_json::Map::new();
    rec.insert("epoch".into(), (epoch + 1).into());
    rec.insert("train_loss".into(), s.train_loss.into());
    for (name, v) in [("largest", s.largest), ("smallest", s.smallest)] {
        if let Some((loss, acc)) = v {
            rec.insert(format!("{name}_test_loss"), loss.into());
            rec.insert(format!("{name}_test_acc"), acc.into());
        }
    }
    serde_json::Value::Object(rec).to_string()
}

/// `supernet.safetensors` and `supernet.json`.
fn save(run: &mut Run, out: &Path, args: &TrainArgs, built: &Built, steps: u64, compiles: usize) -> Result<(), String> {
    let weights = run.weights()?;
    let path = out.join(super::extract::WEIGHTS_FILE);
    archc_runtime::io::write_safetensors(&path, weights.iter().map(|(k, v)| (k.as_str(), v)))
        .map_err(|e| e.to_string())?;
    let manifest = serde_json::json!({
        // Absolute, so that `extract` finds it from any folder.
        "space": std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone()).display().to_string(),
        "rule": format!("{:?}", args.rule()),
        "shrink": format!("{:?}", args.shrink()?),
        "distill": args.distill,
        "ramp": args.ramp,
        "steps": steps,
        "parameters": built.program.params.len(),
        "structures": run.space.leaves.iter().map(|l| l.structure).max().map_or(0, |m| m + 1),
        "subnets": run.space.leaves.len(),
        "compiled_functions": compiles,
    });
    let path = out.join(super::extract::MANIFEST_FILE);
    std::fs::write(&path, format!("{manifest:#}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
