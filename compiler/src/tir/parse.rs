//! Reader of the TIR text form written by [`super::print`].
//!
//! Contract: for every program `p` whose name lists match its args/results in length,
//! `parse_program(&p.to_string())` gives back `p` with every span `None`, and printing
//! that gives the same text. Errors carry the 1-based line and column (in characters)
//! of the offending token. Whitespace (newlines included) separates tokens anywhere;
//! `//` starts a comment to the end of the line. Parsing checks syntax and the
//! attributes each op takes, nothing else: types, SSA and names are the verifier's.
//!
//! Grammar (`NAME` is a run of `[A-Za-z0-9_.]` or a string; `RAW` is a run of text up
//! to a `,` `]` `}` `)` or newline outside parentheses, read as a number or a dim):
//! ```text
//! program := "program" NAME item*
//! item    := ("param" | "buffer") "@" NAME ":" type "=" INIT "(" [NAME "=" RAW, ...] ")"
//!          | "func" "@" NAME "(" [VALUE ":" type [STRING], ...] ")"
//!            "->" "(" [(type | "?") [STRING], ...] ")" "{" inst* "return" [VALUE, ...] "}"
//! inst    := VALUE ("," VALUE)* "=" OPNAME "(" [VALUE, ...] ")" ["{" [KEY "=" attr, ...] "}"]
//!            ":" type ("," type)*          (as many types as results)
//! attr    := STRING | "@" NAME | "[" [attr, ...] "]" | RAW
//! type    := DTYPE "[" [RAW, ...] "]"
//! ```

use super::dim::Dim;
use super::ops::{binary_name, reduce_name, unary_name};
use super::ops::{Init, Op, PoolOp, ReduceOp, BINARY_OPS, UNARY_OPS};
use super::print::is_name_char;
use super::program::{Func, Inst, ParamDecl, Program, ValueId};
use super::types::{DType, TensorType};
use std::fmt;
use std::str::FromStr;

/// A syntax error at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole program.
pub fn parse_program(text: &str) -> Result<Program, ParseError> {
    let mut p = Parser { src: text, pos: 0 };
    let prog = p.program()?;
    p.skip_ws();
    match p.at_end() {
        true => Ok(prog),
        false => Err(p.error(p.pos, format!("expected `param`, `buffer` or `func`, found {}", p.found()))),
    }
}

/// Parses one tensor type, `f32[B, 64]`.
pub fn parse_type(text: &str) -> Result<TensorType, ParseError> {
    let mut p = Parser { src: text, pos: 0 };
    let t = p.tensor_type()?;
    p.skip_ws();
    match p.at_end() {
        true => Ok(t),
        false => Err(p.error(p.pos, format!("unexpected {} after the type", p.found()))),
    }
}

impl FromStr for Program {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Program, ParseError> {
        parse_program(s)
    }
}

type PResult<T> = Result<T, ParseError>;
/// An error at a byte position, before it is turned into a line and column.
type BResult<T> = Result<T, (usize, String)>;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

// ---------------------------------------------------------------------------------------
// Tokens

impl<'a> Parser<'a> {
    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let before = &self.src[..pos];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError { line, col, message: message.into() }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if !trimmed.starts_with("//") {
                return;
            }
            self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    /// The next token, described for an error message.
    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "the end of the input".into(),
            Some(c) if is_name_char(c) => format!("`{}`", rest.split(|c| !is_name_char(c)).next().unwrap_or("")),
            Some(c) => format!("`{c}`"),
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let ok = self.rest().starts_with(s);
        if ok {
            self.pos += s.len();
        }
        ok
    }

    fn expect(&mut self, s: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(self.pos, format!("expected `{s}`, found {}", self.found())))
        }
    }

    /// A run of name characters, with its position.
    fn word(&mut self) -> PResult<(String, usize)> {
        self.skip_ws();
        let start = self.pos;
        let len = self.rest().find(|c| !is_name_char(c)).unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error(start, format!("expected a name, found {}", self.found())));
        }
        self.pos += len;
        Ok((self.src[start..self.pos].to_string(), start))
    }

    fn keyword(&mut self, kw: &str) -> PResult<()> {
        let (w, pos) = self.word().map_err(|e| ParseError { message: format!("expected `{kw}`"), ..e })?;
        match w == kw {
            true => Ok(()),
            false => Err(self.error(pos, format!("expected `{kw}`, found `{w}`"))),
        }
    }

    /// A bare name or a string.
    fn name(&mut self) -> PResult<String> {
        match self.peek() {
            Some('"') => self.string(),
            _ => Ok(self.word()?.0),
        }
    }

    fn string(&mut self) -> PResult<String> {
        self.expect("\"")?;
        let mut out = String::new();
        loop {
            let pos = self.pos;
            let c = self.rest().chars().next().ok_or_else(|| self.error(pos, "unterminated string"))?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape(pos)?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, pos: usize) -> PResult<char> {
        let c = self.rest().chars().next().ok_or_else(|| self.error(pos, "unterminated string"))?;
        self.pos += c.len_utf8();
        Ok(match c {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '"' | '\\' => c,
            'u' => return self.unicode_escape(pos),
            c => return Err(self.error(pos, format!("unknown escape `\\{c}`"))),
        })
    }

    fn unicode_escape(&mut self, pos: usize) -> PResult<char> {
        let bad = |p: &Self| p.error(pos, "malformed `\\u{...}` escape");
        if !self.rest().starts_with('{') {
            return Err(bad(self));
        }
        let close = self.rest().find('}').ok_or_else(|| bad(self))?;
        let hex = &self.rest()[1..close];
        let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).ok_or_else(|| bad(self))?;
        self.pos += close + 1;
        Ok(c)
    }

    fn value_id(&mut self) -> PResult<ValueId> {
        self.expect("%")?;
        let start = self.pos;
        let len = self.rest().find(|c: char| !c.is_ascii_digit()).unwrap_or(self.rest().len());
        let n =
            self.rest()[..len].parse::<u32>().map_err(|_| self.error(start, "expected a value number after `%`"))?;
        self.pos += len;
        Ok(ValueId(n))
    }

    /// Text up to a `,` `]` `}` `)` or newline outside parentheses, trimmed.
    fn raw(&mut self) -> PResult<(String, usize)> {
        self.skip_ws();
        let start = self.pos;
        let mut depth = 0usize;
        for c in self.rest().chars() {
            match c {
                '(' => depth += 1,
                ')' if depth > 0 => depth -= 1,
                ',' | ']' | '}' | ')' | '\n' if depth == 0 => break,
                _ => {}
            }
            self.pos += c.len_utf8();
        }
        let text = self.src[start..self.pos].trim_end();
        if text.is_empty() {
            return Err(self.error(start, format!("expected a value, found {}", self.found())));
        }
        Ok((text.to_string(), start))
    }

    /// Items separated by `,` up to `close` (the opening bracket already eaten).
    fn list<T>(&mut self, close: &str, mut item: impl FnMut(&mut Self) -> PResult<T>) -> PResult<Vec<T>> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    fn tensor_type(&mut self) -> PResult<TensorType> {
        let (name, pos) = self.word()?;
        let dtype = DType::from_name(&name).ok_or_else(|| self.error(pos, format!("unknown dtype `{name}`")))?;
        self.expect("[")?;
        let shape = self.list("]", |p| {
            let (text, pos) = p.raw()?;
            Dim::parse(&text).map_err(|e| p.error(pos, e))
        })?;
        Ok(TensorType::new(dtype, shape))
    }
}

// ---------------------------------------------------------------------------------------
// Program structure

impl Parser<'_> {
    fn program(&mut self) -> PResult<Program> {
        self.keyword("program")?;
        let mut prog = Program { name: self.name()?, ..Program::default() };
        while self.peek().is_some() {
            let (w, pos) = self.word()?;
            match w.as_str() {
                "param" | "buffer" => prog.params.push(self.param_decl(w == "param")?),
                "func" => prog.funcs.push(self.func()?),
                _ => return Err(self.error(pos, format!("expected `param`, `buffer` or `func`, found `{w}`"))),
            }
        }
        Ok(prog)
    }

    fn param_decl(&mut self, trainable: bool) -> PResult<ParamDecl> {
        self.expect("@")?;
        let name = self.name()?;
        self.expect(":")?;
        let ty = self.tensor_type()?;
        self.expect("=")?;
        let init = self.init()?;
        Ok(ParamDecl { name, ty, init, trainable })
    }

    fn init(&mut self) -> PResult<Init> {
        let (kind, pos) = self.word()?;
        self.expect("(")?;
        let mut attrs = Attrs { op: kind.clone(), pos, items: Vec::new() };
        for (key, kpos, val) in self.list(")", |p| p.attr())? {
            attrs.add(key, kpos, val).map_err(|(p, m)| self.error(p, m))?;
        }
        build_init(&kind, &mut attrs).and_then(|i| attrs.finish().map(|_| i)).map_err(|(p, m)| self.error(p, m))
    }

    fn func(&mut self) -> PResult<Func> {
        self.expect("@")?;
        let name = self.name()?;
        self.expect("(")?;
        let args = self.list(")", |p| {
            let v = p.value_id()?;
            p.expect(":")?;
            let t = p.tensor_type()?;
            Ok((v, t, p.opt_string()?))
        })?;
        self.expect("->")?;
        self.expect("(")?;
        let header = self.list(")", |p| {
            let pos = p.pos;
            let t = if p.eat("?") { None } else { Some(p.tensor_type()?) };
            Ok((t, p.opt_string()?, pos))
        })?;
        self.expect("{")?;
        let mut f = Func {
            name,
            args: args.iter().map(|(v, t, _)| (*v, t.clone())).collect(),
            arg_names: args.into_iter().filter_map(|(_, _, n)| n).collect(),
            body: Vec::new(),
            results: Vec::new(),
            result_names: Vec::new(),
        };
        self.body(&mut f)?;
        self.check_header(&mut f, header)?;
        Ok(f)
    }

    fn opt_string(&mut self) -> PResult<Option<String>> {
        match self.peek() {
            Some('"') => Ok(Some(self.string()?)),
            _ => Ok(None),
        }
    }

    /// Instructions, then `return %a, ...` and the closing brace.
    fn body(&mut self, f: &mut Func) -> PResult<()> {
        while self.peek() == Some('%') {
            f.body.push(self.inst()?);
        }
        self.skip_ws();
        if !self.rest().starts_with("return") || self.rest()[6..].starts_with(is_name_char) {
            return Err(self.error(self.pos, format!("expected an instruction or `return`, found {}", self.found())));
        }
        self.pos += "return".len();
        if self.peek() == Some('%') {
            f.results.push(self.value_id()?);
            while self.eat(",") {
                f.results.push(self.value_id()?);
            }
        }
        self.expect("}")
    }

    /// Takes result names from the header and checks its types against the body.
    fn check_header(&self, f: &mut Func, header: Vec<(Option<TensorType>, Option<String>, usize)>) -> PResult<()> {
        if header.len() != f.results.len() {
            let pos = header.first().map_or(self.pos, |h| h.2);
            let msg = format!("the header lists {} results, but `return` gives {}", header.len(), f.results.len());
            return Err(self.error(pos, msg));
        }
        for ((ty, name, pos), r) in header.into_iter().zip(&f.results) {
            match (ty, f.type_of(*r)) {
                (Some(t), Some(actual)) if t != *actual => {
                    return Err(self.error(pos, format!("result {r} is listed as {t} but has type {actual}")))
                }
                _ => {}
            }
            f.result_names.extend(name);
        }
        Ok(())
    }

    fn inst(&mut self) -> PResult<Inst> {
        let mut results = vec![self.value_id()?];
        while self.eat(",") {
            results.push(self.value_id()?);
        }
        self.expect("=")?;
        let (name, pos) = self.word()?;
        self.expect("(")?;
        let args = self.list(")", |p| p.value_id())?;
        let mut attrs = Attrs { op: name.clone(), pos, items: Vec::new() };
        if self.eat("{") {
            for (key, kpos, val) in self.list("}", |p| p.attr())? {
                attrs.add(key, kpos, val).map_err(|(p, m)| self.error(p, m))?;
            }
        }
        self.expect(":")?;
        let types_pos = self.pos;
        let mut types = vec![self.tensor_type()?];
        while self.eat(",") {
            types.push(self.tensor_type()?);
        }
        if types.len() != results.len() {
            let plural = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
            let msg = format!("{} but {}", plural(results.len(), "result"), plural(types.len(), "type"));
            let pos = types_pos + self.src[types_pos..].len() - self.src[types_pos..].trim_start().len();
            return Err(self.error(pos, msg));
        }
        let op = build_op(&name, &mut attrs).and_then(|op| attrs.finish().map(|_| op));
        let op = op.map_err(|(p, m)| self.error(p, m))?;
        Ok(Inst::with_results(op, args, results.into_iter().zip(types).collect()))
    }

    fn attr(&mut self) -> PResult<(String, usize, AttrVal)> {
        let (key, pos) = self.word()?;
        self.expect("=")?;
        Ok((key, pos, self.attr_value()?))
    }

    fn attr_value(&mut self) -> PResult<AttrVal> {
        self.skip_ws();
        let pos = self.pos;
        let kind = match self.peek() {
            Some('"') => AttrKind::Str(self.string()?),
            Some('@') => {
                self.pos += 1;
                AttrKind::Func(self.name()?)
            }
            Some('[') => {
                self.pos += 1;
                AttrKind::List(self.list("]", |p| p.attr_value())?)
            }
            _ => AttrKind::Raw(self.raw()?.0),
        };
        Ok(AttrVal { kind, pos })
    }
}

// ---------------------------------------------------------------------------------------
// Attributes

#[derive(Clone, Debug)]
enum AttrKind {
    Raw(String),
    Str(String),
    Func(String),
    List(Vec<AttrVal>),
}

#[derive(Clone, Debug)]
struct AttrVal {
    kind: AttrKind,
    pos: usize,
}

impl AttrVal {
    fn err<T>(&self, what: &str) -> BResult<T> {
        Err((self.pos, format!("expected {what}")))
    }

    fn raw(&self, what: &str) -> BResult<&str> {
        match &self.kind {
            AttrKind::Raw(s) => Ok(s),
            _ => self.err(what),
        }
    }

    fn parsed<T: FromStr>(&self, what: &str) -> BResult<T> {
        self.raw(what)?.parse().or_else(|_| self.err(what))
    }

    fn usize(&self) -> BResult<usize> {
        self.parsed("a non-negative integer")
    }

    fn i64(&self) -> BResult<i64> {
        self.parsed("an integer")
    }

    fn f64(&self) -> BResult<f64> {
        self.parsed("a number")
    }

    fn bool(&self) -> BResult<bool> {
        self.parsed("`true` or `false`")
    }

    fn dim(&self) -> BResult<Dim> {
        Dim::parse(self.raw("a dim")?).map_err(|e| (self.pos, e))
    }

    fn string(&self) -> BResult<String> {
        match &self.kind {
            AttrKind::Str(s) => Ok(s.clone()),
            _ => self.err("a string"),
        }
    }

    fn func(&self) -> BResult<String> {
        match &self.kind {
            AttrKind::Func(s) => Ok(s.clone()),
            _ => self.err("a function reference `@name`"),
        }
    }

    fn list<T>(&self, item: impl Fn(&AttrVal) -> BResult<T>) -> BResult<Vec<T>> {
        match &self.kind {
            AttrKind::List(xs) => xs.iter().map(item).collect(),
            _ => self.err("a list `[...]`"),
        }
    }

    fn pair(&self) -> BResult<(i64, i64)> {
        match self.list(|v| v.i64())?.as_slice() {
            [lo, hi] => Ok((*lo, *hi)),
            _ => self.err("a pair `[lo, hi]`"),
        }
    }
}

/// The attributes of one op (or init), consumed by key.
struct Attrs {
    op: String,
    pos: usize,
    items: Vec<(String, usize, AttrVal)>,
}

impl Attrs {
    fn add(&mut self, key: String, pos: usize, val: AttrVal) -> BResult<()> {
        if self.items.iter().any(|(k, _, _)| *k == key) {
            return Err((pos, format!("attribute `{key}` is given twice")));
        }
        self.items.push((key, pos, val));
        Ok(())
    }

    fn take(&mut self, key: &str) -> BResult<AttrVal> {
        match self.items.iter().position(|(k, _, _)| k == key) {
            Some(i) => Ok(self.items.remove(i).2),
            None => Err((self.pos, format!("`{}` needs the attribute `{key}`", self.op))),
        }
    }

    fn usize(&mut self, key: &str) -> BResult<usize> {
        self.take(key)?.usize()
    }

    fn bool(&mut self, key: &str) -> BResult<bool> {
        self.take(key)?.bool()
    }

    fn f64(&mut self, key: &str) -> BResult<f64> {
        self.take(key)?.f64()
    }

    fn ints(&mut self, key: &str) -> BResult<Vec<i64>> {
        self.take(key)?.list(|v| v.i64())
    }

    fn pairs(&mut self, key: &str) -> BResult<Vec<(i64, i64)>> {
        self.take(key)?.list(|v| v.pair())
    }

    fn finish(&self) -> BResult<()> {
        match self.items.first() {
            Some((k, pos, _)) => Err((*pos, format!("`{}` has no attribute `{k}`", self.op))),
            None => Ok(()),
        }
    }
}

fn build_init(kind: &str, a: &mut Attrs) -> BResult<Init> {
    Ok(match kind {
        "zeros" => Init::Zeros,
        "ones" => Init::Ones,
        "constant" => Init::Constant(a.f64("value")?),
        "normal" => Init::Normal { mean: a.f64("mean")?, std: a.f64("std")? },
        "uniform" => Init::Uniform { low: a.f64("low")?, high: a.f64("high")? },
        _ => return Err((a.pos, format!("unknown initialiser `{kind}`"))),
    })
}

fn build_op(name: &str, a: &mut Attrs) -> BResult<Op> {
    if let Some(op) = plain_op(name) {
        return Ok(op);
    }
    if let Some(op) = reduce_or_pool(name, a)? {
        return Ok(op);
    }
    if let Some(op) = layout_op(name, a)? {
        return Ok(op);
    }
    match func_op(name, a)? {
        Some(op) => Ok(op),
        None => Err((a.pos, format!("unknown op `{name}`"))),
    }
}

/// Ops without attributes.
fn plain_op(name: &str) -> Option<Op> {
    if let Some(u) = UNARY_OPS.iter().find(|u| unary_name(**u) == name) {
        return Some(Op::Unary(*u));
    }
    if let Some(b) = BINARY_OPS.iter().find(|b| binary_name(**b) == name) {
        return Some(Op::Binary(*b));
    }
    Some(match name {
        "select" => Op::Select,
        "cast" => Op::Cast,
        "matmul" => Op::MatMul,
        "reshape" => Op::Reshape,
        "broadcast" => Op::Broadcast,
        "real" => Op::Real,
        "imag" => Op::Imag,
        "complex" => Op::Complex,
        _ => return None,
    })
}

fn reduce_or_pool(name: &str, a: &mut Attrs) -> BResult<Option<Op>> {
    const REDUCE: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min];
    if let Some(op) = REDUCE.iter().find(|r| name.strip_prefix("reduce.") == Some(reduce_name(**r))) {
        let axes = a.take("axes")?.list(|v| v.usize())?;
        return Ok(Some(Op::Reduce { op: *op, axes, keepdim: a.bool("keepdim")? }));
    }
    let op = match name {
        "pool.max" => PoolOp::Max,
        "pool.avg" => PoolOp::Avg,
        _ => return Ok(None),
    };
    Ok(Some(Op::Pool { op, window: a.ints("window")?, stride: a.ints("stride")?, padding: a.pairs("padding")? }))
}

fn layout_op(name: &str, a: &mut Attrs) -> BResult<Option<Op>> {
    Ok(Some(match name {
        "param" => Op::Param(a.take("name")?.string()?),
        "const" => Op::Const(a.f64("value")?),
        "iota" => Op::Iota { axis: a.usize("axis")? },
        "argmax" => Op::ArgMax { axis: a.usize("axis")?, keepdim: a.bool("keepdim")? },
        "argsort" => Op::ArgSort { axis: a.usize("axis")?, descending: a.bool("descending")? },
        "stop_gradient" => Op::StopGradient,
        "einsum" => Op::Einsum(a.take("spec")?.string()?),
        "conv" => Op::Conv {
            stride: a.ints("stride")?,
            padding: a.pairs("padding")?,
            dilation: a.ints("dilation")?,
            groups: a.take("groups")?.i64()?,
        },
        "permute" => Op::Permute(a.take("perm")?.list(|v| v.usize())?),
        "slice" => Op::Slice {
            start: a.take("start")?.list(|v| v.dim())?,
            end: a.take("end")?.list(|v| v.dim())?,
            step: a.ints("step")?,
        },
        "concat" => Op::Concat { axis: a.usize("axis")? },
        "pad" => Op::Pad { padding: a.pairs("padding")?, value: a.f64("value")? },
        "gather" => Op::Gather { axis: a.usize("axis")? },
        "scatter_add" => Op::ScatterAdd { axis: a.usize("axis")? },
        "rfft" => Op::Rfft { axis: a.usize("axis")? },
        "irfft" => Op::Irfft { axis: a.usize("axis")?, n: a.take("n")?.dim()? },
        "rand.uniform" => Op::RandUniform { seed: a.take("seed")?.parsed("a seed")? },
        "rand.normal" => Op::RandNormal { seed: a.take("seed")?.parsed("a seed")? },
        _ => return Ok(None),
    }))
}

fn func_op(name: &str, a: &mut Attrs) -> BResult<Option<Op>> {
    Ok(Some(match name {
        "call" => Op::Call(a.take("func")?.func()?),
        "stack" => Op::Stack(a.take("funcs")?.list(|v| v.func())?),
        "vmap" => Op::Vmap {
            func: a.take("func")?.func()?,
            keep: a.take("keep")?.list(|v| v.bool())?,
            out_keep: a.take("out_keep")?.list(|v| v.bool())?,
        },
        "scan" => Op::Scan {
            func: a.take("func")?.func()?,
            axis: a.usize("axis")?,
            carries: a.usize("carries")?,
            xs: a.usize("xs")?,
            reverse: a.bool("reverse")?,
        },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::testutil::sample_program;

    fn err(text: &str) -> ParseError {
        parse_program(text).expect_err("should not parse")
    }

    /// `(line, col, message contains)` of the error for `body` inside a function.
    fn body_err(body: &str) -> ParseError {
        err(&format!("program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {{\n{body}\n  return %0\n}}\n"))
    }

    #[test]
    fn sample_round_trips() {
        let p = sample_program();
        let text = p.to_string();
        let back = parse_program(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, p);
        assert_eq!(back.to_string(), text);
    }

    #[test]
    fn multi_result_instructions_round_trip() {
        let text = r#"program P

func @main(%0: f32[B, T, 8] "xs", %1: f32[B, 8] "h0", %2: f32[8, 8] "w") -> (f32[B, 8] "last", f32[B, T, 8] "all", f32[B, 8] "a", f32[B] "b") {
  %3, %4 = scan(%1, %0, %2) {func=@cell, axis=1, carries=1, xs=1, reverse=true} : f32[B, 8], f32[B, T, 8]
  %5, %6 = call(%3) {func=@split} : f32[B, 8], f32[B]
  %7, %8 = vmap(%3) {func=@per, keep=[true], out_keep=[true, false]} : f32[B, 8], f32[B]
  return %3, %4, %5, %8
}

func @cell(%0: f32[N, 8] "h", %1: f32[N, 8] "x", %2: f32[8, 8] "w") -> (f32[N, 8] "h", f32[N, 8] "y") {
  %3 = matmul(%0, %2) : f32[N, 8]
  %4 = add(%3, %1) : f32[N, 8]
  %5 = tanh(%4) : f32[N, 8]
  return %5, %5
}

func @split(%0: f32[N, 8] "x") -> (f32[N, 8] "x", f32[N] "s") {
  %1 = reduce.sum(%0) {axes=[1], keepdim=false} : f32[N]
  return %0, %1
}

func @per(%0: f32[1, 8] "x") -> (f32[1, 8] "x", f32[] "s") {
  %1 = reduce.sum(%0) {axes=[0, 1], keepdim=false} : f32[]
  return %0, %1
}
"#;
        let p = parse_program(text).unwrap_or_else(|e| panic!("{e}"));
        let scan = &p.funcs[0].body[0];
        assert_eq!(scan.result_ids().collect::<Vec<_>>(), [ValueId(3), ValueId(4)]);
        assert_eq!(scan.extra.len(), 1);
        assert_eq!(scan.extra[0].1.to_string(), "f32[B, T, 8]");
        assert_eq!(p.funcs[0].type_of(ValueId(8)).map(|t| t.to_string()), Some("f32[B]".into()));
        assert_eq!(p.funcs[0].next_value(), ValueId(9));
        assert_eq!(p.to_string(), text);
        assert_eq!(crate::tir::verify(&p), Ok(()));
    }

    #[test]
    fn result_and_type_counts_must_agree() {
        let e = body_err("  %1, %2 = call(%0) {func=@f} : f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 33, "2 results but 1 type"));
        let e = body_err("  %1 = exp(%0) : f32[B], f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 18, "1 result but 2 types"));
        let e = body_err("  %1, = exp(%0) : f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 7, "expected `%`, found `=`"));
        let e = body_err("  %1 = scan(%0) {func=@f, axis=0, carries=1, xs=1} : f32[B]");
        assert_eq!(e.message, "`scan` needs the attribute `reverse`");
    }

    #[test]
    fn floats_round_trip_bit_exactly() {
        let values = [0.1, -0.0, 1e-300, 1e300, f64::MAX, f64::MIN_POSITIVE, 5e-324, f64::INFINITY, -1.5e-7, 1.0 / 3.0];
        for v in values {
            let text = format!(
                "program P\nfunc @main() -> (f32[]) {{\n  %0 = const() {{value={}}} : f32[]\n  return %0\n}}\n",
                super::super::print::float_text(v)
            );
            let p = parse_program(&text).unwrap();
            let Op::Const(back) = p.funcs[0].body[0].op else { panic!() };
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?}");
        }
        let nan = "program P\nfunc @f() -> () {\n  %0 = const() {value=NaN} : f32[]\n  return\n}\n";
        let Op::Const(v) = parse_program(nan).unwrap().funcs[0].body[0].op else { panic!() };
        assert!(v.is_nan());
    }

    #[test]
    fn odd_names_round_trip() {
        let text = r#"program "my model"

param @"a b" : f32[2] = constant(value=1.0)

func @"f-1"(%0: f32[N] "x\ty\u{7}") -> (f32[N] "é") {
  %1 = call(%0) {func=@"g h"} : f32[N]
  return %1
}
"#;
        let p = parse_program(text).unwrap();
        assert_eq!(p.name, "my model");
        assert_eq!(p.params[0].name, "a b");
        assert_eq!(p.funcs[0].arg_names, vec!["x\ty\u{7}".to_string()]);
        assert_eq!(p.funcs[0].body[0].op, Op::Call("g h".into()));
        assert_eq!(p.to_string(), text);
    }

    #[test]
    fn whitespace_and_comments_are_free() {
        let text = "// a comment\nprogram P func @main( %0 : f32[ B ,2*B ] ) -> ( f32[B, 2 * B] ) { // body\n \
                    %1 = slice(%0) { start = [0, 0], end = [B, (B + 1) / 2 * 2], step = [1, 2] } : f32[B, B]\n return %0 }";
        let p = parse_program(text).unwrap();
        let f = &p.funcs[0];
        assert_eq!(f.args[0].1.to_string(), "f32[B, 2 * B]");
        assert!(f.arg_names.is_empty());
        let Op::Slice { end, .. } = &f.body[0].op else { panic!() };
        assert_eq!(end[1].to_string(), "2 * ((B + 1) / 2)");
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = body_err("  %1 = frobnicate(%0) : f32[B]");
        assert_eq!((e.line, e.col), (3, 8));
        assert_eq!(e.message, "unknown op `frobnicate`");
        assert_eq!(e.to_string(), "line 3, column 8: unknown op `frobnicate`");
        let e = body_err("  %1 = reduce.sum(%0) {axes=[0]} : f32[]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 8, "`reduce.sum` needs the attribute `keepdim`"));
        let e = body_err("  %1 = exp(%0) {axis=1} : f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 17, "`exp` has no attribute `axis`"));
        let e = body_err("  %1 = concat(%0) {axis=0, axis=0} : f32[B]");
        assert_eq!((e.line, e.col), (3, 28));
        let e = body_err("  %1 = concat(%0) {axis=x} : f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 25, "expected a non-negative integer"));
        let e = body_err("  %1 = exp(%0) : f31[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 18, "unknown dtype `f31`"));
        let e = body_err("  %1 = exp(%0) : f32[B $]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 22, "unexpected `$` in dim `B $`"));
        let e = body_err("  %1 = exp(%0 : f32[B]");
        assert_eq!((e.line, e.col, e.message.as_str()), (3, 15, "expected `,`, found `:`"));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err("").message, "expected `program`");
        let e = err("program P\nwidget @x");
        assert_eq!((e.line, e.col), (2, 1));
        let e = err("program P\nparam @w : f32[2] = gaussian()");
        assert_eq!(e.message, "unknown initialiser `gaussian`");
        let e = err("program \"P");
        assert_eq!(e.message, "unterminated string");
        let e = err("program P\nfunc @f() -> () {\n  frob\n}");
        assert_eq!((e.line, e.col), (3, 3));
        assert!(e.message.starts_with("expected an instruction or `return`"));
        let e = err("program P\nfunc @f(%0: f32[] \"x\") -> (f32[], f32[]) {\n  return %0\n}");
        assert!(e.message.contains("lists 2 results, but `return` gives 1"), "{e}");
        let e = err("program P\nfunc @f(%0: f32[] \"x\") -> (i64[]) {\n  return %0\n}");
        assert_eq!(e.message, "result %0 is listed as i64[] but has type f32[]");
        assert_eq!(parse_type("f32[B] x").unwrap_err().message, "unexpected `x` after the type");
    }
}
