//! Weights handed to `run --weights` and `eval --checkpoint`: a plain `.safetensors` file
//! (tensor names as in `build --emit tir`) or a training checkpoint written by
//! `archc train` (parameters under `param/`, optimizer state and counters beside them).
//!
//! Contract: a checkpoint must supply every parameter the program declares (it was
//! trained from this program, or the names would not match); the parameters it holds
//! that the program does not declare (layers used only in training, `if training
//! { .. }`) are reported, not loaded. A plain file must hold every parameter too, unless
//! the caller allows missing ones (`run --allow-missing`: the rest keep their initial
//! values); the error lists the missing names. Every name in a plain file must be a
//! parameter of the program, so a misspelt name is an error rather than a silently
//! ignored tensor.
//!
//! `train --init` is looser: it starts training from whatever parameters of the file
//! the program declares (a pretrained encoder inside a new network), so a file may lack
//! some and hold others; but at least one must match, and the tensors not loaded are
//! named to the caller.

use archc_compiler::tir::Program;
use archc_runtime::train::TrainState;
use archc_runtime::{io, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Parameter values read from a file, and where they came from.
pub struct Weights {
    pub params: BTreeMap<String, Tensor>,
    /// The epochs a checkpoint had trained (`None` for a plain weights file).
    pub epoch: Option<u64>,
}

/// What loading into a program gives: the values to set, and the names not used.
pub struct Fitted {
    pub values: Vec<(String, Tensor)>,
    pub unused: Vec<String>,
}

/// Reads a checkpoint or a plain weights file (told apart by the checkpoint's
/// `meta/version`).
pub fn read(path: &Path) -> Result<Weights, String> {
    let tensors = io::read_safetensors(path).map_err(|e| e.to_string())?;
    if !tensors.contains_key("meta/version") {
        return Ok(Weights { params: tensors, epoch: None });
    }
    let state = TrainState::from_tensors(tensors).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Weights { params: state.params, epoch: Some(state.epoch) })
}

/// The values of `w` for the parameters of `program` (see the module docs).
pub fn fit(w: &Weights, program: &Program, path: &Path, allow_missing: bool) -> Result<Fitted, String> {
    let declared = |n: &str| program.param(n).is_some();
    let unused: Vec<String> = w.params.keys().filter(|n| !declared(n)).cloned().collect();
    let missing: Vec<&str> =
        program.params.iter().filter(|p| !w.params.contains_key(&p.name)).map(|p| p.name.as_str()).collect();
    if w.epoch.is_none() {
        if let Some(n) = unused.first() {
            return Err(format!("{}: `{n}` is not a parameter of this program", path.display()));
        }
        if !missing.is_empty() && !allow_missing {
            return Err(format!(
                "{}: {} of the program's {} parameters are not in the file: {}; pass --allow-missing to keep their \
                 initial values",
                path.display(),
                missing.len(),
                program.params.len(),
                listed(&missing)
            ));
        }
    } else if let Some(p) = program.params.iter().find(|p| !w.params.contains_key(&p.name)) {
        return Err(format!(
            "{}: the checkpoint has no parameter `{}`; was it trained from this program and these choices?",
            path.display(),
            p.name
        ));
    }
    let values = w.params.iter().filter(|(n, _)| declared(n)).map(|(n, t)| (n.clone(), t.clone())).collect();
    Ok(Fitted { values, unused })
}

/// The values of `w` that `program` declares, to start training from (`train --init`);
/// `unused` names the file's other tensors. A file that matches no parameter is refused.
pub fn fit_init(w: &Weights, program: &Program, path: &Path) -> Result<Fitted, String> {
    let (values, unused): (Vec<_>, Vec<_>) = w.params.iter().partition(|(n, _)| program.param(n).is_some());
    if values.is_empty() {
        let theirs: Vec<&str> = w.params.keys().map(String::as_str).collect();
        let ours: Vec<&str> = program.params.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "{}: none of its tensors is a parameter of this program (the file has {}; the program declares {})",
            path.display(),
            listed(&theirs),
            listed(&ours)
        ));
    }
    Ok(Fitted {
        values: values.into_iter().map(|(n, t)| (n.clone(), t.clone())).collect(),
        unused: unused.into_iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// Up to ten names, then how many more.
fn listed(names: &[&str]) -> String {
    let shown = names.iter().take(10).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    match names.len() {
        n if n > 10 => format!("{shown} and {} more", n - 10),
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use archc_compiler::tir::{DType, Init, ParamDecl, TensorType};

    fn program(names: &[&str]) -> Program {
        let mut p = Program { name: "t".into(), params: Vec::new(), funcs: Vec::new() };
        for n in names {
            let ty = TensorType::new(DType::F32, vec![2.into()]);
            p.params.push(ParamDecl { name: n.to_string(), ty, init: Init::Zeros, trainable: true });
        }
        p
    }

    fn weights(names: &[&str], epoch: Option<u64>) -> Weights {
        let params = names
            .iter()
            .map(|n| (n.to_string(), Tensor::new(vec![2], archc_runtime::tensor::Data::F32(vec![1.0, 2.0])).unwrap()))
            .collect();
        Weights { params, epoch }
    }

    #[test]
    fn a_checkpoint_loads_what_the_program_declares_and_reports_the_rest() {
        let f = fit(&weights(&["a", "extra"], Some(3)), &program(&["a"]), Path::new("c"), false).unwrap();
        assert_eq!(f.values.len(), 1);
        assert_eq!(f.unused, vec!["extra".to_string()]);
        let e = fit(&weights(&["a"], Some(3)), &program(&["a", "b"]), Path::new("c"), true).err().unwrap();
        assert!(e.contains("no parameter `b`"), "{e}");
    }

    #[test]
    fn an_init_file_loads_the_parameters_it_shares_with_the_program() {
        let f = fit_init(&weights(&["a", "head"], Some(3)), &program(&["a", "b"]), Path::new("p")).unwrap();
        assert_eq!(f.values.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(f.unused, vec!["head".to_string()]);
        let e = fit_init(&weights(&["x"], None), &program(&["a"]), Path::new("p")).err().unwrap();
        assert!(e.contains("none of its tensors is a parameter of this program (the file has `x`"), "{e}");
    }

    #[test]
    fn a_plain_file_holds_every_parameter_unless_missing_ones_are_allowed() {
        let e = fit(&weights(&["a"], None), &program(&["a", "b", "c"]), Path::new("w"), false).err().unwrap();
        assert!(e.contains("2 of the program's 3 parameters are not in the file: `b`, `c`"), "{e}");
        assert!(e.contains("--allow-missing"), "{e}");
        let f = fit(&weights(&["a"], None), &program(&["a", "b"]), Path::new("w"), true).unwrap();
        assert_eq!(f.values.len(), 1);
        let e = fit(&weights(&["a", "typo"], None), &program(&["a"]), Path::new("w"), true).err().unwrap();
        assert!(e.contains("`typo` is not a parameter"), "{e}");
    }

    #[test]
    fn long_lists_of_missing_names_are_cut() {
        let names: Vec<String> = (0..13).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let e = fit(&weights(&[], None), &program(&refs), Path::new("w"), false).err().unwrap();
        assert!(e.contains("`p9` and 3 more"), "{e}");
        assert!(!e.contains("`p10`"), "{e}");
    }
}
