//! The manifest of an artifact (`manifest.txt`, format `archx 3`): how it is written and
//! read, and the checks that make reading it safe.
//!
//! ```text
//! archx 3
//! target cpu                       (or `target cuda sm_80`)
//! cpu x86-64-v3
//! program 0123456789abcdef         (FNV-1a of the program's printed TIR)
//! main model.arch                  (the entry file, one of the sources)
//! option train=false
//! member src/model.arch 812 <sha-256 in hex>
//! member main.so 20816 <sha-256 in hex>
//! func main
//!   dynamic B 0 0                  (symbol, input, axis it is read from)
//!   input f32[B, 64]
//!   output f32[B, 10]
//!   param fc.w param_0 f32[64, 10]
//! ```
//!
//! Contract: [`parse`] returns `Ok` or `Err` on every text, never panics, and what it
//! accepts is safe to act on:
//! - every member name is a plain relative path (components neither empty, `.` nor `..`;
//!   no leading `/`, backslash, NUL or other control character; bounded length and
//!   depth), and is a source (`src/<path>`) or a function's object (`<func>.so`);
//! - every function name is an identifier, so `<func>.so` is a plain file name too;
//! - every function has its object among the members, the main source is a member, and
//!   no name, member or once-only line is repeated;
//! - member sizes are bounded one by one and in total ([`MAX_TOTAL_BYTES`]), and their
//!   count too ([`MAX_MEMBERS`]);
//! - each signature is consistent: a dynamic symbol is read from an input axis that exists
//!   and is that symbol; every other size is a constant no larger than [`MAX_DIM`], and
//!   input and output sizes name no symbol but the dynamic ones.
//!
//! Whether the signatures are those of the program the sources build is checked later,
//! against the rebuilt program (see `signature`). Formats `archx 1` and `archx 2`
//! (without member digests) are refused with a request to rebuild.

use super::{AotTarget, Artifact, FuncEntry, HostCpu};
use crate::emit::{Module, Shape, Ty};
use archc_compiler::tir::{parse_type, Dim, TensorType};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The manifest's first line.
pub const FORMAT: &str = "archx 3";

/// The most members an artifact may have (its manifest not counted).
pub const MAX_MEMBERS: usize = 1024;
/// The most bytes its members may hold together, uncompressed.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;
/// The most bytes the manifest may hold.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest constant size a signature may state.
pub const MAX_DIM: i64 = 1 << 31;
/// The longest member name, and the most path components it may have.
const MAX_PATH_BYTES: usize = 512;
const MAX_PATH_DEPTH: usize = 16;
/// The longest function, symbol or parameter name, and the longest type text.
const MAX_NAME_BYTES: usize = 256;
const MAX_TYPE_BYTES: usize = 4096;

/// Why a manifest or member name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "format `{0}` is from an older archc (its members carry no digests); rebuild the artifact with this archc"
    )]
    OldFormat(String),
    #[error("the manifest does not start with `{FORMAT}` (not an artifact, or built by a newer archc?)")]
    NotArchx,
    #[error("manifest line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("member name `{name}` is refused: {why}")]
    MemberName { name: String, why: &'static str },
    #[error("function name `{0}` is refused: expected an identifier")]
    FuncName(String),
    #[error("the manifest {0}")]
    Incomplete(String),
    #[error("@{func}: {message}")]
    Signature { func: String, message: String },
}

/// A member of the archive as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The path inside the archive (`src/model.arch`, `main.so`).
    pub name: String,
    /// Its size in bytes, uncompressed.
    pub size: u64,
    /// Its SHA-256 digest.
    pub sha256: [u8; 32],
}

impl Member {
    /// The entry for `bytes` stored as `name`.
    pub fn of(name: &str, bytes: &[u8]) -> Member {
        Member { name: name.to_string(), size: bytes.len() as u64, sha256: sha256(bytes) }
    }
}

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A parsed manifest: the artifact without its members' contents (sources empty,
/// objects empty), and the members it lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub artifact: Artifact,
    pub members: Vec<Member>,
}

/// The archive path of a source file.
pub fn source_member(name: &str) -> String {
    format!("src/{name}")
}

/// The archive path of a function's shared object.
pub fn object_member(func: &str) -> String {
    format!("{func}.so")
}

/// Refuses a member name that is not a plain relative path (see the module docs).
pub fn check_member_path(name: &str) -> Result<(), ManifestError> {
    let why = member_path_problem(name);
    why.map_or(Ok(()), |why| Err(ManifestError::MemberName { name: name.escape_debug().to_string(), why }))
}

fn member_path_problem(name: &str) -> Option<&'static str> {
    let components: Vec<&str> = name.split('/').collect();
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_PATH_BYTES {
        Some("it is longer than 512 bytes")
    } else if name.starts_with('/') {
        Some("it is an absolute path")
    } else if name.chars().any(|c| c.is_control() || c == '\\') {
        Some("it holds a control character or a backslash")
    } else if components.iter().any(|c| c.is_empty() || *c == "." || *c == "..") {
        Some("it has an empty, `.` or `..` component")
    } else if components.len() > MAX_PATH_DEPTH {
        Some("it is nested more than 16 folders deep")
    } else if components.iter().any(|c| c.len() > 255) {
        Some("a component is longer than 255 bytes")
    } else {
        None
    }
}

/// Whether `name` is an identifier `[A-Za-z_][A-Za-z0-9_]*` of bounded length.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    first && name.len() <= MAX_NAME_BYTES && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Refuses a function name that is not an identifier.
pub fn check_func_name(name: &str) -> Result<(), ManifestError> {
    match is_identifier(name) {
        true => Ok(()),
        false => Err(ManifestError::FuncName(name.escape_debug().to_string())),
    }
}

fn ty_text((dt, dims): &Ty) -> String {
    TensorType { dtype: *dt, shape: dims.clone() }.to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest of `art`, whose members are `members`.
pub fn render(art: &Artifact, members: &[Member]) -> String {
    let target = match &art.target {
        AotTarget::Cpu => "cpu".to_string(),
        AotTarget::Cuda(arch) => format!("cuda {arch}"),
    };
    let mut m = format!(
        "{FORMAT}\ntarget {target}\ncpu {}\nprogram {:016x}\nmain {}\n",
        art.cpu.manifest_text(),
        art.program_hash,
        art.main_source
    );
    for (k, v) in &art.options {
        m.push_str(&format!("option {k}={v}\n"));
    }
    for member in members {
        m.push_str(&format!("member {} {} {}\n", member.name, member.size, hex(&member.sha256)));
    }
    for f in &art.funcs {
        m.push_str(&render_func(f));
    }
    m
}

fn render_func(f: &FuncEntry) -> String {
    let mut m = format!("func {}\n", f.name);
    if f.sync {
        m.push_str("  sync\n");
    }
    for (sym, input, axis) in &f.sig.dynamic {
        m.push_str(&format!("  dynamic {sym} {input} {axis}\n"));
    }
    for t in &f.sig.inputs {
        m.push_str(&format!("  input {}\n", ty_text(t)));
    }
    for t in &f.sig.outputs {
        m.push_str(&format!("  output {}\n", ty_text(t)));
    }
    for (i, (name, (dt, shape))) in f.sig.params.iter().enumerate() {
        let dims = shape.iter().map(|&n| Dim::constant(n as i64)).collect();
        let global = f.sig.param_globals.get(i).map(String::as_str).unwrap_or("-");
        m.push_str(&format!("  param {name} {global} {}\n", ty_text(&(*dt, dims))));
    }
    m
}

/// An empty signature, filled line by line.
pub fn empty_sig() -> Module {
    Module {
        text: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        dynamic: Vec::new(),
        params: Vec::new(),
        param_globals: Vec::new(),
    }
}

/// Reads a manifest written by [`render`]; see the module docs for what it refuses.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let mut lines = text.lines();
    check_format(lines.next())?;
    let mut reader = Reader::default();
    for (i, line) in lines.enumerate() {
        reader.line(line).map_err(|message| ManifestError::Line { line: i + 2, message })?;
    }
    reader.finish()
}

/// The manifest's first line must be [`FORMAT`].
fn check_format(first: Option<&str>) -> Result<(), ManifestError> {
    match first.map(str::trim_end) {
        Some(FORMAT) => Ok(()),
        Some(old @ ("archx 1" | "archx 2")) => Err(ManifestError::OldFormat(old.to_string())),
        _ => Err(ManifestError::NotArchx),
    }
}

/// The manifest read so far.
#[derive(Default)]
struct Reader {
    target: Option<AotTarget>,
    cpu: Option<HostCpu>,
    program: Option<u64>,
    main: Option<String>,
    options: Vec<(String, String)>,
    members: Vec<Member>,
    funcs: Vec<FuncEntry>,
}

/// Sets a field that may be given once.
fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
    match slot.replace(value) {
        Some(_) => Err(format!("`{key}` given twice")),
        None => Ok(()),
    }
}

impl Reader {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "target" => once(&mut self.target, key, target(rest)?),
            "cpu" => once(&mut self.cpu, key, HostCpu::from_manifest(rest)?),
            "program" => once(&mut self.program, key, program_hash(rest)?),
            "main" => once(&mut self.main, key, rest.to_string()),
            "option" => self.option(rest),
            "member" => self.member(rest),
            "func" => self.func(rest),
            "" => Ok(()),
            _ => {
                let f = self.funcs.last_mut().ok_or_else(|| format!("`{key}` before any `func`"))?;
                func_line(f, key, rest)
            }
        }
    }

    fn option(&mut self, rest: &str) -> Result<(), String> {
        let (k, v) = rest.split_once('=').ok_or("an option is `option KEY=VALUE`")?;
        if !is_identifier(k) {
            return Err(format!("option key `{}` is not an identifier", k.escape_debug()));
        }
        self.options.push((k.to_string(), v.to_string()));
        Ok(())
    }

    fn member(&mut self, rest: &str) -> Result<(), String> {
        let mut fields = rest.rsplitn(3, ' ');
        let (digest, size, name) = match (fields.next(), fields.next(), fields.next()) {
            (Some(d), Some(s), Some(n)) => (d, s, n),
            _ => return Err("a member is `member NAME SIZE SHA256`".into()),
        };
        check_member_path(name).map_err(|e| e.to_string())?;
        let size: u64 = size.parse().map_err(|_| format!("bad member size `{size}`"))?;
        if size > MAX_TOTAL_BYTES {
            return Err(format!("member `{name}` declares {size} bytes, more than {MAX_TOTAL_BYTES}"));
        }
        if self.members.iter().any(|m| m.name == name) {
            return Err(format!("member `{name}` listed twice"));
        }
        if self.members.len() == MAX_MEMBERS {
            return Err(format!("more than {MAX_MEMBERS} members"));
        }
        self.members.push(Member { name: name.to_string(), size, sha256: parse_digest(digest)? });
        Ok(())
    }

    fn func(&mut self, name: &str) -> Result<(), String> {
        check_func_name(name).map_err(|e| e.to_string())?;
        if self.funcs.iter().any(|f| f.name == name) {
            return Err(format!("function `{name}` listed twice"));
        }
        self.funcs.push(FuncEntry { name: name.to_string(), sig: empty_sig(), object: Vec::new(), sync: false });
        Ok(())
    }

    fn finish(self) -> Result<Manifest, ManifestError> {
        let missing = |what: &str| ManifestError::Incomplete(format!("has no `{what}` line"));
        let main = self.main.ok_or_else(|| missing("main"))?;
        let artifact = Artifact {
            target: self.target.ok_or_else(|| missing("target"))?,
            cpu: self.cpu.ok_or_else(|| missing("cpu"))?,
            program_hash: self.program.ok_or_else(|| missing("program"))?,
            main_source: main,
            options: self.options,
            sources: Vec::new(),
            funcs: self.funcs,
        };
        check_members(&artifact, &self.members)?;
        for f in &artifact.funcs {
            check_signature(&f.sig).map_err(|message| ManifestError::Signature { func: f.name.clone(), message })?;
        }
        Ok(Manifest { artifact, members: self.members })
    }
}

fn target(rest: &str) -> Result<AotTarget, String> {
    match rest.split_once(' ') {
        None if rest == "cpu" => Ok(AotTarget::Cpu),
        Some(("cuda", arch)) if is_gpu_arch(arch) => Ok(AotTarget::Cuda(arch.to_string())),
        _ => Err(format!("unknown target `{}`", rest.escape_debug())),
    }
}

/// `sm_80`, `sm_90a`.
fn is_gpu_arch(arch: &str) -> bool {
    let Some(rest) = arch.strip_prefix("sm_") else { return false };
    let digits = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (1..=4).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && rest.len() - digits.len() <= 1
}

fn program_hash(rest: &str) -> Result<u64, String> {
    let ok = rest.len() == 16 && rest.chars().all(|c| c.is_ascii_hexdigit());
    let hash = ok.then(|| u64::from_str_radix(rest, 16).ok()).flatten();
    hash.ok_or_else(|| format!("bad program hash `{}`", rest.escape_debug()))
}

fn parse_digest(text: &str) -> Result<[u8; 32], String> {
    let bad = || format!("bad SHA-256 digest `{}`", text.escape_debug());
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// One line of a function's signature.
fn func_line(f: &mut FuncEntry, key: &str, rest: &str) -> Result<(), String> {
    match key {
        "sync" if rest.is_empty() => f.sync = true,
        "dynamic" => f.sig.dynamic.push(dynamic(rest)?),
        "input" => f.sig.inputs.push(parse_ty(rest)?),
        "output" => f.sig.outputs.push(parse_ty(rest)?),
        "param" => {
            let (name, global, ty) = param(rest)?;
            f.sig.params.push((name, ty));
            f.sig.param_globals.push(global);
        }
        _ => return Err(format!("unknown line `{key}`")),
    }
    Ok(())
}

/// `B 0 1`: the symbol, the input and the axis it is read from.
fn dynamic(rest: &str) -> Result<(String, usize, usize), String> {
    let fields: Vec<&str> = rest.split(' ').collect();
    let [sym, input, axis] = fields.as_slice() else { return Err("a dynamic size is `dynamic SYM INPUT AXIS`".into()) };
    if !is_identifier(sym) {
        return Err(format!("dynamic size `{}` is not an identifier", sym.escape_debug()));
    }
    let index = |s: &str| s.parse::<usize>().map_err(|_| format!("bad index `{}`", s.escape_debug()));
    Ok((sym.to_string(), index(input)?, index(axis)?))
}

/// `fc.w param_0 f32[64, 10]`: the parameter, its global, its type.
fn param(rest: &str) -> Result<(String, String, Shape), String> {
    let (name, rest) = rest.split_once(' ').ok_or("a parameter is `param NAME GLOBAL TYPE`")?;
    let (global, ty) = rest.split_once(' ').ok_or("a parameter is `param NAME GLOBAL TYPE`")?;
    let plain = |s: &str| !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.chars().any(char::is_control);
    if !plain(name) || !plain(global) {
        return Err(format!("bad parameter name or global `{} {}`", name.escape_debug(), global.escape_debug()));
    }
    let (dt, dims) = parse_ty(ty)?;
    let sizes = dims.iter().map(crate::emit::fixed_size).collect::<Result<_, _>>()?;
    Ok((name.to_string(), global.to_string(), (dt, sizes)))
}

fn parse_ty(text: &str) -> Result<Ty, String> {
    if text.len() > MAX_TYPE_BYTES {
        return Err("type longer than 4096 bytes".into());
    }
    let t = parse_type(text).map_err(|e| format!("bad type `{}`: {}", text.escape_debug(), e.message))?;
    for d in &t.shape {
        let symbols_ok = d.symbols().iter().all(|s| is_identifier(s));
        let constant_ok = d.as_const().is_none_or(|c| (0..=MAX_DIM).contains(&c));
        if !symbols_ok || !constant_ok {
            return Err(format!("bad size `{d}` in `{}`", text.escape_debug()));
        }
    }
    Ok((t.dtype, t.shape))
}

/// Every member is a source or a function's object, every function has its object and
/// the main source is there; the members' total size is bounded.
fn check_members(art: &Artifact, members: &[Member]) -> Result<(), ManifestError> {
    let incomplete = |m: String| Err(ManifestError::Incomplete(m));
    let objects: HashSet<String> = art.funcs.iter().map(|f| object_member(&f.name)).collect();
    for m in members {
        if !m.name.starts_with("src/") && !objects.contains(&m.name) {
            return incomplete(format!("lists `{}`, which is neither a source nor a function's object", m.name));
        }
    }
    let listed = |name: &str| members.iter().any(|m| m.name == name);
    if let Some(f) = art.funcs.iter().find(|f| !listed(&object_member(&f.name))) {
        return incomplete(format!("lists no object `{}` for function `{}`", object_member(&f.name), f.name));
    }
    if art.funcs.is_empty() {
        return incomplete("lists no function".into());
    }
    if !listed(&source_member(&art.main_source)) {
        return incomplete(format!("lists no main source `{}`", source_member(&art.main_source).escape_debug()));
    }
    let total: u64 = members.iter().map(|m| m.size).sum();
    if total > MAX_TOTAL_BYTES {
        return incomplete(format!("declares {total} bytes of members, more than {MAX_TOTAL_BYTES}"));
    }
    Ok(())
}

/// A signature is consistent: dynamic symbols are distinct and read from input axes that
/// exist and are those symbols; no other symbol appears in input or output sizes.
pub fn check_signature(sig: &Module) -> Result<(), String> {
    if sig.params.len() != sig.param_globals.len() {
        return Err("parameters and globals differ in number".into());
    }
    let mut seen = HashSet::new();
    for (sym, input, axis) in &sig.dynamic {
        if !seen.insert(sym.as_str()) {
            return Err(format!("dynamic size {sym} given twice"));
        }
        let Some((_, dims)) = sig.inputs.get(*input) else {
            let there = match sig.inputs.len() {
                1 => "is 1 input".to_string(),
                n => format!("are {n} inputs"),
            };
            return Err(format!("dynamic size {sym} is read from input {input}, but there {there}"));
        };
        if dims.get(*axis) != Some(&Dim::sym(sym.clone())) {
            return Err(format!("dynamic size {sym} is read from axis {axis} of input {input}, which is not {sym}"));
        }
    }
    for (what, tys) in [("input", &sig.inputs), ("output", &sig.outputs)] {
        for (i, (_, dims)) in tys.iter().enumerate() {
            if let Some(s) = dims.iter().flat_map(Dim::symbols).find(|s| !seen.contains(s.as_str())) {
                return Err(format!("{what} {i} has size symbol {s}, which is not dynamic"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_must_be_plain_and_relative() {
        for ok in ["src/model.arch", "src/lib/nn2.arch", "main.so", "src/a b.arch"] {
            assert_eq!(check_member_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/etc/passwd", "src/../x", "src/./x", "src//x", "../x.so", "src/x\0", "a\\b", "src/"] {
            assert!(check_member_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_member_path(&"a/".repeat(20)).is_err());
        assert!(check_member_path(&"a".repeat(300)).is_err());
    }

    #[test]
    fn function_names_must_be_identifiers() {
        for ok in ["main", "train_step", "_f1"] {
            assert_eq!(check_func_name(ok), Ok(()));
        }
        for bad in ["", "../../x", "1f", "a.b", "a b", "a/b"] {
            assert!(check_func_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn gpu_architectures_are_checked() {
        assert!(is_gpu_arch("sm_80") && is_gpu_arch("sm_90a"));
        assert!(!is_gpu_arch("sm_") && !is_gpu_arch("sm_80/../x") && !is_gpu_arch("compute_80"));
    }
}
