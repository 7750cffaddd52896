//! The parser accepts every construct of docs/language.md and builds the right trees.

mod common;

use archc_grammar::ast::*;
use common::{parse_err, parse_ok, sexpr, sx};

fn block<'m>(m: &'m Module, name: &str) -> &'m BlockDef {
    m.items
        .iter()
        .find_map(|i| match i {
            Item::Block(b) if b.name.node == name => Some(b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no block {name}"))
}

fn stmt_value<'m>(b: &'m BlockDef, name: &str) -> &'m Expr {
    b.body
        .iter()
        .find_map(|s| match s {
            Stmt::Let { name: n, value, .. } | Stmt::Output { name: n, value, .. } if n.node == name => Some(value),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no let/output {name}"))
}

#[test]
fn design_sample_parses() {
    let m = parse_ok(common::DESIGN);
    let kinds: Vec<&str> = m
        .items
        .iter()
        .map(|i| match i {
            Item::Use(_) => "use",
            Item::Fn(_) => "fn",
            Item::Block(b) => match b.kind {
                BlockKind::Layer => "layer",
                BlockKind::Network => "network",
                BlockKind::Operator => "operator",
            },
            Item::Train(_) => "train",
            Item::Adapt(_) => "adapt",
            Item::Error(_) => "error",
        })
        .collect();
    assert_eq!(
        kinds,
        ["use", "layer", "network", "network", "operator", "network", "network", "adapt", "train", "fn", "layer"]
    );
}

#[test]
fn design_sample_trees() {
    let m = parse_ok(common::DESIGN);
    let fno = block(&m, "Fno1d");
    assert_eq!(fno.kind, BlockKind::Operator);
    assert_eq!(fno.grid.iter().map(|g| g.node.as_str()).collect::<Vec<_>>(), ["N"]);
    assert_eq!(
        sexpr(
            fno.body
                .iter()
                .filter_map(|s| match s {
                    Stmt::Let { value, .. } => Some(value),
                    _ => None,
                })
                .nth(1)
                .unwrap()
        ),
        "(|> h (repeat depth (=> h (call gelu (+ (call (call SpectralConv1d width width modes) h) \
         (call (call Conv1d width width 1) h))))))"
    );
    let cnn = block(&m, "CnnSpace");
    assert_eq!(sexpr(stmt_value(cnn, "h")), "(|> x (repeat depth as i (call Block width op dilation=(** 2 i))))");
    assert_eq!(sexpr(stmt_value(cnn, "logits")), "(call (call Linear width classes) (call mean h axis=(neg 1)))");
    match &cnn.body[1] {
        Stmt::Choose { name, options, shared, .. } => {
            assert_eq!(name.node, "width");
            assert_eq!(options.len(), 3);
            assert!(*shared);
        }
        other => panic!("expected choose, got {other:?}"),
    }
    let looped = block(&m, "Looped");
    assert_eq!(sexpr(stmt_value(looped, "h")), "(|> (call (call Linear 40 d) x) (stack depth (call ResidualMlp d)))");
    let hyper = block(&m, "TaskHyper");
    assert_eq!(sexpr(stmt_value(hyper, "logits")), "(call (call (. target with_params) theta) x)");
}

#[test]
fn design_sample_layer_with_conditional_param() {
    let m = parse_ok(common::DESIGN);
    let lin = block(&m, "Lin");
    match &lin.body[0] {
        Stmt::Param { name, ty, init, cond, buffer, .. } => {
            assert_eq!(name.node, "b");
            assert!(matches!(ty, TypeExpr::Tensor { dims, .. } if dims.len() == 1));
            assert_eq!(sexpr(init.as_ref().unwrap()), "(call (. init zeros) )");
            assert_eq!(sexpr(cond.as_ref().unwrap()), "bias");
            assert!(!buffer);
        }
        other => panic!("expected param, got {other:?}"),
    }
    match &lin.body[1] {
        Stmt::Forward(f) => {
            assert!(f.name.is_none());
            assert_eq!(f.params.len(), 1);
            assert!(matches!(&f.ret, Some(TypeExpr::Tensor { dims, .. })
                if matches!(dims[0], DimExpr::Ellipsis(_))));
            assert_eq!(sexpr(&f.body), "(if bias (+ (@ x w) b) (@ x w))");
        }
        other => panic!("expected forward fn, got {other:?}"),
    }
}

#[test]
fn design_sample_experiments() {
    let m = parse_ok(common::DESIGN);
    let adapt = m.items.iter().find_map(|i| match i {
        Item::Adapt(a) => Some(a),
        _ => None,
    });
    let adapt = adapt.unwrap();
    assert_eq!(adapt.target.iter().map(|t| t.node.as_str()).collect::<Vec<_>>(), ["Looped", "stack"]);
    let keys: Vec<&str> = adapt.entries.iter().map(|e| e.key.node.as_str()).collect();
    assert_eq!(keys, ["moves", "search", "score"]);
    assert_eq!(sexpr(&adapt.entries[0].value), "[skip (call repeat max=2)]");
    let train = m.items.iter().find_map(|i| match i {
        Item::Train(t) => Some(t),
        _ => None,
    });
    let train = train.unwrap();
    assert_eq!(sexpr(&train.model), "(call Mlp 64 128 10)");
    assert_eq!(sexpr(&train.data), "(call digits split=[0.8 0.2] seed=0)");
    assert_eq!(train.entries.len(), 5);
    assert_eq!(sexpr(&train.entries[1].value), "(call adamw lr=0.001 weight_decay=0.0001)");
}

#[test]
fn design_sample_block_expression_function() {
    let m = parse_ok(common::DESIGN);
    let softmax = m.items.iter().find_map(|i| match i {
        Item::Fn(f) if f.name.as_ref().unwrap().node == "softmax" => Some(f),
        _ => None,
    });
    let f = softmax.unwrap();
    assert_eq!(f.params[1].name.node, "axis");
    assert!(matches!(&f.params[1].ty, Some(TypeExpr::Named(n)) if n.node == "int"));
    assert_eq!(sexpr(f.params[1].default.as_ref().unwrap()), "(neg 1)");
    assert_eq!(
        sexpr(&f.body),
        "(block (let m (call max x axis=axis keepdim=true)) (let e (call exp (- x m))) \
         (/ e (call sum e axis=axis keepdim=true)))"
    );
}

#[test]
fn coverage_file_parses() {
    let m = parse_ok(common::COVERAGE);
    let uses: Vec<&UseItem> = m
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Use(u) => Some(u),
            _ => None,
        })
        .collect();
    let names = |u: &UseItem| match &u.names {
        UseNames::Module => "<module>".to_string(),
        UseNames::Glob => "*".to_string(),
        UseNames::List(l) => l.iter().map(|n| n.node.clone()).collect::<Vec<_>>().join(","),
    };
    let path = |u: &UseItem| u.path.iter().map(|p| p.node.clone()).collect::<Vec<_>>().join(".");
    let got: Vec<String> = uses.iter().map(|u| format!("{}:{}", path(u), names(u))).collect();
    assert_eq!(got, ["nn:Linear,relu", "nn:*", "nn:<module>", "nn.attention:Mha", "nn:Conv1d"]);

    let fno = block(&m, "Fno2d");
    assert_eq!(fno.grid.iter().map(|g| g.node.as_str()).collect::<Vec<_>>(), ["N", "M"]);
    assert_eq!(
        sexpr(stmt_value(fno, "h")),
        "[(index a :: 0:modes:) (index a ... :k:) (index a 1::) (index a ::2) (index a idx) \
         (index a (neg 1)) (index a 0 1:2:3 ...) (index a ::)]"
    );
    assert_eq!(
        sexpr(stmt_value(fno, "s")),
        "(|> (|> a (stack depth (call ResidualMlp d))) (stack (* 2 depth) as j (call Block j)))"
    );
    assert_eq!(sexpr(stmt_value(fno, "r")), "(repeat (. cfg depth) skip)");
    assert_eq!(sexpr(stmt_value(fno, "q")), "(repeat (- depth 1) skip)");
    assert_eq!(sexpr(stmt_value(fno, "lam")), "[(=> x (+ x 1)) (=> y (=> z (* y z)))]");

    let lin = block(&m, "Linear2");
    let buffers: Vec<(bool, bool, bool)> = lin
        .body
        .iter()
        .filter_map(|s| match s {
            Stmt::Param { init, cond, buffer, .. } => Some((*buffer, init.is_some(), cond.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        buffers,
        [(false, true, false), (false, true, true), (true, true, false), (true, false, true), (false, false, false)]
    );
    assert!(matches!(&lin.params[3].ty, Some(TypeExpr::Named(n)) if n.node == "layer"));
    assert_eq!(sexpr(lin.params[3].default.as_ref().unwrap()), "skip");

    let mlp = block(&m, "Mlp");
    assert!(matches!(&mlp.body[2], Stmt::Output { ty: Some(_), .. }));
    assert!(matches!(&mlp.body[3], Stmt::Let { ty: Some(TypeExpr::Named(_)), .. }));
    assert!(mlp.params[4].ty.is_none() && mlp.params[4].default.is_none());
    assert!(block(&m, "Empty").body.is_empty());
}

#[test]
fn scalar_type_has_no_dims() {
    let m = parse_ok("fn f() -> f32[] { 1.0 }");
    match &m.items[0] {
        Item::Fn(f) => assert!(matches!(&f.ret, Some(TypeExpr::Tensor { dims, .. }) if dims.is_empty())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn precedence_loosest_to_tightest() {
    assert_eq!(sx("a |> f || g"), "(|> a (|| f g))");
    assert_eq!(sx("a || b && c"), "(|| a (&& b c))");
    assert_eq!(sx("a && b == c"), "(&& a (== b c))");
    assert_eq!(sx("a != b + c"), "(!= a (+ b c))");
    assert_eq!(sx("a + b * c"), "(+ a (* b c))");
    assert_eq!(sx("a * b @ c"), "(* a (@ b c))");
    assert_eq!(sx("-a @ b"), "(@ (neg a) b)");
    assert_eq!(sx("-a ** b"), "(neg (** a b))");
    assert_eq!(sx("!a.b(c)"), "(not (call (. a b) c))");
    assert_eq!(sx("a <= b || c > d && e >= f"), "(|| (<= a b) (&& (> c d) (>= e f)))");
}

#[test]
fn associativity() {
    assert_eq!(sx("a - b - c"), "(- (- a b) c)");
    assert_eq!(sx("a / b * c % d"), "(% (* (/ a b) c) d)");
    assert_eq!(sx("a @ b @ c"), "(@ (@ a b) c)");
    assert_eq!(sx("a ** b ** c"), "(** a (** b c))");
    assert_eq!(sx("a ** -b"), "(** a (neg b))");
    assert_eq!(sx("a |> f |> g(1)"), "(|> (|> a f) (call g 1))");
    assert_eq!(sx("- - a"), "(neg (neg a))");
}

#[test]
fn comparisons_do_not_chain() {
    let (_, errors) = parse_err("network T { let v = a < b < c }");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "unexpected `<`");
}

#[test]
fn postfix_forms() {
    assert_eq!(sx("f(x)[0].y(z)"), "(call (. (index (call f x) 0) y) z)");
    assert_eq!(sx("x.T"), "(. x T)");
    assert_eq!(sx("x.shape[1]"), "(index (. x shape) 1)");
    assert_eq!(sx("l.param_count"), "(. l param_count)");
    assert_eq!(sx("x.stack.repeat"), "(. (. x stack) repeat)");
    assert_eq!(sx("f()"), "(call f )");
    assert_eq!(sx("f(a, k = v, g = h => h,)"), "(call f a k=v g=(=> h h))");
    assert_eq!(sx("(a + b).c"), "(. (+ a b) c)");
}

#[test]
fn index_forms() {
    assert_eq!(sx("x[:, 0:modes]"), "(index x :: 0:modes:)");
    assert_eq!(sx("x[..., :k]"), "(index x ... :k:)");
    assert_eq!(sx("x[1:]"), "(index x 1::)");
    assert_eq!(sx("x[::2]"), "(index x ::2)");
    assert_eq!(sx("x[a:b:s]"), "(index x a:b:s)");
    assert_eq!(sx("x[idx]"), "(index x idx)");
    assert_eq!(sx("x[-1]"), "(index x (neg 1))");
    assert_eq!(sx("x[n - 1:]"), "(index x (- n 1)::)");
}

#[test]
fn literals() {
    assert_eq!(sx("42"), "42");
    assert_eq!(sx("1.5"), "1.5");
    assert_eq!(sx("1e-3"), "0.001");
    assert_eq!(sx("2.5e4"), "25000.0");
    assert_eq!(sx("true"), "true");
    assert_eq!(sx("false"), "false");
    assert_eq!(sx("skip"), "skip");
    assert_eq!(sx(r#""a\"b\\c\nd""#), r#""a\"b\\c\nd""#);
    assert_eq!(sx("[]"), "[]");
    assert_eq!(sx("[1, [2, 3],]"), "[1 [2 3]]");
}

#[test]
fn control_forms() {
    assert_eq!(sx("if a { b } else if c { d } else { e }"), "(if a b (if c d e))");
    assert_eq!(sx("if a { b } else { if c { d } else { e } }"), "(if a b (if c d e))");
    assert_eq!(sx("if a { b } else { c } + 1"), "(+ (if a b c) 1)");
    assert_eq!(sx("repeat 3 { skip }"), "(repeat 3 skip)");
    assert_eq!(sx("repeat n as i { h => h * i }"), "(repeat n as i (=> h (* h i)))");
    assert_eq!(sx("repeat cfg.n(2) { f }"), "(repeat (call (. cfg n) 2) f)");
    assert_eq!(sx("repeat { n - 1 } { f }"), "(repeat (- n 1) f)");
    assert_eq!(sx("stack(n + 1) as i { f }"), "(stack (+ n 1) as i f)");
    assert_eq!(sx("repeat(max = 2)"), "(call repeat max=2)");
    assert_eq!(sx("repeat(2)(x)"), "(call (call repeat 2) x)");
    assert_eq!(sx("if repeat(2) { a } else { b }"), "(if (call repeat 2) a b)");
    assert_eq!(sx("x => y => x + y"), "(=> x (=> y (+ x y)))");
    assert_eq!(sx("x |> (h => h)"), "(|> x (=> h h))");
}

#[test]
fn block_expressions() {
    assert_eq!(sx("{ x }"), "x");
    assert_eq!(sx("{ let a = 1; a }"), "(block (let a 1) a)");
    assert_eq!(sx("{ let a = 1 let b = a a + b }"), "(block (let a 1) (let b a) (+ a b))");
    // A `(` that starts a line opens a new expression, never a call.
    assert_eq!(sx("{\n let a = f\n (x) }"), "(block (let a f) x)");
    assert_eq!(sx("{\n let a = f(\n x) \n a }"), "(block (let a (call f x)) a)");
    assert_eq!(sx("{\n let a = [1]\n [a] }"), "(block (let a [1]) [a])");
    assert_eq!(sx("{ let a = 1; -a; }"), "(block (let a 1) (neg a))");
    assert_eq!(sx("{ let a = 1; { let b = 2; b } }"), "(block (let a 1) (block (let b 2) b))");
    assert_eq!(sx("{ let a = 1\n if c { a } else { 2 } }"), "(block (let a 1) (if c a 2))");
}

#[test]
fn separators_are_optional_and_ignored() {
    let a = parse_ok("network A { input x: f32[B]; let y = x, output z = y ;; }");
    let b = parse_ok("network A { input x: f32[B] let y = x output z = y }");
    assert_eq!(common::without_spans(&a), common::without_spans(&b));
    let t = parse_ok("train M on d { a: 1; b: 2, c: 3 };");
    assert!(matches!(&t.items[0], Item::Train(t) if t.entries.len() == 3));
}

#[test]
fn spans_cover_the_source_text() {
    let src = "network A {\n    let y = x + 1\n}\n";
    let m = parse_ok(src);
    let b = block(&m, "A");
    assert_eq!(&src[b.span.range()], src.trim_end());
    assert_eq!(&src[b.body[0].span().range()], "let y = x + 1");
    assert_eq!(&src[stmt_value(b, "y").span.range()], "x + 1");
    assert_eq!(&src[b.name.span.range()], "A");
}

#[test]
fn empty_and_comment_only_files() {
    assert!(parse_ok("").items.is_empty());
    assert!(parse_ok("  \n\t ").items.is_empty());
    assert!(parse_ok("// only a comment\n/* and a block */").items.is_empty());
    assert!(parse_ok("//! doc").items.is_empty());
}

#[test]
fn keywords_that_cannot_start_an_expression_name_arguments() {
    let m = parse_ok("train M() on darcy(train = \"train_16\", test = \"test_32\") { batch: 1 }");
    assert!(matches!(&m.items[0], Item::Train(_)));
}
