//! `archc import MODEL.arch STATE_DICT -o W.safetensors`: a PyTorch `state_dict` as an
//! archc weights file (names as in `build --emit tir`, loaded by `run --weights`).
//!
//! Contract:
//! - The state dict is read by `archc_runtime::io` (`.pt` from `torch.save`, or
//!   `.safetensors`), which checks every size; nothing here panics on a hostile file.
//! - Matching: first the user's name map (`--map`, a JSON object PyTorch name -> archc
//!   parameter; every entry must name a tensor of the file and a parameter of the
//!   program, one tensor per parameter), then by structure for the rest. Tensors are
//!   grouped into PyTorch modules and archc layers by their path (the name up to the last
//!   `.`), and a module fits a layer when one conversion of [`layout`] gives exactly the
//!   layer's parameters and shapes. A layer with one fitting module that fits no other
//!   layer is matched; among layers and modules that fit each other alike, a `.pt` file
//!   pairs them in order (the pickle keeps PyTorch's registration order, [`order`]),
//!   and a `.safetensors` file (keys sorted) by the similarity of their paths (the
//!   module names and indices they share), only where one pairing is strictly best.
//! - Refusals (exit 1, every name listed): a parameter no tensor fits, a tensor that
//!   fits no parameter, and layers whose candidates cannot be told apart (ambiguous).
//!   `num_batches_tracked` (BatchNorm's step counter, which archc does not keep) is
//!   dropped and reported.
//! - On success one line per archc parameter is printed: name, source tensor(s),
//!   shape and the conversion applied; the file is written only then.

pub mod layout;
pub mod order;

use crate::driver::check_path;
use crate::render::render;
use archc_compiler::tir::Program;
use archc_runtime::{io, Tensor};
use layout::{ArchLeaves, Converted, TorchLeaves};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The most (archc layer, PyTorch module) pairs compared by structure.
const MAX_PAIRS: usize = 4_000_000;

/// The arguments of `archc import`.
#[derive(clap::Args, Clone, Debug)]
pub struct ImportArgs {
    /// The model (`.arch`).
    pub model: PathBuf,
    /// The PyTorch state dict: `.pt`/`.pth` (`torch.save`) or `.safetensors`.
    pub state_dict: PathBuf,
    /// The weights file to write (`.safetensors`, for `run --weights`).
    #[arg(short, long)]
    pub output: PathBuf,
    /// A JSON object mapping PyTorch names to archc parameter names, applied first.
    #[arg(long, value_name = "MAP.json")]
    pub map: Option<PathBuf>,
    #[command(flatten)]
    pub sel: crate::choices::EntryFlags,
}

/// An archc layer: parameters sharing a path.
struct ArchUnit {
    path: String,
    /// (leaf, full name, shape), in program order.
    params: Vec<(String, String, Vec<usize>)>,
}

/// A PyTorch module: tensors sharing a path (an RNN's `_lN` layers apart).
struct TorchUnit {
    path: String,
    /// leaf -> full key.
    leaves: BTreeMap<String, String>,
    /// The first of its keys in the pickle's order (`None` without order).
    rank: Option<usize>,
}

/// One archc parameter's value and where it came from.
struct Source {
    tensor: Tensor,
    from: String,
    how: String,
}

/// Runs `archc import`; `Err` is a user error (exit 1), its text ready to print.
pub fn run(args: &ImportArgs, color: bool) -> Result<(), String> {
    let program = build(args, color)?;
    let tensors = read_state_dict(&args.state_dict)?;
    let ordered = is_pt(&args.state_dict);
    let order = if ordered { order::pt_order(&args.state_dict, tensors.keys()) } else { None };
    let shapes = param_shapes(&program)?;
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mapped = match &args.map {
        Some(p) => apply_map(p, &tensors, &shapes, &mut sources)?,
        None => BTreeSet::new(),
    };
    let mut dropped = Vec::new();
    let units = torch_units(&tensors, &mapped, order.as_ref(), &mut dropped);
    let arch = arch_units(&program, &shapes, &sources);
    let problems = match_structure(&arch, &units, &tensors, order.is_some(), &mut sources)?;
    print(&report(&program, &sources, &dropped, order.is_some(), ordered))?;
    if let Some(p) = problems {
        return Err(p);
    }
    let values: Vec<(&str, &Tensor)> =
        program.params.iter().filter_map(|p| Some((p.name.as_str(), &sources.get(&p.name)?.tensor))).collect();
    io::write_safetensors(&args.output, values.iter().copied()).map_err(|e| format!("error: {e}"))?;
    print(&format!("wrote {} parameters to {}\n", values.len(), args.output.display()))
}

/// The program of the model, built as `archc run` builds it.
fn build(args: &ImportArgs, color: bool) -> Result<Program, String> {
    let user = |e: String| format!("error: {e}");
    let opts = args.sel.options().map_err(user)?;
    let out = check_path(&args.model, &opts).map_err(user)?;
    if !out.diagnostics.is_empty() {
        return Err(render(&out.diagnostics, &out.sources, color).trim_end().to_string());
    }
    out.program.ok_or_else(|| format!("error: {}: no network was built", args.model.display()))
}

fn is_pt(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("pt" | "pth" | "bin" | "ckpt"))
}

fn read_state_dict(path: &Path) -> Result<BTreeMap<String, Tensor>, String> {
    let r = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => io::read_safetensors(path),
        _ if is_pt(path) => io::read_pt(path),
        _ => {
            return Err(format!(
                "error: {}: expected a `.pt`/`.pth` (torch.save) or `.safetensors` file",
                path.display()
            ))
        }
    };
    r.map_err(|e| format!("error: {e}"))
}

/// Every parameter's concrete shape.
fn param_shapes(program: &Program) -> Result<BTreeMap<String, Vec<usize>>, String> {
    let mut out = BTreeMap::new();
    for p in &program.params {
        let shape: Option<Vec<usize>> =
            p.ty.shape.iter().map(|d| d.as_const().and_then(|c| usize::try_from(c).ok())).collect();
        let shape = shape.ok_or_else(|| format!("error: parameter `{}` has a symbolic shape", p.name))?;
        out.insert(p.name.clone(), shape);
    }
    Ok(out)
}

/// Applies the user's name map; returns the PyTorch names it used.
fn apply_map(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    shapes: &BTreeMap<String, Vec<usize>>,
    sources: &mut HashMap<String, Source>,
) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("error: {}: not JSON: {e}", path.display()))?;
    let obj = json.as_object().ok_or_else(|| format!("error: {}: expected a JSON object", path.display()))?;
    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    for (torch, arch) in obj {
        let Some(arch) = arch.as_str() else {
            errors.push(format!("`{torch}`: the value must be an archc parameter name (a string)"));
            continue;
        };
        let (Some(t), Some(shape)) = (tensors.get(torch), shapes.get(arch)) else {
            if !tensors.contains_key(torch) {
                errors.push(format!("`{torch}` -> `{arch}`: the state dict has no tensor `{torch}`"));
            }
            if !shapes.contains_key(arch) {
                errors.push(format!("`{torch}` -> `{arch}`: the program has no parameter `{arch}`"));
            }
            continue;
        };
        if sources.contains_key(arch) {
            errors.push(format!("`{torch}` -> `{arch}`: `{arch}` is mapped twice"));
            continue;
        }
        let Some(c) = layout::convert_one(t, shape) else {
            errors.push(format!("`{torch}` -> `{arch}`: shape {:?} does not fit {shape:?}", t.shape));
            continue;
        };
        sources.insert(arch.to_string(), Source { tensor: c.tensor, from: torch.clone(), how: c.how + " (--map)" });
        used.insert(torch.clone());
    }
    if !errors.is_empty() {
        return Err(format!("error: {}: {} bad entries:\n  {}", path.display(), errors.len(), errors.join("\n  ")));
    }
    Ok(used)
}

/// The PyTorch modules of the tensors not mapped; `num_batches_tracked` goes to `dropped`.
fn torch_units(
    tensors: &BTreeMap<String, Tensor>,
    mapped: &BTreeSet<String>,
    order: Option<&HashMap<String, usize>>,
    dropped: &mut Vec<String>,
) -> Vec<TorchUnit> {
    let mut units: BTreeMap<String, TorchUnit> = BTreeMap::new();
    for key in tensors.keys().filter(|k| !mapped.contains(*k)) {
        let (prefix, leaf) = key.rsplit_once('.').unwrap_or(("", key));
        if leaf == "num_batches_tracked" {
            dropped.push(key.clone());
            continue;
        }
        let (path, leaf) = torch_path(tensors, prefix, leaf);
        let rank = order.and_then(|o| o.get(key).copied());
        let u = units.entry(path.clone()).or_insert(TorchUnit { path, leaves: BTreeMap::new(), rank });
        u.rank = u.rank.min(rank).or(rank);
        u.leaves.insert(leaf, key.clone());
    }
    let mut out: Vec<TorchUnit> = units.into_values().collect();
    out.sort_by_key(|u| u.rank);
    out
}

/// The module path and leaf of a key: `attn.out_proj.weight` belongs to `attn` when
/// `attn` is an `nn.MultiheadAttention` (it has `in_proj_bias`); `lstm.weight_ih_l1` to
/// `lstm[l1]`.
fn torch_path(tensors: &BTreeMap<String, Tensor>, prefix: &str, leaf: &str) -> (String, String) {
    let (parent, last) = prefix.rsplit_once('.').unwrap_or(("", prefix));
    let join = |p: &str, l: &str| if p.is_empty() { l.to_string() } else { format!("{p}.{l}") };
    if last == "out_proj" && tensors.contains_key(&join(parent, "in_proj_bias")) {
        return (parent.to_string(), format!("out_proj.{leaf}"));
    }
    for stem in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
        if let Some(n) = leaf.strip_prefix(stem).and_then(|r| r.strip_prefix("_l")) {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return (format!("{prefix}[l{n}]"), stem.to_string());
            }
        }
    }
    (prefix.to_string(), leaf.to_string())
}

/// The archc layers of the parameters not yet given a value, in program order.
fn arch_units(
    program: &Program,
    shapes: &BTreeMap<String, Vec<usize>>,
    sources: &HashMap<String, Source>,
) -> Vec<ArchUnit> {
    let mut out: Vec<ArchUnit> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for p in program.params.iter().filter(|p| !sources.contains_key(&p.name)) {
        let (path, leaf) = p.name.rsplit_once('.').unwrap_or(("", &p.name));
        let i = *index.entry(path.to_string()).or_insert_with(|| {
            out.push(ArchUnit { path: path.to_string(), params: Vec::new() });
            out.len() - 1
        });
        out[i].params.push((leaf.to_string(), p.name.clone(), shapes[&p.name].clone()));
    }
    out
}

/// Pairs layers with modules (see the module docs) and fills `sources`; returns the
/// refusal's text when something is left unmatched or ambiguous.
fn match_structure(
    arch: &[ArchUnit],
    torch: &[TorchUnit],
    tensors: &BTreeMap<String, Tensor>,
    ordered: bool,
    sources: &mut HashMap<String, Source>,
) -> Result<Option<String>, String> {
    if arch.len().saturating_mul(torch.len()) > MAX_PAIRS {
        return Err(format!(
            "error: {} layers against {} modules is too many to match by structure; give a --map",
            arch.len(),
            torch.len()
        ));
    }
    let leaves = |u: &TorchUnit| -> TorchLeaves { u.leaves.iter().map(|(l, k)| (l.clone(), &tensors[k])).collect() };
    let count = |u: &TorchUnit| u.leaves.values().map(|k| layout::f32_count(&tensors[k])).sum::<usize>();
    let counts: Vec<usize> = torch.iter().map(count).collect();
    let mut fit: Vec<Vec<(usize, Vec<Converted>)>> = Vec::new();
    for a in arch {
        let want: ArchLeaves = a.params.iter().map(|(l, _, s)| (l.clone(), s.clone())).collect();
        let total: usize = want.values().map(|s| s.iter().product::<usize>()).sum();
        let c = torch
            .iter()
            .enumerate()
            .filter(|(t, _)| counts[*t] == total)
            .filter_map(|(t, u)| Some((t, layout::convert(&leaves(u), &want)?)))
            .collect();
        fit.push(c);
    }
    let pairs = resolve(arch, torch, &fit, ordered);
    let mut used = vec![false; torch.len()];
    for (a, t) in pairs.iter().enumerate() {
        let Some(t) = *t else { continue };
        used[t] = true;
        let conv = fit[a].iter().find(|(c, _)| *c == t).map(|(_, c)| c.clone()).unwrap_or_default();
        for c in conv {
            let Some((_, name, _)) = arch[a].params.iter().find(|(l, _, _)| *l == c.leaf) else { continue };
            let from: Vec<&str> = c.from.iter().filter_map(|l| torch[t].leaves.get(l).map(String::as_str)).collect();
            sources.insert(name.clone(), Source { tensor: c.tensor, from: from.join(" + "), how: c.how });
        }
    }
    Ok(problems(arch, torch, tensors, &fit, &pairs, &used))
}

/// Which module each layer takes (see the module docs).
fn resolve(
    arch: &[ArchUnit],
    torch: &[TorchUnit],
    fit: &[Vec<(usize, Vec<Converted>)>],
    ordered: bool,
) -> Vec<Option<usize>> {
    let mut pairs: Vec<Option<usize>> = vec![None; arch.len()];
    let mut used = vec![false; torch.len()];
    let open = |a: usize, pairs: &[Option<usize>], used: &[bool]| -> Vec<usize> {
        if pairs[a].is_some() {
            return Vec::new();
        }
        fit[a].iter().map(|(t, _)| *t).filter(|t| !used[*t]).collect()
    };
    loop {
        let mut progress = false;
        // A layer with one module left that no other open layer fits.
        for a in 0..arch.len() {
            let c = open(a, &pairs, &used);
            if let [t] = c[..] {
                let rivals = (0..arch.len()).filter(|&b| b != a && open(b, &pairs, &used).contains(&t)).count();
                if rivals == 0 {
                    pairs[a] = Some(t);
                    used[t] = true;
                    progress = true;
                }
            }
        }
        if progress {
            continue;
        }
        for (la, lt) in groups(arch.len(), &|a| open(a, &pairs, &used)) {
            let complete = la.iter().all(|&a| open(a, &pairs, &used).len() == lt.len());
            if ordered && complete && la.len() == lt.len() {
                // Layers in program order, modules in registration order.
                let mut lt = lt.clone();
                lt.sort_by_key(|&t| torch[t].rank);
                for (&a, &t) in la.iter().zip(&lt) {
                    pairs[a] = Some(t);
                    used[t] = true;
                }
                progress = true;
                continue;
            }
            for &a in &la {
                let c = open(a, &pairs, &used);
                let Some(t) = best(&arch[a].path, c.iter().map(|&t| (t, torch[t].path.as_str()))) else { continue };
                let rivals =
                    la.iter().filter(|&&b| open(b, &pairs, &used).contains(&t)).map(|&b| (b, arch[b].path.as_str()));
                if best(&torch[t].path, rivals) == Some(a) {
                    pairs[a] = Some(t);
                    used[t] = true;
                    progress = true;
                }
            }
        }
        if !progress {
            return pairs;
        }
    }
}

/// Connected groups of open layers and the modules they fit.
fn groups(n: usize, open: &dyn Fn(usize) -> Vec<usize>) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut out: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for a in 0..n {
        let c = open(a);
        if c.is_empty() {
            continue;
        }
        let joined: Vec<usize> = (0..out.len()).filter(|&g| c.iter().any(|t| out[g].1.contains(t))).collect();
        let mut merged = (vec![a], c);
        for &g in joined.iter().rev() {
            let (la, lt) = out.remove(g);
            merged.0.extend(la);
            merged.1.extend(lt);
        }
        merged.0.sort_unstable();
        merged.1.sort_unstable();
        merged.1.dedup();
        out.push(merged);
    }
    out
}

/// The candidate whose path is strictly most similar to `path`, if one is.
fn best<'a>(path: &str, candidates: impl Iterator<Item = (usize, &'a str)>) -> Option<usize> {
    let mut scored: Vec<(usize, usize)> = candidates.map(|(i, p)| (similarity(path, p), i)).collect();
    scored.sort_by_key(|x| std::cmp::Reverse(x.0));
    match scored[..] {
        [(s, i)] if s > 0 => Some(i),
        [(s, i), (r, _), ..] if s > r => Some(i),
        _ => None,
    }
}

/// Shared module names (an instance's `_N` dropped; one containing the other counts)
/// plus two when both paths have the same non-empty sequence of indices.
pub fn similarity(a: &str, b: &str) -> usize {
    let (wa, na) = tokens(a);
    let (wb, nb) = tokens(b);
    let words = wa
        .iter()
        .filter(|x| {
            wb.iter().any(|y| {
                x == &y || (x.len() >= 3 && y.len() >= 3 && (x.contains(y.as_str()) || y.contains(x.as_str())))
            })
        })
        .count();
    words + if !na.is_empty() && na == nb { 2 } else { 0 }
}

/// The words and the indices of a path (`repeat_0.1.norm1` -> [repeat, norm1], [1];
/// `lstm[l1]` -> [lstm], [1]).
fn tokens(path: &str) -> (Vec<String>, Vec<String>) {
    let mut words = Vec::new();
    let mut nums = Vec::new();
    for seg in path.split(['.', '[', ']']).filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            nums.push(seg.to_string());
        } else if let Some(n) = seg.strip_prefix('l').filter(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            nums.push(n.to_string());
        } else {
            let stem = match seg.rsplit_once('_') {
                Some((s, n)) if !s.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
                _ => seg,
            };
            words.push(stem.to_ascii_lowercase());
        }
    }
    (words, nums)
}

/// The refusal's text: parameters and tensors left over, and ambiguous groups.
fn problems(
    arch: &[ArchUnit],
    torch: &[TorchUnit],
    tensors: &BTreeMap<String, Tensor>,
    fit: &[Vec<(usize, Vec<Converted>)>],
    pairs: &[Option<usize>],
    used: &[bool],
) -> Option<String> {
    let open = |a: usize| -> Vec<usize> { fit[a].iter().map(|(t, _)| *t).filter(|t| !used[*t]).collect() };
    let open_a: Vec<usize> = (0..arch.len()).filter(|&a| pairs[a].is_none()).collect();
    let ambiguous = groups(arch.len(), &|a| if pairs[a].is_none() { open(a) } else { Vec::new() });
    let in_ambiguity: BTreeSet<usize> = ambiguous.iter().flat_map(|g| g.1.iter().copied()).collect();
    let mut text = Vec::new();
    let missing: Vec<String> = open_a
        .iter()
        .filter(|&&a| open(a).is_empty())
        .flat_map(|&a| arch[a].params.iter().map(|(_, n, s)| format!("    {n} {s:?}")))
        .collect();
    if !missing.is_empty() {
        text.push(format!("  archc parameters no PyTorch tensor fits ({}):\n{}", missing.len(), missing.join("\n")));
    }
    let extra: Vec<String> = (0..torch.len())
        .filter(|t| !used[*t] && !in_ambiguity.contains(t))
        .flat_map(|t| torch[t].leaves.values().map(|k| format!("    {k} {:?}", tensors[k].shape)))
        .collect();
    if !extra.is_empty() {
        text.push(format!("  PyTorch tensors that fit no archc parameter ({}):\n{}", extra.len(), extra.join("\n")));
    }
    for (la, lt) in &ambiguous {
        let names = |v: Vec<String>| v.join(", ");
        text.push(format!(
            "  ambiguous: the archc layers {} and the PyTorch modules {} fit each other alike (same shapes; no order or names tell them apart); give a --map",
            names(la.iter().map(|&a| format!("`{}`", arch[a].path)).collect()),
            names(lt.iter().map(|&t| format!("`{}`", torch[t].path)).collect()),
        ));
    }
    (!text.is_empty()).then(|| format!("error: cannot match the state dict to the program:\n{}", text.join("\n")))
}

/// The mapping, one line per archc parameter, what was dropped and where order came from.
fn report(
    program: &Program,
    sources: &HashMap<String, Source>,
    dropped: &[String],
    has_order: bool,
    pt: bool,
) -> String {
    let width = program.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for p in &program.params {
        if let Some(s) = sources.get(&p.name) {
            out += &format!("{:width$} <- {}  {:?}  {}\n", p.name, s.from, s.tensor.shape, s.how);
        }
    }
    for d in dropped {
        out += &format!("dropped {d}: BatchNorm's batch counter (archc keeps none)\n");
    }
    out += match (pt, has_order) {
        (true, true) => "order: the pickle's (PyTorch registration order)\n",
        (true, false) => "order: not found in the pickle; matched by shapes and names\n",
        _ => "order: none (safetensors keys are sorted); matched by shapes and names\n",
    };
    out
}

/// Writes to standard output; a closed pipe (`archc import ... | head`) is not an error.
fn print(text: &str) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("error: writing the mapping: {e}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_the_same_names_and_indices_are_most_similar() {
        assert!(similarity("repeat_0.1.norm1", "layers.1.norm1") > similarity("repeat_0.1.norm1", "layers.1.norm2"));
        assert!(
            similarity("repeat_0.1.attn", "layers.1.self_attn") > similarity("repeat_0.1.attn", "layers.0.self_attn")
        );
        assert_eq!(similarity("conv1d_1", "net.2"), similarity("conv1d_1", "net.4"));
        assert_eq!(tokens("lstm[l1]"), (vec!["lstm".to_string()], vec!["1".to_string()]));
    }
}
