//! The canonical formatter: layout, minimal parentheses, comments, round trips.

mod common;

use archc_grammar::span::FileId;
use archc_grammar::{format_module, format_source, parse};
use common::check_roundtrip;

/// Formats `network T { let v = <expr> }` and returns the printed expression.
fn fmt_expr(expr: &str) -> String {
    let out = check_roundtrip(&format!("network T {{ let v = {expr} }}"));
    let line = out.lines().nth(1).expect("one statement");
    line.trim().strip_prefix("let v = ").expect("a let").to_string()
}

#[test]
fn design_sample_roundtrips() {
    check_roundtrip(common::DESIGN);
}

#[test]
fn coverage_file_roundtrips() {
    check_roundtrip(common::COVERAGE);
}

#[test]
fn canonical_layout() {
    let src = "layer   Residual ( d:int ){param w:f32[d,d]=init.kaiming_uniform(fan_in=d)\n\
               fn(x:f32[...,d])->f32[...,d]{x+relu(x@w.T)}}\n\n\n\
               network Mlp(d_in: int = 64) { input  x: f32[B, d_in]; output logits = x|>Linear(d_in, 10) }\n\
               use nn.{Linear, relu}\n\
               adapt Looped.stack { moves: [skip, repeat(max=2)], score: confidence }\n\
               use nn.*\n";
    let expected = "\
use nn.{Linear, relu}
use nn.*

layer Residual(d: int) {
    param w: f32[d, d] = init.kaiming_uniform(fan_in = d)
    fn (x: f32[..., d]) -> f32[..., d] {
        x + relu(x @ w.T)
    }
}

network Mlp(d_in: int = 64) {
    input x: f32[B, d_in]
    output logits = x |> Linear(d_in, 10)
}

adapt Looped.stack {
    moves: [skip, repeat(max = 2)]
    score: confidence
}
";
    assert_eq!(check_roundtrip(src), expected);
}

#[test]
fn block_expressions_are_multiline_semicolons_only_where_needed() {
    let src = "fn softmax(x, axis: int = -1) { { let m = max(x, axis = axis) let e = exp(x - m)\n e / sum(e) } }";
    let expected = "\
fn softmax(x, axis: int = -1) {
    let m = max(x, axis = axis)
    let e = exp(x - m)
    e / sum(e)
}
";
    assert_eq!(check_roundtrip(src), expected);
    let nested = "layer L { fn (x) { if c { let a = x; -a } else { x } } }";
    let expected = "\
layer L {
    fn (x) {
        if c {
            let a = x;
            -a
        } else { x }
    }
}
";
    assert_eq!(check_roundtrip(nested), expected);
}

#[test]
fn minimal_parentheses() {
    let cases = [
        ("((a)) + (b * c)", "a + b * c"),
        ("(a + b) * c", "(a + b) * c"),
        ("(a - b) - c", "a - b - c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a - (-b)", "a - -b"),
        ("-(x ** 2)", "-x ** 2"),
        ("(-x) ** 2", "(-x) ** 2"),
        ("(a ** b) ** c", "(a ** b) ** c"),
        ("a ** (b ** c)", "a ** b ** c"),
        ("a ** (-b)", "a ** -b"),
        ("(a @ b) @ c", "a @ b @ c"),
        ("a @ (b @ c)", "a @ (b @ c)"),
        ("(a * b) @ c", "(a * b) @ c"),
        ("(a < b) == c", "(a < b) == c"),
        ("a == (b < c)", "a == (b < c)"),
        ("(a || b) && c", "(a || b) && c"),
        ("a || (b && c)", "a || b && c"),
        ("!(a && b)", "!(a && b)"),
        ("(a |> b) |> c", "a |> b |> c"),
        ("a |> (b |> c)", "a |> (b |> c)"),
        ("(x |> f)(y)", "(x |> f)(y)"),
        ("x |> (h => h * 2)", "x |> (h => h * 2)"),
        ("(h => h) |> f", "(h => h) |> f"),
        ("h => (h |> f)", "h => h |> f"),
        ("(a + b).T", "(a + b).T"),
        ("(f(x))[0]", "f(x)[0]"),
        ("(-x).T", "(-x).T"),
        ("(if c { a } else { b }) + 1", "if c { a } else { b } + 1"),
        ("f(k=(v), (w))", "f(k = v, w)"),
        ("[(a), (b + c)]", "[a, b + c]"),
        ("x[(a):(b):(c)]", "x[a:b:c]"),
    ];
    for (input, expected) in cases {
        assert_eq!(fmt_expr(input), expected, "formatting {input}");
    }
}

#[test]
fn repeat_and_stack_forms() {
    assert_eq!(
        fmt_expr("repeat depth as i { Block(d, dilation = 2**i) }"),
        "repeat depth as i { Block(d, dilation = 2 ** i) }"
    );
    assert_eq!(fmt_expr("repeat cfg.n { skip }"), "repeat cfg.n { skip }");
    assert_eq!(fmt_expr("repeat {n - 1} { skip }"), "repeat { n - 1 } { skip }");
    assert_eq!(fmt_expr("stack(n+1) as j { f }"), "stack(n + 1) as j { f }");
    assert_eq!(fmt_expr("repeat(max=2)"), "repeat(max = 2)");
    assert_eq!(fmt_expr("x |> repeat 2 { h => h }"), "x |> repeat 2 { h => h }");
}

#[test]
fn literals_keep_their_meaning() {
    assert_eq!(fmt_expr("1e-3 + 2.5E4 + 1.50 + 007"), "1e-3 + 2.5E4 + 1.50 + 7");
    assert_eq!(fmt_expr(r#""a\"b\\c\nd""#), r#""a\"b\\c\nd""#);
    assert_eq!(fmt_expr("[true, false, skip]"), "[true, false, skip]");
}

#[test]
fn statements_and_types() {
    let src = "layer L(d:int,act:layer=skip) { param b:f32[d*4,d/2+1]=init.zeros() if bias; buffer m: f32[]\n\
               input x: f32[B, d] output y: f32[B] = x\n let n: int = 3 choose w in [1,2] shared }";
    let expected = "\
layer L(d: int, act: layer = skip) {
    param b: f32[d * 4, d / 2 + 1] = init.zeros() if bias
    buffer m: f32[]
    input x: f32[B, d]
    output y: f32[B] = x
    let n: int = 3
    choose w in [1, 2] shared
}
";
    assert_eq!(check_roundtrip(src), expected);
    assert_eq!(check_roundtrip("network E {}"), "network E {}\n");
    assert_eq!(check_roundtrip("operator O over grid N, M { }"), "operator O over grid N, M {}\n");
}

#[test]
fn experiments() {
    let src = "train Mlp(64) on digits(split=[0.8, 0.2]) { loss: ce(logits, label); batch: 64, }";
    let expected = "\
train Mlp(64) on digits(split = [0.8, 0.2]) {
    loss: ce(logits, label)
    batch: 64
}
";
    assert_eq!(check_roundtrip(src), expected);
}

#[test]
fn comments_survive() {
    let src = "\
//! File header.

layer A(d: int) { // after the brace
    // before w
    param w: f32[d] = init.zeros()   // trailing w
    /* block
       comment */
    fn (x) { { let a = x; // after let
      // before result
      a + f(1, // inside a call
      2) } }
    // before the end
}
/* between items */ use nn.* // trailing use
// last words
";
    let expected = "\
//! File header.

/* between items */
use nn.* // trailing use

layer A(d: int) {
    // after the brace
    // before w
    param w: f32[d] = init.zeros() // trailing w
    /* block
       comment */
    fn (x) {
        let a = x // after let
        // before result
        a + f(1, 2)
        // inside a call
    }
    // before the end
}

// last words
";
    let out = check_roundtrip(src);
    assert_eq!(out, expected);
}

#[test]
fn comments_before_moved_use_items_travel_with_them() {
    let src = "fn f() { 1 }\n// about the import\nuse nn\n";
    assert_eq!(check_roundtrip(src), "// about the import\nuse nn\n\nfn f() {\n    1\n}\n");
}

#[test]
fn sources_with_errors_are_refused() {
    assert_eq!(format_source("network A { let = }"), None);
    assert_eq!(format_source("fn f() { $ }"), None);
    assert_eq!(format_source("fn f() { \"open }"), None);
    let (m, errors) = parse(FileId(0), "layer A { param w: = 1 }");
    assert!(!errors.is_empty());
    assert_eq!(format_module(&m, "layer A { param w: = 1 }"), None);
}

#[test]
fn empty_and_comment_only_sources() {
    assert_eq!(format_source(""), Some(String::new()));
    assert_eq!(format_source("  \n\n"), Some(String::new()));
    assert_eq!(format_source("// just this\n\n\n/* and this */"), Some("// just this\n/* and this */\n".to_string()));
}

#[test]
fn long_pipe_chains_are_broken_before_each_stage() {
    let src = "network N { let theta = task |> Embedding(tasks, emb) |> Linear(emb, gen_hidden) |> tanh \
               |> Linear(gen_hidden, target.param_count) // f32[B, P]\n let short = x |> f |> g }";
    let expected = "\
network N {
    let theta = task
        |> Embedding(tasks, emb)
        |> Linear(emb, gen_hidden)
        |> tanh
        |> Linear(gen_hidden, target.param_count) // f32[B, P]
    let short = x |> f |> g
}
";
    assert_eq!(check_roundtrip(src), expected);
}

/// Every stdlib module and example that parses cleanly round-trips through the
/// formatter (files with syntax errors are `archc check`'s business).
#[test]
fn repository_programs_roundtrip() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut checked = 0;
    for dir in ["stdlib", "examples"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_some_and(|x| x == "arch") {
                let src = std::fs::read_to_string(&path).expect("readable");
                if parse(FileId(0), &src).1.is_empty() {
                    check_roundtrip(&src);
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} repository programs round-trip");
}
