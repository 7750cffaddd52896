//! One-shot supernets (`archc supernet`): the split step against the train step, size
//! symbols against concrete widths, gradients against finite differences, the subnets
//! and structures of a space, and seeded runs through the CLI.

mod common;

use archc::supernet::build::{build, func_name};
use archc::supernet::space::{Rule, Subnets};
use archc::supernet::train::bindings;
use archc_compiler::autodiff::{build_apply_func, build_grad_program, build_train_program};
use archc_compiler::sema::modules::{on_big_stack, ChoiceMode};
use archc_compiler::sema::space::SpaceFile;
use archc_compiler::sema::Options;
use archc_compiler::tir::{DType, Program};
use archc_runtime::{Interpreter, Tensor};
use rand::SeedableRng;

const SPACE: &str = "tests/supernet/digits_space.arch";

/// Runs `f` on the test space, opened (on a thread with a big stack, as builds need).
fn with_space<T: Send>(f: impl Fn(&SpaceFile) -> T + Send + Sync) -> T {
    with_space_at(SPACE, f)
}

/// Runs `f` on the space at `rel` (from the repository root), opened as [`with_space`].
fn with_space_at<T: Send>(rel: &str, f: impl Fn(&SpaceFile) -> T + Send + Sync) -> T {
    on_big_stack(|| {
        let path = common::repo().join(rel);
        let text = std::fs::read_to_string(&path).expect("readable");
        let modules = archc::driver::FsModules { dir: path.parent().expect("dir").to_path_buf() };
        f(&SpaceFile::open(rel, &text, &modules))
    })
}

/// Decisions by name: width (16, 32, 64), depth (1, 2), act (relu, tanh).
fn assignment(width: usize, depth: usize, act: usize) -> Vec<(String, usize)> {
    vec![("width".into(), width), ("depth".into(), depth), ("act".into(), act)]
}

fn opts(fixed: Vec<(String, usize)>, symbols: bool) -> Options {
    Options {
        elastic_symbols: symbols,
        option_tags: true,
        choices: ChoiceMode::Assign { fixed, seed: None },
        ..Options::default()
    }
}

/// Random arguments of `func` by name: data from a seeded normal draw (labels in 0..10),
/// parameters from their initialisers, accumulators and slots zero.
fn args_of(p: &Program, func: &str, widths: &[(&str, usize)]) -> Vec<Tensor> {
    let f = p.func(func).expect("function");
    let mut interp = Interpreter::new(p);
    interp.init_params(3).expect("init");
    f.arg_names
        .iter()
        .zip(&f.args)
        .map(|(name, (_, ty))| {
            let shape: Vec<usize> = ty.shape.iter().map(|d| d.as_const().map_or(8, |c| c as usize)).collect();
            if let Some(p) = name.strip_prefix("param:") {
                return interp.param(p).expect("param").clone();
            }
            if let Some(c) = name.strip_prefix("choice:") {
                let w = widths.iter().find(|(n, _)| *n == c).expect("width").1;
                return Tensor::zeros(DType::F32, &[0, w]);
            }
            match name.as_str() {
                "lr" => Tensor::scalar_f32(0.01),
                "loss_scale" => Tensor::scalar_f32(1.0),
                "label" => {
                    Tensor::from_i64(&shape, (0..shape.iter().product::<usize>() as i64).map(|i| i % 10).collect())
                }
                n if n.starts_with("state:") || n.starts_with("grad:") => Tensor::zeros(ty.dtype, &shape),
                _ => {
                    let n = shape.iter().product::<usize>();
                    Tensor::from_f32(&shape, (0..n).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect())
                }
            }
        })
        .collect()
}

/// The value of result `name` of `func` run on `args`.
fn result(p: &Program, func: &str, out: &[Tensor], name: &str) -> Tensor {
    let f = p.func(func).expect("function");
    let i = f.result_names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no result {name}"));
    out[i].clone()
}

/// A gradient step and an update with zeroed accumulators are the train step, bit for bit.
#[test]
fn the_split_step_is_the_train_step() {
    with_space(|file| {
        let cfg = file.train_config(&opts(assignment(1, 1, 0), false)).expect("config");
        let train = build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("train step");
        let mut split = build_grad_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("grad step");
        let trainable: Vec<_> =
            split.params.iter().filter(|p| p.trainable).map(|p| (p.name.clone(), p.ty.clone())).collect();
        split.funcs.push(build_apply_func(&trainable, &cfg.spec).expect("apply step"));

        let args = args_of(&train, "train_step", &[]);
        let want = Interpreter::new(&train).run("train_step", &args).expect("train step runs");

        // The same values, by name, through the two halves.
        let t = train.func("train_step").expect("train_step");
        let by_name = |name: &str| args[t.arg_names.iter().position(|n| n == name).expect("arg")].clone();
        let interp = Interpreter::new(&split);
        let g = split.func("grad_step").expect("grad_step");
        let grad_args: Vec<Tensor> = g
            .arg_names
            .iter()
            .zip(&g.args)
            .map(|(n, (_, ty))| match n.strip_prefix("grad:") {
                Some(_) => Tensor::zeros(ty.dtype, &ty.const_shape().expect("concrete")),
                None if n == "loss_scale" => Tensor::scalar_f32(1.0),
                None => by_name(n),
            })
            .collect();
        let got = interp.run("grad_step", &grad_args).expect("grad step runs");
        assert_eq!(result(&split, "grad_step", &got, "loss"), result(&train, "train_step", &want, "loss"));
        let a = split.func("apply_step").expect("apply_step");
        let apply_args: Vec<Tensor> = a
            .arg_names
            .iter()
            .map(|n| match n.strip_prefix("grad:") {
                Some(_) => result(&split, "grad_step", &got, n),
                None => by_name(n),
            })
            .collect();
        let applied = interp.run("apply_step", &apply_args).expect("apply step runs");
        for (name, _) in &trainable {
            for n in [format!("param:{name}"), format!("state:{name}.m"), format!("state:{name}.v")] {
                assert_eq!(result(&split, "apply_step", &applied, &n), result(&train, "train_step", &want, &n), "{n}");
            }
            let zero = result(&split, "apply_step", &applied, &format!("grad:{name}"));
            assert!(zero.to_f64_vec().expect("real").iter().all(|v| *v == 0.0), "grad:{name} is zeroed");
        }
    });
}

/// One program with the width as a size symbol gives, at each width, the loss and
/// gradients of the subnet built for that width; gradients outside the chosen slice are
/// zero.
#[test]
fn size_symbols_give_each_width_its_own_gradients() {
    with_space(|file| {
        let symbolic = file.train_config(&opts(assignment(0, 0, 1), true)).expect("config");
        let sym = build_grad_program(&symbolic.program, Some(&symbolic.training), &symbolic.spec).expect("grad");
        let g = sym.func("grad_step").expect("grad_step");
        assert!(g.arg_names.iter().any(|n| n == "choice:width"), "{:?}", g.arg_names);
        for (option, width) in [(0, 16), (1, 32), (2, 64)] {
            let concrete = file.train_config(&opts(assignment(option, 0, 1), false)).expect("config");
            let conc = build_grad_program(&concrete.program, Some(&concrete.training), &concrete.spec).expect("grad");
            let want = Interpreter::new(&conc).run("grad_step", &args_of(&conc, "grad_step", &[])).expect("runs");
            let sargs = args_of(&sym, "grad_step", &[("width", width)]);
            let got = Interpreter::new(&sym).run("grad_step", &sargs).expect("runs");
            let f = conc.func("grad_step").expect("grad_step");
            for name in &f.result_names {
                let (a, b) = (result(&sym, "grad_step", &got, name), result(&conc, "grad_step", &want, name));
                assert!(common::scaled_error(&a, &b) <= 1e-6, "{name} at width {width}");
            }
            // The first layer's weight is [64, 64] allocated; a width-w subnet uses [64, w].
            let w = result(&sym, "grad_step", &got, "grad:linear_0.w");
            let values = w.as_f32().expect("f32");
            let outside = values.iter().enumerate().filter(|(i, _)| i % 64 >= width);
            assert!(outside.clone().all(|(_, v)| *v == 0.0), "width {width}: no gradient outside the slice");
        }
    });
}

/// The gradient step's gradient along a direction matches central differences of its
/// loss (f32: to 2%).
#[test]
fn elastic_gradients_match_finite_differences() {
    with_space(|file| {
        let cfg = file.train_config(&opts(assignment(0, 1, 1), true)).expect("config");
        let p = build_grad_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("grad");
        let f = p.func("grad_step").expect("grad_step");
        let args = args_of(&p, "grad_step", &[("width", 32)]);
        let out = Interpreter::new(&p).run("grad_step", &args).expect("runs");
        let at = f.arg_names.iter().position(|n| n == "param:repeat_0.0.linear_0.w").expect("param");
        let grad = result(&p, "grad_step", &out, "grad:repeat_0.0.linear_0.w").to_f64_vec().expect("real");
        let n = grad.len();
        // Along the gradient (scaled to at most 1 per element), where the loss changes most.
        let top = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let dir: Vec<f64> = grad.iter().map(|g| g / top).collect();
        assert_eq!(dir.len(), n);
        let analytic: f64 = grad.iter().zip(&dir).map(|(g, d)| g * d).sum();
        let loss = |h: f64| {
            let mut a = args.clone();
            let base = a[at].to_f64_vec().expect("real");
            let moved: Vec<f32> = base.iter().zip(&dir).map(|(v, d)| (v + h * d) as f32).collect();
            a[at] = Tensor::from_f32(a[at].shape(), moved);
            let o = Interpreter::new(&p).run("grad_step", &a).expect("runs");
            result(&p, "grad_step", &o, "loss").to_f64_vec().expect("real")[0]
        };
        let h = 1e-2;
        let numeric = (loss(h) - loss(-h)) / (2.0 * h);
        assert!(analytic.abs() > 1e-4, "a direction the loss depends on: {analytic}");
        assert!((analytic - numeric).abs() <= 0.02 * analytic.abs().max(numeric.abs()), "{analytic} vs {numeric}");
    });
}

/// The space's 12 subnets fall in 4 structures (depth x act): the width is a size symbol.
/// Sampling rules pick the largest, the smallest and the nested levels by value.
#[test]
fn subnets_share_one_structure_per_width_set() {
    with_space(|file| {
        let (space, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        assert_eq!((space.leaves.len(), structures.len()), (12, 4));
        assert!(structures.iter().all(|s| s.symbolic && s.key.iter().all(|(n, _)| n != "width")));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let pick = |rule, rng: &mut rand_chacha::ChaCha8Rng| {
            let l = &space.leaves[space.sample(rule, rng)];
            let get = |n: &str| l.assignment.iter().find(|(d, _)| d == n).expect("decision").1;
            (get("width"), get("depth"))
        };
        for _ in 0..5 {
            assert_eq!(pick(Rule::Largest, &mut rng), (2, 1));
            assert_eq!(pick(Rule::Smallest, &mut rng), (0, 0));
            assert_eq!(pick(Rule::Level(0.5), &mut rng).0, 1);
        }
        let uniform: std::collections::BTreeSet<_> = (0..200).map(|_| pick(Rule::Uniform, &mut rng)).collect();
        assert_eq!(uniform.len(), 6, "every width and depth is drawn");
        let built = build(file, &structures, None).expect("builds");
        for i in 0..structures.len() {
            for func in ["grad_step", "eval_step"] {
                assert!(built.program.func(&func_name(i, func)).is_some(), "{}", func_name(i, func));
            }
        }
        let b = bindings(&built.program, "apply_step");
        assert_eq!(b.given(), 1, "apply_step is given its learning rate only");
    });
}

/// Weights and metrics of a seeded run are the same on a second run; the compiled
/// functions do not grow with the steps.
#[test]
fn a_seeded_supernet_run_repeats_exactly() {
    let dir = std::env::temp_dir().join(format!("archc-supernet-{}", std::process::id()));
    let run = |name: &str, backend: &str, epochs: &str| {
        let out = dir.join(name);
        let o = common::archc(&[
            "supernet",
            "train",
            SPACE,
            "--out",
            out.to_str().expect("utf-8"),
            "--backend",
            backend,
            "--epochs",
            epochs,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("supernet.json")).expect("manifest")).expect("json");
        let weights = std::fs::read(out.join("supernet.safetensors")).expect("weights");
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
        (manifest, weights, metrics)
    };
    let (m1, w1, log1) = run("a", "interp", "2");
    let (_, w2, log2) = run("b", "interp", "2");
    assert_eq!(w1, w2, "same weights");
    assert_eq!(log1, log2, "same metrics");
    assert_eq!(m1["subnets"], 12);
    let last: serde_json::Value = serde_json::from_str(log1.lines().last().expect("a line")).expect("json");
    assert!(last["largest_test_acc"].as_f64().expect("acc") > 0.5, "{last}");
    let (short, _, _) = run("c", "cranelift", "1");
    let (long, _, _) = run("d", "cranelift", "2");
    assert_eq!(short["compiled_functions"], long["compiled_functions"], "compiles do not grow with steps");
    assert!(short["compiled_functions"].as_u64().expect("count") <= 9, "{short}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The number after `word ` in `text`.
fn number_after(text: &str, word: &str) -> f64 {
    let at = text.find(word).unwrap_or_else(|| panic!("no `{word}` in {text}")) + word.len();
    let digits: String = text[at..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    digits.parse().unwrap_or_else(|_| panic!("a number after `{word}` in {text}"))
}

/// An extracted subnet is a plain program that checks, and its weights evaluate with
/// `archc eval` to the accuracy the extraction measured on the shared weights.
#[test]
fn an_extracted_subnet_checks_and_evaluates_on_its_own() {
    let dir = std::env::temp_dir().join(format!("archc-supernet-extract-{}", std::process::id()));
    let out = dir.to_str().expect("utf-8");
    let o = common::archc(&["supernet", "train", SPACE, "--out", out, "--backend", "interp", "--rule", "sorted"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sub = dir.join("sub");
    let sub_s = sub.to_str().expect("utf-8");
    let o = common::archc(&["supernet", "extract", out, "--choices", "width=32,depth=2,act=1", "-o", sub_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    let arch = dir.join("sub.arch");
    let text = std::fs::read_to_string(&arch).expect("sub.arch");
    assert!(!text.contains("choose"), "{text}");
    let o = common::archc(&["check", arch.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let weights = dir.join("sub.safetensors");
    let o = common::archc(&["eval", arch.to_str().expect("utf-8"), "--checkpoint", weights.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let evaluated = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(number_after(&said, "test accuracy"), number_after(&evaluated, "accuracy:"), "{said}\n{evaluated}");
    // A search over the subnets scores each with the shared weights, reproducibly.
    let search = |strategy: &str| {
        let o =
            common::archc(&["supernet", "search", out, "--strategy", strategy, "--budget", "5", "--backend", "interp"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(said.contains("archc supernet extract"), "{said}");
        std::fs::read_to_string(dir.join("search.jsonl")).expect("search.jsonl")
    };
    let log = search("evolution");
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a))), "{log}");
    assert_eq!(search("evolution"), log, "the same seed searches the same subnets to the same scores");
    // A subnet that is not in the space is refused by name.
    let o = common::archc(&["supernet", "extract", out, "--choices", "widht=32", "-o", sub_s]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean `width`"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Progressive shrinking makes layer choices, then depths, then widths elastic, a
/// quarter of the steps each after the largest subnet alone; delayed shrinking trains the
/// largest alone until its fraction.
#[test]
fn shrinking_holds_the_dimensions_not_yet_elastic() {
    use archc::supernet::space::Kind;
    use archc::supernet::train::{SampleRule, Shrink};
    with_space(|file| {
        let (space, _) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        assert_eq!(
            (space.kind("width"), space.kind("depth"), space.kind("act")),
            (Kind::Width, Kind::Depth, Kind::Layer)
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let values = |leaf: usize| -> Vec<usize> { space.leaves[leaf].assignment.iter().map(|(_, i)| *i).collect() };
        let seen = |shrink: Shrink, step: u64, rng: &mut rand_chacha::ChaCha8Rng| {
            let mut all = std::collections::BTreeSet::new();
            for _ in 0..100 {
                let drawn = SampleRule::Sandwich { n: 2 }.draw(&space, &shrink.elastic(step, 100), rng);
                all.extend(drawn.into_iter().map(values));
            }
            all
        };
        // Decisions in build order: width (16, 32, 64), depth (1, 2), act (relu, tanh).
        let largest_only = seen(Shrink::Progressive, 10, &mut rng);
        assert_eq!(largest_only.len(), 1, "{largest_only:?}");
        let acts = seen(Shrink::Progressive, 30, &mut rng);
        assert!(acts.iter().all(|v| v[0] == 2 && v[1] == 1) && acts.len() == 2, "{acts:?}");
        let depths = seen(Shrink::Progressive, 60, &mut rng);
        assert!(depths.iter().all(|v| v[0] == 2) && depths.len() == 4, "{depths:?}");
        assert_eq!(seen(Shrink::Progressive, 90, &mut rng).len(), 12);
        assert_eq!(seen(Shrink::Delayed(0.5), 49, &mut rng).len(), 1);
        assert_eq!(seen(Shrink::Delayed(0.5), 50, &mut rng).len(), 12);
    });
}

/// `nn.ElasticConv1d`: the 5-tap kernel is the centre of the 7-tap weight times (I + t5),
/// the 3-tap kernel the centre of that times (I + t3), computed here by hand and read
/// from the impulse response (`y[10 + k / 2 - j] = kernel[j]` for an impulse at 10).
#[test]
fn elastic_kernels_are_transformed_centres() {
    let w: Vec<f64> = (1..=7).map(|v| v as f64).collect();
    let t5: Vec<f64> = (0..25).map(|i| 0.1 * ((i / 5) as f64 - (i % 5) as f64)).collect();
    let t3: Vec<f64> = (0..9).map(|i| if i % 4 == 0 { 0.5 } else { -0.25 }).collect();
    // row @ (I + t): out[j] = row[j] + sum_i row[i] * t[i][j].
    let transform = |row: &[f64], t: &[f64], n: usize| -> Vec<f64> {
        (0..n).map(|j| row[j] + (0..n).map(|i| row[i] * t[i * n + j]).sum::<f64>()).collect()
    };
    let k5 = transform(&w[1..6], &t5, 5);
    let k3 = transform(&k5[1..4], &t3, 3);
    for (k, kernel) in [(7usize, w.clone()), (5, k5), (3, k3)] {
        let params = [("w", vec![1, 1, 7], &w[..]), ("t5", vec![5, 5], &t5[..]), ("t3", vec![3, 3], &t3[..])];
        let y = elastic_response("elastic_conv.arch", "elasticconv1d_0", k, &params, &[1, 1, 21], 10);
        for (j, want) in kernel.iter().enumerate() {
            let got = y[10 + k / 2 - j];
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "k = {k}, tap {j}: {got} vs {want}");
        }
    }
}

/// The output of the elastic convolution `layer` of `tests/supernet/FILE` at kernel
/// size `k` for a one at flat position `at` of an input of `shape`, its parameters set
/// to `params` (name, shape, values; a matrix that `k` does not use is not declared).
fn elastic_response(
    file: &str,
    layer: &str,
    k: usize,
    params: &[(&str, Vec<usize>, &[f64])],
    shape: &[usize],
    at: usize,
) -> Vec<f64> {
    let path = common::repo().join("tests/supernet").join(file);
    let opts = Options { args: vec![("k".into(), k.to_string())], ..Options::default() };
    let out = common::check(&path, &opts);
    let shown = common::rendered(&out);
    let program = out.program.unwrap_or_else(|| panic!("k = {k} builds: {shown}"));
    let mut interp = Interpreter::new(&program);
    for (name, shape, values) in params {
        let full = format!("{layer}.{name}");
        if program.param(&full).is_some() {
            let v: Vec<f32> = values.iter().map(|x| *x as f32).collect();
            interp.set_param(&full, Tensor::from_f32(shape, v)).expect("set");
        }
    }
    let mut x = vec![0f32; shape.iter().product()];
    x[at] = 1.0;
    let y = interp.run("main", &[Tensor::from_f32(shape, x)]).expect("runs");
    y[0].to_f64_vec().expect("real")
}

/// `nn.ElasticConv2d`: the 7x7 kernel as given, the 5x5 kernel its centre (flattened)
/// times (I + t5), the 3x3 kernel the centre of that times (I + t3), computed here by
/// hand and read from the impulse response (`y[7 + k / 2 - a][7 + k / 2 - b] =
/// kernel[a][b]` for an impulse at (7, 7)).
#[test]
fn elastic_2d_kernels_are_transformed_centres() {
    let w: Vec<f64> = (0..49).map(|i| ((i * 37) % 11) as f64 / 5.0 - 1.0).collect();
    let t5: Vec<f64> = (0..625).map(|i| 0.02 * ((i / 25) as f64 - (i % 25) as f64).sin()).collect();
    let t3: Vec<f64> = (0..81).map(|i| if i % 10 == 0 { 0.5 } else { -0.05 * (i % 7) as f64 }).collect();
    // The centre `n` x `n` of a `m` x `m` kernel, row-major.
    let centre = |k: &[f64], m: usize, n: usize| -> Vec<f64> {
        let o = (m - n) / 2;
        (0..n * n).map(|i| k[(i / n + o) * m + i % n + o]).collect()
    };
    // row @ (I + t): out[j] = row[j] + sum_i row[i] * t[i][j].
    let transform = |row: &[f64], t: &[f64]| -> Vec<f64> {
        let n = row.len();
        (0..n).map(|j| row[j] + (0..n).map(|i| row[i] * t[i * n + j]).sum::<f64>()).collect()
    };
    let k5 = transform(&centre(&w, 7, 5), &t5);
    let k3 = transform(&centre(&k5, 5, 3), &t3);
    for (k, kernel) in [(7usize, w.clone()), (5, k5), (3, k3)] {
        let params = [("w", vec![1, 1, 7, 7], &w[..]), ("t5", vec![25, 25], &t5[..]), ("t3", vec![9, 9], &t3[..])];
        let y = elastic_response("elastic_conv2d.arch", "elasticconv2d_0", k, &params, &[1, 1, 15, 15], 7 * 15 + 7);
        for (i, want) in kernel.iter().enumerate() {
            let (a, b) = (i / k, i % k);
            let got = y[(7 + k / 2 - a) * 15 + 7 + k / 2 - b];
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "k = {k}, tap ({a}, {b}): {got} vs {want}");
        }
    }
}

/// A `choose k in [3, 5, 7]` over `ElasticConv1d` or `ElasticConv2d` is one weight set:
/// three structures, one 7-tap (7x7) weight and the two transformation matrices, shared.
#[test]
fn an_elastic_kernel_supernet_shares_one_weight() {
    let cases = [
        ("kernel_space.arch", "elasticconv1d_0", ["f32[8, 1, 7]", "f32[5, 5]", "f32[3, 3]"]),
        ("kernel_space2d.arch", "elasticconv2d_0", ["f32[4, 1, 7, 7]", "f32[25, 25]", "f32[9, 9]"]),
    ];
    for (file_name, layer, types) in cases {
        with_space_at(&format!("tests/supernet/{file_name}"), |file| {
            let (space, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
            assert_eq!((space.leaves.len(), structures.len()), (3, 3));
            let built = build(file, &structures, None).expect("builds");
            let names: Vec<(&str, String)> =
                built.program.params.iter().map(|p| (p.name.as_str(), p.ty.to_string())).collect();
            for (name, ty) in ["w", "t5", "t3"].iter().zip(types) {
                let name = format!("{layer}.{name}");
                assert!(names.iter().any(|(n, t)| *n == name && t == ty), "{name} {ty} in {names:?}");
            }
            assert_eq!(names.iter().filter(|(n, _)| n.starts_with(&format!("{layer}.w"))).count(), 1);
        });
    }
}

/// A depth choice over a `stack` is elastic: the subnets of depth k run the first k
/// blocks, whose weights every deeper subnet shares.
#[test]
fn a_stack_depth_uses_the_first_blocks() {
    with_space_at("tests/supernet/stack_space.arch", |file| {
        let (space, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        assert_eq!((space.leaves.len(), structures.len()), (6, 3), "3 depths x 2 widths, widths symbolic");
        let built = build(file, &structures, None).expect("builds");
        for (i, s) in structures.iter().enumerate() {
            let depth = s.key.iter().find(|(n, _)| n == "depth").expect("depth").1 + 1;
            let f = built.program.func(&func_name(i, "grad_step")).expect("grad step");
            for block in 0..3 {
                let used = f.arg_names.iter().any(|n| n == &format!("param:stack_0.{block}.linear_0.w"));
                assert_eq!(used, block < depth, "depth {depth}, block {block}: {:?}", f.arg_names);
            }
        }
    });
}

/// An expansion ratio is an elastic width: a `shared` int that multiplies a hidden
/// width is a size symbol of one program, whose weights are held at the largest ratio.
#[test]
fn an_expansion_ratio_is_an_elastic_width() {
    with_space_at("tests/supernet/expand_space.arch", |file| {
        let (space, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        assert_eq!((space.leaves.len(), structures.len()), (6, 2), "3 ratios x 2 depths, ratios symbolic");
        let ratios: std::collections::BTreeSet<i64> =
            space.leaves.iter().flat_map(|l| l.widths.iter().map(|(_, w)| *w)).collect();
        assert_eq!(ratios.into_iter().collect::<Vec<_>>(), vec![1, 2, 4]);
        let built = build(file, &structures, None).expect("builds");
        let ty = |n: &str| built.program.param(n).map(|p| p.ty.to_string());
        assert_eq!(ty("repeat_0.0.linear_0.w").as_deref(), Some("f32[32, 128]"));
        assert_eq!(ty("repeat_0.1.linear_1.w").as_deref(), Some("f32[128, 32]"));
    });
}

/// A ProxylessNAS gated build with a one-hot gate is the subnet that takes the active
/// option (the same loss), and the gradient it gives the gate matches finite differences
/// of the loss in the gate.
#[test]
fn gated_steps_are_their_subnets_and_gate_gradients_match_finite_differences() {
    use archc::supernet::build::{add_gated, GATED_STEP};
    with_space(|file| {
        let (space, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        let pins = [("width".to_string(), "32".to_string()), ("depth".to_string(), "1".to_string())];
        let (space, structures) = space.pinned(structures, &pins).expect("pins");
        assert_eq!(space.leaves.len(), 2, "relu or tanh");
        let mut built = build(file, &structures, None).expect("builds");
        let fixed = vec![("width".to_string(), 1), ("depth".to_string(), 0)];
        let gates = add_gated(&mut built, file, &fixed).expect("gated build");
        assert_eq!(gates, vec![("arch_gate.act".to_string(), 2)]);
        let p = &built.program;
        let f = p.func(GATED_STEP).expect("gated step");
        let at = f.arg_names.iter().position(|n| n == "param:arch_gate.act").expect("gate arg");
        let args = args_of(p, GATED_STEP, &[]);
        let run = |gate: [f32; 2]| {
            let mut a = args.clone();
            a[at] = Tensor::from_f32(&[2], gate.to_vec());
            let out = Interpreter::new(p).run(GATED_STEP, &a).expect("runs");
            let loss = result(p, GATED_STEP, &out, "loss").to_f64_vec().expect("real")[0];
            (loss, result(p, GATED_STEP, &out, "grad:arch_gate.act").to_f64_vec().expect("real"))
        };
        for (k, leaf) in space.leaves.iter().enumerate() {
            let act = leaf.assignment.iter().find(|(n, _)| n == "act").expect("act").1;
            let func = func_name(leaf.structure, "grad_step");
            let out = Interpreter::new(p).run(&func, &args_of(p, &func, &[("width", 32)])).expect("subnet runs");
            let subnet = result(p, &func, &out, "loss").to_f64_vec().expect("real")[0];
            let gate = if act == 0 { [1.0, 0.0] } else { [0.0, 1.0] };
            let (gated, grad) = run(gate);
            assert!((gated - subnet).abs() <= 1e-6 * subnet.abs(), "leaf {k}: {gated} vs {subnet}");
            for j in 0..2 {
                let h = 1e-2;
                let (mut up, mut down) = (gate, gate);
                up[j] += h as f32;
                down[j] -= h as f32;
                let numeric = (run(up).0 - run(down).0) / (2.0 * h);
                assert!(grad[j].abs() > 1e-4, "the loss depends on gate {j}: {grad:?}");
                assert!((grad[j] - numeric).abs() <= 0.02 * grad[j].abs().max(numeric.abs()), "{grad:?} vs {numeric}");
            }
        }
    });
}

/// `archc supernet proxyless`: decisions other than choices among layers must be pinned;
/// a seeded run (latency term off, so the timings do not steer it) repeats exactly,
/// moves the architecture's probabilities, and leaves a folder `extract` reads.
#[test]
fn a_seeded_proxyless_run_repeats_exactly_and_extracts() {
    let dir = std::env::temp_dir().join(format!("archc-proxyless-{}", std::process::id()));
    let o = common::archc(&["supernet", "proxyless", SPACE, "--latency-bound", "100", "--backend", "interp"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("pin `depth` with --choices depth=1 (options: 1, 2)"), "{err}");
    let run = |name: &str, bound: &str| {
        let out = dir.join(name);
        let args = [
            "supernet",
            "proxyless",
            SPACE,
            "--choices",
            "width=32,depth=1",
            "--latency-bound",
            bound,
            "--latency-weight",
            "0",
            "--dual-rate",
            "0",
            "--epochs",
            "2",
            "--warmup",
            "0.5",
            "--latency-runs",
            "2",
            "--arch-lr",
            "0.1",
            "--backend",
            "interp",
            "--out",
            out.to_str().expect("utf-8"),
        ];
        let o = common::archc(&args);
        let summary = std::fs::read_to_string(out.join("proxyless.json")).unwrap_or_default();
        (o, summary)
    };
    let (o, first) = run("a", "100");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(said.contains("archc train") && said.contains("--choices width=32,depth=1,"), "{said}");
    let json: serde_json::Value = serde_json::from_str(&first).expect("json");
    let probs: Vec<f64> = json["choices"][0]["probabilities"]
        .as_array()
        .expect("probabilities")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    assert_eq!(probs.len(), 2);
    assert!((probs[0] - 0.5).abs() > 1e-3, "the architecture steps moved the probabilities: {probs:?}");
    let lines = std::fs::read_to_string(dir.join("a").join("metrics.jsonl")).expect("metrics");
    assert_eq!(lines.lines().count(), 2);
    let (_, second) = run("b", "100");
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).expect("json");
        for k in ["latency_table", "derived_table_latency_ms", "derived_measured_latency_ms"] {
            v.as_object_mut().expect("object").remove(k);
        }
        v
    };
    assert_eq!(strip(&first), strip(&second), "a seeded run repeats");
    let derived = json["derived"].as_str().expect("derived");
    let sub = dir.join("derived");
    let a = dir.join("a");
    assert!(derived.starts_with("width=32,depth=1,act="), "the pins and the learned choice: {derived}");
    let choices = derived.to_string();
    let o = common::archc(&[
        "supernet",
        "extract",
        a.to_str().expect("utf-8"),
        "--choices",
        &choices,
        "-o",
        sub.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("derived.arch").exists() && dir.join("derived.safetensors").exists());
    // A bound no subnet meets is refused before training.
    let (o, _) = run("c", "0.000001");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no subnet meets --latency-bound"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `loss_scale` weighs a gradient step's gradients (not its loss): at 0.25 they are a
/// quarter of those at 1, exactly (a power of two). ε-shrinking's weight rises from 0
/// to 1 over its ramp once shrinking starts.
#[test]
fn the_loss_scale_weighs_the_gradients() {
    use archc::supernet::train::Shrink;
    with_space(|file| {
        let cfg = file.train_config(&opts(assignment(1, 1, 0), false)).expect("config");
        let p = build_grad_program(&cfg.program, Some(&cfg.training), &cfg.spec).expect("grad step");
        let f = p.func("grad_step").expect("grad_step");
        let at = f.arg_names.iter().position(|n| n == "loss_scale").expect("a loss_scale argument");
        let args = args_of(&p, "grad_step", &[]);
        let mut quarter = args.clone();
        quarter[at] = Tensor::scalar_f32(0.25);
        let (one, q) = (
            Interpreter::new(&p).run("grad_step", &args).expect("runs"),
            Interpreter::new(&p).run("grad_step", &quarter).expect("runs"),
        );
        assert_eq!(result(&p, "grad_step", &one, "loss"), result(&p, "grad_step", &q, "loss"));
        let name = "grad:repeat_0.0.linear_0.w";
        let (g1, gq) = (
            result(&p, "grad_step", &one, name).to_f64_vec().expect("real"),
            result(&p, "grad_step", &q, name).to_f64_vec().expect("real"),
        );
        assert!(g1.iter().any(|v| *v != 0.0));
        assert!(g1.iter().zip(&gq).all(|(a, b)| a * 0.25 == *b), "a quarter of the gradient");
    });
    let d = Shrink::Delayed(0.5);
    let eps = [d.epsilon(40, 100, 0.2), d.epsilon(50, 100, 0.2), d.epsilon(60, 100, 0.2), d.epsilon(80, 100, 0.2)];
    assert!(eps.iter().zip([0.0, 0.0, 0.5, 1.0]).all(|(a, b)| (a - b).abs() < 1e-12), "{eps:?}");
    assert_eq!(d.epsilon(10, 100, 0.0), 1.0, "no ramp: every subnet weighs 1");
    assert!((Shrink::None.epsilon(5, 100, 0.1) - 0.5).abs() < 1e-12);
}

/// The targets of distillation mix the labels with the teacher's predictions, by hand.
#[test]
fn teacher_targets_mix_labels_and_predictions() {
    use archc::supernet::build::{Teacher, TeacherKind};
    use archc::supernet::train::teacher_targets;
    let logits = Tensor::from_f32(&[1, 2], vec![0.0, 3f32.ln()]); // softmax: 0.25, 0.75
    let label = Tensor::from_i64(&[1], vec![0]);
    let targets = |kind, weight, out: &Tensor, target: &Tensor| {
        teacher_targets(&Teacher { weight, kind }, out, Some(target)).expect("targets").to_f64_vec().expect("real")
    };
    let close = |got: Vec<f64>, want: &[f64]| {
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} vs {want:?}");
    };
    close(targets(TeacherKind::Softmax { smoothing: 0.0 }, 0.5, &logits, &label), &[0.625, 0.375]);
    // Smoothed labels: 0.95, 0.05.
    close(targets(TeacherKind::Softmax { smoothing: 0.1 }, 0.5, &logits, &label), &[0.6, 0.4]);
    close(targets(TeacherKind::Softmax { smoothing: 0.0 }, 1.0, &logits, &label), &[0.25, 0.75]);
    let (z, t) = (Tensor::from_f32(&[2], vec![0.0, 4.0]), Tensor::from_f32(&[2], vec![1.0, 2.0]));
    close(targets(TeacherKind::Sigmoid, 0.25, &z, &t), &[0.875, 0.75 * 2.0 + 0.25 / (1.0 + (-4f64).exp())]);
    close(targets(TeacherKind::Identity, 0.5, &z, &t), &[0.5, 3.0]);
    let bad = Tensor::from_i64(&[1], vec![0]);
    assert!(teacher_targets(&Teacher { weight: 1.0, kind: TeacherKind::Identity }, &z, Some(&bad)).is_err());
}

/// A distilled step given one-hot targets is the label step (loss and gradients); given
/// soft targets its loss is their cross-entropy with the step's own output.
#[test]
fn a_distilled_step_reads_soft_targets() {
    with_space(|file| {
        let (_, structures) = Subnets::enumerate(file, &Options::default()).expect("enumerates");
        let built = build(file, &structures, Some(1.0)).expect("builds");
        assert!(built.teacher.is_some());
        let p = &built.program;
        let (hard, soft) = (func_name(0, "grad_step"), func_name(0, "distill.grad_step"));
        let args = args_of(p, &hard, &[("width", 32)]);
        let want = Interpreter::new(p).run(&hard, &args).expect("runs");
        let labels =
            args[p.func(&hard).expect("f").arg_names.iter().position(|n| n == "label").expect("label")].clone();
        let b = labels.numel();
        let with_targets = |t: &Tensor| -> Vec<Tensor> {
            let f = p.func(&soft).expect("distill step");
            let by_name =
                |n: &str| args[p.func(&hard).expect("f").arg_names.iter().position(|m| m == n).expect(n)].clone();
            f.arg_names.iter().map(|n| if n == "label" { t.clone() } else { by_name(n) }).collect()
        };
        let onehot: Vec<f32> =
            labels.as_i64().expect("i64").iter().flat_map(|&l| (0..10).map(move |c| (c == l) as i32 as f32)).collect();
        let got = Interpreter::new(p).run(&soft, &with_targets(&Tensor::from_f32(&[b, 10], onehot))).expect("runs");
        let f = p.func(&hard).expect("f");
        for name in f.result_names.iter().filter(|n| *n == "loss" || n.starts_with("grad:")) {
            let (a, w) = (result(p, &soft, &got, name), result(p, &hard, &want, name));
            a.check_close(&w, 1e-5, 1e-6).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Uniform targets: the loss is the mean of -Σ log softmax / 10.
        let uniform = Tensor::full(DType::F32, &[b, 10], 0.1);
        let got = Interpreter::new(p).run(&soft, &with_targets(&uniform)).expect("runs");
        let out = result(p, &soft, &got, "output").to_f64_vec().expect("real");
        let mut want_loss = 0.0;
        for row in out.chunks(10) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
            want_loss -= row.iter().map(|z| 0.1 * (z - lse)).sum::<f64>() / b as f64;
        }
        let loss = result(p, &soft, &got, "loss").to_f64_vec().expect("real")[0];
        assert!((loss - want_loss).abs() < 1e-4 * want_loss.abs(), "{loss} vs {want_loss}");
    });
}

/// `--distill` trains (seeded, twice the same) and is refused without the sandwich rule.
#[test]
fn distillation_runs_with_the_sandwich_rule_only() {
    let dir = std::env::temp_dir().join(format!("archc-distill-{}", std::process::id()));
    let run = |name: &str, rule: &str| {
        let out = dir.join(name);
        let args =
            ["supernet", "train", SPACE, "--out", out.to_str().expect("utf-8"), "--backend", "interp", "--epochs", "1"];
        let o = common::archc(&[&args[..], &["--distill", "0.5", "--rule", rule]].concat());
        (o, out)
    };
    let (o, out) = run("a", "sandwich");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (o2, out2) = run("b", "sandwich");
    assert!(o2.status.success());
    let read = |d: &std::path::Path| std::fs::read(d.join("supernet.safetensors")).expect("weights");
    assert_eq!(read(&out), read(&out2), "a seeded distilled run repeats");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().expect("a line")).expect("json");
    assert!(last["largest_test_acc"].as_f64().expect("acc") > 0.5, "{last}");
    assert!(last["smallest_test_loss"].as_f64().expect("loss").is_finite(), "{last}");
    let manifest = std::fs::read_to_string(out.join("supernet.json")).expect("manifest");
    assert!(manifest.contains("\"distill\": 0.5"), "{manifest}");
    let (o, _) = run("c", "spos");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--distill needs --rule sandwich"));
    let _ = std::fs::remove_dir_all(&dir);
}
