//! Error recovery: parsing never fails, reports every syntax error once, and keeps the
//! good parts of the file.

mod common;

use archc_grammar::ast::*;
use archc_grammar::MAX_DEPTH;
use common::{parse_err, sexpr};
use std::time::{Duration, Instant};

fn item_names(m: &Module) -> Vec<String> {
    m.items
        .iter()
        .map(|i| match i {
            Item::Use(_) => "use".to_string(),
            Item::Fn(f) => format!("fn {}", f.name.as_ref().map_or("", |n| n.node.as_str())),
            Item::Block(b) => b.name.node.clone(),
            Item::Train(_) => "train".to_string(),
            Item::Adapt(_) => "adapt".to_string(),
            Item::Error(_) => "<error>".to_string(),
        })
        .collect()
}

const THREE_ERRORS: &str = "\
network A {
    input x: f32[B, 4]
    let y = x +
    output z = y
}
layer B(d: int) {
    param w: f32[d d]
    fn (x) { x @ w }
}
fn good(x) { x * 2 }
fn bad(x) { x ) }
network C { input x: f32[B] output y = x }
";

#[test]
fn three_separate_errors_are_all_reported() {
    let (m, errors) = parse_err(THREE_ERRORS);
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.message.as_str(), &THREE_ERRORS[e.span.range()])).collect();
    assert_eq!(got, [("unexpected `output`", "output"), ("unexpected identifier `d`", "d"), ("unexpected `)`", ")")]);
    assert_eq!(item_names(&m), ["A", "B", "fn good", "fn bad", "C"]);
    let Item::Block(a) = &m.items[0] else { panic!() };
    assert!(matches!(a.body[0], Stmt::Input { .. }));
    assert!(matches!(a.body[1], Stmt::Error(_)));
    assert!(matches!(&a.body[2], Stmt::Output { name, .. } if name.node == "z"));
    let Item::Block(b) = &m.items[1] else { panic!() };
    assert!(matches!(b.body[0], Stmt::Error(_)));
    assert!(matches!(b.body[1], Stmt::Forward(_)));
    let Item::Fn(bad) = &m.items[3] else { panic!() };
    assert_eq!(bad.body.kind, ExprKind::Error);
    let Item::Block(c) = &m.items[4] else { panic!() };
    assert_eq!(c.body.len(), 2);
}

#[test]
fn broken_statement_becomes_error_and_parsing_continues() {
    let src = "layer L {\n  param w: = 3\n  buffer b: f32[4]\n  fn (x) { x }\n}";
    let (m, errors) = parse_err(src);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "unexpected `=`");
    assert_eq!(errors[0].expected, ["`layer`", "identifier"]);
    let Item::Block(l) = &m.items[0] else { panic!() };
    assert!(matches!(l.body[0], Stmt::Error(_)));
    assert!(matches!(l.body[1], Stmt::Param { buffer: true, .. }));
    assert!(matches!(l.body[2], Stmt::Forward(_)));
}

#[test]
fn broken_item_resyncs_at_next_item_keyword() {
    let src = "use nn.{Linear\nlayer A { }\n) ) garbage ]\nfn f() { 1 }\ntrain";
    let (m, errors) = parse_err(src);
    assert_eq!(item_names(&m), ["<error>", "A", "<error>", "fn f", "<error>"]);
    let msgs: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["unexpected `layer`", "unexpected `)`", "unexpected end of file"]);
}

#[test]
fn unclosed_block_recovers_at_next_item() {
    let src = "network A {\n input x: f32[B]\nnetwork B { input y: f32[B] }";
    let (m, errors) = parse_err(src);
    assert_eq!(errors.len(), 1);
    assert_eq!(item_names(&m), ["<error>", "B"]);
}

#[test]
fn expression_errors_stay_inside_their_list() {
    let (m, errors) = parse_err("network T { let v = f(a, , b) let w = [1, +, 3] let u = x[1, *] }");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let Item::Block(b) = &m.items[0] else { panic!() };
    let values: Vec<String> = b
        .body
        .iter()
        .map(|s| match s {
            Stmt::Let { value, .. } => sexpr(value),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(values, ["(call f a <error> b)", "[1 <error> 3]", "(index x 1 <error>)"]);
}

#[test]
fn errors_inside_block_expressions() {
    let (m, errors) = parse_err("fn f(c) { if c { x + } else { y } }");
    assert_eq!(errors.len(), 1);
    let Item::Fn(f) = &m.items[0] else { panic!() };
    assert_eq!(sexpr(&f.body), "(if c <error> y)");
}

#[test]
fn errors_in_train_entries() {
    let (m, errors) = parse_err("train M on d { loss: ; epochs: 3 }");
    assert_eq!(errors.len(), 1);
    let Item::Train(t) = &m.items[0] else { panic!() };
    assert_eq!(t.entries.len(), 2);
    assert_eq!(t.entries[0].value.kind, ExprKind::Error);
    assert_eq!(t.entries[1].key.node, "epochs");
}

#[test]
fn lexical_errors_are_reported_once() {
    let src = "network A { let y = x $ 2\n let z = 3 }\nfn g() { \"open }\nfn h() { 1 }";
    let (m, errors) = parse_err(src);
    let msgs: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["invalid character", "unterminated string literal"]);
    assert_eq!(&src[errors[0].span.range()], "$");
    assert_eq!(&src[errors[1].span.range()], "\"open }");
    assert_eq!(item_names(&m), ["A", "<error>", "fn h"]);
    let Item::Block(a) = &m.items[0] else { panic!() };
    assert!(a.body.iter().any(|s| matches!(s, Stmt::Error(_))));
    assert!(matches!(a.body.last(), Some(Stmt::Let { name, .. }) if name.node == "z"));
}

#[test]
fn unterminated_block_comment() {
    let (m, errors) = parse_err("fn f() { 1 }\n/* never closed\nfn g() { 2 }");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "unterminated block comment");
    assert_eq!(item_names(&m), ["fn f", "<error>"]);
}

#[test]
fn expected_tokens_are_friendly_sorted_and_unique() {
    let (_, errors) = parse_err("fn f(x { x }");
    assert_eq!(errors[0].message, "unexpected `{`");
    assert_eq!(errors[0].expected, ["`)`", "`,`", "`:`", "`=`"]);
    let (_, errors) = parse_err("network T { let v = }");
    assert_eq!(errors[0].expected, ["expression"]);
    let (_, errors) = parse_err("layer");
    assert_eq!(errors[0].message, "unexpected end of file");
    assert_eq!(errors[0].expected, ["identifier"]);
    for e in parse_err(THREE_ERRORS).1 {
        let mut sorted = e.expected.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, e.expected);
        assert!(e.expected.iter().all(|x| !x.contains('"')), "{:?}", e.expected);
    }
}

#[test]
fn display_of_errors() {
    let (_, errors) = parse_err("fn f(x { x }");
    assert_eq!(errors[0].to_string(), "unexpected `{`; expected `)`, `,`, `:`, `=`");
}

#[test]
fn nesting_depth_limit() {
    let at_limit = format!("fn f() {{ {}x }}", "-".repeat(MAX_DEPTH as usize - 1));
    assert!(parse_err(&at_limit).1.is_empty());
    let over = format!("fn f() {{ {}x }}", "-".repeat(MAX_DEPTH as usize));
    let (m, errors) = parse_err(&over);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("nested too deeply"));
    let Item::Fn(f) = &m.items[0] else { panic!() };
    assert_eq!(f.body.kind, ExprKind::Error);
}

fn assert_fast_and_reports(name: &str, src: &str, message: &str) {
    let start = Instant::now();
    let (m, errors) = parse_err(src);
    assert!(start.elapsed() < Duration::from_secs(10), "{name} took {:?}", start.elapsed());
    assert!(errors.iter().any(|e| e.message.contains(message)), "{name}: {errors:?}");
    drop(m);
}

#[test]
fn pathological_nesting_does_not_overflow() {
    let n = 20_000;
    let cases = [
        ("parens", format!("fn f() {{ {}x{} }}", "(".repeat(n), ")".repeat(n)), "brackets"),
        ("open calls", format!("fn f() {{ {}x", "f(".repeat(n)), "brackets"),
        ("lists", format!("fn f() {{ {}x{} }}", "[".repeat(n), "]".repeat(n)), "brackets"),
        ("braces", format!("fn f() {{ {}x{} }}", "{".repeat(n), "}".repeat(n)), "brackets"),
        ("negations", format!("fn f() {{ {}x }}", "-".repeat(n)), "too deeply"),
        ("powers", format!("fn f() {{ x{} }}", " ** x".repeat(n)), "too deeply"),
        ("sums", format!("fn f() {{ x{} }}", " + x".repeat(n)), "too deeply"),
        ("pipes", format!("fn f() {{ x{} }}", " |> f".repeat(n)), "`|>` stages"),
        ("fields", format!("fn f() {{ x{} }}", ".a".repeat(n)), "too deeply"),
        ("lambdas", format!("fn f() {{ {}x }}", "x => ".repeat(n)), "too deeply"),
        ("else-ifs", format!("fn f() {{ {}{{ 1 }} }}", "if c { 1 } else ".repeat(n)), "too deeply"),
    ];
    for (name, src, message) in &cases {
        assert_fast_and_reports(name, src, message);
    }
}

#[test]
fn names_of_unparsed_items_are_recoverable() {
    let src = "layer Gate(d: int {\n    fn (x) { x }\n}\nnetwork N { input x: f32[B] output y = Gate(1)(x) }\n";
    let (m, errors) = parse_err(src);
    assert!(!errors.is_empty());
    let lost: Vec<String> = m
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Error(s) => Some(archc_grammar::defined_names(&src[s.range()])),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(lost, ["Gate"]);
    assert_eq!(archc_grammar::defined_names("fn f(x) { x } layer L { fn (x) { x } } network"), ["f", "L"]);
}

#[test]
fn every_syntax_error_lies_in_the_item_it_breaks() {
    let (m, errors) = parse_err(THREE_ERRORS);
    let broken: Vec<String> = m
        .items
        .iter()
        .filter(|i| errors.iter().any(|e| i.span().covers(e.span)))
        .map(|i| item_names(&Module { items: vec![i.clone()] }).remove(0))
        .collect();
    assert_eq!(broken, ["A", "B", "fn bad"]);
}

#[test]
fn an_error_at_an_items_first_token_belongs_to_the_item_before() {
    let src = "use nn.{Linear\nlayer A { }\n";
    let (m, errors) = parse_err(src);
    assert_eq!(item_names(&m), ["<error>", "A"]);
    assert!(!m.items[1].span().covers(errors[0].span));
}

#[test]
fn a_broken_item_header_is_one_error_not_one_per_comma_in_its_body() {
    let src = "network E(d: int {\n    input x: f32[B, d]\n    output y = f(d, d)\n}\nnetwork N { input x: f32[B] }\n";
    let (m, errors) = parse_err(src);
    let msgs: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["unexpected `{`"]);
    assert_eq!(item_names(&m), ["<error>", "N"]);
}

#[test]
fn broken_items_that_start_with_a_keyword_keep_their_own_errors() {
    let src = "network A(d: int { input x: f32[B, d] }\nnetwork B(d: int { input x: f32[B, d] }\n";
    let (m, errors) = parse_err(src);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(item_names(&m), ["<error>", "<error>"]);
}

#[test]
fn names_a_broken_use_would_import_are_recoverable() {
    let names = archc_grammar::defined_names("use nn.{Linear, relu\nlayer");
    assert_eq!(names, ["nn", "Linear", "relu"]);
    assert_eq!(archc_grammar::defined_names("use a.b\n) x"), ["a", "b"]);
}
