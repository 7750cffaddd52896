//! `archc adapt`: chains and moves, the searches, running chains on a cut network, and
//! the command line (programs in `tests/adapt/`). Tests that read a data set say so
//! when it is missing and skip.

mod common;

use archc::adapt::chain::{Chain, Space};
use archc::adapt::exec::Runner;
use archc::adapt::lockstep::{adapt_all, Outcome, Problem};
use archc::adapt::score::Score;
use archc::adapt::search::{self, Rng, SearchSpec};
use archc::adapt::split::split;
use archc::backend::Backend;
use archc_compiler::sema::adapt::SearchKind;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_runtime::{Interpreter, Tensor};
use std::collections::HashSet;
use std::path::PathBuf;

fn program(name: &str) -> Program {
    let path = common::repo().join("tests/adapt").join(name);
    let out = common::check(&path, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}", common::rendered(&out));
    out.program.expect("a program")
}

/// The program's parameters drawn with seed 0, as the interpreter draws them.
fn params(p: &Program) -> Vec<(String, Tensor)> {
    let mut interp = Interpreter::new(p);
    interp.init_params(0).expect("params");
    let mut v: Vec<(String, Tensor)> = interp.params().iter().map(|(k, t)| (k.clone(), t.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn inputs(p: &Program, batch: i64) -> Vec<Tensor> {
    let dims = [("B".to_string(), batch)].into_iter().collect();
    common::random_inputs_with(p.main(), &dims)
}

// --- chains and moves --------------------------------------------------------------

/// Random walks through random spaces: every move stays in bounds, is new, and differs
/// from its parent.
#[test]
fn moves_respect_max_uses_and_length_bounds() {
    let mut rng = Rng::new(7);
    for case in 0..300 {
        let depth = 1 + rng.below(8);
        let repeat = (rng.below(3) > 0).then(|| 1 + rng.below(3));
        let skip = repeat.is_none() || rng.below(2) == 0;
        let max_uses = repeat.unwrap_or(1);
        let lo = 1 + rng.below(depth);
        let hi = lo + rng.below(depth * max_uses - lo + 1);
        let space = Space::new(depth, skip, repeat, Some((lo, hi)));
        let mut c = Chain::trained(depth);
        for step in 0..12 {
            let moves = space.moves(&c, step == 0);
            let distinct: HashSet<&Chain> = moves.iter().collect();
            assert_eq!(distinct.len(), moves.len(), "case {case}: repeated moves from {c}");
            for m in &moves {
                assert!(m != &c, "case {case}: a move back to {c}");
                assert!((lo..=hi).contains(&m.len()), "case {case}: {m} outside [{lo}, {hi}]");
                for b in 0..depth {
                    assert!(m.uses(b) <= max_uses, "case {case}: block {b} used more than {max_uses} times in {m}");
                }
                assert!(m.len().abs_diff(c.len()) <= if step == 0 { 4 } else { 1 }, "case {case}: {c} -> {m}");
            }
            if moves.is_empty() {
                break;
            }
            c = moves[rng.below(moves.len())].clone();
        }
    }
}

/// Levenshtein distance between chains.
fn distance(a: &[usize], b: &[usize]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(x != y)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A scorer with one best chain, `[0, 2, 2, 5]` (score 1), three moves from the root.
fn synthetic(c: &Chain) -> f64 {
    (1.0 - distance(&c.0, &[0, 2, 2, 5]) as f64 / 3.0).max(0.0)
}

fn found_by(kind: SearchKind, seed: u64) -> (Chain, usize) {
    let space = Space::new(6, true, Some(2), None);
    let spec = SearchSpec { kind, length_penalty: 0.0, seed };
    let mut s = search::start(&space, &spec, 0);
    let evaluated = search::run_with(s.as_mut(), synthetic);
    let best = search::pick(&evaluated, |i| evaluated[i].1).expect("something evaluated");
    let seen: HashSet<&Chain> = evaluated.iter().map(|e| &e.0).collect();
    assert_eq!(seen.len(), evaluated.len(), "a chain was evaluated twice");
    assert_eq!(evaluated[0].0, Chain::trained(6), "the root comes first");
    (evaluated[best].0.clone(), evaluated.len())
}

#[test]
fn mcts_finds_the_best_chain_of_a_synthetic_scorer() {
    for seed in 0..5 {
        let (best, n) = found_by(SearchKind::Mcts { simulations: 600, epsilon: 0.1 }, seed);
        assert_eq!(best, Chain(vec![0, 2, 2, 5]), "seed {seed}");
        assert!(n <= 600, "{n} evaluations over the budget");
    }
}

#[test]
fn greedy_and_beam_climb_to_the_best_chain() {
    assert_eq!(found_by(SearchKind::Greedy, 0).0, Chain(vec![0, 2, 2, 5]));
    assert_eq!(found_by(SearchKind::Beam { width: 3 }, 0).0, Chain(vec![0, 2, 2, 5]));
}

#[test]
fn mcts_is_seeded_and_repeats() {
    let space = Space::new(5, true, Some(2), None);
    let run = |seed| {
        let spec = SearchSpec { kind: SearchKind::Mcts { simulations: 60, epsilon: 0.2 }, length_penalty: 1.0, seed };
        let mut s = search::start(&space, &spec, 3);
        search::run_with(s.as_mut(), |c| (c.0.iter().sum::<usize>() % 7) as f64 / 7.0)
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2), "another seed explores another way");
}

#[test]
fn mcts_stops_when_the_space_is_exhausted() {
    // Depth 2 without repeats: [0, 1], [0], [1] only.
    let space = Space::new(2, true, None, None);
    let spec = SearchSpec { kind: SearchKind::Mcts { simulations: 1000, epsilon: 0.1 }, length_penalty: 0.0, seed: 0 };
    let mut s = search::start(&space, &spec, 0);
    let evaluated = search::run_with(s.as_mut(), |c| c.len() as f64);
    assert_eq!(evaluated.len(), 3);
    assert!(s.propose().is_empty());
}

// --- running chains ------------------------------------------------------------------

fn runner_for<'s>(split: &'s archc::adapt::split::Split, p: &Program, backend: Backend) -> Runner<'s> {
    let mut r = Runner::new(split, backend).expect("runner");
    for (n, t) in params(p) {
        r.set_param(&n, t).expect("param");
    }
    r
}

/// The trained order through prefix, blocks and suffix gives `@main`'s output, bit for
/// bit, also for values crossing the stack and a second output.
#[test]
fn the_trained_order_reproduces_the_network_exactly() {
    for (file, stack) in [("tiny_digits.arch", "blocks"), ("crossing.arch", "blocks")] {
        let p = program(file);
        let s = split(&p, stack).expect("split");
        let x = inputs(&p, 5);
        let mut interp = Interpreter::new(&p);
        for (n, t) in params(&p) {
            interp.set_param(&n, t).expect("param");
        }
        let want = interp.run("main", &x).expect("main runs");
        for (output, wanted) in want.iter().enumerate() {
            let mut cut = s.clone();
            cut.output = output;
            let mut r = runner_for(&cut, &p, Backend::Interp);
            let st = r.prefix(x.clone()).expect("prefix");
            let trained: Vec<usize> = (0..s.depth()).collect();
            let pairs: Vec<(usize, &[usize])> = (0..5).map(|i| (i, trained.as_slice())).collect();
            let got = r.eval(&st, &pairs).expect("chains run");
            assert_eq!(&got, wanted, "{file}: output {output}");
        }
    }
}

/// A chain's output does not depend on the pairs sharing its call, and equals the
/// network rewritten to run that chain (`archc run --chain`).
#[test]
fn chains_run_alike_alone_and_batched() {
    let p = program("crossing.arch");
    let s = split(&p, "blocks").expect("split");
    let x = inputs(&p, 4);
    let mut r = runner_for(&s, &p, Backend::Interp);
    let st = r.prefix(x.clone()).expect("prefix");
    let chains: Vec<Vec<usize>> = vec![vec![0, 1, 2], vec![2], vec![0, 0, 1, 1], vec![1, 2, 2], vec![0, 2]];
    let pairs: Vec<(usize, &[usize])> = chains.iter().enumerate().map(|(k, c)| (k % 4, c.as_slice())).collect();
    let together = r.eval(&st, &pairs).expect("batched");
    for (k, pair) in pairs.iter().enumerate() {
        let alone = r.eval(&st, &[*pair]).expect("alone");
        let row = archc_runtime::data::gather_rows(&together, &[k]);
        assert_eq!(alone, row, "chain {:?}", pair.1);
        let rewritten = archc::adapt::split::with_chain(&p, Some("blocks"), pair.1).expect("rewritten");
        let mut interp = Interpreter::new(&rewritten);
        for (n, t) in params(&p) {
            interp.set_param(&n, t).expect("param");
        }
        let want = interp.run("main", &x).expect("runs");
        assert_eq!(archc_runtime::data::gather_rows(&want[0], &[pair.0]), row, "chain {:?}", pair.1);
    }
}

/// Six rounds of random chains on `backend` against the interpreter; the compile count
/// after each round.
fn chains_against_the_interpreter(backend: Backend) -> Vec<usize> {
    let p = program("tiny_digits.arch");
    let s = split(&p, "blocks").expect("split");
    let x = inputs(&p, 7);
    let mut compiled = runner_for(&s, &p, backend);
    let mut interp = runner_for(&s, &p, Backend::Interp);
    let (st_c, st_interp) = (compiled.prefix(x.clone()).expect("prefix"), interp.prefix(x).expect("prefix"));
    let space = Space::new(3, true, Some(2), None);
    let mut rng = Rng::new(1);
    let mut compiles = Vec::new();
    for round in 0..6 {
        let pairs: Vec<(usize, Vec<usize>)> = (0..1 + round)
            .map(|k| {
                let moves = space.moves(&Chain::trained(3), true);
                (k % 7, moves[rng.below(moves.len())].0.clone())
            })
            .collect();
        let refs: Vec<(usize, &[usize])> = pairs.iter().map(|(i, c)| (*i, c.as_slice())).collect();
        let got = compiled.eval(&st_c, &refs).expect("compiled backend");
        let want = interp.eval(&st_interp, &refs).expect("interp");
        assert!(got.allclose(&want, 1e-5, 1e-6), "{backend:?}: round {round}");
        compiles.push(compiled.compiles());
    }
    compiles
}

/// The Cranelift tier compiles prefix, blocks and suffix once each, for every batch size.
#[test]
fn cranelift_compiles_each_function_once_and_matches_the_interpreter() {
    let compiles = chains_against_the_interpreter(Backend::Cranelift);
    assert!(compiles.iter().all(|&c| c <= 5) && compiles.last() == Some(&5), "compile counts {compiles:?}");
}

#[cfg(feature = "mlir")]
#[test]
fn mlir_cpu_compiles_each_function_once_and_matches_the_interpreter() {
    let compiles = chains_against_the_interpreter(Backend::MlirCpu);
    let p = program("tiny_digits.arch");
    let s = split(&p, "blocks").expect("split");
    let mut cpu = runner_for(&s, &p, Backend::MlirCpu);
    // The trained order gives what the compiled `@main` gives (bit for bit today; the
    // backends promise 1e-6 between differently fused modules).
    let x = inputs(&p, 7);
    let mut main = archc_mlir::backend::MlirCpu::new(&p);
    for (n, t) in params(&p) {
        archc_runtime::Executor::set_param_value(&mut main, &n, t).expect("param");
    }
    let want = archc_runtime::Executor::run_func(&mut main, "main", &x, 0).expect("main runs");
    let trained = [0, 1, 2];
    let pairs: Vec<(usize, &[usize])> = (0..7).map(|i| (i, &trained[..])).collect();
    let st = cpu.prefix(x).expect("prefix");
    let got = cpu.eval(&st, &pairs).expect("chains run");
    assert!(got.allclose(&want[0], 1e-6, 1e-6), "the compiled cut differs from the compiled network");
    // prefix, three blocks, suffix: each once (when first used), whatever the batch
    // sizes and chains.
    assert!(compiles.iter().all(|&c| c <= 5) && compiles.last() == Some(&5), "compile counts {compiles:?}");
}

fn problem(score: Score, labels: Option<Vec<usize>>, seed: u64, batch: usize) -> Problem {
    Problem {
        space: Space::new(3, true, Some(2), None),
        spec: SearchSpec { kind: SearchKind::Mcts { simulations: 25, epsilon: 0.1 }, length_penalty: 0.5, seed },
        score,
        labels,
        batch,
    }
}

/// What a sample's adaptation decided: chain, predictions before and after, statistics.
type Decision = (Chain, Option<usize>, Option<usize>, bool, bool);

fn summary(o: &[Outcome]) -> Vec<Decision> {
    o.iter().map(|o| (o.chain.clone(), o.pred_before, o.pred_after, o.shorter_correct, o.any_correct)).collect()
}

#[test]
fn adaptation_is_seeded_repeats_and_ignores_the_batch_size() {
    let p = program("tiny_digits.arch");
    let s = split(&p, "blocks").expect("split");
    let mut r = runner_for(&s, &p, Backend::Interp);
    let st = r.prefix(inputs(&p, 6)).expect("prefix");
    let labels = Some(vec![0, 1, 2, 3, 4, 5]);
    for score in [Score::Confidence, Score::Agreement, Score::Oracle] {
        let (a, _) = adapt_all(&mut r, &st, &problem(score, labels.clone(), 3, 1024), |_| {}).expect("adapts");
        let (b, _) = adapt_all(&mut r, &st, &problem(score, labels.clone(), 3, 1024), |_| {}).expect("adapts");
        let (c, _) = adapt_all(&mut r, &st, &problem(score, labels.clone(), 3, 2), |_| {}).expect("adapts");
        assert_eq!(summary(&a), summary(&b), "{}", score.name());
        assert_eq!(summary(&a), summary(&c), "{}: batch size changed the result", score.name());
        assert!(a.iter().all(|o| o.evaluated <= 25 && o.evaluated > 1));
    }
    // The oracle picks a correct chain whenever one was evaluated.
    let (o, _) = adapt_all(&mut r, &st, &problem(Score::Oracle, labels, 3, 64), |_| {}).expect("adapts");
    assert!(o.iter().all(|o| o.correct_after() == o.any_correct));
}

// --- the command line ----------------------------------------------------------------

fn have_digits() -> bool {
    let there = archc_runtime::data::data_dir().join("digits.csv.gz").exists();
    if !there {
        eprintln!("skipped: digits.csv.gz not fetched (run `make data`)");
    }
    there
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("archc-adapt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Weights of `file`'s network drawn with seed 0, written as a plain weights file.
fn weights_file(file: &str, dir: &std::path::Path) -> PathBuf {
    let p = program(file);
    let path = dir.join("weights.safetensors");
    let ws = params(&p);
    archc_runtime::io::write_safetensors(&path, ws.iter().map(|(n, t)| (n.as_str(), t))).expect("written");
    path
}

fn text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn adapt_writes_chains_a_summary_and_a_plot_and_runs_them_back() {
    if !have_digits() {
        return;
    }
    let dir = fresh_dir("cli");
    let w = weights_file("tiny_digits.arch", &dir);
    let out = dir.join("out");
    let (w, out_s) = (w.to_str().expect("utf-8"), out.to_str().expect("utf-8"));
    let file = "tests/adapt/tiny_digits.arch";
    let args = ["adapt", file, "--checkpoint", w, "--limit", "30", "--backend", "interp", "--out", out_s, "--quiet"];
    let o = common::archc(&args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("accuracy: fixed"), "{stdout}");
    let lines = std::fs::read_to_string(out.join("chains.jsonl")).expect("chains.jsonl");
    assert_eq!(lines.lines().count(), 30);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["samples"], 30);
    assert_eq!(summary["score"], "confidence");
    assert!(summary["cola"]["wrong_fixed"].is_number());
    assert!(std::fs::read_to_string(out.join("adapt.svg")).expect("svg").contains("<svg"));
    // Again: the same chains (the files but for timings are identical).
    let o2 = common::archc(&args);
    assert!(o2.status.success());
    assert_eq!(std::fs::read_to_string(out.join("chains.jsonl")).expect("chains"), lines);
    // The chains run back give the adapted accuracy.
    let chains = out.join("chains.jsonl");
    let run = ["adapt", file, "--checkpoint", w, "--limit", "30", "--backend", "interp", "--chains"];
    let o = common::archc(&[&run[..], &[chains.to_str().expect("utf-8")]].concat());
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let acc = summary["accuracy_adapted"].as_f64().expect("accuracy");
    assert!(stdout.contains(&format!("accuracy: {acc:.4}")), "{stdout} vs {acc}");
    // --score overrides the block's.
    let o = common::archc(&[&args[..], &["--score", "oracle", "--simulations", "10"]].concat());
    assert!(o.status.success(), "{}", text(&o).1);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(s["score"], "oracle");
    assert!(s["accuracy_adapted"].as_f64() >= s["accuracy_fixed"].as_f64());
}

#[test]
fn archc_run_takes_a_chain() {
    let o = common::archc(&["run", "tests/adapt/crossing.arch", "--chain", "0,0,2", "--backend", "interp"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = common::archc(&["run", "tests/adapt/crossing.arch", "--chain", "blocks=0,5", "--backend", "interp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("block 5 does not exist"), "{}", text(&o).1);
}

/// Runs `archc adapt` on a broken case; its stderr, which must show a diagnostic.
fn diagnosed(file: &str, checkpoint: Option<&str>) -> String {
    let mut args = vec!["adapt", file, "--backend", "interp", "--quiet"];
    if let Some(c) = checkpoint {
        args.extend(["--checkpoint", c]);
    }
    let o = common::archc(&args);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("─[ {file}:")), "no span in:\n{err}");
    err
}

#[test]
fn bad_inputs_are_diagnosed_with_spans() {
    let err = diagnosed("tests/adapt/other_network.arch", None);
    assert!(err.contains("`adapt` names `Other`, but the `train` block trains `Trained`"), "{err}");
    let err = diagnosed("tests/adapt/no_stack.arch", None);
    assert!(err.contains("`Flat` has no `stack(n) { .. }` to adapt"), "{err}");
    let err = diagnosed("tests/adapt/shapes_differ.arch", None);
    assert!(err.contains("every block of a stack must keep the shape"), "{err}");
    if !have_digits() {
        return;
    }
    let dir = fresh_dir("other");
    let other = weights_file("crossing.arch", &dir);
    let err = diagnosed("tests/adapt/tiny_digits.arch", Some(other.to_str().expect("utf-8")));
    assert!(err.contains("holds the weights of another network than `TinyLooped`"), "{err}");
}

/// `tests/adapt/ui/*.arch`: `adapt` blocks that fail the check, each `// expect: TEXT`
/// line's text among the diagnostics, every diagnostic with its span.
#[test]
fn adapt_block_diagnostics() {
    let files = common::arch_files("tests/adapt/ui");
    assert!(files.len() >= 4, "ui cases missing");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let out = common::check(&path, &Options { check_all: true, ..Options::default() });
        let shown = common::rendered(&out);
        let expects: Vec<&str> =
            text.lines().filter_map(|l| l.trim().strip_prefix("// expect:")).map(str::trim).collect();
        assert!(!expects.is_empty(), "{}: no `// expect:` line", path.display());
        for e in expects {
            assert!(shown.contains(e), "{}: no `{e}` in\n{shown}", path.display());
        }
        let errors = shown.lines().filter(|l| l.starts_with("Error: ")).count();
        assert_eq!(shown.matches("─[ ").count(), errors, "{}: a diagnostic without a span:\n{shown}", path.display());
    }
}
