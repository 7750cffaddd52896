//! The manifest of an artifact (`manifest.json`, format 4): how it is written and read,
//! and the checks that make reading it safe.
//!
//! ```json
//! {
//!   "format": 4,
//!   "target": "cpu",
//!   "cpu": "x86-64-v3",
//!   "program": "0123456789abcdef",
//!   "main": "model.arch",
//!   "options": { "train": "false" },
//!   "members": [
//!     { "name": "src/model.arch", "size": 812, "sha256": "<sha-256 in hex>" },
//!     { "name": "main.so", "size": 20816, "sha256": "<sha-256 in hex>" }
//!   ],
//!   "funcs": [
//!     {
//!       "name": "main",
//!       "sync": false,
//!       "dynamic": [ { "symbol": "B", "input": 0, "axis": 0 } ],
//!       "inputs": [ "f32[B, 64]" ],
//!       "outputs": [ "f32[B, 10]" ],
//!       "params": [ { "name": "fc.w", "global": "param_0", "type": "f32[64, 10]" } ]
//!     }
//!   ]
//! }
//! ```
//!
//! `target` is `"cpu"` or `{ "cuda": "sm_80" }`; `cpu` is [`HostCpu::manifest_text`]
//! (`x86-64-v3`, `native avx,avx2,...`, `generic`); `program` is the FNV-1a hash of the
//! program's printed TIR in hex; `main` is the entry file, one of the sources; each
//! dynamic size names its symbol and the input and axis it is read from; types are TIR
//! tensor types. [`render`] writes it and [`parse`] reads it, both through the serde
//! structures below; the checks that make what is read safe are ours, run after.
//!
//! Contract: [`parse`] returns `Ok` or `Err` on every text, never panics, and what it
//! accepts is safe to act on:
//! - the text is at most [`MAX_MANIFEST_BYTES`] (the archive reader checks this before
//!   it reads the text, and [`parse`] again); JSON nesting is bounded (serde_json's
//!   recursion limit; ignored values are skipped without recursion);
//! - the structure is exact: `format` is 4, every field is present once with its JSON
//!   type, no field is unknown (`deny_unknown_fields`), sizes and indices are integers
//!   that fit (no fractions, no negatives, nothing past `u64`);
//! - every member name is a plain relative path (components neither empty, `.` nor `..`;
//!   no leading `/`, backslash, NUL or other control character; bounded length and
//!   depth), and is a source (`src/<path>`) or a function's object (`<func>.so`);
//! - every function name is an identifier, so `<func>.so` is a plain file name too;
//! - every function has its object among the members, the main source is a member, and
//!   no function, member or option is repeated; option keys are identifiers, their values
//!   hold no control character, and there are at most [`MAX_OPTIONS`];
//! - member sizes are bounded one by one and in total ([`MAX_TOTAL_BYTES`]), and their
//!   count too ([`MAX_MEMBERS`]);
//! - each signature is consistent: a dynamic symbol is read from an input axis that exists
//!   and is that symbol; every other size is a constant no larger than [`MAX_DIM`], and
//!   input and output sizes name no symbol but the dynamic ones.
//!
//! Whether the signatures are those of the program the sources build is checked later,
//! against the rebuilt program (see `signature`). Formats 1 to 3 (the line format of
//! `manifest.txt`, `archx 1` to `archx 3`) are refused with a request to rebuild, and so is
//! a format above 4 (a newer archc's).

use super::{AotTarget, Artifact, FuncEntry, HostCpu};
use crate::emit::{Module, Shape, Ty};
use archc_compiler::tir::{parse_type, Dim, TensorType};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The manifest's name in the archive.
pub const MANIFEST_MEMBER: &str = "manifest.json";
/// The name formats 1 to 3 used, looked for only to ask for a rebuild.
pub const OLD_MANIFEST_MEMBER: &str = "manifest.txt";
/// The manifest's `format`.
pub const FORMAT: u64 = 4;

/// The most members an artifact may have (its manifest not counted).
pub const MAX_MEMBERS: usize = 1024;
/// The most bytes its members may hold together, uncompressed.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;
/// The most bytes the manifest may hold.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest constant size a signature may state.
pub const MAX_DIM: i64 = 1 << 31;
/// The most build options a manifest may record.
pub const MAX_OPTIONS: usize = 256;
/// The longest member name, and the most path components it may have.
const MAX_PATH_BYTES: usize = 512;
const MAX_PATH_DEPTH: usize = 16;
/// The longest function, symbol or parameter name, and the longest type text.
const MAX_NAME_BYTES: usize = 256;
const MAX_TYPE_BYTES: usize = 4096;
/// The most bytes of a manifest's text an error message repeats.
const MAX_SHOWN_BYTES: usize = 600;

/// Why a manifest or member name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("format `{0}` is from an older archc; rebuild the artifact with this archc")]
    OldFormat(String),
    #[error("format {0} is from a newer archc (this one reads format {FORMAT}); rebuild the artifact with this archc")]
    NewerFormat(u64),
    #[error("the manifest is not that of an archc artifact (its format is unknown)")]
    NotArchx,
    #[error("the manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("the manifest is not valid: {0}")]
    Json(String),
    #[error("manifest `{at}`: {message}")]
    Field { at: String, message: String },
    #[error("member name `{name}` is refused: {why}")]
    MemberName { name: String, why: &'static str },
    #[error("function name `{0}` is refused: expected an identifier")]
    FuncName(String),
    #[error("the manifest {0}")]
    Incomplete(String),
    #[error("@{func}: {message}")]
    Signature { func: String, message: String },
}

/// `text` for error messages: control and other unprintable characters escaped (quotes
/// kept), cut to about [`MAX_SHOWN_BYTES`].
fn shown(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= MAX_SHOWN_BYTES {
            out.push_str("...");
            break;
        }
        match c {
            '"' | '\'' => out.push(c),
            c => out.extend(c.escape_debug()),
        }
    }
    out
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
    why.map_or(Ok(()), |why| Err(ManifestError::MemberName { name: shown(name), why }))
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
        false => Err(ManifestError::FuncName(shown(name))),
    }
}

/// Whether a build option can be recorded: its key an identifier, its value free of
/// control characters.
pub fn is_recordable_option(key: &str, value: &str) -> bool {
    is_identifier(key) && !value.contains(char::is_control)
}

/// The manifest as JSON: what serde reads and writes. Everything in it is checked after
/// reading (see [`File::into_manifest`]).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: u64,
    target: TargetField,
    cpu: String,
    program: String,
    main: String,
    #[serde(serialize_with = "write_options", deserialize_with = "read_options")]
    options: Vec<(String, String)>,
    #[serde(deserialize_with = "objects")]
    members: Vec<MemberField>,
    #[serde(deserialize_with = "objects")]
    funcs: Vec<FuncField>,
}

/// `"cpu"` or `{ "cuda": "sm_80" }`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TargetField {
    Cpu,
    Cuda(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberField {
    name: String,
    size: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FuncField {
    name: String,
    sync: bool,
    #[serde(deserialize_with = "objects")]
    dynamic: Vec<DynamicField>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    #[serde(deserialize_with = "objects")]
    params: Vec<ParamField>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamicField {
    symbol: String,
    input: usize,
    axis: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamField {
    name: String,
    global: String,
    #[serde(rename = "type")]
    ty: String,
}

/// Only the format, read first so that an older or newer manifest is named as such
/// rather than refused field by field.
#[derive(Deserialize)]
struct FormatOnly {
    format: u64,
}

/// A `T` read from a JSON object only: serde's derived structures also take an array of
/// their fields in order, which a manifest never holds.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData)).map(Object)
    }
}

/// A list of `T`, each read from a JSON object only.
fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let list: Vec<Object<T>> = Vec::deserialize(d)?;
    Ok(list.into_iter().map(|o| o.0).collect())
}

/// Options as a JSON object, in their order.
fn write_options<S: Serializer>(options: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(options.iter().map(|(k, v)| (k, v)))
}

/// Options from a JSON object, in order; a repeated key is refused (a JSON object read
/// into a map would keep one silently).
fn read_options<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Options;
    impl<'de> Visitor<'de> for Options {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of string options")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut out, mut seen) = (Vec::new(), HashSet::new());
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                if !seen.insert(k.clone()) {
                    return Err(A::Error::custom(format_args!("option `{}` given twice", shown(&k))));
                }
                if out.len() == MAX_OPTIONS {
                    return Err(A::Error::custom(format_args!("more than {MAX_OPTIONS} options")));
                }
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Options)
}

fn ty_text((dt, dims): &Ty) -> String {
    TensorType { dtype: *dt, shape: dims.clone() }.to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest of `art`, whose members are `members`: pretty-printed JSON.
pub fn render(art: &Artifact, members: &[Member]) -> String {
    let file = File {
        format: FORMAT,
        target: match &art.target {
            AotTarget::Cpu => TargetField::Cpu,
            AotTarget::Cuda(arch) => TargetField::Cuda(arch.clone()),
        },
        cpu: art.cpu.manifest_text(),
        program: format!("{:016x}", art.program_hash),
        main: art.main_source.clone(),
        options: art.options.clone(),
        members: members
            .iter()
            .map(|m| MemberField { name: m.name.clone(), size: m.size, sha256: hex(&m.sha256) })
            .collect(),
        funcs: art.funcs.iter().map(func_field).collect(),
    };
    // Strings, integers, booleans and lists, and a map with string keys: nothing in it
    // can fail to serialise.
    let mut text = serde_json::to_string_pretty(&file).expect("a manifest serialises");
    text.push('\n');
    text
}

fn func_field(f: &FuncEntry) -> FuncField {
    let params = f.sig.params.iter().enumerate().map(|(i, (name, (dt, shape)))| {
        let dims = shape.iter().map(|&n| Dim::constant(n as i64)).collect();
        let global = f.sig.param_globals.get(i).map_or("-", String::as_str);
        ParamField { name: name.clone(), global: global.to_string(), ty: ty_text(&(*dt, dims)) }
    });
    FuncField {
        name: f.name.clone(),
        sync: f.sync,
        dynamic: f
            .sig
            .dynamic
            .iter()
            .map(|(s, i, a)| DynamicField { symbol: s.clone(), input: *i, axis: *a })
            .collect(),
        inputs: f.sig.inputs.iter().map(ty_text).collect(),
        outputs: f.sig.outputs.iter().map(ty_text).collect(),
        params: params.collect(),
    }
}

/// An empty signature, filled field by field.
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
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    if let Some(old) = old_text_format(text) {
        return Err(old);
    }
    let Object(FormatOnly { format }) = serde_json::from_str(text).map_err(json_error)?;
    match format {
        FORMAT => {}
        1..=3 => return Err(ManifestError::OldFormat(format!("archx {format}"))),
        0 => return Err(ManifestError::NotArchx),
        newer => return Err(ManifestError::NewerFormat(newer)),
    }
    let Object(file) = serde_json::from_str::<Object<File>>(text).map_err(json_error)?;
    file.into_manifest()
}

/// The refusal of a manifest in the line format of formats 1 to 3 (its first line
/// `archx N`), or `None` when `text` is not one.
pub fn old_text_format(text: &str) -> Option<ManifestError> {
    let first = text.lines().next()?.trim_end();
    let version = first.strip_prefix("archx ")?;
    Some(match version {
        "1" | "2" | "3" => ManifestError::OldFormat(first.to_string()),
        _ => ManifestError::NotArchx,
    })
}

fn json_error(e: serde_json::Error) -> ManifestError {
    ManifestError::Json(shown(&e.to_string()))
}

fn field(at: impl Into<String>, message: String) -> ManifestError {
    ManifestError::Field { at: at.into(), message }
}

impl File {
    /// The manifest, every field checked (see the module docs).
    fn into_manifest(self) -> Result<Manifest, ManifestError> {
        let target = match self.target {
            TargetField::Cpu => AotTarget::Cpu,
            TargetField::Cuda(arch) if is_gpu_arch(&arch) => AotTarget::Cuda(arch),
            TargetField::Cuda(arch) => return Err(field("target", format!("unknown target `cuda {}`", shown(&arch)))),
        };
        let cpu = match self.cpu.len() <= MAX_TYPE_BYTES {
            true => HostCpu::from_manifest(&self.cpu),
            false => None,
        };
        let cpu = cpu.ok_or_else(|| field("cpu", format!("unknown cpu `{}`", shown(&self.cpu))))?;
        let program_hash = program_hash(&self.program)?;
        if let Some((k, v)) = self.options.iter().find(|(k, v)| !is_recordable_option(k, v)) {
            let message = format!(
                "option `{}` = `{}`: expected an identifier and a value without control characters",
                shown(k),
                shown(v)
            );
            return Err(field("options", message));
        }
        let members = members(self.members)?;
        let funcs = funcs(self.funcs)?;
        let artifact = Artifact {
            target,
            cpu,
            program_hash,
            main_source: self.main,
            options: self.options,
            sources: Vec::new(),
            funcs,
        };
        check_members(&artifact, &members)?;
        for f in &artifact.funcs {
            check_signature(&f.name, &f.sig)?;
        }
        Ok(Manifest { artifact, members })
    }
}

/// The members, each name plain, each size bounded, none repeated, at most
/// [`MAX_MEMBERS`].
fn members(listed: Vec<MemberField>) -> Result<Vec<Member>, ManifestError> {
    if listed.len() > MAX_MEMBERS {
        return Err(field("members", format!("{} members, more than {MAX_MEMBERS}", listed.len())));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(listed.len());
    for (i, m) in listed.into_iter().enumerate() {
        let at = || format!("members[{i}]");
        check_member_path(&m.name)?;
        if m.size > MAX_TOTAL_BYTES {
            return Err(field(
                at(),
                format!("member `{}` declares {} bytes, more than {MAX_TOTAL_BYTES}", m.name, m.size),
            ));
        }
        if !seen.insert(m.name.clone()) {
            return Err(field(at(), format!("member `{}` listed twice", m.name)));
        }
        let sha256 = parse_digest(&m.sha256, &at())?;
        out.push(Member { name: m.name, size: m.size, sha256 });
    }
    Ok(out)
}

/// The functions, each named by an identifier, none repeated, each signature's names
/// and types well formed (their consistency is [`check_signature`]'s).
fn funcs(listed: Vec<FuncField>) -> Result<Vec<FuncEntry>, ManifestError> {
    if listed.len() > MAX_MEMBERS {
        return Err(field("funcs", format!("{} functions, more than {MAX_MEMBERS}", listed.len())));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(listed.len());
    for (i, f) in listed.into_iter().enumerate() {
        check_func_name(&f.name)?;
        if !seen.insert(f.name.clone()) {
            return Err(field(format!("funcs[{i}]"), format!("function `{}` listed twice", f.name)));
        }
        let mut sig = empty_sig();
        for (j, d) in f.dynamic.into_iter().enumerate() {
            if !is_identifier(&d.symbol) {
                let message = format!("dynamic size `{}` is not an identifier", shown(&d.symbol));
                return Err(field(format!("funcs[{i}].dynamic[{j}]"), message));
            }
            sig.dynamic.push((d.symbol, d.input, d.axis));
        }
        for (j, t) in f.inputs.iter().enumerate() {
            sig.inputs.push(parse_ty(t, &format!("funcs[{i}].inputs[{j}]"))?);
        }
        for (j, t) in f.outputs.iter().enumerate() {
            sig.outputs.push(parse_ty(t, &format!("funcs[{i}].outputs[{j}]"))?);
        }
        for (j, p) in f.params.into_iter().enumerate() {
            let ty = param(&p, &format!("funcs[{i}].params[{j}]"))?;
            sig.params.push((p.name, ty));
            sig.param_globals.push(p.global);
        }
        out.push(FuncEntry { name: f.name, sig, object: Vec::new(), sync: f.sync });
    }
    Ok(out)
}

/// `sm_80`, `sm_90a`.
fn is_gpu_arch(arch: &str) -> bool {
    let Some(rest) = arch.strip_prefix("sm_") else { return false };
    let digits = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (1..=4).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && rest.len() - digits.len() <= 1
}

fn program_hash(text: &str) -> Result<u64, ManifestError> {
    let ok = text.len() == 16 && text.chars().all(|c| c.is_ascii_hexdigit());
    let hash = ok.then(|| u64::from_str_radix(text, 16).ok()).flatten();
    hash.ok_or_else(|| field("program", format!("bad program hash `{}`", shown(text))))
}

/// The digest `text` of the field at `at`.
fn parse_digest(text: &str, at: &str) -> Result<[u8; 32], ManifestError> {
    let bad = || field(at, format!("bad SHA-256 digest `{}`", shown(text)));
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A parameter's type, its name and global checked to be plain (the field at `at`).
fn param(p: &ParamField, at: &str) -> Result<Shape, ManifestError> {
    let plain = |s: &str| !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.chars().any(char::is_control);
    if !plain(&p.name) || !plain(&p.global) {
        return Err(field(at, format!("bad parameter name or global `{}` `{}`", shown(&p.name), shown(&p.global))));
    }
    let (dt, dims) = parse_ty(&p.ty, at)?;
    let sizes =
        dims.iter().map(crate::emit::fixed_size).collect::<Result<_, _>>().map_err(|e| field(at, e.to_string()))?;
    Ok((dt, sizes))
}

/// The type `text` of the field at `at`.
fn parse_ty(text: &str, at: &str) -> Result<Ty, ManifestError> {
    if text.len() > MAX_TYPE_BYTES {
        return Err(field(at, "type longer than 4096 bytes".into()));
    }
    let t = parse_type(text).map_err(|e| field(at, format!("bad type `{}`: {}", shown(text), e.message)))?;
    for d in &t.shape {
        let symbols_ok = d.symbols().iter().all(|s| is_identifier(s));
        let constant_ok = d.as_const().is_none_or(|c| (0..=MAX_DIM).contains(&c));
        if !symbols_ok || !constant_ok {
            return Err(field(at, format!("bad size `{d}` in `{}`", shown(text))));
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
    let names: HashSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    if let Some(f) = art.funcs.iter().find(|f| !names.contains(object_member(&f.name).as_str())) {
        return incomplete(format!("lists no object `{}` for function `{}`", object_member(&f.name), f.name));
    }
    if art.funcs.is_empty() {
        return incomplete("lists no function".into());
    }
    if !names.contains(source_member(&art.main_source).as_str()) {
        return incomplete(format!("lists no main source `{}`", shown(&source_member(&art.main_source))));
    }
    let total: u64 = members.iter().map(|m| m.size).sum();
    if total > MAX_TOTAL_BYTES {
        return incomplete(format!("declares {total} bytes of members, more than {MAX_TOTAL_BYTES}"));
    }
    Ok(())
}

/// A signature is consistent: dynamic symbols are distinct and read from input axes that
/// exist and are those symbols; no other symbol appears in input or output sizes. The
/// error ([`ManifestError::Signature`]) names the function `func`.
pub fn check_signature(func: &str, sig: &Module) -> Result<(), ManifestError> {
    signature_problem(sig).map_or(Ok(()), |message| Err(ManifestError::Signature { func: func.to_string(), message }))
}

/// What is inconsistent in a signature (see [`check_signature`]).
fn signature_problem(sig: &Module) -> Option<String> {
    if sig.params.len() != sig.param_globals.len() {
        return Some("parameters and globals differ in number".into());
    }
    let mut seen = HashSet::new();
    for (sym, input, axis) in &sig.dynamic {
        if !seen.insert(sym.as_str()) {
            return Some(format!("dynamic size {sym} given twice"));
        }
        let Some((_, dims)) = sig.inputs.get(*input) else {
            let there = match sig.inputs.len() {
                1 => "is 1 input".to_string(),
                n => format!("are {n} inputs"),
            };
            return Some(format!("dynamic size {sym} is read from input {input}, but there {there}"));
        };
        if dims.get(*axis) != Some(&Dim::sym(sym.clone())) {
            return Some(format!("dynamic size {sym} is read from axis {axis} of input {input}, which is not {sym}"));
        }
    }
    for (what, tys) in [("input", &sig.inputs), ("output", &sig.outputs)] {
        for (i, (_, dims)) in tys.iter().enumerate() {
            if let Some(s) = dims.iter().flat_map(Dim::symbols).find(|s| !seen.contains(s.as_str())) {
                return Some(format!("{what} {i} has size symbol {s}, which is not dynamic"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A valid manifest: a CPU artifact with one dynamic-size function and two sources.
    fn sample() -> Value {
        json!({
            "format": 4,
            "target": "cpu",
            "cpu": "x86-64-v3",
            "program": "0123456789abcdef",
            "main": "model.arch",
            "options": { "train": "false", "choices": "" },
            "members": [
                { "name": "src/model.arch", "size": 812, "sha256": "e3".repeat(32) },
                { "name": "src/blocks/aux.arch", "size": 17, "sha256": "00".repeat(32) },
                { "name": "main.so", "size": 20816, "sha256": "ff".repeat(32) }
            ],
            "funcs": [{
                "name": "main",
                "sync": false,
                "dynamic": [{ "symbol": "B", "input": 0, "axis": 0 }],
                "inputs": ["f32[B, 64]"],
                "outputs": ["f32[B, 10]"],
                "params": [
                    { "name": "fc.w", "global": "param_0", "type": "f32[64, 10]" },
                    { "name": "fc.b", "global": "param_1", "type": "f32[10]" }
                ]
            }]
        })
    }

    /// The sample as `edit` leaves it, parsed.
    fn edited(edit: impl FnOnce(&mut Value)) -> Result<Manifest, ManifestError> {
        let mut v = sample();
        edit(&mut v);
        parse(&serde_json::to_string_pretty(&v).expect("serialises"))
    }

    /// The error of the sample edited by `edit`, which must contain `want`.
    fn refused(edit: impl FnOnce(&mut Value), want: &str) {
        let e = edited(edit).expect_err(want).to_string();
        assert!(e.contains(want), "`{want}` not in: {e}");
    }

    #[test]
    fn the_sample_parses_and_round_trips() {
        let m = edited(|_| {}).expect("parses");
        assert_eq!(m.artifact.options, [("train".to_string(), "false".to_string()), ("choices".into(), "".into())]);
        assert_eq!(m.artifact.funcs[0].sig.dynamic, [("B".to_string(), 0, 0)]);
        let text = render(&m.artifact, &m.members);
        assert_eq!(parse(&text).expect("parses again"), m);
        let back: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(back, sample());
        let cuda = edited(|v| v["target"] = json!({ "cuda": "sm_90a" })).expect("cuda parses");
        assert_eq!(cuda.artifact.target, AotTarget::Cuda("sm_90a".into()));
    }

    #[test]
    fn the_format_is_checked_first() {
        refused(|v| v["format"] = json!(3), "format `archx 3` is from an older archc; rebuild the artifact");
        refused(|v| v["format"] = json!(1), "format `archx 1` is from an older archc");
        refused(|v| v["format"] = json!(5), "format 5 is from a newer archc");
        assert_eq!(edited(|v| v["format"] = json!(0)), Err(ManifestError::NotArchx));
        // A newer format is named as such, whatever fields it has.
        assert_eq!(edited(|v| v["format"] = json!(9)), Err(ManifestError::NewerFormat(9)));
        refused(|v| drop(v.as_object_mut().unwrap().remove("format")), "missing field `format`");
        refused(|v| v["format"] = json!("4"), "invalid type: string");
        for old in ["archx 1\n", "archx 2\ntarget cpu\n", "archx 3\r\ntarget cpu\n"] {
            let e = parse(old).expect_err("old text");
            assert!(matches!(e, ManifestError::OldFormat(_)) && e.to_string().contains("rebuild"), "{e}");
        }
        assert_eq!(parse("archx 4\n"), Err(ManifestError::NotArchx));
        for not_json in ["", "x", "{", "[]", "null", "4", "{\"format\": 4", "\u{feff}{}"] {
            assert!(matches!(parse(not_json), Err(ManifestError::Json(_))), "{not_json:?}");
        }
    }

    #[test]
    fn unknown_and_repeated_fields_are_refused() {
        refused(|v| v["extra"] = json!(1), "unknown field `extra`");
        refused(|v| v["members"][0]["mode"] = json!(0o755), "unknown field `mode`");
        refused(|v| v["funcs"][0]["entry"] = json!("evil"), "unknown field `entry`");
        refused(|v| v["funcs"][0]["dynamic"][0]["stride"] = json!(1), "unknown field `stride`");
        refused(|v| v["funcs"][0]["params"][0]["offset"] = json!(1), "unknown field `offset`");
        refused(|v| v["target"] = json!({ "rocm": "gfx90a" }), "unknown variant `rocm`");
        refused(|v| v["target"] = json!({ "cuda": "sm_80", "x": 1 }), "");
        for field in ["target", "cpu", "program", "main", "options", "members", "funcs"] {
            refused(|v| drop(v.as_object_mut().unwrap().remove(field)), &format!("missing field `{field}`"));
        }
        refused(|v| drop(v["funcs"][0].as_object_mut().unwrap().remove("sync")), "missing field `sync`");
        // A field twice in one object (serde_json's maps would keep one silently).
        let text = serde_json::to_string_pretty(&sample()).unwrap();
        let twice = text.replacen("\"cpu\": \"x86-64-v3\",", "\"cpu\": \"x86-64-v3\", \"cpu\": \"generic\",", 1);
        assert!(parse(&twice).expect_err("cpu twice").to_string().contains("duplicate field `cpu`"));
        let twice = text.replacen("\"train\": \"false\",", "\"train\": \"false\", \"train\": \"true\",", 1);
        assert!(parse(&twice).expect_err("option twice").to_string().contains("option `train` given twice"));
        let twice = text.replacen("\"size\": 812,", "\"size\": 812, \"size\": 1,", 1);
        assert!(parse(&twice).expect_err("size twice").to_string().contains("duplicate field `size`"));
    }

    #[test]
    fn wrong_json_types_are_refused() {
        refused(|v| v["members"][0]["size"] = json!("812"), "invalid type: string \"812\", expected u64");
        refused(|v| v["members"][0]["size"] = json!(8.5), "invalid type: floating point");
        refused(|v| v["funcs"][0]["sync"] = json!("yes"), "expected a boolean");
        refused(|v| v["funcs"][0]["inputs"] = json!("f32[B, 64]"), "expected a sequence");
        refused(|v| v["funcs"][0]["inputs"][0] = json!(["f32", "B"]), "invalid type: sequence, expected a string");
        refused(|v| v["members"] = json!({ "main.so": 1 }), "invalid type: map, expected a sequence");
        refused(|v| v["options"] = json!([["train", "false"]]), "expected an object of string options");
        refused(|v| v["options"]["train"] = json!(false), "invalid type: boolean `false`, expected a string");
        refused(|v| v["target"] = json!(5), "expected value at line 3");
        refused(|v| v["main"] = Value::Null, "invalid type: null, expected a string");
        // Serde's derived structures would take an array of their fields; a manifest does not.
        refused(|v| v["funcs"][0]["dynamic"][0] = json!(["B", 0, 0]), "invalid type: sequence, expected an object");
        refused(|v| v["funcs"][0]["params"][1] = json!(["fc.b", "param_1", "f32[10]"]), "expected an object");
        refused(|v| v["members"][0] = json!(["src/model.arch", 812, "e3".repeat(32)]), "expected an object");
        refused(|v| v["funcs"][0] = json!(["main", false, [], [], [], []]), "expected an object");
        let whole = serde_json::to_string(&sample().as_object().unwrap().values().collect::<Vec<_>>()).unwrap();
        let e = parse(&whole).expect_err("array manifest").to_string();
        assert!(e.contains("invalid type: sequence"), "{e}");
    }

    #[test]
    fn huge_and_negative_numbers_are_refused() {
        let size = |n: Value| move |v: &mut Value| v["members"][2]["size"] = n;
        refused(size(json!(1e30)), "invalid type: floating point `1e+30`, expected u64");
        refused(size(json!(-1)), "invalid value: integer `-1`, expected u64");
        refused(size(json!(99999999999u64)), "member `main.so` declares 99999999999 bytes, more than 1073741824");
        refused(size(json!(u64::MAX)), "declares 18446744073709551615 bytes");
        let text = serde_json::to_string_pretty(&sample()).unwrap();
        for huge in ["18446744073709551616", "1e400", "-0.0", "99999999999999999999999999999999999999"] {
            let e = parse(&text.replacen("20816", huge, 1)).expect_err(huge).to_string();
            assert!(e.contains("expected u64") || e.contains("number out of range"), "{huge}: {e}");
        }
        let index = |n: Value| move |v: &mut Value| v["funcs"][0]["dynamic"][0]["input"] = n;
        refused(index(json!(99999999999999999999.0)), "expected usize");
        refused(index(json!(-1)), "expected usize");
        refused(index(json!(9)), "@main: dynamic size B is read from input 9, but there is 1 input");
        refused(|v| v["funcs"][0]["dynamic"][0]["axis"] = json!(1), "which is not B");
        refused(|v| v["funcs"][0]["outputs"][0] = json!("f32[B, 4294967296]"), "bad size `4294967296`");
        refused(|v| v["funcs"][0]["params"][0]["type"] = json!("f32[64, -1]"), "`f32[64, -1]`");
        // Two members within the bound one by one, over it together.
        refused(
            |v| {
                v["members"][0]["size"] = json!(MAX_TOTAL_BYTES);
                v["members"][2]["size"] = json!(MAX_TOTAL_BYTES);
            },
            "declares 2147483665 bytes of members, more than 1073741824",
        );
    }

    #[test]
    fn repeats_are_refused() {
        refused(
            |v| {
                let f = v["funcs"][0].clone();
                v["funcs"].as_array_mut().unwrap().push(f);
            },
            "manifest `funcs[1]`: function `main` listed twice",
        );
        refused(
            |v| {
                let m = v["members"][2].clone();
                v["members"].as_array_mut().unwrap().push(m);
            },
            "manifest `members[3]`: member `main.so` listed twice",
        );
        refused(
            |v| v["funcs"][0]["dynamic"].as_array_mut().unwrap().push(json!({ "symbol": "B", "input": 0, "axis": 0 })),
            "dynamic size B given twice",
        );
    }

    #[test]
    fn names_members_and_signatures_are_checked() {
        refused(|v| v["members"][0]["name"] = json!("src/../../x"), "member name `src/../../x` is refused");
        refused(|v| v["members"][0]["name"] = json!("/etc/passwd"), "it is an absolute path");
        refused(|v| v["members"][0]["name"] = json!("src/a\u{0}b"), "control character");
        refused(|v| v["members"][1]["name"] = json!("evil.sh"), "lists `evil.sh`, which is neither a source");
        refused(|v| v["funcs"][0]["name"] = json!("../../x"), "function name `../../x` is refused");
        refused(|v| v["members"][2]["name"] = json!("other.so"), "lists `other.so`, which is neither");
        refused(|v| drop(v["members"].as_array_mut().unwrap().remove(2)), "lists no object `main.so`");
        refused(|v| v["main"] = json!("other.arch"), "lists no main source `src/other.arch`");
        refused(
            |v| {
                v["funcs"] = json!([]);
                v["members"].as_array_mut().unwrap().pop();
            },
            "lists no function",
        );
        refused(|v| v["members"][0]["sha256"] = json!("E3".repeat(32)), "bad SHA-256 digest");
        refused(|v| v["members"][0]["sha256"] = json!("e3"), "bad SHA-256 digest");
        refused(|v| v["program"] = json!("0123"), "bad program hash `0123`");
        refused(|v| v["program"] = json!("+123456789abcdef"), "bad program hash");
        refused(|v| v["cpu"] = json!("pentium4"), "unknown cpu `pentium4`");
        refused(|v| v["target"] = json!({ "cuda": "sm_80/../x" }), "unknown target `cuda sm_80/../x`");
        refused(|v| v["target"] = json!("cuda"), "");
        refused(|v| v["options"]["bad key"] = json!("x"), "option `bad key`");
        refused(|v| v["options"]["args"] = json!("x\ny"), "option `args` = `x\\ny`");
        refused(|v| v["funcs"][0]["dynamic"][0]["symbol"] = json!("B B"), "dynamic size `B B` is not an identifier");
        refused(
            |v| v["funcs"][0]["outputs"][0] = json!("f32[N, 10]"),
            "output 0 has size symbol N, which is not dynamic",
        );
        refused(|v| v["funcs"][0]["inputs"][0] = json!("f32[B,"), "bad type `f32[B,`");
        refused(|v| v["funcs"][0]["inputs"][0] = json!("f".repeat(5000)), "type longer than 4096 bytes");
        refused(|v| v["funcs"][0]["params"][0]["name"] = json!(""), "bad parameter name or global");
        refused(|v| v["funcs"][0]["params"][0]["global"] = json!("a\nb"), "bad parameter name or global");
        refused(|v| v["funcs"][0]["params"][0]["type"] = json!("f32[B, 10]"), "");
    }

    #[test]
    fn counts_and_sizes_are_bounded() {
        refused(
            |v| {
                let many = (0..=MAX_MEMBERS)
                    .map(|i| json!({ "name": format!("src/f{i}.arch"), "size": 0, "sha256": "00".repeat(32) }));
                v["members"] = Value::Array(many.collect());
            },
            "1025 members, more than 1024",
        );
        refused(
            |v| {
                let many = (0..=MAX_OPTIONS).map(|i| (format!("k{i}"), json!("")));
                v["options"] = Value::Object(many.collect());
            },
            "more than 256 options",
        );
        let big = format!("{{\"format\": 4, \"main\": \"{}\"}}", "x".repeat(MAX_MANIFEST_BYTES as usize));
        assert_eq!(parse(&big), Err(ManifestError::TooLarge));
        // Errors repeat a bounded part of what they quote.
        let long = "k".repeat(1 << 20);
        let e = edited(|v| v[long.as_str()] = json!(1)).expect_err("unknown field").to_string();
        assert!(e.contains("unknown field `kkk") && e.len() < 2 * MAX_SHOWN_BYTES, "{} bytes", e.len());
        let e = edited(|v| v["members"][0]["name"] = json!(format!("src/{long}"))).expect_err("long name").to_string();
        assert!(e.contains("longer than 512 bytes") && e.len() < 2 * MAX_SHOWN_BYTES, "{} bytes", e.len());
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let text = serde_json::to_string(&sample()).unwrap();
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep_objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        let n = 1 << 20;
        let cases = [
            deep(n),
            format!("{{\"format\": 4, \"x\": {}}}", deep(n)),
            format!("{{\"x\": {}, \"format\": 4}}", deep_objects(n / 8)),
            text.replacen("{", &format!("{{\"x\": {},", deep(n)), 1),
            text.replacen("\"format\":4", &format!("\"format\":{}", deep(n)), 1),
            text.replacen("\"options\":{", &format!("\"options\":{{\"a\":{},", deep(n)), 1),
            text.replacen("\"inputs\":[", &format!("\"inputs\":[{},", deep(n)), 1),
            text.replacen("\"target\":\"cpu\"", &format!("\"target\":{}", deep_objects(n / 8)), 1),
            "[".repeat(n),
            "{\"format\":".repeat(n),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(parse(case).is_err(), "case {i} accepted");
        }
        // Run on a small stack: a recursive descent would overflow it.
        let handle = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || cases.iter().all(|c| parse(c).is_err()))
            .expect("thread");
        assert!(handle.join().expect("no overflow"));
    }

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
