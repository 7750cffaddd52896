//! The supernet's program: per structure a `grad_step` and an `eval_step` (renamed
//! `sN.grad_step`, `sN.eval_step`, every function of structure `N` prefixed `sN.`), one
//! `apply_step` over every trainable parameter, and each parameter declared once.
//!
//! Contract: a parameter that two structures declare with different types is an error
//! naming it (their weights could not be shared). Initial values are those of the first
//! structure that declares a parameter (every structure takes its initialisers from its
//! largest-width build, so widths do not change them).

use super::space::Structure;
use archc_compiler::autodiff::train_step::prefixed;
use archc_compiler::autodiff::{build_apply_func, build_grad_program};
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
}

/// The name of structure `i`'s function `func`.
pub fn func_name(i: usize, func: &str) -> String {
    format!("s{i}.{func}")
}

/// Builds the program of `structures` (see the module docs).
pub fn build(file: &SpaceFile, structures: &[Structure]) -> Result<Built, String> {
    let mut program = Program { name: "supernet".into(), params: Vec::new(), funcs: Vec::new() };
    let mut first_cfg = None;
    for (i, s) in structures.iter().enumerate() {
        let choices = ChoiceMode::Assign { fixed: s.key.clone(), seed: None };
        let opts = Options { elastic_symbols: s.symbolic, option_tags: true, choices, ..Options::default() };
        let cfg = file.train_config(&opts).map_err(|d| {
            let first = d.first().map_or(String::new(), |d| d.message.clone());
            format!("structure {}: {first}", shown(&s.key))
        })?;
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
        first_cfg.get_or_insert(cfg);
    }
    let cfg = first_cfg.ok_or("the space has no subnet")?;
    let trainable: Vec<(String, TensorType)> =
        program.params.iter().filter(|p| p.trainable).map(|p| (p.name.clone(), p.ty.clone())).collect();
    program.funcs.push(build_apply_func(&trainable, &cfg.spec)?);
    Ok(Built { program, cfg, trainable })
}

/// `{depth=1, op=0}`.
pub fn shown(assignment: &[(String, usize)]) -> String {
    let parts: Vec<String> = assignment.iter().map(|(n, i)| format!("{n}={i}")).collect();
    format!("{{{}}}", parts.join(", "))
}
