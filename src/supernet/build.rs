//! The supernet's program: per structure a `grad_step` and an `eval_step` (renamed
//! `sN.grad_step`, `sN.eval_step`, every function of structure `N` prefixed `sN.`), one
//! `apply_step` over every trainable parameter, and each parameter declared once.
//!
//! With distillation ([`Teacher`]) each structure also gets `sN.distill.grad_step`: its
//! `grad_step` with the loss read against soft targets (`f32[B, C]` rows, in place of the
//! labels) when the loss is a cross-entropy; for a loss that takes targets of the
//! output's type (mse, bce) the `grad_step` itself serves.
//!
//! Contract: a parameter that two structures declare with different types is an error
//! naming it (their weights could not be shared). Initial values are those of the first
//! structure that declares a parameter (every structure takes its initialisers from its
//! largest-width build, so widths do not change them).

use super::space::Structure;
use archc_compiler::autodiff::loss::Loss;
use archc_compiler::autodiff::train_step::{prefixed, TrainSpec};
use archc_compiler::autodiff::{build_apply_func, build_grad_program};
use archc_compiler::passes::drop_unreached;
use archc_compiler::sema::modules::ChoiceMode;
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::train_config::TrainConfig;
use archc_compiler::sema::Options;
use archc_compiler::tir::{Program, TensorType};

/// The supernet's program and what the loop needs to know of it.
pub struct Built {
    pub program: Program,
    /// The first structure's configuration: data, loss, optimizer, batch, epochs, seed.
    pub cfg: TrainConfig,
    /// Trainable parameters, in declaration order.
    pub trainable: Vec<(String, TensorType)>,
    /// In-place distillation, when asked for.
    pub teacher: Option<Teacher>,
}

/// The name of structure `i`'s function `func`.
pub fn func_name(i: usize, func: &str) -> String {
    format!("s{i}.{func}")
}

/// How a subnet learns from the largest subnet of its step (in-place distillation, as
/// BigNAS and Once-for-All do): its targets are `(1 - weight) · labels + weight ·
/// teacher`, the teacher being the largest subnet's probabilities (cross-entropy),
/// sigmoids (bce) or outputs (mse). The losses are linear in their targets, so this is
/// the weighted sum of the label loss and the distillation loss (up to a constant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Teacher {
    pub weight: f64,
    pub kind: TeacherKind,
}

/// What the teacher's output becomes as a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TeacherKind {
    /// Softmax probabilities; the labels as one-hot rows, smoothed by `smoothing`.
    Softmax { smoothing: f64 },
    /// Sigmoids of the logits.
    Sigmoid,
    /// The outputs themselves.
    Identity,
}

impl Teacher {
    /// The teacher for `loss`, or why the loss cannot be distilled.
    pub fn for_loss(loss: &Loss, weight: f64) -> Result<Teacher, String> {
        let kind = match loss {
            Loss::CrossEntropy { smoothing } => TeacherKind::Softmax { smoothing: *smoothing },
            Loss::Bce => TeacherKind::Sigmoid,
            Loss::Mse => TeacherKind::Identity,
            _ => {
                return Err(
                    "distillation needs a built-in cross_entropy, bce or mse loss (linear in its targets)".into()
                )
            }
        };
        Ok(Teacher { weight, kind })
    }

    /// The function a distilled subnet of structure `i` runs.
    pub fn step(&self, i: usize) -> String {
        match self.kind {
            TeacherKind::Softmax { .. } => func_name(i, "distill.grad_step"),
            _ => func_name(i, "grad_step"),
        }
    }
}

/// Builds the program of `structures` (see the module docs).
/// `distill`: the weight of the teacher in the targets of distilled subnets.
pub fn build(file: &SpaceFile, structures: &[Structure], distill: Option<f64>) -> Result<Built, String> {
    let mut program = Program { name: "supernet".into(), params: Vec::new(), funcs: Vec::new() };
    let mut first_cfg = None;
    for (i, s) in structures.iter().enumerate() {
        let choices = ChoiceMode::Assign { fixed: s.key.clone(), seed: None };
        let opts = Options { elastic_symbols: s.symbolic, option_tags: true, choices, ..Options::default() };
        let cfg = file.train_config(&opts).map_err(|d| {
            let first = d.first().map_or(String::new(), |d| d.message.clone());
            format!("structure {}: {first}", shown(&s.key))
        })?;
        if !cfg.pending.is_empty() {
            return Err(format!(
                "a supernet cannot yet train a loss written as an expression that reads data fields ({}); \
                 use a built-in form, e.g. `cross_entropy(logits, label)`",
                cfg.pending.join(", ")
            ));
        }
        let grad = build_grad_program(&cfg.program, Some(&cfg.training), &cfg.spec)
            .map_err(|e| format!("structure {}: {e}", shown(&s.key)))?;
        for p in &grad.params {
            match program.param(&p.name) {
                Some(q) if q.ty != p.ty || q.trainable != p.trainable => {
                    return Err(format!(
                        "parameter `{}` is {} in one subnet and {} in another: a supernet shares each parameter \
                         between its subnets, so every subnet must declare it alike",
                        p.name, q.ty, p.ty
                    ));
                }
                Some(_) => {}
                None => program.params.push(p.clone()),
            }
        }
        program.funcs.extend(prefixed(&grad, &format!("s{i}.")));
        let teacher = distill.map(|w| Teacher::for_loss(&cfg.spec.loss, w)).transpose()?;
        if teacher.is_some_and(|t| matches!(t.kind, TeacherKind::Softmax { .. })) {
            let spec = TrainSpec { loss: Loss::SoftCrossEntropy, ..cfg.spec.clone() };
            let mut soft = build_grad_program(&cfg.program, Some(&cfg.training), &spec)
                .map_err(|e| format!("structure {}: {e}", shown(&s.key)))?;
            drop_unreached(&mut soft, &["grad_step"]);
            program.funcs.extend(prefixed(&soft, &format!("s{i}.distill.")));
        }
        first_cfg.get_or_insert(cfg);
    }
    let cfg = first_cfg.ok_or("the space has no subnet")?;
    let trainable: Vec<(String, TensorType)> =
        program.params.iter().filter(|p| p.trainable).map(|p| (p.name.clone(), p.ty.clone())).collect();
    program.funcs.push(build_apply_func(&trainable, &cfg.spec)?);
    let teacher = distill.map(|w| Teacher::for_loss(&cfg.spec.loss, w)).transpose()?;
    Ok(Built { program, cfg, trainable, teacher })
}

/// `{depth=1, op=0}`.
pub fn shown(assignment: &[(String, usize)]) -> String {
    let parts: Vec<String> = assignment.iter().map(|(n, i)| format!("{n}={i}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The gated step's name in the supernet's program.
pub const GATED_STEP: &str = "gated.grad_step";

/// Adds ProxylessNAS's gated step to `built` (as [`GATED_STEP`]): the space built with
/// every choice among layers as the mixture of its options (`sema::gated`) and the other
/// decisions at `fixed`, its gradient step taken with the gates as the only trainable
/// parameters, so that it adds `∂L/∂g` to the accumulators `grad:arch_gate.NAME`. The
/// gates join the program's parameters as buffers (no update touches them); every other
/// parameter must be one the subnets declare, with the same type. Returns the gates
/// (parameter name, option count) in declaration order.
pub fn add_gated(
    built: &mut Built,
    file: &SpaceFile,
    fixed: &[(String, usize)],
) -> Result<Vec<(String, usize)>, String> {
    let choices = ChoiceMode::Assign { fixed: fixed.to_vec(), seed: None };
    let opts = Options { gated_choices: true, option_tags: true, choices, ..Options::default() };
    let mut cfg = file
        .train_config(&opts)
        .map_err(|d| format!("the gated build: {}", d.first().map_or(String::new(), |d| d.message.clone())))?;
    let is_gate = |n: &str| n.starts_with("arch_gate.");
    for p in cfg.program.params.iter_mut().chain(cfg.training.params.iter_mut()) {
        p.trainable = is_gate(&p.name);
    }
    let grad = build_grad_program(&cfg.program, Some(&cfg.training), &cfg.spec)
        .map_err(|e| format!("the gated build: {e}"))?;
    let mut gates = Vec::new();
    for p in &grad.params {
        match built.program.param(&p.name) {
            _ if is_gate(&p.name) => {
                gates.push((p.name.clone(), p.ty.numel().as_const().unwrap_or(0) as usize));
                built.program.params.push(archc_compiler::tir::ParamDecl { trainable: false, ..p.clone() });
            }
            Some(q) if q.ty == p.ty => {}
            Some(q) => {
                return Err(format!(
                    "parameter `{}` is {} in the gated build and {} in the subnets",
                    p.name, p.ty, q.ty
                ))
            }
            None => return Err(format!("the gated build declares `{}`, which no subnet has", p.name)),
        }
    }
    if gates.is_empty() {
        return Err("the space has no choice among layers: ProxylessNAS learns choices of operations".into());
    }
    let mut funcs = prefixed(&grad, "gated.");
    built.program.funcs.append(&mut funcs);
    Ok(gates)
}
