//! The Cranelift IR of every example, snapshot-tested (`tests/snapshots`): each example's
//! forward program (entry `main`) and the train step of each example with a `train`
//! block, with its own optimizer. A program of at most [`FULL_BYTES`] is kept in full
//! text (`<example>.snap`), as is `train_digits.train_step.snap`; every other one is kept
//! as a digest (`forward.digest.snap`, `train_steps.digest.snap`: per function its
//! signature, block and instruction counts, the count of every opcode and an FNV-1a hash
//! of its text, so any change of the IR fails and the digest's diff says what kind). The
//! full text of every program would be 14 MB (the looped and FNO train steps 2 to 2.6 MB
//! each), too much to review or to carry in the repository.
//!
//! The text is what `archc build --emit clif` prints: deterministic for the same program
//! (checked by emitting it twice), free of addresses (functions are named `u0:<n>` and
//! listed at the end), lowered with vectors as on x86-64 and aarch64 hosts
//! (`Options::host`; other hosts lower scalar loops and differ).

mod common;

use common::{examples, forward, stem, train_step};

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The IR of `entry` of `p`, emitted twice and compared.
fn emitted(label: &str, p: &archc_compiler::tir::Program, entry: &str) -> String {
    let text = archc_clif::emit_clif(p, entry).unwrap_or_else(|e| panic!("{label}: {e}"));
    let again = archc_clif::emit_clif(p, entry).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(text, again, "{label}: the IR text differs between two emissions");
    text
}

/// Programs up to this size are snapshotted in full text, larger ones as digests.
const FULL_BYTES: usize = 64 * 1024;

#[test]
fn every_forward_program_snapshotted() {
    let paths = examples();
    assert!(paths.len() >= 20, "examples found: {}", paths.len());
    let mut digests = String::new();
    for path in paths {
        let name = stem(&path);
        let text = emitted(&name, &forward(&path), "main");
        match text.len() <= FULL_BYTES {
            true => snapshot(&name, &text),
            false => digests.push_str(&digest(&name, &text)),
        }
    }
    assert!(digests.lines().filter(|l| !l.starts_with(' ')).count() >= 5, "forward digests:\n{digests}");
    snapshot("forward.digest", &digests);
}

/// The train steps snapshotted in full text besides their digests.
const FULL_TRAIN_STEPS: [&str; 1] = ["train_digits"];

#[test]
fn every_train_step_snapshotted() {
    let mut digests = String::new();
    for path in examples() {
        let Some(p) = train_step(&path, false) else { continue };
        let name = format!("{}.train_step", stem(&path));
        let text = emitted(&name, &p, "train_step");
        if FULL_TRAIN_STEPS.contains(&stem(&path).as_str()) {
            snapshot(&name, &text);
        }
        digests.push_str(&digest(&name, &text));
    }
    assert!(digests.matches(".train_step:").count() >= 10, "train steps found:\n{digests}");
    snapshot("train_steps.digest", &digests);
}

/// FNV-1a, 64 bits.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A program's IR in short: its size and hash, then per function (`; @name signature`
/// headers) its blocks, instructions, hash and opcode counts (with their types, as
/// `load.f32x4`).
fn digest(name: &str, text: &str) -> String {
    let mut out = format!("{name}: {} bytes, fnv1a {:016x}\n", text.len(), fnv1a(text));
    for (k, part) in text.split("\n; @").enumerate() {
        let part = if k == 0 { part.to_string() } else { format!("; @{part}") };
        let Some(header) = part.lines().next().filter(|l| l.starts_with("; @")) else { continue };
        let (mut blocks, mut insts) = (0, 0);
        let mut ops = std::collections::BTreeMap::<&str, usize>::new();
        let mut in_body = false;
        for line in part.lines() {
            if line.starts_with("block") {
                (blocks, in_body) = (blocks + 1, true);
            } else if in_body && line.starts_with("    ") && !line.contains(" -> ") {
                // `v3 = op args  ; v2 = 4` (the comment shows constant operands) or `op args`;
                // `v5 -> v4` (an alias) is no instruction.
                let code = line.split("  ;").next().unwrap_or(line).trim_start();
                let inst = code.split_once(" = ").map_or(code, |(_, rhs)| rhs);
                let op = inst.split_whitespace().next().unwrap_or("?");
                insts += 1;
                *ops.entry(op).or_default() += 1;
            } else if line == "}" {
                break;
            }
        }
        let body: String = part.lines().take_while(|l| *l != "; functions:").collect::<Vec<_>>().join("\n");
        out.push_str(&format!("  {}\n", header.trim_start_matches("; ")));
        out.push_str(&format!("    {blocks} blocks, {insts} instructions, fnv1a {:016x}\n", fnv1a(&body)));
        for (op, n) in ops {
            out.push_str(&format!("      {op} {n}\n"));
        }
    }
    out
}
