//! `--max-memory`: a program whose estimated peak memory exceeds the limit is refused
//! before anything is allocated, with a message naming the estimate, the largest tensor
//! and the limit (exit 1), instead of an abort or a segfault halfway through.
//!
//! The estimate is `tir::memory::estimate` (live tensors and parameters, a lower bound
//! on what a backend needs). The limit is `--max-memory SIZE` (`8G`, `512M`, `1T`, plain
//! bytes; `none` for no limit), by default 80% of this machine's memory
//! (`/proc/meminfo`), or none where that cannot be read.

use archc_compiler::tir::memory::{estimate, human_bytes};
use archc_compiler::tir::{Dim, Func, Program};
use std::collections::HashMap;

/// The share of the machine's memory a run may plan to use by default.
const DEFAULT_SHARE: f64 = 0.8;

/// The limit in bytes: `--max-memory` if given, else the default (`None`: no limit).
pub fn limit(flag: Option<&str>) -> Result<Option<u128>, String> {
    match flag {
        Some(s) => parse_size(s),
        None => Ok(machine_memory().map(|m| (m as f64 * DEFAULT_SHARE) as u128)),
    }
}

/// `8G`, `512MiB`, `1.5T`, `1000000`, `none`.
pub fn parse_size(s: &str) -> Result<Option<u128>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u128 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("--max-memory {s}: unknown unit `{unit}` (use K, M, G or T)")),
    };
    let value: f64 = num.trim().parse().map_err(|_| format!("--max-memory {s}: not a size like 8G or 512M"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("--max-memory {s}: the size must be positive"));
    }
    Ok(Some((value * scale as f64) as u128))
}

/// The machine's total memory in bytes (Linux).
fn machine_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses running `func` with symbols bound by `env` when its estimate exceeds `limit`.
pub fn check(program: &Program, func: &str, env: &HashMap<String, i64>, limit: Option<u128>) -> Result<(), String> {
    let e = estimate(program, func, env).map_err(|m| format!("`{func}`: {m}"))?;
    let Some(limit) = limit else { return Ok(()) };
    if e.peak_bytes <= limit {
        return Ok(());
    }
    let largest = match &e.largest {
        Some((t, b)) => format!("; the largest tensor, {t}, takes {}", human_bytes(*b)),
        None => String::new(),
    };
    let sizes: Vec<String> = {
        let mut v: Vec<_> = env.iter().collect();
        v.sort();
        v.into_iter().map(|(k, n)| format!("{k}={n}")).collect()
    };
    let at = if sizes.is_empty() { String::new() } else { format!(" at {}", sizes.join(", ")) };
    Err(format!(
        "running `{func}`{at} needs at least {}{largest}: above the memory limit of {} (set another with --max-memory SIZE)",
        human_bytes(e.peak_bytes),
        human_bytes(limit)
    ))
}

/// Symbol values of `f`'s arguments from the shapes of the tensors that will feed them
/// (`shapes` by argument name; dims that are a lone symbol are bound).
pub fn bind(f: &Func, shapes: &HashMap<String, Vec<usize>>) -> HashMap<String, i64> {
    let mut env = HashMap::new();
    for (name, (_, ty)) in f.arg_names.iter().zip(&f.args) {
        let Some(shape) = shapes.get(name) else { continue };
        for (d, &n) in ty.shape.iter().zip(shape) {
            if let [s] = d.symbols().as_slice() {
                if *d == Dim::sym(s.clone()) {
                    env.entry(s.clone()).or_insert(n.min(i64::MAX as usize) as i64);
                }
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8G").unwrap(), Some(8 << 30));
        assert_eq!(parse_size("512MiB").unwrap(), Some(512 << 20));
        assert_eq!(parse_size("1000").unwrap(), Some(1000));
        assert_eq!(parse_size("none").unwrap(), None);
        assert!(parse_size("8X").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("nan").is_err());
    }
}
