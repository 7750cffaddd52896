//! IR building blocks of the lowering: sizes from dims, calls of runtime functions and
//! callees, counted loops and conditionals, element loads and stores, pointer arrays on
//! the stack, and the call of the strided copy every data movement op uses. (Vector
//! loads, stores and lanes are in [`super::simd`].)

use super::{mem, FnLower};
use archc_compiler::tir::dim::Atom;
use archc_compiler::tir::{Dim, TensorType};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, StackSlotData, StackSlotKind, Type, Value};
use cranelift_module::{FuncId, Module};

/// A strided view of a buffer: `ptr`, an offset and one stride per axis (in elements).
pub(crate) struct View {
    pub ptr: Value,
    pub off: Value,
    pub strides: Vec<Value>,
}

impl FnLower<'_, '_, '_> {
    pub fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// The value of a dim (cached at top level).
    pub fn dim(&mut self, d: &Dim) -> Value {
        if let Some(c) = d.as_const() {
            return self.iconst(c);
        }
        if let Some(v) = self.sizes.get(d) {
            return *v;
        }
        let mut total: Option<Value> = None;
        for (mono, coef) in d.terms() {
            let mut term: Option<Value> = (coef != 1 || mono.is_empty()).then(|| self.iconst(coef));
            for atom in mono {
                let a = match atom {
                    Atom::Sym(s) => {
                        let i = self.sh.syms.iter().position(|x| x == s).expect("symbols checked by spec");
                        self.syms[i]
                    }
                    Atom::FloorDiv(inner, den) => {
                        let x = self.dim(inner);
                        self.floor_div(x, *den)
                    }
                };
                term = Some(match term {
                    Some(t) => self.b.ins().imul(t, a),
                    None => a,
                });
            }
            let term = term.expect("a term has a coefficient or an atom");
            total = Some(match total {
                Some(t) => self.b.ins().iadd(t, term),
                None => term,
            });
        }
        let v = total.unwrap_or_else(|| self.iconst(0));
        if self.depth == 0 {
            self.sizes.insert(d.clone(), v);
        }
        v
    }

    /// `floor(x / den)` for a positive constant `den`.
    pub fn floor_div(&mut self, x: Value, den: i64) -> Value {
        let d = self.iconst(den);
        let q = self.b.ins().sdiv(x, d);
        let r = self.b.ins().srem(x, d);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        let adj = self.b.ins().uextend(types::I64, neg);
        self.b.ins().isub(q, adj)
    }

    /// The sizes of a type.
    pub fn shape(&mut self, t: &TensorType) -> Vec<Value> {
        t.shape.iter().map(|d| self.dim(d)).collect()
    }

    pub fn numel(&mut self, t: &TensorType) -> Value {
        let n = t.numel();
        self.dim(&n)
    }

    pub fn bytes(&mut self, t: &TensorType) -> Value {
        let n = t.numel().mul(&Dim::constant(super::elem(t.dtype).1));
        self.dim(&n)
    }

    /// Row-major strides (in elements) of sizes `shape`.
    pub fn strides(&mut self, shape: &[Value]) -> Vec<Value> {
        let mut st = vec![self.iconst(1); shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            st[i] = self.b.ins().imul(st[i + 1], shape[i + 1]);
        }
        st
    }

    /// Calls runtime function `name`; its first result, if any.
    pub fn call_rt(&mut self, name: &'static str, params: &[Type], rets: &[Type], args: &[Value]) -> Option<Value> {
        let id = self.sh.helper(name, params, rets);
        self.call_id(id, args)
    }

    /// Calls a declared function of the module; its first result, if any.
    pub fn call_id(&mut self, id: FuncId, args: &[Value]) -> Option<Value> {
        let r = match self.refs.get(&id) {
            Some(r) => *r,
            None => {
                let r = self.sh.module.declare_func_in_func(id, self.b.func);
                self.refs.insert(id, r);
                r
            }
        };
        let call = self.b.ins().call(r, args);
        self.b.inst_results(call).first().copied()
    }

    /// Records a refusal of kind `kind` ([`crate::rt::Failure`]) with a payload.
    pub fn fail(&mut self, kind: crate::rt::Failure, payload: [Value; 3]) {
        let k = self.iconst(kind as i64);
        let args = [self.ctx, k, payload[0], payload[1], payload[2]];
        self.call_rt("archc_clif_fail", &[types::I64; 5], &[], &args);
    }

    /// `for i in 0..n { f(i) }`.
    pub fn for_range(&mut self, n: Value, f: impl FnMut(&mut Self, Value)) {
        let zero = self.iconst(0);
        self.for_from(zero, n, f);
    }

    /// `for i in start..n { f(i) }`.
    pub fn for_from(&mut self, start: Value, n: Value, mut f: impl FnMut(&mut Self, Value)) {
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, start);
        let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, n);
        self.b.ins().brif(more, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        self.depth += 1;
        f(self, i);
        self.depth -= 1;
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    /// `if c != 0 { f() }`.
    pub fn if_then(&mut self, c: Value, f: impl FnOnce(&mut Self)) {
        let (then, merge) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(c, then, &[], merge, &[]);
        self.b.switch_to_block(then);
        self.depth += 1;
        f(self);
        self.depth -= 1;
        self.b.ins().jump(merge, &[]);
        self.b.switch_to_block(merge);
    }

    /// `base + i * es` (bytes).
    pub fn addr(&mut self, base: Value, i: Value, es: i64) -> Value {
        let off = self.b.ins().imul_imm_s(i, es);
        self.b.ins().iadd(base, off)
    }

    /// Element `i` of type `ty` (`es` bytes) of a buffer.
    pub fn load_at(&mut self, ty: Type, base: Value, i: Value, es: i64) -> Value {
        let a = self.addr(base, i, es);
        self.b.ins().load(ty, mem(), a, 0)
    }

    pub fn store_at(&mut self, v: Value, base: Value, i: Value, es: i64) {
        let a = self.addr(base, i, es);
        self.b.ins().store(mem(), v, a, 0);
    }

    /// The address of a stack array holding `values` (64-bit each).
    pub fn array(&mut self, values: &[Value]) -> Value {
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (8 * values.len().max(1)) as u32,
            3,
        ));
        for (i, v) in values.iter().enumerate() {
            self.b.ins().stack_store(types::I64, *v, slot, 8 * i as i32);
        }
        self.b.ins().stack_addr(types::I64, slot, 0)
    }

    /// Copies the elements (`es` bytes each) of the view `src` of sizes `shape` to the
    /// view `dst` of the same sizes (the runtime's `archc_clif_copy_view`).
    pub fn copy_view(&mut self, es: i64, shape: &[Value], src: &View, dst: &View) {
        let sizes = self.array(shape);
        let (sst, dst_st) = (self.array(&src.strides), self.array(&dst.strides));
        let (from, to) = (self.addr(src.ptr, src.off, es), self.addr(dst.ptr, dst.off, es));
        let (e, rank) = (self.iconst(es), self.iconst(shape.len() as i64));
        let args = [e, rank, sizes, from, sst, to, dst_st];
        self.call_rt("archc_clif_copy_view", &[types::I64; 7], &[], &args);
    }

    /// A contiguous view of a buffer of sizes `shape`.
    pub fn dense(&mut self, ptr: Value, shape: &[Value]) -> View {
        let strides = self.strides(shape);
        let off = self.iconst(0);
        View { ptr, off, strides }
    }
}
