//! Chains of stack blocks and the moves between them (CoLa / PoLar).
//!
//! A chain is the sequence of block indices a sample runs instead of the stack's fixed
//! order; the default chain is the trained order `[0, 1, .., depth)`. Moves from a chain
//! ([`Space::moves`]): skip one block at any position, or repeat one (a copy inserted
//! right after it); from the root (the default chain) also skip or repeat a run of 2, 3
//! or 4 contiguous blocks.
//!
//! Contract: every chain [`Space::moves`] returns is distinct from the others and from
//! its parent, uses no block more than [`Space::max_uses`] times, and has a length within
//! `[min_len, max_len]`; the order is deterministic.

use std::collections::BTreeSet;
use std::fmt;

/// A sequence of block indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Chain(pub Vec<usize>);

impl Chain {
    /// The trained order of a stack of `depth` blocks.
    pub fn trained(depth: usize) -> Chain {
        Chain((0..depth).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How often block `b` appears.
    pub fn uses(&self, b: usize) -> usize {
        self.0.iter().filter(|&&x| x == b).count()
    }

    /// `0,1,1,3` as a chain whose blocks are below `depth` (empty text: the empty chain).
    pub fn parse(text: &str, depth: usize) -> Result<Chain, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Chain(Vec::new()));
        }
        let mut blocks = Vec::new();
        for part in text.split(',') {
            let b: usize = part.trim().parse().map_err(|_| format!("chain `{text}`: `{part}` is not a block index"))?;
            if b >= depth {
                return Err(format!("chain `{text}`: block {b} does not exist (the stack has {depth} blocks)"));
            }
            blocks.push(b);
        }
        Ok(Chain(blocks))
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| b.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// The chains a search may visit: which moves, how often a block may appear, and the
/// length bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    pub depth: usize,
    pub skip: bool,
    pub repeat: bool,
    /// The most times one block may appear (1 without `repeat`).
    pub max_uses: usize,
    pub min_len: usize,
    pub max_len: usize,
}

/// The longest run a root move skips or repeats.
pub const MAX_RUN: usize = 4;

impl Space {
    /// A space over `depth` blocks: `repeat_max` is `repeat`'s `max` (`None`: no repeat
    /// move), `length` the bounds (default `[1, depth * max_uses]`).
    pub fn new(depth: usize, skip: bool, repeat_max: Option<usize>, length: Option<(usize, usize)>) -> Space {
        let max_uses = repeat_max.unwrap_or(1).max(1);
        let (min_len, max_len) = length.unwrap_or((1, depth * max_uses));
        Space { depth, skip, repeat: repeat_max.is_some(), max_uses, min_len, max_len }
    }

    /// Whether `c` lies in the space: blocks below `depth`, uses and length in bounds.
    pub fn admits(&self, c: &Chain) -> bool {
        (self.min_len..=self.max_len).contains(&c.len())
            && c.0.iter().all(|&b| b < self.depth && c.uses(b) <= self.max_uses)
    }

    /// The chains one move away from `c` (`root`: `c` is the search's root, where runs
    /// of 2 to 4 blocks move too); see the module docs.
    pub fn moves(&self, c: &Chain, root: bool) -> Vec<Chain> {
        let longest = if root { MAX_RUN } else { 1 };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        seen.insert(c.clone());
        for run in 1..=longest.min(c.len()) {
            for i in 0..=c.len() - run {
                if self.skip {
                    let mut v = c.0[..i].to_vec();
                    v.extend_from_slice(&c.0[i + run..]);
                    self.push(Chain(v), &mut seen, &mut out);
                }
                if self.repeat {
                    let mut v = c.0[..i + run].to_vec();
                    v.extend_from_slice(&c.0[i..]);
                    self.push(Chain(v), &mut seen, &mut out);
                }
            }
        }
        out
    }

    fn push(&self, c: Chain, seen: &mut BTreeSet<Chain>, out: &mut Vec<Chain>) {
        if self.admits(&c) && seen.insert(c.clone()) {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_moves_skip_and_repeat_runs() {
        let s = Space::new(4, true, Some(2), None);
        let m = s.moves(&Chain::trained(4), true);
        assert!(m.contains(&Chain(vec![0, 2, 3])));
        assert!(m.contains(&Chain(vec![3])), "a run of 3 skipped");
        assert!(m.contains(&Chain(vec![0, 1, 0, 1, 2, 3])), "a run of 2 repeated");
        assert!(m.contains(&Chain(vec![0, 1, 1, 2, 3])));
        assert!(!m.contains(&Chain(vec![])), "length 0 is below the bound");
        let inner = s.moves(&Chain(vec![0, 1, 1, 2, 3]), false);
        assert!(inner.iter().all(|c| c.len() == 4 || c.len() == 6));
        assert!(!inner.contains(&Chain(vec![0, 1, 1, 1, 2, 3])), "block 1 at most twice");
    }

    #[test]
    fn chains_parse_and_print() {
        let c = Chain::parse("0, 1,1,3", 4).unwrap();
        assert_eq!(c.to_string(), "0,1,1,3");
        assert!(Chain::parse("0,4", 4).unwrap_err().contains("block 4 does not exist"));
        assert!(Chain::parse("0,x", 4).is_err());
        assert!(Chain::parse("", 4).unwrap().is_empty());
    }
}
