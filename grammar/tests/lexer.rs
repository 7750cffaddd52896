//! The lexer: tokens, literals, comments and lexical errors.

use archc_grammar::lexer::{comments, lex, LexErrorKind, Tok};

fn toks(src: &str) -> Vec<Tok> {
    let (toks, errors) = lex(src);
    assert!(errors.is_empty(), "{errors:?}");
    toks.into_iter().map(|t| t.1).collect()
}

#[test]
fn punctuation_longest_match() {
    use Tok::*;
    assert_eq!(
        toks("( ) [ ] { } , : ; . ... = => -> |> + - * / % ** @ == != < <= > >= && || !"),
        [
            LParen, RParen, LBracket, RBracket, LBrace, RBrace, Comma, Colon, Semi, Dot, Ellipsis, Assign, FatArrow,
            Arrow, Pipe, Plus, Minus, Star, Slash, Percent, StarStar, At, EqEq, NotEq, Lt, Le, Gt, Ge, AndAnd, OrOr,
            Bang
        ]
    );
    assert_eq!(toks("a**-b"), [Ident("a".into()), StarStar, Minus, Ident("b".into())]);
}

#[test]
fn keywords_and_identifiers() {
    for kw in archc_grammar::lexer::KEYWORDS {
        let t = toks(kw);
        assert_eq!(t.len(), 1);
        assert!(t[0].is_keyword(), "{kw}");
        assert_eq!(t[0].text(), Some(*kw));
    }
    assert_eq!(
        toks("layers _x f32 input2"),
        [Tok::Ident("layers".into()), Tok::Ident("_x".into()), Tok::Ident("f32".into()), Tok::Ident("input2".into()),]
    );
}

#[test]
fn numbers() {
    assert_eq!(
        toks("42 1.5 1e-3 2.5e4 1E+2"),
        [Tok::Int(42), Tok::Float(1.5), Tok::Float(1e-3), Tok::Float(2.5e4), Tok::Float(100.0),]
    );
    assert_eq!(
        toks("x.T 1.T"),
        [Tok::Ident("x".into()), Tok::Dot, Tok::Ident("T".into()), Tok::Int(1), Tok::Dot, Tok::Ident("T".into()),]
    );
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        toks(r#""text" "a\"b\\c\nd" """#),
        [Tok::Str("text".into()), Tok::Str("a\"b\\c\nd".into()), Tok::Str(String::new()),]
    );
}

#[test]
fn comments_are_skipped_and_listed() {
    let src = "a // line\n/* block\n */ b //! doc";
    assert_eq!(toks(src), [Tok::Ident("a".into()), Tok::Ident("b".into())]);
    let cs = comments(src);
    let texts: Vec<&str> = cs.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["// line", "/* block\n */", "//! doc"]);
    assert!(cs[1].block && !cs[0].block);
    assert_eq!(toks("a/b"), [Tok::Ident("a".into()), Tok::Slash, Tok::Ident("b".into())]);
}

#[test]
fn spans_are_byte_offsets() {
    let (toks, _) = lex("ab  =>\n\"é\"");
    let spans: Vec<(usize, usize)> = toks.iter().map(|t| (t.0, t.2)).collect();
    assert_eq!(spans, [(0, 2), (4, 6), (7, 11)]);
}

fn errors(src: &str) -> Vec<(LexErrorKind, usize, usize)> {
    let (toks, errors) = lex(src);
    let error_toks = toks.iter().filter(|t| t.1 == Tok::Error).count();
    // Out-of-range literals are reported and then parsed as placeholder values.
    let placeholders =
        errors.iter().filter(|e| matches!(e.kind, LexErrorKind::IntOutOfRange | LexErrorKind::FloatOutOfRange)).count();
    assert_eq!(error_toks + placeholders, errors.len(), "one error token per lexical error");
    errors.into_iter().map(|e| (e.kind, e.start, e.end)).collect()
}

#[test]
fn lexical_errors_become_error_tokens() {
    assert_eq!(errors("a # b"), [(LexErrorKind::InvalidChar, 2, 3)]);
    assert_eq!(errors("a $#? b"), [(LexErrorKind::InvalidChar, 2, 5)]);
    assert_eq!(errors("é"), [(LexErrorKind::InvalidChar, 0, 2)]);
    assert_eq!(errors("a & b | c"), [(LexErrorKind::InvalidChar, 2, 3), (LexErrorKind::InvalidChar, 6, 7),]);
    assert_eq!(errors("\"open\nx"), [(LexErrorKind::UnterminatedString, 0, 5)]);
    assert_eq!(errors("\"open"), [(LexErrorKind::UnterminatedString, 0, 5)]);
    assert_eq!(errors("\"a\\"), [(LexErrorKind::UnterminatedString, 0, 3)]);
    assert_eq!(errors(r#""bad \t escape""#), [(LexErrorKind::BadEscape, 0, 15)]);
    assert_eq!(errors("x /* open"), [(LexErrorKind::UnterminatedComment, 2, 9)]);
    assert_eq!(errors("99999999999999999999"), [(LexErrorKind::IntOutOfRange, 0, 20)]);
    assert_eq!(errors("1e999"), [(LexErrorKind::FloatOutOfRange, 0, 5)]);
}

#[test]
fn excessive_bracket_nesting_is_cut() {
    let depth = archc_grammar::lexer::MAX_BRACKET_DEPTH;
    let ok = format!("{}{}", "(".repeat(depth), ")".repeat(depth));
    assert!(errors(&ok).is_empty());
    let deep = format!("{}x{}", "(".repeat(depth + 10), ")".repeat(depth + 10));
    let errs = errors(&deep);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, LexErrorKind::TooDeep);
    let (toks, _) = lex(&deep);
    assert_eq!(toks.len(), 2 * depth + 1, "the too-deep run is one error token");
    let twice = errors(&format!("{deep} + {deep}"));
    assert_eq!(twice.iter().map(|e| &e.0).collect::<Vec<_>>(), [&LexErrorKind::TooDeep, &LexErrorKind::TooDeep]);
}
