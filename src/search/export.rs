//! `best.arch`: the winner of a search as a plain program, with no `choose` left.
//!
//! Every `choose NAME in [..]` of the main file becomes `let NAME = OPTION` with the
//! option the candidate took there (the option's own source text), then the file is
//! formatted as `archc fmt` formats it. A `choose` the candidate never met (inside a
//! branch another decision disabled) takes its first option; the code around it is not
//! used by the candidate.
//!
//! A `choose` inside a layer that is instantiated several times makes one decision per
//! instance. When the instances took different options and every call of the layer is
//! inside a `repeat` of the same block (a cell per iteration, the usual per-cell search;
//! several repeats for several stages), the layer gets a parameter per such decision,
//! `NAME_option: int = 0`, the `choose` becomes `let NAME = [options][NAME_option]`, and
//! each call passes each iteration's option from a table indexed by its repeat's index
//! (`as i`, added when missing). A call's instances are those under its repeat's path
//! (`repeat_K`, the K-th repeat of the block in source order). Other per-instance
//! patterns are refused with the reason; the CLI then points at the
//! `--choices` that select the candidate. The plain program is the candidate's network:
//! a chosen layer spec becomes a lambda that applies it (`let op = h_ => Conv1d(..)(h_)`),
//! so every use makes its own instance as the spec did (a `let` of the spec would be one
//! instance shared by every use); an option chosen per instance from a table is bound by
//! `let` inside the layer, an instance named after the binding (`cell_0.op.w` where the
//! space had `cell_0.conv1d_0.w`); and an elastic width becomes a plain one (its
//! parameters sized to the width, not sliced from the largest). Relative paths of the
//! `train` block's `file(...)` data are joined to the space's folder
//! ([`absolute_data_paths`]), so `best.arch` reads the same data from its run folder.

use archc_compiler::sema::ChoiceRecord;
use archc_grammar::ast::{Expr, ExprKind, IndexItem, Item, Stmt};
use archc_grammar::span::{FileId, Span};

/// A `choose` in the source: where the statement is, its name, and its options' spans.
struct Site {
    span: Span,
    name: String,
    options: Vec<Span>,
    /// The layer whose body holds it.
    layer: Option<String>,
}

/// A layer call site `L(..)` and the `repeat` around it.
struct CallSite {
    /// The call `L(args)`.
    call: Span,
    has_args: bool,
    /// The innermost repeat around the call.
    repeat: Option<Repeat>,
}

/// A `repeat`: its count's span, its index name, whether it is a `stack`, and its
/// ordinal among the repeats of its block in source order (`repeat_K` in paths).
#[derive(Clone)]
struct Repeat {
    count: Span,
    index: Option<String>,
    stack: bool,
    ordinal: usize,
}

/// `text` with the relative paths of its `train` blocks' `file(...)` sources (the file,
/// a `test` file, or the `.npy` file of each field without one) joined to `dir`, the
/// space's folder, so that the program reads the same data from wherever it is written.
/// A path holding a quote or a backslash is left as it is.
pub fn absolute_data_paths(text: &str, dir: &std::path::Path) -> String {
    let (module, _) = archc_grammar::parse(FileId(0), text);
    let mut spans = Vec::new();
    for item in &module.items {
        if let Item::Train(t) = item {
            data_path_literals(&t.data, &mut spans);
        }
    }
    spans.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for (span, path) in spans {
        let joined = dir.join(&path).display().to_string();
        if std::path::Path::new(&path).is_relative() && !joined.contains(['"', '\\']) {
            out.replace_range(span.start as usize..span.end as usize, &format!("\"{joined}\""));
        }
    }
    out
}

/// The string literals of `file(...)` that are paths, with their values.
fn data_path_literals(e: &Expr, out: &mut Vec<(Span, String)>) {
    let ExprKind::Call(callee, args) = &e.kind else { return };
    if !matches!(&callee.kind, ExprKind::Name(n) if n == "file") {
        return;
    }
    let has_path = args.iter().any(|a| a.name.is_none());
    for a in args {
        match (&a.name, &a.value.kind) {
            (None, ExprKind::Str(p)) => out.push((a.value.span, p.clone())),
            (Some(n), ExprKind::Str(p)) if n.node == "test" || !has_path => out.push((a.value.span, p.clone())),
            (Some(n), ExprKind::Call(..)) if n.node == "test" => data_path_literals(&a.value, out),
            _ => {}
        }
    }
}

/// The main file `text` (file id `file`) with every `choose` resolved as `decisions` say.
pub fn export(text: &str, file: FileId, decisions: &[ChoiceRecord]) -> Result<String, String> {
    let (module, errors) = archc_grammar::parse(file, text);
    if !errors.is_empty() {
        return Err("the space file has syntax errors".into());
    }
    let mut sites = Vec::new();
    for item in &module.items {
        if let Item::Block(b) = item {
            let layer = Some(b.name.node.clone());
            let start = sites.len();
            b.body.iter().for_each(|s| stmt_sites(s, &mut sites));
            sites[start..].iter_mut().for_each(|s: &mut Site| s.layer = layer.clone());
        }
    }
    let mut edits: Vec<(Span, String)> = Vec::new();
    let mut per_site: Vec<(&Site, Vec<&ChoiceRecord>)> = Vec::new();
    for site in &sites {
        let here: Vec<&ChoiceRecord> = decisions.iter().filter(|d| d.span == site.span).collect();
        match agreed(&site.name, &here) {
            Ok(k) => {
                let option = site.options.get(k).ok_or_else(|| format!("`{}` has no option {k}", site.name))?;
                edits.push((site.span, let_option(&site.name, &text[option.range()])));
            }
            Err(e) => {
                if site.layer.is_none() {
                    return Err(e);
                }
                per_site.push((site, here));
            }
        }
    }
    if let Err(reason) = per_instance_edits(text, &module, &per_site, &mut edits) {
        let (site, here) = &per_site[0];
        return Err(format!("{}; {reason}", agreed(&site.name, here).err().unwrap_or_default()));
    }
    apply(text, edits)
}

/// `let NAME = OPTION`; a layer spec option (`Conv1d(..)`) as a lambda that applies it,
/// `let NAME = h_ => Conv1d(..)(h_)`, so that each use makes an instance of its own, as
/// the space's spec did (`let NAME = Conv1d(..)` would be one instance, its weights
/// shared by every use).
fn let_option(name: &str, option: &str) -> String {
    let head: String = option.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
    let spec = head.rsplit('.').next().is_some_and(|n| n.starts_with(|c: char| c.is_ascii_uppercase()))
        && option[head.len()..].trim_start().starts_with('(');
    match spec {
        true => format!("let {name} = h_ => {option}(h_)"),
        false => format!("let {name} = {option}"),
    }
}

/// `text` with the edits made (spans of the original text; inserts are empty spans).
fn apply(text: &str, mut edits: Vec<(Span, String)>) -> Result<String, String> {
    edits.sort_by_key(|(s, _)| std::cmp::Reverse((s.start, s.end)));
    let mut out = text.to_string();
    for (span, new) in edits {
        out.replace_range(span.range(), &new);
    }
    Ok(archc_grammar::fmt::format_source(&out).unwrap_or(out))
}

/// The edits that give each instance of a layer its own options (see the module docs).
fn per_instance_edits(
    text: &str,
    module: &archc_grammar::ast::Module,
    per_site: &[(&Site, Vec<&ChoiceRecord>)],
    edits: &mut Vec<(Span, String)>,
) -> Result<(), String> {
    let mut layers: Vec<&str> = per_site.iter().filter_map(|(s, _)| s.layer.as_deref()).collect();
    layers.dedup();
    for layer in layers {
        let sites: Vec<&(&Site, Vec<&ChoiceRecord>)> =
            per_site.iter().filter(|(s, _)| s.layer.as_deref() == Some(layer)).collect();
        let calls = calls_in_repeats(module, layer)?;
        let mut params = Vec::new();
        for (site, _) in &sites {
            let param = format!("{}_option", site.name);
            let options: Vec<&str> = site.options.iter().map(|o| &text[o.range()]).collect();
            edits.push((site.span, format!("let {} = [{}][{param}]", site.name, options.join(", "))));
            params.push(format!("{param}: int = 0"));
        }
        add_params(module, layer, &params, edits)?;
        for (call, rep) in &calls {
            let idx = rep.index.clone().unwrap_or_else(|| "site".to_string());
            if rep.index.is_none() {
                edits.push((Span { start: rep.count.end, end: rep.count.end, ..rep.count }, format!(" as {idx}")));
            }
            let mut args = Vec::new();
            for (site, here) in &sites {
                let mine: Vec<&ChoiceRecord> =
                    here.iter().copied().filter(|d| repeat_of(&d.name) == Some(rep.ordinal)).collect();
                let table = if mine.is_empty() { vec![0] } else { iteration_table(&site.name, &mine)? };
                let shown: Vec<String> = table.iter().map(usize::to_string).collect();
                args.push(format!("{}_option = [{}][{idx}]", site.name, shown.join(", ")));
            }
            let at = call.call.end - 1;
            let sep = if call.has_args { ", " } else { "" };
            edits.push((Span { start: at, end: at, ..call.call }, format!("{sep}{}", args.join(", "))));
        }
    }
    Ok(())
}

/// The `K` of the last `repeat_K.N` (repeat, iteration) pair of a decision's path.
fn repeat_of(path: &str) -> Option<usize> {
    let segs: Vec<&str> = path.split('.').collect();
    segs.windows(2)
        .rev()
        .find(|w| w[0].starts_with("repeat_") && w[1].parse::<usize>().is_ok())
        .and_then(|w| w[0].trim_start_matches("repeat_").parse().ok())
}

/// Each repeat iteration's option of a per-instance decision: the instances' paths
/// must differ in exactly one numeric segment (the iteration); iterations not met take 0.
fn iteration_table(name: &str, here: &[&ChoiceRecord]) -> Result<Vec<usize>, String> {
    let paths: Vec<Vec<&str>> = here.iter().map(|d| d.name.split('.').collect()).collect();
    let differing: Vec<usize> = (0..paths[0].len())
        .filter(|&i| paths.iter().any(|p| p.len() != paths[0].len() || p.get(i) != paths[0].get(i)))
        .collect();
    let bad = || format!("the instances of `choose {name}` do not differ by one repeat iteration");
    let [pos] = differing[..] else { return Err(bad()) };
    let mut table: Vec<usize> = Vec::new();
    for (p, d) in paths.iter().zip(here) {
        let it: usize = p[pos].parse().map_err(|_| bad())?;
        if it >= table.len() {
            table.resize(it + 1, 0);
        }
        table[it] = d.chosen;
    }
    Ok(table)
}

/// Adds `params` (`NAME: int = 0`) to the parameters of `layer`.
fn add_params(
    module: &archc_grammar::ast::Module,
    layer: &str,
    params: &[String],
    edits: &mut Vec<(Span, String)>,
) -> Result<(), String> {
    let b = module
        .items
        .iter()
        .find_map(|i| match i {
            Item::Block(b) if b.name.node == layer => Some(b),
            _ => None,
        })
        .ok_or_else(|| format!("no layer `{layer}`"))?;
    let (at, text) = match b.params.last() {
        Some(p) => (p.span.end, format!(", {}", params.join(", "))),
        None => (b.name.span.end, format!("({})", params.join(", "))),
    };
    edits.push((Span { start: at, end: at, ..b.name.span }, text));
    Ok(())
}

/// Every call `layer(..)` of the file with the `repeat` around it; each must be in a
/// `repeat` (not a `stack`), all in one block.
fn calls_in_repeats(module: &archc_grammar::ast::Module, layer: &str) -> Result<Vec<(CallSite, Repeat)>, String> {
    let mut found = Vec::new();
    let mut blocks = 0;
    for item in &module.items {
        if let Item::Block(b) = item {
            let (before, mut ordinal) = (found.len(), 0);
            for s in &b.body {
                match s {
                    Stmt::Let { value, .. } | Stmt::Output { value, .. } => {
                        calls(value, layer, None, &mut found, &mut ordinal)
                    }
                    Stmt::Forward(f) => calls(&f.body, layer, None, &mut found, &mut ordinal),
                    _ => {}
                }
            }
            blocks += usize::from(found.len() > before);
        }
    }
    if found.is_empty() || blocks > 1 {
        return Err(format!(
            "`{layer}` is called in {} places of {blocks} blocks; its instances can take their own options \
             only when its calls are in repeats of one block",
            found.len()
        ));
    }
    found
        .into_iter()
        .map(|c| match c.repeat.clone() {
            None => Err(format!(
                "`{layer}` is not called inside a `repeat`, so its instances cannot take their own options"
            )),
            Some(r) if r.stack => {
                Err(format!("`{layer}` is called inside a `stack`, whose blocks cannot take their own options"))
            }
            Some(r) => Ok((c, r)),
        })
        .collect()
}

fn calls(e: &Expr, layer: &str, repeat: Option<Repeat>, out: &mut Vec<CallSite>, ordinal: &mut usize) {
    let mut go = |x: &Expr, ord: &mut usize| calls(x, layer, repeat.clone(), out, ord);
    match &e.kind {
        ExprKind::Call(f, args) => {
            if matches!(&f.kind, ExprKind::Name(n) if n == layer) {
                out.push(CallSite { call: e.span, has_args: !args.is_empty(), repeat: repeat.clone() });
            }
            calls(f, layer, repeat.clone(), out, ordinal);
            args.iter().for_each(|a| calls(&a.value, layer, repeat.clone(), out, ordinal));
        }
        ExprKind::Repeat { count, index, body, stack } => {
            calls(count, layer, repeat.clone(), out, ordinal);
            let here = Repeat {
                count: count.span,
                index: index.as_ref().map(|i| i.node.clone()),
                stack: *stack,
                ordinal: *ordinal,
            };
            *ordinal += 1;
            calls(body, layer, Some(here), out, ordinal);
        }
        ExprKind::Block(lets, result) => {
            lets.iter().for_each(|l| go(&l.value, ordinal));
            go(result, ordinal);
        }
        ExprKind::List(xs) => xs.iter().for_each(|x| go(x, ordinal)),
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) | ExprKind::Lambda(_, x) => go(x, ordinal),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            go(a, ordinal);
            go(b, ordinal);
        }
        ExprKind::Index(x, items) => {
            go(x, ordinal);
            for it in items {
                if let IndexItem::Expr(i) = it {
                    go(i, ordinal);
                }
            }
        }
        ExprKind::If(c, a, b) => {
            go(c, ordinal);
            go(a, ordinal);
            go(b, ordinal);
        }
        _ => {}
    }
}

/// The option every instance of a `choose` took (the first when none met it).
fn agreed(name: &str, here: &[&ChoiceRecord]) -> Result<usize, String> {
    let Some(first) = here.first() else { return Ok(0) };
    if here.iter().all(|d| d.chosen == first.chosen) {
        return Ok(first.chosen);
    }
    let shown: Vec<String> = here.iter().map(|d| format!("{} = {}", d.name, d.options[d.chosen])).collect();
    Err(format!("the instances of `choose {name}` took different options ({})", shown.join(", ")))
}

fn stmt_sites(s: &Stmt, out: &mut Vec<Site>) {
    match s {
        Stmt::Choose { name, options, span, .. } => {
            let spans = options.iter().map(|o| o.span).collect();
            out.push(Site { span: *span, name: name.node.clone(), options: spans, layer: None });
            options.iter().for_each(|o| expr_sites(o, out));
        }
        Stmt::Forward(f) => expr_sites(&f.body, out),
        Stmt::Let { value, .. } | Stmt::Output { value, .. } => expr_sites(value, out),
        _ => {}
    }
}

fn expr_sites(e: &Expr, out: &mut Vec<Site>) {
    match &e.kind {
        ExprKind::Block(lets, result) => {
            for l in lets {
                match (&l.choose, &l.value.kind) {
                    (true, ExprKind::List(options)) => out.push(Site {
                        span: l.span,
                        name: l.name.node.clone(),
                        options: options.iter().map(|o| o.span).collect(),
                        layer: None,
                    }),
                    _ => expr_sites(&l.value, out),
                }
            }
            expr_sites(result, out);
        }
        ExprKind::List(xs) => xs.iter().for_each(|x| expr_sites(x, out)),
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) | ExprKind::Lambda(_, x) => expr_sites(x, out),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            expr_sites(a, out);
            expr_sites(b, out);
        }
        ExprKind::Call(f, args) => {
            expr_sites(f, out);
            args.iter().for_each(|a| expr_sites(&a.value, out));
        }
        ExprKind::Index(x, items) => {
            expr_sites(x, out);
            for it in items {
                if let IndexItem::Expr(i) = it {
                    expr_sites(i, out);
                }
            }
        }
        ExprKind::If(c, a, b) => {
            expr_sites(c, out);
            expr_sites(a, out);
            expr_sites(b, out);
        }
        ExprKind::Repeat { count, body, .. } => {
            expr_sites(count, out);
            expr_sites(body, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, options: &[&str], chosen: usize, span: Span) -> ChoiceRecord {
        ChoiceRecord { name: name.into(), options: options.iter().map(|s| s.to_string()).collect(), chosen, span }
    }

    fn span_of(text: &str, needle: &str, end: &str) -> Span {
        let start = text.find(needle).expect("needle");
        let stop = start + text[start..].find(end).expect("end") + end.len();
        Span { file: FileId(0), start: start as u32, end: stop as u32 }
    }

    const SPACE: &str = "network N {\n    choose width in [16, 32] shared\n    input x: f32[B, 4]\n    \
                         output y = x |> Linear(4, width) |> { let h = relu; choose act in [relu, tanh]\n act }\n}\n";

    #[test]
    fn every_choose_becomes_a_let_of_its_option() {
        let w = span_of(SPACE, "choose width", "shared");
        let a = span_of(SPACE, "choose act", "tanh]");
        let d = [record("width", &["16", "32"], 1, w), record("linear_0.act", &["relu", "tanh"], 1, a)];
        let out = export(SPACE, FileId(0), &d).expect("exports");
        assert!(out.contains("let width = 32") && out.contains("let act = tanh"), "{out}");
        assert!(!out.contains("choose"), "{out}");
    }

    #[test]
    fn instances_that_disagree_are_refused() {
        let a = span_of(SPACE, "choose act", "tanh]");
        let d = [record("a.act", &["relu", "tanh"], 0, a), record("b.act", &["relu", "tanh"], 1, a)];
        let e = export(SPACE, FileId(0), &d).unwrap_err();
        assert!(e.contains("a.act = relu, b.act = tanh") && e.contains("called in 0 places"), "{e}");
    }

    const CELLS: &str = "layer Cell(c: int) {\n    choose op in [relu, tanh, skip]\n    fn (x: f32[B, c]) -> f32[B, c] {\n        \
                         choose src in [x, x * 2.0]\n        op(src)\n    }\n}\n\nnetwork N {\n    input x: f32[B, 4]\n    \
                         output y = x |> repeat 3 { Cell(4) }\n}\n";

    #[test]
    fn cells_of_a_repeat_get_their_options_by_iteration() {
        let op = span_of(CELLS, "choose op", "skip]");
        let src = span_of(CELLS, "choose src", "2.0]");
        let ops = ["relu", "tanh", "skip"];
        let srcs = ["x", "x * 2.0"];
        let d = [
            record("repeat_0.0.cell_0.op", &ops, 2, op),
            record("repeat_0.0.cell_0.src", &srcs, 0, src),
            record("repeat_0.1.cell_0.op", &ops, 0, op),
            record("repeat_0.1.cell_0.src", &srcs, 1, src),
            record("repeat_0.2.cell_0.op", &ops, 1, op),
            record("repeat_0.2.cell_0.src", &srcs, 1, src),
        ];
        let out = export(CELLS, FileId(0), &d).expect("exports");
        assert!(out.contains("layer Cell(c: int, op_option: int = 0, src_option: int = 0)"), "{out}");
        assert!(out.contains("let op = [relu, tanh, skip][op_option]"), "{out}");
        assert!(out.contains("let src = [x, x * 2.0][src_option]"), "{out}");
        assert!(
            out.contains("repeat 3 as site { Cell(4, op_option = [2, 0, 1][site], src_option = [0, 1, 1][site]) }"),
            "{out}"
        );
        assert!(!out.contains("choose"), "{out}");
    }

    const STAGES: &str =
        "layer Cell(c: int) {\n    choose op in [relu, tanh, skip]\n    fn (x: f32[B, c]) -> f32[B, c] {\n        \
                          op(x)\n    }\n}\n\nnetwork N {\n    input x: f32[B, 4]\n    \
                          let a = x |> repeat 2 { Cell(4) }\n    let b = a |> repeat 0 { Cell(4) }\n    \
                          output y = b |> repeat 3 as j { Cell(4) }\n}\n";

    #[test]
    fn cells_of_several_repeats_get_their_options_by_repeat_and_iteration() {
        let op = span_of(STAGES, "choose op", "skip]");
        let ops = ["relu", "tanh", "skip"];
        let d = [
            record("repeat_0.0.cell_0.op", &ops, 1, op),
            record("repeat_0.1.cell_0.op", &ops, 2, op),
            record("repeat_2.0.cell_0.op", &ops, 0, op),
            record("repeat_2.1.cell_0.op", &ops, 2, op),
            record("repeat_2.2.cell_0.op", &ops, 1, op),
        ];
        let out = export(STAGES, FileId(0), &d).expect("exports");
        assert!(out.contains("layer Cell(c: int, op_option: int = 0)"), "{out}");
        assert!(out.contains("repeat 2 as site { Cell(4, op_option = [1, 2][site]) }"), "{out}");
        assert!(out.contains("repeat 0 as site { Cell(4, op_option = [0][site]) }"), "{out}");
        assert!(out.contains("repeat 3 as j { Cell(4, op_option = [0, 2, 1][j]) }"), "{out}");
    }
}
