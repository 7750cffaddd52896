//! Ahead-of-time artifacts (`.archx`): compiled functions that an archc without LLVM runs.
//!
//! An artifact is a zip archive holding
//! - `manifest.json` ([`manifest`], format 4): the target, the CPU its host code is
//!   compiled for ([`HostCpu`]: an x86-64 level, or `native` with the build machine's
//!   features), the hash of the program's TIR, every other member with its size and
//!   SHA-256 digest, and per compiled function its entry's input and output types (sizes
//!   left dynamic are symbols, read from input axes at run time) and the parameters its
//!   setter takes, in order;
//! - `src/*.arch`: the sources it was built from, so that the runner rebuilds the same
//!   program (and train configuration) with the front end alone and checks its hash;
//! - one shared object per function (`<func>.so`): the module's host code compiled for
//!   that CPU, with a packed entry point per exported function
//!   (`archc_packed_<name>(void **args)`, the convention of [`crate::abi`]) and every
//!   runtime function it calls reached through a slot (`archc_slot.<symbol>`, a function
//!   pointer the loader fills from archc's own runtime), so that it has no undefined
//!   symbols beyond libc and libm; its constructors and destructors (a CUDA module's
//!   kernel loading) are the functions `archc_init` and `archc_fini`, which the loader
//!   calls once the slots are filled and before the object is closed.
//!
//! [`build`] (feature `llvm`) writes artifacts; [`Artifact::read`] reads them, and
//! [`crate::exec::artifact`] loads and runs their objects.
//! An artifact is native code: whoever runs one runs its objects. The checks below make
//! reading one safe and catch corrupted or mismatched ones; they cannot make a hostile one
//! safe to run (its manifest could list the digests of hostile objects).
//! - [`Artifact::read`] ([`archive`]) verifies the archive in memory before anything is
//!   written: plain member and function names, bounded sizes and counts, every member
//!   listed with its digest. Formats 1 to 3 (`manifest.txt`) are refused (rebuild).
//! - Files go to private fresh folders ([`scratch`]: random name, mode 0700, exclusive
//!   creation, removed on drop): the sources ([`Artifact::extract_sources`]), each
//!   object while it is loaded, a build's intermediate files.
//! - The loader ([`crate::exec::artifact::AotExecutor::new`]) loads nothing before the
//!   program rebuilt from the sources has the artifact's hash and every manifest
//!   signature is the rebuilt program's ([`signature`]); it checks that the running CPU
//!   has the features the artifact's CPU implies ([`HostCpu::check_host`]) before it loads
//!   any code (an error naming the missing features, never an illegal instruction).
//!
//! An artifact that cannot be read, checked or loaded is an [`ArtifactError`] (the
//! user's, like a refused manifest, [`crate::Error::Manifest`]).

pub mod archive;
#[cfg(feature = "llvm")]
pub mod build;
pub mod cpu;
#[cfg(feature = "llvm")]
pub mod loadable;
pub mod manifest;
pub mod scratch;
pub mod signature;

pub use cpu::HostCpu;
pub use manifest::Member;

use crate::emit::Module;
use crate::error::{ArtifactError, Error, Result};
use std::path::{Path, PathBuf};

/// What an artifact's code runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AotTarget {
    /// The CPU ([`Artifact::cpu`] says which).
    Cpu,
    /// NVIDIA GPUs of this architecture (`sm_80`) or newer: host code for the
    /// artifact's CPU with the kernels' PTX inside, JIT-compiled by the driver at load.
    Cuda(String),
}

/// One compiled function of an artifact.
#[derive(Clone, PartialEq)]
pub struct FuncEntry {
    pub name: String,
    /// The entry's signature: types, dynamic symbols, parameters (no module text).
    pub sig: Module,
    /// The shared object.
    pub object: Vec<u8>,
    /// CUDA: whether every kernel launch must synchronise.
    pub sync: bool,
}

impl std::fmt::Debug for FuncEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("FuncEntry").field("name", &self.name).field("object bytes", &self.object.len()).finish()
    }
}

/// An artifact in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub target: AotTarget,
    /// The CPU the host code is compiled for, checked before loading.
    pub cpu: HostCpu,
    /// FNV-1a hash of the program's printed TIR.
    pub program_hash: u64,
    /// The name of the source file the program is built from (the entry file).
    pub main_source: String,
    /// Build options the runner must repeat (`--args`, `--choices`, `--sample`, ...) as
    /// `key=value` lines.
    pub options: Vec<(String, String)>,
    /// Source files by name.
    pub sources: Vec<(String, String)>,
    pub funcs: Vec<FuncEntry>,
}

/// FNV-1a over the printed TIR of a program: the runner's check that it rebuilt the
/// program the artifact was compiled from.
pub fn program_hash(program: &archc_compiler::tir::Program) -> u64 {
    let text = program.to_string();
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl Artifact {
    /// The archive members: each source as `src/<name>`, each function's object as
    /// `<func>.so`; names, options and sizes are checked as the reader checks them, so
    /// that what is written can be read back.
    fn members(&self) -> Result<Vec<(String, &[u8])>> {
        let cannot = |why: String| Err(Error::Artifact(ArtifactError::Unwritable(why)));
        if !self.sources.iter().any(|(name, _)| *name == self.main_source) {
            return cannot(format!("its main source `{}` is not among its sources", self.main_source));
        }
        let unfit = |(k, v): &&(String, String)| !manifest::is_recordable_option(k, v);
        if let Some((k, v)) = self.options.iter().find(unfit) {
            return cannot(format!("option `{k}={}` cannot be recorded in a manifest", v.escape_debug()));
        }
        let mut keys = std::collections::HashSet::new();
        if let Some((k, _)) = self.options.iter().find(|(k, _)| !keys.insert(k.as_str())) {
            return cannot(format!("option `{k}` is given twice"));
        }
        if self.options.len() > manifest::MAX_OPTIONS {
            return cannot(format!("{} options, more than {}", self.options.len(), manifest::MAX_OPTIONS));
        }
        let mut out = Vec::new();
        for (name, text) in &self.sources {
            out.push((manifest::source_member(name), text.as_bytes()));
        }
        for f in &self.funcs {
            manifest::check_func_name(&f.name)?;
            out.push((manifest::object_member(&f.name), f.object.as_slice()));
        }
        if let Some(e) = out.iter().find_map(|(name, _)| manifest::check_member_path(name).err()) {
            return cannot(e.to_string());
        }
        let total: u64 = out.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        if out.len() > manifest::MAX_MEMBERS || total > manifest::MAX_TOTAL_BYTES {
            return cannot(format!("{} members of {total} bytes exceed the bounds readers accept", out.len()));
        }
        Ok(out)
    }

    /// The manifest's JSON text (with every member's size and digest).
    pub fn manifest(&self) -> Result<String> {
        let members: Vec<Member> = self.members()?.iter().map(|(n, b)| Member::of(n, b)).collect();
        Ok(manifest::render(self, &members))
    }

    /// Writes the artifact as a zip archive.
    pub fn write(&self, path: &Path) -> Result<()> {
        let members = self.members()?;
        let listed: Vec<Member> = members.iter().map(|(n, b)| Member::of(n, b)).collect();
        archive::write(path, &manifest::render(self, &listed), &members)
    }

    /// Reads an artifact written by [`Artifact::write`], verified (see [`archive`]).
    pub fn read(path: &Path) -> Result<Artifact> {
        let contents = archive::read(path).map_err(|e| refused(path, e))?;
        let (mut art, mut members) = (contents.manifest.artifact, contents.members);
        for f in &mut art.funcs {
            f.object = members.remove(&manifest::object_member(&f.name)).unwrap_or_default();
        }
        for (name, bytes) in members {
            let src = name.strip_prefix("src/").unwrap_or(&name).to_string();
            let Ok(text) = String::from_utf8(bytes) else {
                return Err(ArtifactError::NotUtf8 { path: path.to_path_buf(), name: src }.into());
            };
            art.sources.push((src, text));
        }
        art.sources.sort();
        Ok(art)
    }

    /// Writes the sources into a private fresh folder (see [`scratch`]), removed when the
    /// result is dropped.
    pub fn extract_sources(&self) -> Result<Extracted> {
        if !self.sources.iter().any(|(name, _)| *name == self.main_source) {
            return Err(ArtifactError::NoSource(self.main_source.clone()).into());
        }
        let dir = scratch::private_dir("archc-archx-")?;
        for (name, text) in &self.sources {
            scratch::write_new(dir.path(), &manifest::source_member(name), text.as_bytes())?;
        }
        let main = dir.path().join(manifest::source_member(&self.main_source));
        Ok(Extracted { dir, main })
    }
}

/// The refusal of the archive at `path`: another archc's format, or an invalid archive.
fn refused(path: &Path, e: archive::ArchiveError) -> Error {
    use manifest::ManifestError::{NewerFormat, OldFormat};
    let path = path.to_path_buf();
    match e {
        archive::ArchiveError::Manifest(error @ (OldFormat(_) | NewerFormat(_))) => {
            ArtifactError::OtherVersion { path, error }.into()
        }
        error => ArtifactError::Invalid { path, error }.into(),
    }
}

/// An artifact's sources in a private folder, which is removed on drop.
pub struct Extracted {
    dir: scratch::TempDir,
    /// The main source's path in the folder.
    pub main: PathBuf,
}

impl Extracted {
    /// The folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::manifest::{empty_sig, parse, ManifestError};
    use super::*;

    fn artifact(cpu: HostCpu) -> Artifact {
        Artifact {
            target: AotTarget::Cuda("sm_90".into()),
            cpu,
            program_hash: 0x1234,
            main_source: "m.arch".into(),
            options: vec![("train".into(), "true".into())],
            sources: vec![("m.arch".into(), "network N { }".into())],
            funcs: vec![FuncEntry { name: "main".into(), sig: empty_sig(), object: b"object".to_vec(), sync: true }],
        }
    }

    /// What the manifest alone gives back of `art`: no contents.
    fn without_contents(mut art: Artifact) -> Artifact {
        art.sources.clear();
        art.funcs.iter_mut().for_each(|f| f.object.clear());
        art
    }

    #[test]
    fn the_manifest_round_trips_the_cpu() {
        for cpu in [HostCpu::X86Level(2), HostCpu::Native(vec!["avx2".into(), "avx512f".into()]), HostCpu::Generic] {
            let art = artifact(cpu);
            let text = art.manifest().expect("manifest");
            assert!(
                text.starts_with("{\n  \"format\": 4,\n  \"target\": {\n    \"cuda\": \"sm_90\"\n  },\n  \"cpu\": "),
                "{text}"
            );
            assert_eq!(parse(&text).expect("parses").artifact, without_contents(art));
        }
    }

    #[test]
    fn manifests_without_a_cpu_are_refused() {
        let text = artifact(HostCpu::X86Level(3)).manifest().expect("manifest");
        let e = parse(&text.replace("  \"cpu\": \"x86-64-v3\",\n", "")).expect_err("no cpu").to_string();
        assert!(e.contains("missing field `cpu`"), "{e}");
        for old in [1, 2, 3] {
            let e = parse(&text.replace("\"format\": 4", &format!("\"format\": {old}"))).expect_err("old format");
            assert_eq!(e, ManifestError::OldFormat(format!("archx {old}")));
            assert!(e.to_string().contains("rebuild the artifact with this archc"), "{e}");
            let e = parse(&format!("archx {old}\ntarget cpu\n")).expect_err("old text format");
            assert_eq!(e, ManifestError::OldFormat(format!("archx {old}")));
        }
        let e = parse(&text.replace("\"format\": 4", "\"format\": 5")).expect_err("newer format");
        assert_eq!(e, ManifestError::NewerFormat(5));
        let e = parse(&text.replace("x86-64-v3", "pentium4")).expect_err("unknown cpu").to_string();
        assert!(e.contains("unknown cpu `pentium4`"), "{e}");
    }

    #[test]
    fn members_are_listed_with_sizes_and_digests() {
        let text = artifact(HostCpu::X86Level(3)).manifest().expect("manifest");
        let members = parse(&text).expect("parses").members;
        assert_eq!(members, vec![Member::of("src/m.arch", b"network N { }"), Member::of("main.so", b"object")]);
        // The digest of `printf object | sha256sum`.
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let digest = "2958d416d08aa5a472d7b509036cb7eafd542add84527e66a145ea64cb4cdc75";
        assert_eq!(json["members"][1], serde_json::json!({ "name": "main.so", "size": 6, "sha256": digest }));
    }

    #[test]
    fn artifacts_with_unsafe_names_are_not_written() {
        let refused = |edit: &dyn Fn(&mut Artifact)| {
            let mut art = artifact(HostCpu::X86Level(3));
            edit(&mut art);
            let e = art.manifest().expect_err("refused");
            assert_eq!(e.kind(), crate::ErrorKind::User, "{e}");
            e.to_string()
        };
        let e = refused(&|art| art.sources.push(("../x.arch".into(), String::new())));
        assert!(e.contains("member name `src/../x.arch` is refused"), "{e}");
        let e = refused(&|art| art.funcs[0].name = "../../x".into());
        assert!(e.contains("function name `../../x` is refused"), "{e}");
        let e = refused(&|art| art.options.push(("args".into(), "x\nfunc evil".into())));
        assert!(e.contains("option `args=x\\nfunc evil` cannot be recorded"), "{e}");
        let e = refused(&|art| art.options.push(("train".into(), "false".into())));
        assert!(e.contains("option `train` is given twice"), "{e}");
        let e = refused(&|art| art.main_source = "other.arch".into());
        assert!(e.contains("main source `other.arch` is not among its sources"), "{e}");
    }
}
