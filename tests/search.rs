//! `archc search` through the CLI: a search writes its trials, its winner as a plain
//! program and, with several objectives, the Pareto plot; it repeats with its seed, a
//! resumed search continues the recorded one exactly, workers give the results of the
//! in-process runner, and bad input is refused without losing trials.jsonl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn archc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archc")).args(args).output().expect("archc runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("trials.jsonl")).expect("trials.jsonl").lines().map(str::to_string).collect()
}

/// A trial line without its timing (which varies from run to run).
fn untimed(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("JSON");
    v.as_object_mut().expect("object").remove("seconds");
    v
}

fn search(out: &Path, extra: &[&str]) -> Output {
    let out = out.display().to_string();
    let mut args = vec!["search", "examples/nas_space.arch", "--out", &out, "--quiet"];
    args.extend_from_slice(extra);
    archc(&args)
}

#[test]
fn a_search_writes_trials_and_a_plain_winner_that_checks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("s");
    let o = search(
        &out,
        &["--strategy", "evolution", "--budget", "12", "--objective", "synflow,params", "--population", "4"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&out).len(), 12);
    let best = std::fs::read_to_string(out.join("best.arch")).expect("best.arch");
    assert!(!best.contains("choose"), "{best}");
    assert!(out.join("pareto.svg").exists() && out.join("best.txt").exists());
    let c = archc(&["check", &out.join("best.arch").display().to_string()]);
    assert!(c.status.success() && !text(&c).contains("search space"), "{}", text(&c));
    assert!(best.starts_with("// The winner of `archc search` over examples/nas_space.arch (trial "), "{best}");
    let f = archc(&["fmt", "--check", &out.join("best.arch").display().to_string()]);
    assert!(f.status.success(), "best.arch is not formatted as archc fmt formats: {}", text(&f));
    // The plain program is the winner: the same parameter count as its trial recorded.
    let again = search(
        &tmp.path().join("again"),
        &["--strategy", "evolution", "--budget", "12", "--objective", "synflow,params", "--population", "4"],
    );
    assert!(again.status.success());
    let strip = |v: Vec<String>| v.iter().map(|l| untimed(l)).collect::<Vec<_>>();
    assert_eq!(strip(lines(&out)), strip(lines(&tmp.path().join("again"))), "the same seed repeats the search");
}

#[test]
fn a_resumed_search_continues_the_recorded_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = ["--strategy", "mcts", "--objective", "synflow"];
    let whole = search(&a, &[&args[..], &["--budget", "10"]].concat());
    assert!(whole.status.success(), "{}", text(&whole));
    let part = search(&b, &[&args[..], &["--budget", "4"]].concat());
    assert!(part.status.success(), "{}", text(&part));
    let refused = search(&b, &[&args[..], &["--budget", "10"]].concat());
    assert!(!refused.status.success() && text(&refused).contains("--resume"), "{}", text(&refused));
    let resumed = search(&b, &[&args[..], &["--budget", "10", "--resume"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("4 replayed"), "{}", text(&resumed));
    let strip = |v: Vec<String>| v.iter().map(|l| untimed(l)).collect::<Vec<_>>();
    assert_eq!(strip(lines(&a)), strip(lines(&b)));
    // Another strategy cannot continue this log.
    let other = search(&b, &["--strategy", "random", "--objective", "synflow", "--budget", "12", "--resume"]);
    assert!(!other.status.success() && text(&other).contains("does not belong to this search"), "{}", text(&other));
}

#[test]
fn workers_and_threads_give_the_results_of_the_in_process_runner() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = ["--strategy", "random", "--objective", "snip,flops", "--budget", "4"];
    assert!(search(&a, &args).status.success());
    let o = search(&b, &[&args[..], &["--workers", "2"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let strip = |v: Vec<String>| v.iter().map(|l| untimed(l)).collect::<Vec<_>>();
    assert_eq!(strip(lines(&a)), strip(lines(&b)));
    let c = tmp.path().join("c");
    let o = search(&c, &[&args[..], &["--threads", "2"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(strip(lines(&a)), strip(lines(&c)));
}

#[test]
fn successive_halving_trains_the_best_third_on_until_one_is_left() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("sh");
    let args = ["--strategy", "random", "--budget", "6", "--objective", "accuracy", "--train-epochs", "1"];
    let o = search(&out, &[&args[..], &["--halving", "3", "--backend", "cranelift"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let rungs: Vec<serde_json::Value> = std::fs::read_to_string(out.join("halving.jsonl"))
        .expect("halving.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let shape: Vec<(u64, u64)> =
        rungs.iter().map(|r| (r["rung"].as_u64().unwrap(), r["epochs"].as_u64().unwrap())).collect();
    assert_eq!(shape, vec![(1, 3), (1, 3), (2, 9)], "{rungs:?}");
    let last = rungs[2]["trial"].as_u64().expect("trial");
    assert!(
        text(&o).contains(&format!("best: trial {last} (")) && text(&o).contains("successive halving kept"),
        "{}",
        text(&o)
    );
    let bad = search(&tmp.path().join("b"), &[&args[..], &["--halving", "1"]].concat());
    assert!(!bad.status.success() && text(&bad).contains("at least 2"), "{}", text(&bad));
    let bad = search(&tmp.path().join("c"), &["--objective", "synflow", "--halving", "3"]);
    assert!(!bad.status.success() && text(&bad).contains("first --objective"), "{}", text(&bad));
}

#[test]
fn the_winners_choices_and_weights_reproduce_its_accuracy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("w");
    let o = archc(&[
        "search",
        "examples/search_mnist1d.arch",
        "--strategy",
        "random",
        "--seed",
        "3",
        "--budget",
        "1",
        "--objective",
        "accuracy",
        "--train-epochs",
        "1",
        "--backend",
        "cranelift",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let trial: serde_json::Value = serde_json::from_str(&lines(&out)[0]).expect("JSON");
    let acc = trial["metrics"]["accuracy"].as_f64().expect("accuracy");
    // best.txt's --choices name edge options by their labels (`src=stem`).
    let best = std::fs::read_to_string(out.join("best.txt")).expect("best.txt");
    let choices = best.lines().next().and_then(|l| l.strip_prefix("--choices ")).expect("--choices line");
    let ckpt = out.join("trials/00000/checkpoint.safetensors").display().to_string();
    let e = archc(&[
        "eval",
        "examples/search_mnist1d.arch",
        "--choices",
        choices,
        "--checkpoint",
        &ckpt,
        "--backend",
        "cranelift",
    ]);
    assert!(e.status.success(), "{}", text(&e));
    assert!(text(&e).contains(&format!("accuracy: {acc:.4}")), "trial accuracy {acc}:\n{}", text(&e));
    // best.safetensors holds the same weights renamed and cut for best.arch (width 32 of
    // the space's 48 for this seed).
    assert!(choices.contains("width=32"), "{choices}");
    let (plain, weights) =
        (out.join("best.arch").display().to_string(), out.join("best.safetensors").display().to_string());
    let e = archc(&["eval", &plain, "--checkpoint", &weights, "--backend", "cranelift"]);
    assert!(e.status.success(), "{}", text(&e));
    assert!(text(&e).contains(&format!("accuracy: {acc:.4}")), "trial accuracy {acc}:\n{}", text(&e));
}

#[test]
fn bad_searches_are_refused_or_recorded_as_failed_trials() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = search(&tmp.path().join("z"), &["--budget", "0"]);
    assert!(!o.status.success() && text(&o).contains("at least one trial"), "{}", text(&o));
    let o = search(&tmp.path().join("z"), &["--objective", "speed"]);
    assert!(!o.status.success() && text(&o).contains("unknown objective `speed`"), "{}", text(&o));
    let plain: PathBuf = ["tests", "search", "no_choices.arch"].iter().collect();
    let o = archc(&["search", &plain.display().to_string(), "--out", &tmp.path().join("p").display().to_string()]);
    assert!(!o.status.success() && text(&o).contains("nothing to search"), "{}", text(&o));
    // hidden_cov needs a recurrent cell: every trial fails, each one is recorded.
    let out = tmp.path().join("h");
    let o = search(&out, &["--strategy", "random", "--objective", "hidden_cov", "--budget", "3"]);
    assert!(!o.status.success() && text(&o).contains("no trial succeeded"), "{}", text(&o));
    let log = lines(&out);
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|l| l.contains("\"status\":\"failed\"") && l.contains("scan")), "{log:?}");
}

/// `--max-latency`: candidates over the budget are recorded, never trained, and not
/// counted; the budget can be another network's latency, measured as candidates are; a
/// bad value is refused.
#[test]
fn a_latency_budget_rejects_slower_candidates_before_training() {
    let tmp = tempfile::tempdir().expect("tmp");
    let args = ["--strategy", "random", "--budget", "3", "--objective", "accuracy", "--train-epochs", "1"];
    let out = tmp.path().join("tight");
    let o = search(&out, &[&args[..], &["--max-latency", "0.000001"]].concat());
    // Rejected candidates do not count towards the budget: the search gives up after
    // 10 per trial of it.
    assert!(!o.status.success() && text(&o).contains("30 over --max-latency"), "{}", text(&o));
    let log = lines(&out);
    assert_eq!(log.len(), 30);
    let rejected = |l: &String| l.contains("\"status\":\"rejected\"") && l.contains("ms >");
    assert!(log.iter().all(rejected), "{log:?}");
    assert!(!out.join("trials").exists(), "a rejected candidate was trained");
    let loose = tmp.path().join("loose");
    let o = search(&loose, &[&args[..], &["--max-latency", "1e6"]].concat());
    assert!(o.status.success() && text(&o).contains("0 failed)"), "{}", text(&o));
    let o = search(&tmp.path().join("bad"), &["--max-latency", "0"]);
    assert!(!o.status.success() && text(&o).contains("positive number of milliseconds"), "{}", text(&o));
    let o = search(&tmp.path().join("ref"), &["--budget", "1", "--max-latency", "examples/train_mnist1d_cnn.arch"]);
    assert!(text(&o).contains("latency budget: ") && text(&o).contains("per forward of"), "{}", text(&o));
    // A reference at another batch size is refused before it is measured.
    let cnn = std::fs::read_to_string("examples/train_mnist1d_cnn.arch").expect("example");
    let other = tmp.path().join("batch50.arch");
    std::fs::write(&other, cnn.replace("batch: 100", "batch: 50")).expect("write");
    let o = search(&tmp.path().join("ref50"), &["--budget", "1", "--max-latency", &other.display().to_string()]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("batch is 50, the space's 100") && !t.contains("latency budget: "),
        "{t}"
    );
}
