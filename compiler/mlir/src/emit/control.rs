//! Parameters, random ops and control: `param`, `rand.*`, `call`, `stack`, `vmap`
//! (a loop over samples), `scan` (a loop over steps). Callees are specialised for the
//! operand shapes at each site. Frame keys for random streams follow the interpreter:
//! `mix(parent key, call site, index)` with index 0 for `call`, the stack entry, the vmap
//! sample or the scan time index.

use super::builder::{ds, Iter, Operand, V};
use super::lower::FnLower;
use super::types::{elem, tensor};
use super::{EmitError, EmitResult, Ty};
use archc_compiler::tir::{Dim, ValueId};

/// SplitMix64's constants (see `archc_runtime::interp::random`).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
const MUL1: u64 = 0xbf58_476d_1ce4_e5b9;
const MUL2: u64 = 0x94d0_49bb_1331_11eb;

impl FnLower<'_, '_, '_> {
    pub fn param(&mut self, name: &str) -> EmitResult<V> {
        let (g, (dt, shape)) = self.em.param_global(name)?;
        let mty = super::types::memref(dt, &shape);
        let m = self.b.assign(format!("memref.get_global @{g} : {mty}"));
        let t = self.b.assign(format!("bufferization.to_tensor {m} restrict : {mty} to {}", tensor(dt, &shape)));
        Ok(V { name: t, dtype: dt, shape: ds(&shape) })
    }

    fn splitmix(&mut self, z: &str) -> String {
        let b = &mut self.b;
        let g = b.i64c(GOLDEN as i64);
        let z = b.assign(format!("arith.addi {z}, {g} : i64"));
        let mut z = z;
        for (shift, mul) in [(30, MUL1), (27, MUL2)] {
            let s = b.i64c(shift);
            let m = b.i64c(mul as i64);
            let sh = b.assign(format!("arith.shrui {z}, {s} : i64"));
            let x = b.assign(format!("arith.xori {z}, {sh} : i64"));
            z = b.assign(format!("arith.muli {x}, {m} : i64"));
        }
        let s = b.i64c(31);
        let sh = b.assign(format!("arith.shrui {z}, {s} : i64"));
        b.assign(format!("arith.xori {z}, {sh} : i64"))
    }

    /// The frame key of a nested activation: `mix(%fkey, site, index)` (`index` is i64).
    fn child_key(&mut self, site: ValueId, index: &str) -> String {
        let si = self.splitmix(index);
        let site = self.b.i64c((site.0 as i64) << 32);
        let x = self.b.assign(format!("arith.xori {site}, {si} : i64"));
        let inner = self.splitmix(&x);
        let k = self.b.assign(format!("arith.xori %fkey, {inner} : i64"));
        self.splitmix(&k)
    }

    fn const_child_key(&mut self, site: ValueId, index: i64) -> String {
        let i = self.b.i64c(index);
        self.child_key(site, &i)
    }

    /// Uniform or normal values from the runtime's ChaCha8 streams, element by element.
    pub fn rand(&mut self, seed: u64, normal: bool, out: &Ty) -> EmitResult<V> {
        let (dt, shape) = out;
        if !dt.is_float() {
            return Err(EmitError::Unsupported(format!("random values of dtype {dt}")));
        }
        let kind = if normal { "normal" } else { "uniform" };
        let s = self.b.i64c(seed as i64);
        let k = self.b.assign(format!("arith.xori %seed, {s} : i64"));
        let key = self.b.assign(format!("arith.xori {k}, %fkey : i64"));
        if self.em.target == super::Target::Gpu {
            return Ok(self.rand_fill(kind, &key, out));
        }
        let sym = format!("archc_rand_{kind}_{}", elem(*dt));
        self.em.rand.insert(sym.clone());
        let init = self.b.empty(*dt, shape);
        let iters = vec![Iter::Par; shape.len()];
        let shape_c = shape.clone();
        let t = elem(*dt);
        let mut r = self.b.generic(&[], &[Operand::identity(&init)], &iters, |b, _| {
            let mut lin = b.index(0);
            for (d, n) in shape_c.iter().enumerate() {
                let nn = b.size(n);
                let i = b.loop_index(d);
                let m = b.assign(format!("arith.muli {lin}, {nn} : index"));
                lin = b.assign(format!("arith.addi {m}, {i} : index"));
            }
            let lin = b.assign(format!("arith.index_cast {lin} : index to i64"));
            vec![b.assign(format!("func.call @{sym}({key}, {lin}) : (i64, i64) -> {t}"))]
        });
        Ok(r.remove(0))
    }

    /// Random values written by one host call (`archc_rand_fill_*`, the same streams as
    /// the per-element functions) into a fresh buffer: kernels cannot call the runtime,
    /// and the host call reaches the GPU's managed buffers directly.
    fn rand_fill(&mut self, kind: &str, key: &str, (dt, shape): &Ty) -> V {
        let sym = format!("archc_rand_fill_{kind}_{}", elem(*dt));
        self.runtime_fill(&sym, &[key.to_string()], (*dt, shape.clone()))
    }

    /// `func.call` of a specialised callee with frame key `key`; its results, typed as
    /// the caller expects them (`expect`, in the caller's sizes; a `tensor.cast` where
    /// the callee has a size dynamic that is constant here, or the reverse).
    fn call_spec(&mut self, func: &str, args: &[V], key: &str, expect: &[Ty]) -> EmitResult<Vec<V>> {
        let shapes: Vec<Ty> = args.iter().map(|a| (a.dtype, a.shape.clone())).collect();
        let (sym, outs) = self.em.request(func, &shapes)?;
        if outs.len() != expect.len() || outs.iter().zip(expect).any(|(o, e)| o.0 != e.0 || o.1.len() != e.1.len()) {
            let n = outs.len();
            return Err(EmitError::Mismatch(format!(
                "@{func} returns {n} values of other types than its caller expects"
            )));
        }
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        let in_tys: Vec<String> = args.iter().map(|a| a.ty()).collect();
        let out_tys: Vec<String> = outs.iter().map(|(d, s)| tensor(*d, s)).collect();
        let r = self.b.fresh();
        let lhs = if outs.len() == 1 { r.clone() } else { format!("{r}:{}", outs.len()) };
        let sep = if names.is_empty() { "" } else { ", " };
        self.b.op(format!(
            "{lhs} = func.call @{sym}(%seed, {key}{sep}{}) : (i64, i64{sep}{}) -> ({})",
            names.join(", "),
            in_tys.join(", "),
            out_tys.join(", ")
        ));
        let single = outs.len() == 1;
        let mut results = Vec::new();
        for (i, ((dtype, shape), want)) in outs.into_iter().zip(expect).enumerate() {
            let v = V { name: if single { r.clone() } else { format!("{r}#{i}") }, dtype, shape };
            results.push(self.cast_to(&v, &want.1));
        }
        Ok(results)
    }

    pub fn call(&mut self, func: &str, args: &[V], site: ValueId, outs: &[Ty]) -> EmitResult<Vec<V>> {
        let key = self.const_child_key(site, 0);
        self.call_spec(func, args, &key, outs)
    }

    /// Blocks applied in turn; each returns the type of its input, the last the result's.
    pub fn stack(&mut self, funcs: &[String], args: &[V], site: ValueId, out: &Ty) -> EmitResult<V> {
        let (first, rest) = args.split_first().ok_or_else(|| EmitError::Malformed("stack of no operands".into()))?;
        let mut x = first.clone();
        for (j, f) in funcs.iter().enumerate() {
            let key = self.const_child_key(site, j as i64);
            let want = if j + 1 == funcs.len() { out.clone() } else { (x.dtype, x.shape.clone()) };
            let inputs: Vec<V> = std::iter::once(x).chain(rest.iter().cloned()).collect();
            x = self.call_spec(f, &inputs, &key, &[want])?.remove(0);
        }
        Ok(x)
    }

    /// `scf.for %iv = 0 to n` carrying `inits`; `body` gets the induction variable and
    /// the carried values and returns the next ones.
    fn for_loop(
        &mut self,
        n: &Dim,
        inits: &[V],
        body: impl FnOnce(&mut Self, &str, &[V]) -> EmitResult<Vec<V>>,
    ) -> EmitResult<Vec<V>> {
        let zero = self.b.index(0);
        let one = self.b.index(1);
        let hi = self.b.size(n);
        let iv = self.b.fresh();
        let r = self.b.fresh();
        let carried: Vec<V> = inits.iter().map(|v| V { name: self.b.fresh(), ..v.clone() }).collect();
        let iter_args: Vec<String> =
            carried.iter().zip(inits).map(|(c, i)| format!("{} = {}", c.name, i.name)).collect();
        let tys: Vec<String> = inits.iter().map(|v| v.ty()).collect();
        let lhs = if inits.len() == 1 { r.clone() } else { format!("{r}:{}", inits.len()) };
        self.b.raw(format!(
            "{lhs} = scf.for {iv} = {zero} to {hi} step {one} iter_args({}) -> ({}) {{",
            iter_args.join(", "),
            tys.join(", ")
        ));
        self.b.indent();
        let next = body(self, &iv, &carried)?;
        let names: Vec<&str> = next.iter().map(|v| v.name.as_str()).collect();
        self.b.raw(format!("scf.yield {} : {}", names.join(", "), tys.join(", ")));
        self.b.dedent();
        self.b.op("}");
        let single = inits.len() == 1;
        Ok(inits
            .iter()
            .enumerate()
            .map(|(i, v)| V { name: if single { r.clone() } else { format!("{r}#{i}") }, ..v.clone() })
            .collect())
    }

    /// The slice of `x` at `pos` (an `index` value) along `axis`, that axis kept (size 1)
    /// or dropped.
    fn take(&mut self, x: &V, axis: usize, pos: &str, keep: bool) -> V {
        let offsets: Vec<String> =
            (0..x.rank()).map(|i| if i == axis { pos.to_string() } else { "0".into() }).collect();
        let sizes = self.unit_axis_sizes(&x.shape, axis);
        let mut shape = x.shape.clone();
        if keep {
            shape[axis] = Dim::constant(1);
        } else {
            shape.remove(axis);
        }
        let ones = vec!["1"; x.rank()];
        let name = self.b.assign(format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            offsets.join(", "),
            sizes.join(", "),
            ones.join(", "),
            x.ty(),
            tensor(x.dtype, &shape)
        ));
        V { name, dtype: x.dtype, shape }
    }

    /// `y` (with or without a unit `axis`) written into `acc` at `pos` along `axis`.
    fn put(&mut self, y: &V, acc: &V, axis: usize, pos: &str) -> V {
        let offsets: Vec<String> =
            (0..acc.rank()).map(|i| if i == axis { pos.to_string() } else { "0".into() }).collect();
        let sizes = self.unit_axis_sizes(&acc.shape, axis);
        let ones = vec!["1"; acc.rank()];
        let name = self.b.assign(format!(
            "tensor.insert_slice {} into {}[{}] [{}] [{}] : {} into {}",
            y.name,
            acc.name,
            offsets.join(", "),
            sizes.join(", "),
            ones.join(", "),
            y.ty(),
            acc.ty()
        ));
        V { name, ..acc.clone() }
    }

    /// The sizes of `shape` with `axis` set to 1, as a mixed list.
    fn unit_axis_sizes(&mut self, shape: &[Dim], axis: usize) -> Vec<String> {
        let mut dims = shape.to_vec();
        dims[axis] = Dim::constant(1);
        self.b.mixed(&dims)
    }

    fn index_i64(&mut self, iv: &str) -> String {
        self.b.assign(format!("arith.index_cast {iv} : index to i64"))
    }

    pub fn vmap(
        &mut self,
        func: &str,
        keep: &[bool],
        out_keep: &[bool],
        args: &[V],
        outs: &[Ty],
        site: ValueId,
    ) -> EmitResult<Vec<V>> {
        if keep.len() != args.len() || out_keep.len() != outs.len() || args.is_empty() {
            return Err(EmitError::Malformed("vmap flags do not match its operands and results".into()));
        }
        let batch =
            args[0].shape.first().cloned().ok_or_else(|| EmitError::Malformed("vmap of a rank-0 operand".into()))?;
        let inits: Vec<V> = outs.iter().map(|(d, s)| self.b.empty(*d, s)).collect();
        let per_sample: Vec<Ty> = outs.iter().zip(out_keep).map(|(t, &k)| unit_axis(t, 0, k)).collect();
        let func = func.to_string();
        let (args, keep) = (args.to_vec(), keep.to_vec());
        self.for_loop(&batch, &inits, |l, iv, accs| {
            let inputs: Vec<V> = args.iter().zip(&keep).map(|(a, &k)| l.take(a, 0, iv, k)).collect();
            let i = l.index_i64(iv);
            let key = l.child_key(site, &i);
            let rs = l.call_spec(&func, &inputs, &key, &per_sample)?;
            Ok(rs.iter().zip(accs).map(|(r, acc)| l.put(r, acc, 0, iv)).collect())
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn scan(
        &mut self,
        func: &str,
        axis: usize,
        carries: usize,
        n_xs: usize,
        reverse: bool,
        args: &[V],
        outs: &[Ty],
        site: ValueId,
    ) -> EmitResult<Vec<V>> {
        if n_xs == 0 || args.len() < carries + n_xs || outs.len() < carries {
            return Err(EmitError::Malformed("scan operands do not match its attributes".into()));
        }
        let steps = args[carries].shape[axis].clone();
        let ys: Vec<V> = outs[carries..].iter().map(|(d, s)| self.b.empty(*d, s)).collect();
        let inits: Vec<V> = args[..carries].iter().cloned().chain(ys).collect();
        let per_step: Vec<Ty> =
            outs[..carries].iter().cloned().chain(outs[carries..].iter().map(|t| unit_axis(t, axis, false))).collect();
        let func = func.to_string();
        let args = args.to_vec();
        let t_last = self.b.size(&steps.sub(&Dim::constant(1)));
        self.for_loop(&steps, &inits, |l, iv, state| {
            let t = if reverse { l.b.assign(format!("arith.subi {t_last}, {iv} : index")) } else { iv.to_string() };
            let xs: Vec<V> = args[carries..carries + n_xs].iter().map(|x| l.take(x, axis, &t, false)).collect();
            let inputs: Vec<V> =
                state[..carries].iter().cloned().chain(xs).chain(args[carries + n_xs..].iter().cloned()).collect();
            let ti = l.index_i64(&t);
            let key = l.child_key(site, &ti);
            let rs = l.call_spec(&func, &inputs, &key, &per_step)?;
            if rs.len() != state.len() {
                let (n, carried) = (rs.len(), state.len());
                return Err(EmitError::Mismatch(format!("@{func} returns {n} values, the scan carries {carried}")));
            }
            let mut next: Vec<V> = rs[..carries].to_vec();
            for (y, acc) in rs[carries..].iter().zip(&state[carries..]) {
                next.push(l.put(y, acc, axis, &t));
            }
            Ok(next)
        })
    }
}

/// `ty` with `axis` kept as a unit axis or dropped (one sample or step of a mapped or
/// scanned result).
fn unit_axis((dt, dims): &Ty, axis: usize, keep: bool) -> Ty {
    let mut dims = dims.clone();
    if keep {
        dims[axis] = Dim::constant(1);
    } else {
        dims.remove(axis);
    }
    (*dt, dims)
}
