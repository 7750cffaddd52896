//! A text builder for one MLIR function: fresh SSA names, indentation, locations, and the
//! helpers every lowering shares (`tensor.empty`, `linalg.fill`, `linalg.generic`,
//! constants) and run-time sizes. Values are [`V`]: an SSA name with its tensor type,
//! whose sizes are constants or polynomials in the function's dynamic symbols.
//!
//! Run-time sizes: [`Builder::bind_symbol`] names the argument axis a dynamic symbol is
//! read from; [`Builder::size`] computes any polynomial in such symbols once, in a
//! prologue at the top of the function (so the value dominates every use, also inside
//! regions), and caches it.

use super::types::{affine_map, elem, float_lit, tensor};
use super::{EmitError, EmitResult};
use archc_compiler::tir::dim::Atom;
use archc_compiler::tir::{DType, Dim};
use std::collections::HashMap;

/// A tensor value: SSA name, dtype and shape.
#[derive(Clone, Debug)]
pub struct V {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl V {
    pub fn ty(&self) -> String {
        tensor(self.dtype, &self.shape)
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Size `i` when it is a compile-time constant (see [`fixed`]).
    pub fn fixed(&self, i: usize) -> EmitResult<usize> {
        fixed(&self.shape[i])
    }
}

/// Dims of constant sizes.
pub fn ds(sizes: &[usize]) -> Vec<Dim> {
    sizes.iter().map(|&n| Dim::constant(n as i64)).collect()
}

/// A size that must be known at compile time; an error when it is dynamic.
pub fn fixed(d: &Dim) -> EmitResult<usize> {
    match d.as_const() {
        Some(c) if c >= 0 => Ok(c as usize),
        _ => Err(EmitError::Dynamic(format!("size `{d}` is only known at run time here"))),
    }
}

/// The product of sizes.
pub fn product<'a>(dims: impl IntoIterator<Item = &'a Dim>) -> Dim {
    dims.into_iter().fold(Dim::constant(1), |acc, d| acc.mul(d))
}

/// How a loop of a `linalg.generic` iterates.
#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Iter {
    Par,
    Red,
}

/// One operand of a `linalg.generic`: a value and its indexing-map results.
pub struct Operand<'a> {
    pub value: &'a V,
    pub map: Vec<String>,
}

impl<'a> Operand<'a> {
    /// The value indexed by loops `d0..d{rank}` in order.
    pub fn identity(value: &'a V) -> Self {
        Operand { value, map: (0..value.rank()).map(|i| format!("d{i}")).collect() }
    }
    pub fn new(value: &'a V, map: Vec<String>) -> Self {
        Operand { value, map }
    }
}

pub struct Builder {
    lines: Vec<String>,
    indent: usize,
    next: u32,
    /// The location appended to ops (`loc("model.arch":3:9)`), when known.
    pub loc: Option<String>,
    /// Run-time size computations, placed before `lines`.
    prologue: Vec<String>,
    /// SSA `index` values of run-time sizes (symbols and polynomials in them).
    sizes: HashMap<Dim, String>,
    /// The first size that could not be computed (a symbol nobody bound) or that a
    /// lowering cannot leave dynamic.
    pub size_error: Option<EmitError>,
    /// [`Builder::map`] of 0-d tensors computes on scalars (`tensor.extract`, then
    /// `tensor.from_elements`) instead of a `linalg.generic`: elementwise fusion would
    /// copy a 0-d generic into every loop that reads its result, so Adam's `pow(beta, t)`
    /// ran once per parameter. CPU only: on the GPU the host cannot read device tensors.
    pub scalar_maps: bool,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            lines: Vec::new(),
            indent: 2,
            next: 0,
            loc: None,
            prologue: Vec::new(),
            sizes: HashMap::new(),
            size_error: None,
            scalar_maps: false,
        }
    }

    /// The prologue, then the body.
    pub fn into_lines(self) -> Vec<String> {
        let mut lines = self.prologue;
        lines.extend(self.lines);
        lines
    }

    /// Dynamic symbol `sym` is the size of axis `axis` of `arg` (of type `ty`).
    pub fn bind_symbol(&mut self, sym: &str, arg: &str, axis: usize, ty: &str) {
        let c = self.fresh();
        let v = self.fresh();
        self.prologue.push(format!("    {c} = arith.constant {axis} : index"));
        self.prologue.push(format!("    {v} = tensor.dim {arg}, {c} : {ty}"));
        self.sizes.insert(Dim::sym(sym), v);
    }

    /// The `index` value of a size: a constant in place, a run-time size from the
    /// prologue.
    pub fn size(&mut self, d: &Dim) -> String {
        if let Some(c) = d.as_const() {
            return self.index(c);
        }
        if let Some(v) = self.sizes.get(d) {
            return v.clone();
        }
        let v = self.poly(d);
        self.sizes.insert(d.clone(), v.clone());
        v
    }

    /// Sizes as `tensor.extract_slice`-style mixed lists: constants literally, run-time
    /// sizes as SSA values.
    pub fn mixed(&mut self, dims: &[Dim]) -> Vec<String> {
        dims.iter().map(|d| d.as_const().map(|c| c.to_string()).unwrap_or_else(|| self.size(d))).collect()
    }

    /// The SSA values of the run-time sizes of `dims`, in order (operands of
    /// `tensor.empty` / `memref.alloc`).
    pub fn dynamic_sizes(&mut self, dims: &[Dim]) -> Vec<String> {
        dims.iter().filter(|d| d.as_const().is_none()).map(|d| self.size(d)).collect()
    }

    /// A prologue line `%r = <text>`.
    fn pro(&mut self, text: String) -> String {
        let r = self.fresh();
        self.prologue.push(format!("    {r} = {text}"));
        r
    }

    /// Computes a polynomial in the prologue.
    fn poly(&mut self, d: &Dim) -> String {
        let mut total: Option<String> = None;
        let terms: Vec<(Vec<Atom>, i64)> = d.terms().map(|(m, c)| (m.to_vec(), c)).collect();
        for (atoms, c) in terms {
            let mut v = self.pro(format!("arith.constant {c} : index"));
            for a in &atoms {
                let f = match a {
                    Atom::Sym(s) => match self.sizes.get(&Dim::sym(s.clone())) {
                        Some(v) => v.clone(),
                        None => {
                            self.size_error.get_or_insert_with(|| {
                                EmitError::Malformed(format!("no run-time value of size `{s}`"))
                            });
                            self.pro("arith.constant 0 : index".into())
                        }
                    },
                    Atom::FloorDiv(num, den) => {
                        let n = match self.sizes.get(num.as_ref()) {
                            Some(v) => v.clone(),
                            None => self.poly(num),
                        };
                        let k = self.pro(format!("arith.constant {den} : index"));
                        self.pro(format!("arith.floordivsi {n}, {k} : index"))
                    }
                };
                v = self.pro(format!("arith.muli {v}, {f} : index"));
            }
            total = Some(match total {
                None => v,
                Some(t) => self.pro(format!("arith.addi {t}, {v} : index")),
            });
        }
        total.unwrap_or_else(|| self.pro("arith.constant 0 : index".into()))
    }

    pub fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%t{}", self.next)
    }

    /// A line as is (block labels, region ends).
    pub fn raw(&mut self, s: impl AsRef<str>) {
        self.lines.push(format!("{}{}", "  ".repeat(self.indent), s.as_ref()));
    }

    /// A complete op: gets the current location.
    pub fn op(&mut self, s: impl AsRef<str>) {
        match &self.loc {
            Some(l) => {
                let line = format!("{} {l}", s.as_ref());
                self.raw(line)
            }
            None => self.raw(s),
        }
    }

    /// `%r = <text>` as an op; returns `%r`.
    pub fn assign(&mut self, text: impl AsRef<str>) -> String {
        let r = self.fresh();
        self.op(format!("{r} = {}", text.as_ref()));
        r
    }

    /// Whether ops are being emitted at the function's top level (not inside a region).
    pub fn at_top_level(&self) -> bool {
        self.indent == 2
    }

    pub fn indent(&mut self) {
        self.indent += 1;
    }
    pub fn dedent(&mut self) {
        self.indent -= 1;
    }

    /// A scalar constant of `dtype`.
    pub fn scalar(&mut self, v: f64, dtype: DType) -> String {
        match dtype {
            DType::F32 | DType::F64 => self.assign(format!("arith.constant {} : {}", float_lit(v, dtype), elem(dtype))),
            DType::I64 => self.assign(format!("arith.constant {} : i64", v as i64)),
            DType::Bool => self.assign(format!("arith.constant {}", v != 0.0)),
            DType::C64 => {
                self.assign(format!("complex.constant [{} : f32, 0.0 : f32] : complex<f32>", float_lit(v, DType::F32)))
            }
        }
    }

    pub fn index(&mut self, v: i64) -> String {
        self.assign(format!("arith.constant {v} : index"))
    }

    pub fn i64c(&mut self, v: i64) -> String {
        self.assign(format!("arith.constant {v} : i64"))
    }

    /// `tensor.empty(sizes)` of a type.
    pub fn empty(&mut self, dtype: DType, shape: &[Dim]) -> V {
        let sizes = self.dynamic_sizes(shape);
        let name = self.assign(format!("tensor.empty({}) : {}", sizes.join(", "), tensor(dtype, shape)));
        V { name, dtype, shape: shape.to_vec() }
    }

    /// `memref.alloc(sizes)` of a type (64-byte aligned); returns the memref.
    pub fn alloc(&mut self, dtype: DType, shape: &[Dim]) -> String {
        let sizes = self.dynamic_sizes(shape);
        let ty = super::types::memref(dtype, shape);
        self.assign(format!("memref.alloc({}) {{alignment = 64 : i64}} : {ty}", sizes.join(", ")))
    }

    /// A tensor of `shape` filled with the scalar `v`.
    pub fn filled(&mut self, v: f64, dtype: DType, shape: &[Dim]) -> V {
        let c = self.scalar(v, dtype);
        self.fill(&c, dtype, shape)
    }

    /// A tensor of `shape` filled with the scalar SSA value `c`.
    pub fn fill(&mut self, c: &str, dtype: DType, shape: &[Dim]) -> V {
        let e = self.empty(dtype, shape);
        let ty = e.ty();
        let name = self.assign(format!("linalg.fill ins({c} : {}) outs({} : {ty}) -> {ty}", elem(dtype), e.name));
        V { name, dtype, shape: shape.to_vec() }
    }

    /// `linalg.generic` over `iters.len()` loops. `body` gets the block arguments (inputs
    /// then outputs) and returns the values to yield, one per output. Returns one value per
    /// output, typed like its init.
    pub fn generic(
        &mut self,
        ins: &[Operand],
        outs: &[Operand],
        iters: &[Iter],
        body: impl FnOnce(&mut Builder, &[String]) -> Vec<String>,
    ) -> Vec<V> {
        let n = iters.len();
        let maps: Vec<String> = ins.iter().chain(outs).map(|o| affine_map(n, &o.map)).collect();
        let iter_names: Vec<&str> =
            iters.iter().map(|i| if *i == Iter::Par { "\"parallel\"" } else { "\"reduction\"" }).collect();
        let list = |ops: &[Operand]| {
            let names: Vec<&str> = ops.iter().map(|o| o.value.name.as_str()).collect();
            let tys: Vec<String> = ops.iter().map(|o| o.value.ty()).collect();
            format!("{} : {}", names.join(", "), tys.join(", "))
        };
        let results: Vec<V> = outs.iter().map(|o| V { name: String::new(), ..o.value.clone() }).collect();
        let res = self.fresh();
        let lhs = if outs.len() == 1 { res.clone() } else { format!("{res}:{}", outs.len()) };
        let ins_text = if ins.is_empty() { String::new() } else { format!(" ins({})", list(ins)) };
        self.raw(format!(
            "{lhs} = linalg.generic {{indexing_maps = [{}], iterator_types = [{}]}}{ins_text} outs({}) {{",
            maps.join(", "),
            iter_names.join(", "),
            list(outs)
        ));
        let args: Vec<String> = (0..ins.len() + outs.len()).map(|_| self.fresh()).collect();
        let arg_decls: Vec<String> =
            args.iter().zip(ins.iter().chain(outs)).map(|(a, o)| format!("{a}: {}", elem(o.value.dtype))).collect();
        self.raw(format!("^bb0({}):", arg_decls.join(", ")));
        self.indent();
        let yields = body(self, &args);
        let ytys: Vec<&str> = outs.iter().map(|o| elem(o.value.dtype)).collect();
        self.raw(format!("linalg.yield {} : {}", yields.join(", "), ytys.join(", ")));
        self.dedent();
        let rtys: Vec<String> = results.iter().map(|r| r.ty()).collect();
        let close = match rtys.len() {
            1 => format!("}} -> {}", rtys[0]),
            _ => format!("}} -> ({})", rtys.join(", ")),
        };
        self.op(close);
        let single = outs.len() == 1;
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| V { name: if single { res.clone() } else { format!("{res}#{i}") }, ..r })
            .collect()
    }

    /// An elementwise `linalg.generic` over same-shape inputs producing `dtype`.
    pub fn map(&mut self, ins: &[&V], dtype: DType, body: impl FnOnce(&mut Builder, &[String]) -> String) -> V {
        let shape = ins[0].shape.clone();
        if self.scalar_maps && ins.iter().all(|v| v.shape.is_empty()) {
            let args: Vec<String> =
                ins.iter().map(|v| self.assign(format!("tensor.extract {}[] : {}", v.name, v.ty()))).collect();
            let s = body(self, &args);
            let name =
                self.assign(format!("tensor.from_elements {s} : {}", super::types::tensor(dtype, &[] as &[Dim])));
            return V { name, dtype, shape };
        }
        let init = self.empty(dtype, &shape);
        let operands: Vec<Operand> = ins.iter().map(|v| Operand::identity(v)).collect();
        let iters = vec![Iter::Par; shape.len()];
        let mut out = self.generic(&operands, &[Operand::identity(&init)], &iters, |b, a| vec![body(b, a)]);
        out.remove(0)
    }

    /// `linalg.index` of loop `d`, as an `index` value.
    pub fn loop_index(&mut self, d: usize) -> String {
        self.assign(format!("linalg.index {d} : index"))
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}
