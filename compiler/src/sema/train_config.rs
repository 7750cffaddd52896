//! The configuration of a `train` block, read into plain values for the training loop:
//! the model's program, the loss and optimizer (as autodiff takes them), the data set,
//! the schedule and the loop settings.
//!
//! Contract: reading is checking. Every entry and every argument is checked for its
//! name, type and range ([`super::settings`]), each error with its span, and all the
//! errors of a block are reported together: an entry's error does not hide another's,
//! and a model that fails to build still has its entries checked (all but the loss's
//! output name, which needs the model's outputs).

pub use super::data_source::{FieldMap, FieldSelect, FileData};
use super::experiment::build_model;
use super::loss_expr;
use super::modules::{ModuleInfo, Options};
use super::settings::{call_name, eval, float_value, int_value, Args, Range};
use super::value::Value;
use super::Checker;
use crate::autodiff::loss::Loss;
use crate::autodiff::optim::Optimizer;
use crate::autodiff::TrainSpec;
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::Program;
use archc_grammar::ast::{Entry, Expr, ExprKind, TrainDef};
use archc_grammar::span::Span;

/// The keys of a `train` block.
pub const TRAIN_KEYS: &[&str] =
    &["loss", "optimizer", "schedule", "batch", "epochs", "seed", "metrics", "clip", "noise", "eval_every", "tasks"];
pub const LOSSES: &[&str] = &["cross_entropy", "mse", "rel_l2", "bce"];
pub const OPTIMIZERS: &[&str] = &["sgd", "adam", "adamw", "rmsprop"];
pub const SCHEDULES: &[&str] = &["constant", "step", "cosine", "onecycle"];
pub const DATASETS: &[&str] = &["digits", "permuted_digits", "mnist_5k", "mnist1d", "darcy", "burgers", "file"];
pub const METRICS: &[&str] = &["accuracy", "nll", "loss", "mse", "rel_l2"];

/// A learning-rate schedule, by its parameters (the loop computes the rate per step).
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSpec {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        step_size: u64,
        gamma: f64,
    },
    /// Linear warmup over `warmup` steps, then cosine decay to `min_lr`.
    Cosine {
        warmup: u64,
        min_lr: f64,
    },
    /// One-cycle: up to `max_lr` over `pct_start` of the steps, then cosine down.
    OneCycle {
        max_lr: f64,
        pct_start: f64,
    },
}

/// Which data set and how to split it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub name: String,
    /// Fractions for a seeded split of one part (e.g. digits: `[0.8, 0.2]`).
    pub split: Option<Vec<f64>>,
    pub split_seed: u64,
    /// Named parts for train and test when the data set ships them (mnist1d, darcy).
    pub train_part: Option<String>,
    pub test_part: Option<String>,
    /// `file(...)`: the user's own files (`name` is `file`).
    pub file: Option<FileData>,
    /// The data expression, for diagnostics about the data.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The model in inference mode (`main`, and the forward of `eval_step`).
    pub program: Program,
    /// The model in training mode (dropout active, batch statistics).
    pub training: Program,
    pub spec: TrainSpec,
    pub lr: f64,
    pub schedule: ScheduleSpec,
    pub data: DataSpec,
    pub batch: u64,
    pub epochs: u64,
    pub seed: u64,
    pub eval_every: u64,
    /// `tasks: [[0, 1], [2, 3]]`: class-incremental training, one task after another,
    /// each on the rows whose `label` is in its classes (`epochs` epochs each).
    pub tasks: Option<Vec<Vec<i64>>>,
    /// The data fields a loss or metric expression reads whose types are not known yet
    /// (`Options::data_fields` was `None`): the caller reads the data and reads the block
    /// again with them. Empty when the configuration is complete.
    pub pending: Vec<String>,
}

/// Reads the `train` block `t` of the main module; on failure, every error found.
pub fn train_config(modules: &[ModuleInfo], opts: &Options, t: &TrainDef) -> Result<TrainConfig, Vec<Diagnostic>> {
    let (mut program, cfg) = read_block(modules, opts, t)?;
    let train_opts = Options { training: true, ..opts.clone() };
    let mut training = build_model(modules, &train_opts, &t.model)?;
    let Settings { spec, lr, schedule, data, batch, epochs, seed, eval_every, tasks, objective } = cfg;
    let mut pending = Vec::new();
    match objective {
        Objective::Builtin | Objective::Failed => {}
        Objective::Pending(names) => pending = names,
        Objective::Built(funcs) => {
            for p in [&mut program, &mut training] {
                p.funcs.extend(funcs.iter().cloned());
            }
        }
    }
    Ok(TrainConfig { program, training, spec, lr, schedule, data, batch, epochs, seed, eval_every, tasks, pending })
}

/// Checks a `train` block: the model builds and every entry makes sense.
pub fn check_train(modules: &[ModuleInfo], opts: &Options, t: &TrainDef) -> Result<(), Vec<Diagnostic>> {
    read_block(modules, opts, t).map(|_| ())
}

/// A `train` block's settings, before the training-mode build.
struct Settings {
    spec: TrainSpec,
    lr: f64,
    schedule: ScheduleSpec,
    data: DataSpec,
    batch: u64,
    epochs: u64,
    seed: u64,
    eval_every: u64,
    tasks: Option<Vec<Vec<i64>>>,
    objective: Objective,
}

/// How the loss is computed.
enum Objective {
    /// One of the built-in losses, emitted by autodiff (`spec.loss`).
    Builtin,
    /// An expression whose data fields' types are not known yet.
    Pending(Vec<String>),
    /// An expression, built: the functions to add to the model's programs.
    Built(Vec<crate::tir::Func>),
    /// An expression with errors (reported).
    Failed,
}

/// The model (inference mode) and the settings; every error of the block otherwise.
fn read_block(modules: &[ModuleInfo], opts: &Options, t: &TrainDef) -> Result<(Program, Settings), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let program = build_model(modules, opts, &t.model).map_err(|ds| errors.extend(ds)).ok();
    let mut r = Reader {
        c: Checker::new(modules, opts),
        errors,
        outputs: None,
        loss_expr: None,
        metric_exprs: Vec::new(),
        metric_names: Vec::new(),
        read_fields: Vec::new(),
    };
    r.outputs = program.as_ref().map(|p| p.main().result_names.clone());
    let mut cfg = Settings {
        spec: TrainSpec {
            output: r.outputs.as_ref().and_then(|o| o.first().cloned()).unwrap_or_default(),
            loss: Loss::Mse,
            target: "y".into(),
            optimizer: Optimizer::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
            clip: None,
            noise: None,
        },
        lr: 1e-3,
        schedule: ScheduleSpec::Constant,
        data: DataSpec {
            name: String::new(),
            split: None,
            split_seed: 0,
            train_part: None,
            test_part: None,
            file: None,
            span: t.data.span,
        },
        batch: 32,
        epochs: 10,
        seed: 0,
        eval_every: 1,
        tasks: None,
        objective: Objective::Builtin,
    };
    if let Some(data) = r.data(&t.data) {
        cfg.data = data;
    }
    for (i, e) in t.entries.iter().enumerate() {
        if r.first_of_key(&t.entries[..i], e) {
            r.entry(e, &mut cfg);
        }
    }
    for required in ["loss", "optimizer"] {
        if !t.entries.iter().any(|e| e.key.node == required) {
            r.errors.push(Diagnostic::error(format!("this `train` block has no `{required}`"), t.span));
        }
    }
    if let Some(p) = &program {
        cfg.objective = r.objective(modules, opts, p, &mut cfg.spec, t);
        if let (Some(file), false) = (&cfg.data.file, matches!(cfg.objective, Objective::Failed)) {
            let mut wanted: Vec<String> =
                p.main().arg_names.iter().filter(|a| !a.starts_with("choice:")).cloned().collect();
            match &cfg.objective {
                Objective::Builtin => wanted.push(cfg.spec.target.clone()),
                _ => wanted.extend(r.read_fields.iter().cloned()),
            }
            super::data_source::check_mapping(file, &wanted, &mut r.errors);
        }
    }
    match program {
        Some(p) if r.errors.is_empty() => Ok((p, cfg)),
        _ => Err(r.errors),
    }
}

/// Reads entries, collecting errors.
struct Reader<'a> {
    c: Checker<'a>,
    errors: Vec<Diagnostic>,
    /// The model's outputs, when it built.
    outputs: Option<Vec<String>>,
    /// A loss that is not one of the built-in forms (`mse(u, y)`): an expression.
    loss_expr: Option<Expr>,
    /// Metrics written as expressions: `(name, expression)`.
    metric_exprs: Vec<(String, Expr)>,
    /// Metrics given by a bare built-in name (`accuracy`), with their spans.
    metric_names: Vec<(String, Span)>,
    /// The data fields the loss and metric expressions read (set by `objective`).
    read_fields: Vec<String>,
}

impl Reader<'_> {
    /// Keeps a value, or records its errors.
    fn keep<T>(&mut self, r: Result<T, Vec<Diagnostic>>) -> Option<T> {
        r.map_err(|ds| self.errors.extend(ds)).ok()
    }

    fn keep1<T>(&mut self, r: super::R<T>) -> Option<T> {
        self.keep(r.map_err(|d| vec![d]))
    }

    /// Whether `e` is the first entry with its key (a repeated key is an error).
    fn first_of_key(&mut self, earlier: &[Entry], e: &Entry) -> bool {
        match earlier.iter().find(|p| p.key.node == e.key.node) {
            Some(prev) => {
                self.errors.push(
                    Diagnostic::error(format!("`{}` is given twice", e.key.node), e.key.span)
                        .with_related(prev.key.span, "first given here"),
                );
                false
            }
            None => true,
        }
    }

    fn entry(&mut self, e: &Entry, cfg: &mut Settings) {
        let key = e.key.node.as_str();
        let v = &e.value;
        let what = format!("`{key}`");
        match key {
            "loss" => self.loss(v, &mut cfg.spec),
            "optimizer" => self.optimizer(v, cfg),
            "schedule" => cfg.schedule = self.schedule(v).unwrap_or(ScheduleSpec::Constant),
            "batch" => cfg.batch = self.int(v, &what, Range::Positive),
            "epochs" => cfg.epochs = self.int(v, &what, Range::Positive),
            "eval_every" => cfg.eval_every = self.int(v, &what, Range::Positive),
            "seed" => cfg.seed = self.int(v, &what, Range::NonNegative),
            "clip" => {
                let x = eval(&mut self.c, v).and_then(|x| float_value(&x, v.span, &what, Range::Positive));
                cfg.spec.clip = self.keep1(x);
            }
            "noise" => cfg.spec.noise = self.noise(v),
            "tasks" => cfg.tasks = self.tasks(v),
            "metrics" => self.metrics(v),
            _ => self.errors.push(unknown_key(key, e.key.span, TRAIN_KEYS, "train")),
        }
    }

    /// A non-negative integer setting (0 when it is wrong; then unused).
    fn int(&mut self, e: &Expr, what: &str, range: Range) -> u64 {
        let v = eval(&mut self.c, e).and_then(|v| int_value(&v, e.span, what, range));
        self.keep1(v).map_or(0, |i| i as u64)
    }

    /// `tasks: [[0, 1], [2, 3], ..]`: non-empty lists of distinct non-negative class
    /// labels, no label in two tasks, at least two tasks.
    fn tasks(&mut self, e: &Expr) -> Option<Vec<Vec<i64>>> {
        let shape = "`tasks` is a list of tasks, each a list of class labels: `[[0, 1], [2, 3]]`";
        let ExprKind::List(groups) = &e.kind else {
            self.errors.push(Diagnostic::error(shape, e.span));
            return None;
        };
        if groups.len() < 2 {
            self.errors.push(Diagnostic::error(format!("{shape}, with at least two tasks"), e.span));
            return None;
        }
        let mut seen: Vec<(i64, Span)> = Vec::new();
        let mut tasks = Vec::new();
        for g in groups {
            let ExprKind::List(items) = &g.kind else {
                self.errors.push(Diagnostic::error(shape, g.span));
                return None;
            };
            if items.is_empty() {
                self.errors.push(Diagnostic::error("a task needs at least one class", g.span));
                return None;
            }
            let mut task = Vec::new();
            for item in items {
                let v =
                    eval(&mut self.c, item).and_then(|v| int_value(&v, item.span, "a class label", Range::NonNegative));
                let label = self.keep1(v)?;
                if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
                    let d = Diagnostic::error(format!("class {label} is in two tasks"), item.span)
                        .with_related(*first, "first here");
                    self.errors.push(d);
                    return None;
                }
                seen.push((label, item.span));
                task.push(label);
            }
            tasks.push(task);
        }
        Some(tasks)
    }

    /// A call's name (checked) and its arguments.
    fn call(&mut self, e: &Expr, known: &[&str], what: &str) -> Option<(String, Args)> {
        let name = self.keep1(call_name(e, known, what))?.0.to_string();
        let args = Args::of(&mut self.c, e, &name);
        self.keep1(args).map(|a| (name, a))
    }

    /// `loss: cross_entropy(logits, label, smoothing = 0.1)`: output and target are names;
    /// any other form is an expression ([`super::loss_expr`]).
    fn loss(&mut self, e: &Expr, spec: &mut TrainSpec) {
        if !builtin_form(e) {
            self.loss_expr = Some(e.clone());
            return;
        }
        let Some(name) = self.keep1(call_name(e, LOSSES, "loss")).map(|(n, _)| n.to_string()) else { return };
        let args = match &e.kind {
            ExprKind::Call(_, args) => args.as_slice(),
            _ => &[],
        };
        let named: Vec<(&str, Span)> = args
            .iter()
            .take(2)
            .filter_map(|a| match &a.value.kind {
                ExprKind::Name(n) if a.name.is_none() => Some((n.as_str(), a.value.span)),
                _ => None,
            })
            .collect();
        let [(output, out_span), (target, _)] = named.as_slice() else {
            let d = Diagnostic::error("a loss takes the model output and the target: `mse(u, y)`", e.span)
                .with_help("the first two arguments name the model's output and the data set's target");
            return self.errors.push(d);
        };
        if let Some(outs) = &self.outputs {
            if !outs.iter().any(|o| o == output) {
                self.errors.push(no_output(output, *out_span, outs));
            }
        }
        spec.output = output.to_string();
        spec.target = target.to_string();
        let env = super::scope::Scope::child(&self.c.globals[0]);
        let rest = super::args::CallArgs::eval(&mut self.c, &args[2..], &env, 0);
        let Some(rest) = self.keep1(rest) else { return };
        let mut a = Args::new(super::args::ArgReader::new(name.clone(), rest, e.span));
        spec.loss = match name.as_str() {
            "cross_entropy" => Loss::CrossEntropy { smoothing: a.float("smoothing", 0.0, Range::Fraction) },
            "mse" => Loss::Mse,
            "rel_l2" => Loss::RelL2,
            _ => Loss::Bce,
        };
        self.keep(a.finish());
    }

    fn optimizer(&mut self, e: &Expr, cfg: &mut Settings) {
        let Some((name, mut a)) = self.call(e, OPTIMIZERS, "optimizer") else { return };
        cfg.lr = a.float("lr", 1e-3, Range::Positive);
        let wd_default = if name == "adamw" { 0.01 } else { 0.0 };
        let weight_decay = a.float("weight_decay", wd_default, Range::NonNegative);
        cfg.spec.optimizer = match name.as_str() {
            "sgd" => Optimizer::Sgd {
                momentum: a.float("momentum", 0.0, Range::Fraction),
                nesterov: a.bool("nesterov", false),
                weight_decay,
            },
            "adam" | "adamw" => {
                let beta1 = a.float("beta1", 0.9, Range::Fraction);
                let beta2 = a.float("beta2", 0.999, Range::Fraction);
                let eps = a.float("eps", 1e-8, Range::Positive);
                if name == "adam" {
                    Optimizer::Adam { beta1, beta2, eps, weight_decay }
                } else {
                    Optimizer::AdamW { beta1, beta2, eps, weight_decay }
                }
            }
            _ => Optimizer::RmsProp {
                alpha: a.float("alpha", 0.99, Range::Fraction),
                eps: a.float("eps", 1e-8, Range::Positive),
                weight_decay,
            },
        };
        self.keep(a.finish());
    }

    fn schedule(&mut self, e: &Expr) -> Option<ScheduleSpec> {
        let (name, mut a) = self.call(e, SCHEDULES, "schedule")?;
        let s = match name.as_str() {
            "constant" => ScheduleSpec::Constant,
            "step" => ScheduleSpec::Step {
                step_size: a.int("step_size", 10, Range::Positive) as u64,
                gamma: a.float("gamma", 0.1, Range::Positive),
            },
            "cosine" => ScheduleSpec::Cosine {
                warmup: a.int("warmup", 0, Range::NonNegative) as u64,
                min_lr: a.float("min_lr", 0.0, Range::NonNegative),
            },
            _ => ScheduleSpec::OneCycle {
                max_lr: a.float("max_lr", f64::NAN, Range::Positive),
                pct_start: a.float("pct_start", 0.3, Range::OpenFraction),
            },
        };
        self.keep(a.finish())?;
        Some(s)
    }

    /// `noise: gradient_noise(eta = .., gamma = ..)`
    fn noise(&mut self, e: &Expr) -> Option<(f64, f64)> {
        let (_, mut a) = self.call(e, &["gradient_noise"], "gradient noise")?;
        let eta = a.float("eta", 0.01, Range::NonNegative);
        let gamma = a.float("gamma", 0.55, Range::NonNegative);
        self.keep(a.finish())?;
        Some((eta, gamma))
    }

    /// `metrics: [accuracy, nll]`, or expressions: `accuracy(logits, label)` (a function
    /// of the stdlib `losses` or the file, named after it) and `mae(mean(abs(u - y)))`
    /// (a name and the expression that computes it).
    fn metrics(&mut self, e: &Expr) {
        let ExprKind::List(items) = &e.kind else {
            let d = Diagnostic::error("`metrics` must be a list like [accuracy]", e.span);
            return self.errors.push(d);
        };
        for item in items {
            match &item.kind {
                ExprKind::Name(n) => {
                    if self.keep1(call_name(item, METRICS, "metric")).is_some() {
                        self.metric_names.push((n.clone(), item.span));
                    }
                }
                ExprKind::Call(callee, args) => match &callee.kind {
                    ExprKind::Name(f) => self.metric_expr(f, item, args),
                    _ => self
                        .errors
                        .push(Diagnostic::error("expected a metric, e.g. `mae(mean(abs(u - y)))`", item.span)),
                },
                _ => self.errors.push(
                    Diagnostic::error("expected a metric name or `NAME(expression)`", item.span)
                        .with_help("e.g. `accuracy`, `accuracy(logits, label)` or `mae(mean(abs(u - y)))`"),
                ),
            }
        }
    }

    /// A metric `f(...)`: a known function's value, or `NAME(expression)`.
    fn metric_expr(&mut self, f: &str, item: &Expr, args: &[archc_grammar::ast::Arg]) {
        let known = self.c.globals[0].get(f).is_some()
            || super::builtins::lookup(f).is_some()
            || self.c.modules.iter().any(|m| m.name == "losses" && m.globals.get(f).is_some());
        let (name, expr) = match args {
            _ if known => (f, item.clone()),
            [a] if a.name.is_none() => (f, a.value.clone()),
            _ => {
                let d = Diagnostic::error(format!("unknown metric function `{f}`"), item.span)
                    .with_help(format!("to name a metric, give one expression: `{f}(mean(abs(u - y)))`"));
                return self.errors.push(d);
            }
        };
        // The loop reports the batch sum `correct` as accuracy.
        let name = if name == "accuracy" { "correct" } else { name };
        if self.metric_exprs.iter().any(|(n, _)| n == name) {
            return self.errors.push(Diagnostic::error(format!("metric `{f}` is given twice"), item.span));
        }
        self.metric_exprs.push((name.to_string(), expr));
    }

    /// The loss and metrics as [`super::loss_expr`] builds them, when one is written as
    /// an expression (a built-in loss then runs as its stdlib function).
    fn objective(
        &mut self,
        modules: &[ModuleInfo],
        opts: &Options,
        p: &Program,
        spec: &mut TrainSpec,
        t: &TrainDef,
    ) -> Objective {
        let per_token = per_token_cross_entropy(p, spec);
        if per_token {
            self.name_metric_tensors(spec);
        }
        let loss = match (&self.loss_expr, t.entries.iter().find(|e| e.key.node == "loss")) {
            (None, _) if self.metric_exprs.is_empty() && !per_token => return Objective::Builtin,
            (Some(e), _) => e.clone(),
            (None, Some(entry)) => entry.value.clone(),
            (None, None) => return Objective::Builtin,
        };
        let metrics = self.metric_exprs.iter().map(|(n, e)| (n.clone(), e)).collect();
        let obj = loss_expr::Objective { loss: &loss, metrics };
        let mut unknown = loss_expr::unknown_callees(modules, p, &obj);
        // A bare metric name reads the built-in loss's tensors, which an expression has not.
        for (n, span) in self.metric_names.iter().filter(|(n, _)| n != "loss") {
            let d = Diagnostic::error(format!("with a loss written as an expression, `{n}` needs its tensors"), *span)
                .with_help(format!("call it on them, e.g. `{n}(output, target)`"));
            unknown.push(d);
        }
        let failed = !unknown.is_empty();
        self.errors.extend(unknown);
        let fields: Vec<String> = loss_expr::data_names(modules, p, &obj).into_iter().map(|(n, _)| n).collect();
        self.read_fields = fields.clone();
        let given = match &opts.data_fields {
            None if !fields.is_empty() && failed => return Objective::Failed,
            None if !fields.is_empty() => {
                spec.loss = Loss::Unresolved(fields.clone());
                return Objective::Pending(fields);
            }
            given => given.as_deref().unwrap_or_default(),
        };
        match loss_expr::build(modules, opts, p, &obj, given) {
            Ok(_) if failed => Objective::Failed,
            Ok(built) => {
                spec.loss = Loss::Func { func: "loss".into(), args: built.args, metrics: built.metrics };
                Objective::Built(built.program.funcs)
            }
            Err(ds) => {
                self.errors.extend(ds);
                Objective::Failed
            }
        }
    }

    /// Bare metric names as calls on the loss's tensors (`accuracy` becomes
    /// `accuracy(output, target)`), for a built-in loss that runs as its stdlib function.
    fn name_metric_tensors(&mut self, spec: &TrainSpec) {
        let name = |n: &str, span| Expr { kind: ExprKind::Name(n.to_string()), span };
        for (n, span) in std::mem::take(&mut self.metric_names) {
            if n == "loss" {
                self.metric_names.push((n, span));
                continue;
            }
            let arg = |v: &str| archc_grammar::ast::Arg { name: None, value: name(v, span), span };
            let call = ExprKind::Call(Box::new(name(&n, span)), vec![arg(&spec.output), arg(&spec.target)]);
            self.metric_exprs.push((n, Expr { kind: call, span }));
        }
    }

    /// `digits(split = [0.8, 0.2], seed = 0)`, `darcy(train = "..", test = "..")`.
    fn data(&mut self, e: &Expr) -> Option<DataSpec> {
        if let ExprKind::Call(callee, args) = &e.kind {
            if matches!(&callee.kind, ExprKind::Name(n) if n == "file") {
                let f = super::data_source::file_source(&mut self.c, args, e.span, &mut self.errors)?;
                let (split, split_seed, file) = (f.split, f.seed, Some(f.data));
                let name = "file".to_string();
                return Some(DataSpec {
                    name,
                    split,
                    split_seed,
                    train_part: None,
                    test_part: None,
                    file,
                    span: e.span,
                });
            }
        }
        let (name, mut a) = self.call(e, DATASETS, "dataset")?;
        let split = match a.opt("split") {
            Some((Value::List(items), s)) => a.keep(fractions(&items, s)),
            Some((v, s)) => {
                a.keep::<()>(Err(Diagnostic::error(
                    format!("argument `split` of `{name}` must be a list of fractions, found {} `{v}`", v.kind()),
                    s,
                )));
                None
            }
            None => None,
        };
        let split_seed = a.int("seed", 0, Range::NonNegative) as u64;
        let train_part = part(&mut a, "train", &name);
        let test_part = part(&mut a, "test", &name);
        self.keep(a.finish())?;
        Some(DataSpec { name, split, split_seed, train_part, test_part, file: None, span: e.span })
    }
}

/// `mse(u, y)`, `cross_entropy(logits, label, smoothing = 0.1)`: a built-in loss of the
/// model output and the target, by name (other settings named).
fn builtin_form(e: &Expr) -> bool {
    let ExprKind::Call(callee, args) = &e.kind else { return false };
    let ExprKind::Name(n) = &callee.kind else { return false };
    let names = |a: &archc_grammar::ast::Arg| a.name.is_none() && matches!(a.value.kind, ExprKind::Name(_));
    LOSSES.contains(&n.as_str())
        && args.len() >= 2
        && args[..2].iter().all(names)
        && args[2..].iter().all(|a| a.name.is_some())
}

/// `split = [0.8, 0.2]`: each in (0, 1], together at most 1.
fn fractions(items: &[Value], span: Span) -> super::R<Vec<f64>> {
    let mut out = Vec::new();
    for v in items {
        out.push(float_value(v, span, "each fraction of `split`", Range::Share)?);
    }
    let total: f64 = out.iter().sum();
    if out.is_empty() || total > 1.0 + 1e-9 {
        return Err(Diagnostic::error(format!("`split` fractions must add up to at most 1, found {total}"), span));
    }
    Ok(out)
}

/// `train = "part"` / `test = "part"`: a string.
fn part(a: &mut Args, key: &'static str, name: &str) -> Option<String> {
    match a.opt(key)? {
        (Value::Str(s), _) => Some(s),
        (v, s) => {
            let d = Diagnostic::error(
                format!("argument `{key}` of `{name}` must be a string, found {} `{v}`", v.kind()),
                s,
            );
            a.keep::<()>(Err(d));
            None
        }
    }
}

fn no_output(out: &str, span: Span, outs: &[String]) -> Diagnostic {
    let mut d = Diagnostic::error(format!("the model has no output `{out}`"), span)
        .with_label(format!("outputs are: {}", outs.join(", ")));
    if let Some(s) = did_you_mean(out, outs.iter().map(|s| s.as_str())) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}

/// An unknown key of a `train` or `adapt` block, with the known ones.
pub fn unknown_key(key: &str, span: Span, known: &[&str], block: &str) -> Diagnostic {
    let mut d = Diagnostic::error(format!("unknown `{block}` entry `{key}`"), span)
        .with_label(format!("known entries: {}", known.join(", ")));
    if let Some(s) = did_you_mean(key, known.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}

/// Whether the loss is the built-in cross-entropy on logits with axes between the batch
/// and the classes (`[B, S, C]`, per-token labels `[B, S]`): it then runs as the stdlib
/// function, which averages over every position.
fn per_token_cross_entropy(p: &Program, spec: &TrainSpec) -> bool {
    let main = p.main();
    let rank = main.result_names.iter().position(|n| *n == spec.output).and_then(|i| main.type_of(main.results[i]));
    matches!(spec.loss, Loss::CrossEntropy { .. }) && rank.is_some_and(|t| t.rank() > 2)
}
