//! Semantics of the checker on small programs: weight sharing, repeat/stack naming,
//! generated parameters, choices, elastic widths, grid dims, determinism.

use archc_compiler::sema::{check_file, ChoiceMode, NoModules, Options};
use archc_compiler::tir::{Op, Program};

fn build_with(src: &str, opts: &Options) -> Program {
    let out = check_file("test.arch", src, &NoModules, opts);
    let msgs: Vec<&str> = out.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.is_empty(), "unexpected diagnostics: {msgs:?}");
    out.program.expect("program")
}

fn build(src: &str) -> Program {
    build_with(src, &Options::default())
}

fn errors(src: &str) -> Vec<String> {
    let out = check_file("test.arch", src, &NoModules, &Options { check_all: true, ..Options::default() });
    out.diagnostics.iter().map(|d| d.message.clone()).collect()
}

fn param_names(p: &Program) -> Vec<&str> {
    p.params.iter().map(|d| d.name.as_str()).collect()
}

const LIN: &str = "
layer Lin(i: int, o: int) {
    param w: f32[i, o] = init.normal(std = 0.1)
    fn (x: f32[..., i]) -> f32[..., o] { x @ w }
}
";

#[test]
fn a_let_instance_shares_its_weights() {
    let p = build(&format!("{LIN} network N() {{ input x: f32[B, 4]  let l = Lin(4, 4)  output y = l(l(x)) }}"));
    assert_eq!(param_names(&p), ["l.w"]);
    let reads = p.main().body.iter().filter(|i| matches!(i.op, Op::Param(_))).count();
    assert_eq!(reads, 2, "each application reads the same param");
}

#[test]
fn applied_specs_and_repeats_get_fresh_weights() {
    let p = build(&format!(
        "{LIN} network N() {{ input x: f32[B, 4]  output y = x |> Lin(4, 4) |> repeat 2 {{ Lin(4, 4) }} }}"
    ));
    assert_eq!(param_names(&p), ["lin_0.w", "repeat_0.0.w", "repeat_0.1.w"]);
}

#[test]
fn stack_blocks_are_functions_named_by_their_let() {
    let p = build(&format!(
        "{LIN} network N() {{ input x: f32[B, 4]  let blocks = stack(3) {{ Lin(4, 4) }}  output y = blocks(x) }}"
    ));
    let stack = p.main().body.iter().find_map(|i| match &i.op {
        Op::Stack(f) => Some(f.clone()),
        _ => None,
    });
    assert_eq!(stack.expect("a stack op"), ["blocks.0", "blocks.1", "blocks.2"]);
    assert!(p.func("blocks.2").is_some());
}

#[test]
fn stack_blocks_must_keep_the_shape() {
    let e = errors(&format!("{LIN} network N() {{ input x: f32[B, 4]  output y = x |> stack(2) {{ Lin(4, 5) }} }}"));
    assert!(e.iter().any(|m| m.contains("every block of a stack must keep the shape")), "{e:?}");
}

#[test]
fn with_params_per_sample_builds_a_vmap_and_no_target_params() {
    let src = format!(
        "{LIN} network H() {{
            input x: f32[B, 4]
            input z: f32[B, 3]
            let t = Lin(4, 2)
            let theta = z |> Lin(3, t.param_count)
            output y = t.with_params(theta)(x)
        }}"
    );
    let p = build(&src);
    assert_eq!(param_names(&p), ["lin_0.w"], "the target's own weights are unused");
    assert_eq!(p.param("lin_0.w").expect("generator").ty.to_string(), "f32[3, 8]");
    assert!(p.main().body.iter().any(|i| matches!(&i.op, Op::Vmap { keep, .. } if keep == &[true, false])));
}

#[test]
fn with_params_shared_theta_inlines_the_target() {
    let src = format!(
        "{LIN} network H() {{
            input x: f32[B, 4]
            param theta: f32[8] = init.zeros()
            let t = Lin(4, 2)
            output y = t.with_params(theta)(x)
        }}"
    );
    let p = build(&src);
    assert_eq!(param_names(&p), ["theta"]);
    assert_eq!(p.funcs.len(), 1);
}

#[test]
fn with_params_rejects_a_wrong_size() {
    let e = errors(&format!(
        "{LIN} network H() {{ input x: f32[B, 4]  param theta: f32[7] = init.zeros()  let t = Lin(4, 2)  output y = t.with_params(theta)(x) }}"
    ));
    assert!(e.iter().any(|m| m.contains("7 entries") && m.contains("8 parameters")), "{e:?}");
}

const SPACE: &str = "
layer Lin(i: int, o: int) {
    param w: f32[i, o] = init.normal(std = 0.1)
    fn (x: f32[..., i]) -> f32[..., o] { x @ w }
}
network S() {
    choose depth in [1, 2, 3]
    choose width in [8, 16] shared
    input x: f32[B, 4]
    output y = x |> Lin(4, width) |> repeat depth { h => relu(h) }
}
";

#[test]
fn choices_first_explicit_and_sampled() {
    let first = build(SPACE);
    assert_eq!(first.main().result_types()[0].to_string(), "f32[B, 8]");
    let opts = Options { choices: ChoiceMode::Explicit(vec![("width".into(), "16".into())]), ..Options::default() };
    assert_eq!(build_with(SPACE, &opts).main().result_types()[0].to_string(), "f32[B, 16]");
    let sampled =
        |seed| build_with(SPACE, &Options { choices: ChoiceMode::Sample(seed), ..Options::default() }).to_string();
    assert_eq!(sampled(7), sampled(7), "sampling is deterministic");
    let distinct: std::collections::HashSet<String> = (0..20).map(sampled).collect();
    assert!(distinct.len() > 1, "different seeds reach different networks");
}

#[test]
fn shared_widths_allocate_the_largest_option_and_slice() {
    let p = build(SPACE);
    assert_eq!(p.param("lin_0.w").expect("w").ty.to_string(), "f32[4, 16]");
    assert!(p.main().body.iter().any(|i| matches!(i.op, Op::Slice { .. }) && i.ty.to_string() == "f32[4, 8]"));
}

#[test]
fn operators_reject_grid_dependent_params() {
    let e =
        errors("operator Op() over grid N { input a: f32[B, N]  param w: f32[N] = init.zeros()  output u = a * w }");
    assert!(e.iter().any(|m| m.contains("depends on grid dim `N`")), "{e:?}");
    let derived = "operator Op() over grid N { input a: f32[B, N]  let m = a.shape[1] / 2  param w: f32[m] = init.zeros()  output u = a }";
    assert!(errors(derived).iter().any(|m| m.contains("grid dim `N`")));
}

#[test]
fn building_is_deterministic() {
    let a = build(SPACE).to_string();
    let b = build(SPACE).to_string();
    assert_eq!(a, b);
}

#[test]
fn every_unknown_name_in_a_file_is_reported() {
    let e = errors("network A() { input x: f32[B, 4]  output y = relx(x) + foo }");
    assert_eq!(e.len(), 2, "{e:?}");
}
