//! The order of a `torch.save`d state dict's keys, read from its pickle.
//!
//! Contract: [`pt_order`] returns each key's rank in the order the pickle names it (a
//! state dict pickles its keys in registration order), or `None` when not every key is
//! found. It reads at most [`SCAN_BYTES`] of the file and never fails otherwise: the
//! file was already read and checked by `archc_runtime::io::read_pt`, and this only
//! looks for the keys' string opcodes (`BINUNICODE`, `SHORT_BINUNICODE`) in the bytes.
//! `torch.save` stores `data.pkl` uncompressed and first in the archive; a writer that
//! compresses it gives `None`, and the caller matches without order.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

/// How much of the file is searched for the pickle.
pub const SCAN_BYTES: u64 = 64 << 20;

/// The rank of each of `keys` in the pickle of the `.pt` file at `path`.
pub fn pt_order<'a>(path: &Path, keys: impl Iterator<Item = &'a String>) -> Option<HashMap<String, usize>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(SCAN_BYTES).read_to_end(&mut bytes).ok()?;
    order_in(&bytes, keys)
}

/// The first position of each key as a pickled string in `bytes`, as ranks.
fn order_in<'a>(bytes: &[u8], keys: impl Iterator<Item = &'a String>) -> Option<HashMap<String, usize>> {
    let wanted: HashMap<&[u8], &String> = keys.map(|k| (k.as_bytes(), k)).collect();
    let mut first: BTreeMap<usize, &String> = BTreeMap::new();
    let mut seen: HashMap<&String, usize> = HashMap::new();
    for i in 0..bytes.len() {
        let (len, start) = match bytes[i] {
            b'X' if i + 5 <= bytes.len() => {
                (u32::from_le_bytes([bytes[i + 1], bytes[i + 2], bytes[i + 3], bytes[i + 4]]) as usize, i + 5)
            }
            0x8c if i + 2 <= bytes.len() => (bytes[i + 1] as usize, i + 2),
            _ => continue,
        };
        let Some(s) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else { continue };
        if let Some(k) = wanted.get(s) {
            seen.entry(k).or_insert_with(|| {
                first.insert(i, k);
                i
            });
        }
    }
    if seen.len() != wanted.len() {
        return None;
    }
    Some(first.into_values().enumerate().map(|(rank, k)| (k.clone(), rank)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pickled(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((s.len() as u32).to_le_bytes());
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn keys_rank_by_their_first_appearance() {
        let mut bytes = b"junk".to_vec();
        for k in ["b.weight", "a.weight", "b.weight"] {
            bytes.extend(pickled(k));
        }
        let keys = ["a.weight".to_string(), "b.weight".to_string()];
        let o = order_in(&bytes, keys.iter()).unwrap();
        assert_eq!((o["b.weight"], o["a.weight"]), (0, 1));
        let missing = ["c".to_string()];
        assert!(order_in(&bytes, missing.iter()).is_none());
        assert!(order_in(b"X\xff\xff\xff\xff", keys.iter()).is_none());
    }
}
