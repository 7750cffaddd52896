//! The CPU an artifact's host code is compiled for, and the loader's check that the
//! running CPU has every feature that code may use.
//!
//! On x86-64 hosts `--cpu` names a microarchitecture level, `x86-64` (baseline),
//! `x86-64-v2` (SSE4.2), `x86-64-v3` (AVX2, FMA; the default) or `x86-64-v4` (AVX-512),
//! or `native`: the build machine's CPU, recorded with those of [`FEATURES`] it has. On
//! other hosts the names are `generic` (the default) and `native`, recorded without
//! features. The name goes to `llc -mcpu=`; the manifest records the level or the
//! features, and before any code is loaded [`HostCpu::check_host`] compares them with
//! `is_x86_feature_detected!`, so an artifact for a newer CPU fails with an error naming
//! what is missing instead of an illegal instruction. `generic` and featureless `native`
//! record nothing to check.
//!
//! Errors: a name `--cpu` does not take is an [`Error::Config`]; code this CPU cannot run
//! is an [`ArtifactError::Cpu`]. No LLVM: the loader uses this module.

use crate::error::{ArtifactError, Error, Result};

/// The CPU an artifact's host code is compiled for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCpu {
    /// An x86-64 microarchitecture level, 1 (baseline) to 4.
    X86Level(u8),
    /// The build machine's CPU, with those of [`FEATURES`] it has.
    Native(Vec<String>),
    /// The generic CPU of a host that is not x86-64.
    Generic,
}

/// Declares [`FEATURES`] and `detect`, which returns those the running CPU has, from
/// one list (`is_x86_feature_detected!` takes literals only).
macro_rules! features {
    ($($f:tt),* $(,)?) => {
        /// The x86-64 features an artifact records and the loader checks: those of the
        /// levels, then those `native` code may use on top.
        pub const FEATURES: &[&str] = &[$($f),*];

        #[cfg(target_arch = "x86_64")]
        fn detect() -> Vec<&'static str> {
            let mut found = Vec::new();
            $(if std::arch::is_x86_feature_detected!($f) {
                found.push($f);
            })*
            found
        }
    };
}

features!(
    "cmpxchg16b",
    "sse3",
    "ssse3",
    "sse4.1",
    "sse4.2",
    "popcnt",
    "avx",
    "avx2",
    "bmi1",
    "bmi2",
    "fma",
    "lzcnt",
    "movbe",
    "f16c",
    "xsave",
    "avx512f",
    "avx512bw",
    "avx512cd",
    "avx512dq",
    "avx512vl",
    "aes",
    "pclmulqdq",
    "sha",
    "adx",
    "rdrand",
    "rdseed",
    "sse4a",
    "gfni",
    "vaes",
    "vpclmulqdq",
    "avx512ifma",
    "avx512vbmi",
    "avx512vbmi2",
    "avx512vnni",
    "avx512bitalg",
    "avx512vpopcntdq",
    "avx512bf16",
    "avx512fp16",
    "avxvnni",
);

/// The features each x86-64 level adds to the one below (LLVM's definitions, less the
/// ones every x86-64 CPU has or that cannot be detected).
const LEVEL_ADDS: [&[&str]; 4] = [
    &[],
    &["cmpxchg16b", "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt"],
    &["avx", "avx2", "bmi1", "bmi2", "fma", "lzcnt", "movbe", "f16c", "xsave"],
    &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"],
];

/// What each level is known for, after its name in messages.
const LEVEL_GIST: [&str; 4] = ["baseline", "SSE4.2", "AVX2", "AVX-512"];

/// The names `--cpu` accepts on this host.
const NAMES: &str = if cfg!(target_arch = "x86_64") {
    "x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or native"
} else {
    "generic or native"
};

/// The features the running CPU has, of [`FEATURES`] (none off x86-64).
pub fn host_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    return detect();
    #[cfg(not(target_arch = "x86_64"))]
    return Vec::new();
}

/// The highest x86-64 level the running CPU supports (`None` off x86-64).
pub fn host_level() -> Option<HostCpu> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let detected = host_features();
    let level = (1..=4u8).rev().find(|&l| level_features(l).iter().all(|f| detected.contains(f)))?;
    Some(HostCpu::X86Level(level))
}

fn level_name(level: u8) -> String {
    match level {
        1 => "x86-64".to_string(),
        n => format!("x86-64-v{n}"),
    }
}

/// The level of `x86-64`, `x86-64-v2`, ... `x86-64-v4`.
fn level_of(name: &str) -> Option<u8> {
    match name {
        "x86-64" => Some(1),
        _ => name.strip_prefix("x86-64-v")?.parse().ok().filter(|n| (2..=4).contains(n)),
    }
}

/// The features code for `level` may use (cumulative).
fn level_features(level: u8) -> Vec<&'static str> {
    LEVEL_ADDS[..level as usize].iter().flat_map(|f| f.iter().copied()).collect()
}

impl HostCpu {
    /// The default of `--cpu`: `x86-64-v3` on x86-64 hosts, else `generic`.
    pub fn host_default() -> HostCpu {
        if cfg!(target_arch = "x86_64") {
            HostCpu::X86Level(3)
        } else {
            HostCpu::Generic
        }
    }

    /// The CPU `--cpu NAME` asks for on this host; `native` records this machine's
    /// features.
    pub fn named(name: &str) -> Result<HostCpu> {
        let x86 = cfg!(target_arch = "x86_64");
        match (name, level_of(name)) {
            ("native", _) => Ok(HostCpu::Native(host_features().into_iter().map(String::from).collect())),
            (_, Some(level)) if x86 => Ok(HostCpu::X86Level(level)),
            ("generic", _) if !x86 => Ok(HostCpu::Generic),
            _ => Err(Error::Config(format!("unknown CPU `{name}` for --cpu: expected {NAMES}"))),
        }
    }

    /// The name `llc -mcpu=` takes.
    pub fn llc_name(&self) -> String {
        match self {
            HostCpu::X86Level(level) => level_name(*level),
            HostCpu::Native(_) => "native".to_string(),
            HostCpu::Generic => "generic".to_string(),
        }
    }

    /// The manifest's text: `x86-64-v3`, `native avx,avx2,...`, `generic`.
    pub fn manifest_text(&self) -> String {
        match self {
            HostCpu::Native(features) if !features.is_empty() => format!("native {}", features.join(",")),
            other => other.llc_name(),
        }
    }

    /// Reads [`HostCpu::manifest_text`]; features are kept as recorded, also ones this
    /// archc does not know (which then cannot be present); `None` for a text that names no
    /// CPU.
    pub fn from_manifest(text: &str) -> Option<HostCpu> {
        let (name, features) = text.split_once(' ').unwrap_or((text, ""));
        match (name, level_of(name)) {
            ("native", _) => {
                Some(HostCpu::Native(features.split(',').filter(|f| !f.is_empty()).map(String::from).collect()))
            }
            (_, Some(level)) if features.is_empty() => Some(HostCpu::X86Level(level)),
            ("generic", _) if features.is_empty() => Some(HostCpu::Generic),
            _ => None,
        }
    }

    /// The features the code may use that the loader checks.
    fn required(&self) -> Vec<&str> {
        match self {
            HostCpu::X86Level(level) => level_features(*level),
            HostCpu::Native(features) => features.iter().map(String::as_str).collect(),
            HostCpu::Generic => Vec::new(),
        }
    }

    /// Whether a CPU with the features `detected` can run code for this CPU; the error
    /// names what it lacks and the highest level it supports.
    pub fn check(&self, detected: &[&str]) -> Result<()> {
        let missing: Vec<&str> = self.required().into_iter().filter(|f| !detected.contains(f)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let best = (1..=4u8).rev().find(|&l| level_features(l).iter().all(|f| detected.contains(f))).unwrap_or(1);
        Err(wrong_cpu(format!(
            "this artifact was built for {self}; this CPU lacks {} (it supports {}: rebuild with `--cpu {}`)",
            missing.join(", "),
            HostCpu::X86Level(best),
            level_name(best)
        )))
    }

    /// [`HostCpu::check`] against the running CPU.
    pub fn check_host(&self) -> Result<()> {
        let x86_code = !self.required().is_empty();
        if x86_code && !cfg!(target_arch = "x86_64") {
            return Err(wrong_cpu(format!("this artifact was built for {self}; this machine is not x86-64")));
        }
        self.check(&host_features())
    }
}

fn wrong_cpu(message: String) -> Error {
    Error::Artifact(ArtifactError::Cpu(message))
}

impl std::fmt::Display for HostCpu {
    /// `x86-64-v4 (AVX-512)`, `native (the build machine's CPU)`, `generic`.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HostCpu::X86Level(level) => write!(f, "{} ({})", level_name(*level), LEVEL_GIST[*level as usize - 1]),
            HostCpu::Native(_) => write!(f, "native (the build machine's CPU)"),
            HostCpu::Generic => write!(f, "generic"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_feature_is_detected() {
        for level in 1..=4 {
            for f in level_features(level) {
                assert!(FEATURES.contains(&f), "{f} of level {level} is not in FEATURES");
            }
        }
    }

    #[test]
    fn manifest_text_round_trips() {
        let cpus = [
            HostCpu::X86Level(1),
            HostCpu::X86Level(2),
            HostCpu::X86Level(3),
            HostCpu::X86Level(4),
            HostCpu::Native(vec!["avx".into(), "avx2".into(), "sse4.2".into()]),
            HostCpu::Native(Vec::new()),
            HostCpu::Generic,
        ];
        for cpu in cpus {
            assert_eq!(HostCpu::from_manifest(&cpu.manifest_text()), Some(cpu.clone()), "{}", cpu.manifest_text());
        }
        assert!(HostCpu::from_manifest("x86-64-v5").is_none());
        assert!(HostCpu::from_manifest("x86-64-v3 avx").is_none());
    }

    #[test]
    fn check_refuses_levels_whose_features_are_missing() {
        let v3 = level_features(3);
        assert_eq!(HostCpu::X86Level(3).check(&v3), Ok(()));
        assert_eq!(HostCpu::X86Level(2).check(&v3), Ok(()));
        let e = HostCpu::X86Level(4).check(&v3).expect_err("v4 on a v3 CPU").to_string();
        assert!(e.starts_with("this artifact was built for x86-64-v4 (AVX-512); this CPU lacks avx512f, "), "{e}");
        assert!(e.contains("rebuild with `--cpu x86-64-v3`"), "{e}");
        let no_fma: Vec<&str> = v3.iter().copied().filter(|f| *f != "fma").collect();
        let e = HostCpu::X86Level(3).check(&no_fma).expect_err("v3 without FMA").to_string();
        assert!(e.contains("this CPU lacks fma (it supports x86-64-v2 (SSE4.2)"), "{e}");
        assert_eq!(HostCpu::X86Level(1).check(&[]), Ok(()));
        assert_eq!(HostCpu::Generic.check(&[]), Ok(()));
    }

    #[test]
    fn check_refuses_native_features_that_are_missing() {
        let native = HostCpu::Native(vec!["avx2".into(), "avx512f".into()]);
        assert_eq!(native.check(&["avx2", "avx512f", "fma"]), Ok(()));
        let e = native.check(&["avx2"]).expect_err("no avx512f").to_string();
        assert!(e.contains("built for native (the build machine's CPU); this CPU lacks avx512f"), "{e}");
    }

    #[test]
    fn names_are_checked_up_front() {
        assert_eq!(HostCpu::named("native").map(|c| c.llc_name()), Ok("native".to_string()));
        let e = HostCpu::named("skylake-avx512").expect_err("not a level").to_string();
        assert!(e.contains("unknown CPU `skylake-avx512`"), "{e}");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(HostCpu::named("x86-64-v2"), Ok(HostCpu::X86Level(2)));
            assert_eq!(HostCpu::named("x86-64").map(|c| c.llc_name()), Ok("x86-64".to_string()));
            assert!(HostCpu::named("x86-64-v5").is_err() && HostCpu::named("generic").is_err());
            assert_eq!(HostCpu::host_default(), HostCpu::X86Level(3));
        }
    }

    /// The running CPU passes the check of `native` as recorded on it.
    #[test]
    fn native_passes_on_the_build_machine() {
        let native = HostCpu::named("native").expect("native");
        assert_eq!(native.check_host(), Ok(()));
    }
}
