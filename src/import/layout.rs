//! Layout conversions from a PyTorch module's tensors to an archc layer's parameters.
//!
//! Contract: [`convert`] takes the tensors of one PyTorch module (leaf name -> tensor,
//! e.g. `weight`, `bias`) and the parameters of one archc layer (leaf name -> shape) and
//! returns the archc tensors only when one known conversion produces exactly the
//! layer's leaf names with exactly its shapes, consuming every PyTorch tensor; otherwise
//! `None`. It never panics: every index is within the shapes it has just checked.
//!
//! The conversions, from stdlib/*.arch against PyTorch:
//! - the same names and shapes: as is (LayerNorm, GroupNorm, BatchNorm's `weight`,
//!   `bias`, `running_mean`, `running_var`, Embedding's `weight`);
//! - `nn.Linear` `weight [out, in]`, `bias` -> `Linear` `w [in, out]` (transposed), `b`;
//! - `nn.Conv1d/2d/3d` `weight [out, in/groups, k...]`, `bias` -> `w`, `b` as is;
//! - `nn.LSTM`/`nn.GRU` (one layer, `_l0`, or any `_lN` as its own module) and
//!   `nn.LSTMCell`/`nn.GRUCell` `weight_ih [G*h, in]`, `weight_hh [G*h, h]`, `bias_ih`,
//!   `bias_hh` -> `w_ih [in, G*h]`, `w_hh [h, G*h]` (transposed), `b_ih`, `b_hh`; the
//!   gate order (i, f, g, o and r, z, n) and the two separate biases are PyTorch's;
//! - `nn.MultiheadAttention` `in_proj_weight [3d, d]` (or `q/k/v_proj_weight [d, d]`),
//!   `in_proj_bias [3d]`, `out_proj.weight`, `out_proj.bias` -> `wq`, `wk`, `wv`, `wo`
//!   (rows split in q, k, v order and transposed), `bq`, `bk`, `bv`, `bo`;
//! - FNO spectral weights, complex `[in, out, m...]` or as real pairs
//!   `[in, out, m..., 2]` (`torch.view_as_real`) -> `w_re`, `w_im`; the 2-d layer's two
//!   blocks `weights1`, `weights2 [in, out, m1, m2]` -> `[in, out, 2*m1, m2]`
//!   (positive frequencies first).
//!
//! A `float64` tensor is narrowed to `f32` (said in the conversion's description).

use archc_runtime::tensor::Data;
use archc_runtime::Tensor;
use std::collections::BTreeMap;

/// One archc parameter produced from PyTorch tensors.
#[derive(Clone, Debug)]
pub struct Converted {
    /// The archc leaf name (`w`, `b_ih`).
    pub leaf: String,
    pub tensor: Tensor,
    /// The PyTorch leaf names it came from.
    pub from: Vec<String>,
    /// The conversion, in words (`as is`, `transposed`).
    pub how: String,
}

/// A PyTorch module's tensors by leaf name.
pub type TorchLeaves<'a> = BTreeMap<String, &'a Tensor>;
/// An archc layer's parameter shapes by leaf name.
pub type ArchLeaves = BTreeMap<String, Vec<usize>>;

/// The archc parameters of `arch` made from `torch`, if a conversion fits exactly.
pub fn convert(torch: &TorchLeaves, arch: &ArchLeaves) -> Option<Vec<Converted>> {
    let floats: BTreeMap<&str, F32> = torch.iter().filter_map(|(k, t)| Some((k.as_str(), F32::of(t)?))).collect();
    let complex: BTreeMap<&str, &Tensor> =
        torch.iter().filter(|(_, t)| matches!(t.data, Data::C64(_))).map(|(k, t)| (k.as_str(), *t)).collect();
    let candidates = [
        as_is(&floats, torch.len()),
        linear(&floats, torch.len()),
        recurrent(&floats, torch.len()),
        attention(&floats, torch.len()),
        spectral(&floats, &complex, torch.len()),
    ];
    candidates.into_iter().flatten().find(|c| fits(c, arch))
}

/// One tensor named by the user's map onto a parameter of `shape`: as is, or a matrix
/// transposed when only that fits; a complex or `[..., 2]` tensor cannot be mapped alone.
pub fn convert_one(t: &Tensor, shape: &[usize]) -> Option<Converted> {
    let f = F32::of(t)?;
    if f.shape == shape {
        return one("", f.same(), &[""], f.note("as is"));
    }
    if f.shape.len() == 2 && shape.len() == 2 && f.shape[0] == shape[1] && f.shape[1] == shape[0] {
        return one("", f.transposed(), &[""], f.note(&format!("transposed from {:?}", f.shape)));
    }
    None
}

/// Elements as f32 values (a complex one counts two): conversions keep this total.
pub fn f32_count(t: &Tensor) -> usize {
    match t.data {
        Data::C64(_) => 2 * t.numel(),
        _ => t.numel(),
    }
}

/// Whether the produced leaves are exactly `arch`'s, with its shapes.
fn fits(c: &[Converted], arch: &ArchLeaves) -> bool {
    c.len() == arch.len() && c.iter().all(|p| arch.get(&p.leaf).is_some_and(|s| *s == p.tensor.shape))
}

/// A real tensor's values as f32, and whether they were narrowed from f64.
#[derive(Clone)]
struct F32 {
    shape: Vec<usize>,
    values: Vec<f32>,
    narrowed: bool,
}

impl F32 {
    fn of(t: &Tensor) -> Option<F32> {
        let (values, narrowed) = match &t.data {
            Data::F32(v) => (v.clone(), false),
            Data::F64(v) => (v.iter().map(|&x| x as f32).collect(), true),
            _ => return None,
        };
        Some(F32 { shape: t.shape.clone(), values, narrowed })
    }

    fn tensor(shape: Vec<usize>, values: Vec<f32>) -> Option<Tensor> {
        Tensor::new(shape, Data::F32(values)).ok()
    }

    /// The tensor as is.
    fn same(&self) -> Option<Tensor> {
        F32::tensor(self.shape.clone(), self.values.clone())
    }

    /// A matrix transposed.
    fn transposed(&self) -> Option<Tensor> {
        let [r, c] = self.shape[..] else { return None };
        let mut out = vec![0.0; self.values.len()];
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = self.values[i * c + j];
            }
        }
        F32::tensor(vec![c, r], out)
    }

    /// Rows `lo..hi` of a vector or a matrix.
    fn rows(&self, lo: usize, hi: usize) -> Option<F32> {
        let n = *self.shape.first()?;
        if lo > hi || hi > n {
            return None;
        }
        let width: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = hi - lo;
        Some(F32 { shape, values: self.values.get(lo * width..hi * width)?.to_vec(), narrowed: self.narrowed })
    }

    fn note(&self, how: &str) -> String {
        if self.narrowed {
            format!("{how}, f64 -> f32")
        } else {
            how.to_string()
        }
    }
}

fn one(leaf: &str, tensor: Option<Tensor>, from: &[&str], how: String) -> Option<Converted> {
    Some(Converted { leaf: leaf.into(), tensor: tensor?, from: from.iter().map(|s| s.to_string()).collect(), how })
}

/// Every tensor under its own name, unchanged.
fn as_is(f: &BTreeMap<&str, F32>, total: usize) -> Option<Vec<Converted>> {
    if f.len() != total {
        return None;
    }
    f.iter().map(|(k, t)| one(k, t.same(), &[k], t.note("as is"))).collect()
}

/// `nn.Linear` (transposed) or a convolution (as is): `weight`, optional `bias`.
fn linear(f: &BTreeMap<&str, F32>, total: usize) -> Option<Vec<Converted>> {
    let w = f.get("weight")?;
    let bias = f.get("bias");
    if total != 1 + usize::from(bias.is_some()) || !(2..=5).contains(&w.shape.len()) {
        return None;
    }
    let mut out = vec![if w.shape.len() == 2 {
        let how = w.note(&format!("transposed from {:?}", w.shape));
        one("w", w.transposed(), &["weight"], how)?
    } else {
        one("w", w.same(), &["weight"], w.note("as is (convolution [out, in/groups, k...])"))?
    }];
    if let Some(b) = bias {
        out.push(one("b", b.same(), &["bias"], b.note("as is"))?);
    }
    Some(out)
}

/// LSTM/GRU weights: transposed, biases as is (gate order and two biases as PyTorch's).
fn recurrent(f: &BTreeMap<&str, F32>, total: usize) -> Option<Vec<Converted>> {
    if total != 4 {
        return None;
    }
    let mut out = Vec::new();
    for (torch, arch) in [("weight_ih", "w_ih"), ("weight_hh", "w_hh")] {
        let w = f.get(torch)?;
        out.push(one(arch, w.transposed(), &[torch], w.note(&format!("transposed from {:?}", w.shape)))?);
    }
    for (torch, arch) in [("bias_ih", "b_ih"), ("bias_hh", "b_hh")] {
        let b = f.get(torch)?;
        out.push(one(arch, b.same(), &[torch], b.note("as is"))?);
    }
    Some(out)
}

/// `nn.MultiheadAttention`: packed or separate q/k/v projections, then `out_proj`.
fn attention(f: &BTreeMap<&str, F32>, total: usize) -> Option<Vec<Converted>> {
    let (wo, bo, bias) = (f.get("out_proj.weight")?, f.get("out_proj.bias")?, f.get("in_proj_bias")?);
    let d = *wo.shape.first()?;
    let mut out = Vec::new();
    let names = [("wq", "bq"), ("wk", "bk"), ("wv", "bv")];
    if let Some(w) = f.get("in_proj_weight") {
        if total != 4 || w.shape.first() != Some(&(3 * d)) {
            return None;
        }
        for (i, (wn, _)) in names.iter().enumerate() {
            let how = w.note(&format!("rows {}..{} of {:?}, transposed", i * d, (i + 1) * d, w.shape));
            out.push(one(wn, w.rows(i * d, (i + 1) * d)?.transposed(), &["in_proj_weight"], how)?);
        }
    } else {
        if total != 6 {
            return None;
        }
        for ((wn, _), torch) in names.iter().zip(["q_proj_weight", "k_proj_weight", "v_proj_weight"]) {
            let w = f.get(torch)?;
            out.push(one(wn, w.transposed(), &[torch], w.note(&format!("transposed from {:?}", w.shape)))?);
        }
    }
    if bias.shape != [3 * d] {
        return None;
    }
    for (i, (_, bn)) in names.iter().enumerate() {
        let how = bias.note(&format!("elements {}..{} of [{}]", i * d, (i + 1) * d, 3 * d));
        out.push(one(bn, bias.rows(i * d, (i + 1) * d)?.same(), &["in_proj_bias"], how)?);
    }
    out.push(one("wo", wo.transposed(), &["out_proj.weight"], wo.note("transposed"))?);
    out.push(one("bo", bo.same(), &["out_proj.bias"], bo.note("as is"))?);
    Some(out)
}

/// FNO spectral weights: one complex block (or real pairs), or the 2-d layer's two.
fn spectral(f: &BTreeMap<&str, F32>, c: &BTreeMap<&str, &Tensor>, total: usize) -> Option<Vec<Converted>> {
    let parts: Vec<(&str, (F32, F32), &str)> = if !c.is_empty() {
        c.iter()
            .map(|(k, t)| Some((*k, complex_parts(t)?, "complex split in real and imaginary parts")))
            .collect::<Option<_>>()?
    } else {
        f.iter().map(|(k, t)| Some((*k, pair_parts(t)?, "last axis [re, im] split"))).collect::<Option<_>>()?
    };
    if parts.len() != total {
        return None;
    }
    match &parts[..] {
        [(k, (re, im), how)] => {
            Some(vec![one("w_re", re.same(), &[k], re.note(how))?, one("w_im", im.same(), &[k], im.note(how))?])
        }
        [(k1, (re1, im1), how), (k2, (re2, im2), _)] if *k1 == "weights1" && *k2 == "weights2" => {
            let how = re1.note(&format!("{how}; weights1, weights2 stacked on axis 2"));
            Some(vec![
                one("w_re", stack_modes(re1, re2), &[k1, k2], how.clone())?,
                one("w_im", stack_modes(im1, im2), &[k1, k2], how)?,
            ])
        }
        _ => None,
    }
}

/// A complex tensor's real and imaginary parts.
fn complex_parts(t: &Tensor) -> Option<(F32, F32)> {
    let z = t.as_c64()?;
    let part = |f: fn(&archc_runtime::elem::C64) -> f32| F32 {
        shape: t.shape.clone(),
        values: z.iter().map(f).collect(),
        narrowed: false,
    };
    Some((part(|z| z.re), part(|z| z.im)))
}

/// A real tensor `[..., 2]` as two tensors `[...]` (at least rank 3 before the pair).
fn pair_parts(t: &F32) -> Option<(F32, F32)> {
    let (&last, rest) = t.shape.split_last()?;
    if last != 2 || rest.len() < 3 {
        return None;
    }
    let part = |k: usize| F32 {
        shape: rest.to_vec(),
        values: t.values.iter().skip(k).step_by(2).copied().collect(),
        narrowed: t.narrowed,
    };
    Some((part(0), part(1)))
}

/// `[i, o, m1, m2]` twice -> `[i, o, 2*m1, m2]`, the first block's rows first.
fn stack_modes(a: &F32, b: &F32) -> Option<Tensor> {
    let [i, o, m1, m2] = a.shape[..] else { return None };
    if a.shape != b.shape {
        return None;
    }
    let block = m1 * m2;
    let mut out = Vec::with_capacity(2 * a.values.len());
    for io in 0..i * o {
        out.extend_from_slice(a.values.get(io * block..(io + 1) * block)?);
        out.extend_from_slice(b.values.get(io * block..(io + 1) * block)?);
    }
    F32::tensor(vec![i, o, 2 * m1, m2], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape.to_vec(), Data::F32((0..n).map(|i| i as f32).collect())).unwrap()
    }

    fn arch(leaves: &[(&str, &[usize])]) -> ArchLeaves {
        leaves.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect()
    }

    #[test]
    fn a_linear_weight_is_transposed() {
        let (w, b) = (t(&[3, 2]), t(&[3]));
        let torch: TorchLeaves = [("weight".to_string(), &w), ("bias".to_string(), &b)].into();
        let c = convert(&torch, &arch(&[("w", &[2, 3]), ("b", &[3])])).unwrap();
        assert_eq!(c[0].tensor.as_f32().unwrap(), &[0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        assert!(convert(&torch, &arch(&[("w", &[3, 2]), ("b", &[3])])).is_none());
    }

    #[test]
    fn packed_attention_projections_are_split_in_q_k_v_order() {
        let (w, b, wo, bo) = (t(&[6, 2]), t(&[6]), t(&[2, 2]), t(&[2]));
        let torch: TorchLeaves = [
            ("in_proj_weight".to_string(), &w),
            ("in_proj_bias".to_string(), &b),
            ("out_proj.weight".to_string(), &wo),
            ("out_proj.bias".to_string(), &bo),
        ]
        .into();
        let leaves: Vec<(&str, &[usize])> = vec![
            ("wq", &[2, 2]),
            ("wk", &[2, 2]),
            ("wv", &[2, 2]),
            ("wo", &[2, 2]),
            ("bq", &[2]),
            ("bk", &[2]),
            ("bv", &[2]),
            ("bo", &[2]),
        ];
        let c = convert(&torch, &arch(&leaves)).unwrap();
        let wk = c.iter().find(|p| p.leaf == "wk").unwrap();
        assert_eq!(wk.tensor.as_f32().unwrap(), &[4.0, 6.0, 5.0, 7.0]);
        let bv = c.iter().find(|p| p.leaf == "bv").unwrap();
        assert_eq!(bv.tensor.as_f32().unwrap(), &[4.0, 5.0]);
    }

    #[test]
    fn real_pairs_split_into_real_and_imaginary_parts() {
        let w = t(&[1, 1, 2, 2]);
        let torch: TorchLeaves = [("weights".to_string(), &w)].into();
        let c = convert(&torch, &arch(&[("w_re", &[1, 1, 2]), ("w_im", &[1, 1, 2])])).unwrap();
        assert_eq!(c[0].tensor.as_f32().unwrap(), &[0.0, 2.0]);
        assert_eq!(c[1].tensor.as_f32().unwrap(), &[1.0, 3.0]);
    }
}
