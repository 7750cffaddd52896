//! Making an artifact's host code loadable without undefined symbols (see the parent
//! module), on its optimised LLVM IR, through LLVM's C API:
//! - every declared runtime function ([`runtime_symbols`]) becomes a definition of the
//!   same type that loads a function pointer from its slot, the global
//!   `archc_slot.<name>`, and calls through it (a variadic one, OpenMP's
//!   `__kmpc_fork_call`, forwards its variadic arguments with a `musttail` call);
//! - `archc_slot_names` lists the slots' names, a null-terminated array of C strings;
//! - `llvm.global_ctors` / `llvm.global_dtors` are removed: `archc_init` / `archc_fini`
//!   call their functions in priority order instead (constructors would run when the
//!   object is loaded, before the loader filled the slots; a CUDA module's kernels are
//!   loaded by them), and the loader calls those;
//! - `archc_packed_<name>(ptr %args)`, for `archc_entry` and `archc_set_params`, loads
//!   argument `i` through `args[i]` and calls the C interface `_mlir_ciface_<name>`.
//!
//! This runs after `opt -O2`, not on the LLVM dialect before translation: the
//! constructors that load a CUDA module's kernels, and the runtime functions they and the
//! kernel launches call (`mgpuModuleLoadJIT`, `mgpuLaunchKernel`, ...), only come into
//! being when `gpu.binary` and `gpu.launch_func` are translated to LLVM IR; LLVM's middle
//! end may add calls to runtime functions (a `malloc` and a zero fill folded into
//! `calloc`); and it sees the runtime functions as declarations, as the JIT's does (it
//! knows `malloc`'s result aliases nothing, and would inline trampolines into indirect
//! calls). The module is read with LLVM's own parser and changed through its API only.
//! LLVM IR that does not parse or verify is an [`Error::Translate`]; a module without
//! what the edit expects (a C interface, free names) is an [`Error::Abi`].

use super::AotTarget;
use crate::error::{Error, Result};
use crate::exec::artifact::runtime_symbols;
use mlir_sys::{
    LLVMAddFunction, LLVMAddGlobal, LLVMAppendBasicBlockInContext, LLVMBool, LLVMBuildCall2, LLVMBuildInBoundsGEP2,
    LLVMBuildLoad2, LLVMBuildRet, LLVMBuildRetVoid, LLVMBuilderRef, LLVMConstArray2, LLVMConstInt,
    LLVMConstIntGetSExtValue, LLVMConstPointerNull, LLVMConstStringInContext2, LLVMContextCreate, LLVMContextDispose,
    LLVMContextRef, LLVMCountParamTypes, LLVMCountParams, LLVMCreateBuilderInContext,
    LLVMCreateMemoryBufferWithMemoryRangeCopy, LLVMDeleteFunction, LLVMDeleteGlobal, LLVMDisposeBuilder,
    LLVMDisposeMessage, LLVMDisposeModule, LLVMFunctionType, LLVMGetAggregateElement, LLVMGetArrayLength2,
    LLVMGetFirstFunction, LLVMGetFunctionCallConv, LLVMGetInitializer, LLVMGetNamedFunction, LLVMGetNamedGlobal,
    LLVMGetNextFunction, LLVMGetParam, LLVMGetParamTypes, LLVMGetReturnType, LLVMGetTypeKind, LLVMGetValueName2,
    LLVMGlobalGetValueType, LLVMInt64TypeInContext, LLVMIsAConstantInt, LLVMIsAConstantPointerNull, LLVMIsAFunction,
    LLVMIsDeclaration, LLVMIsFunctionVarArg, LLVMLinkage_LLVMPrivateLinkage, LLVMMemoryBufferRef, LLVMModuleRef,
    LLVMPointerTypeInContext, LLVMPositionBuilderAtEnd, LLVMPrintModuleToString, LLVMReplaceAllUsesWith,
    LLVMSetFunctionCallConv, LLVMSetGlobalConstant, LLVMSetInitializer, LLVMSetInstructionCallConv, LLVMSetLinkage,
    LLVMSetTailCallKind, LLVMSetValueName2, LLVMTailCallKind_LLVMTailCallKindMustTail, LLVMTypeKind_LLVMVoidTypeKind,
    LLVMTypeOf, LLVMTypeRef, LLVMValueRef, LLVMVoidTypeInContext,
};
use std::ffi::{c_char, CStr, CString};
use std::ptr::null_mut;

unsafe extern "C" {
    /// `llvm-c/IRReader.h`: parses LLVM IR, text or bitcode; takes the buffer.
    fn LLVMParseIRInContext(
        context: LLVMContextRef,
        buffer: LLVMMemoryBufferRef,
        module: *mut LLVMModuleRef,
        message: *mut *mut c_char,
    ) -> LLVMBool;
    /// `llvm-c/Analysis.h`: the IR verifier.
    fn LLVMVerifyModule(module: LLVMModuleRef, action: u32, message: *mut *mut c_char) -> LLVMBool;
}

/// `LLVMReturnStatusAction` of `llvm-c/Analysis.h`: report, do not abort.
const RETURN_STATUS: u32 = 2;

/// An LLVM module and the context that owns it (both disposed on drop).
pub struct LlvmModule {
    context: LLVMContextRef,
    module: LLVMModuleRef,
}

impl Drop for LlvmModule {
    fn drop(&mut self) {
        // SAFETY: both were created by `parse` and are disposed once, module first.
        unsafe {
            LLVMDisposeModule(self.module);
            LLVMContextDispose(self.context);
        }
    }
}

impl LlvmModule {
    /// Parses LLVM IR (as `opt` writes it) with LLVM's parser, in a fresh context.
    pub fn parse(ir: &[u8]) -> Result<LlvmModule> {
        // SAFETY: the buffer is a copy of `ir`, handed to the parser, which owns it; the
        // module is only used while the context lives (both are owned by the result).
        unsafe {
            let context = LLVMContextCreate();
            let buffer = LLVMCreateMemoryBufferWithMemoryRangeCopy(ir.as_ptr().cast(), ir.len(), c"ir".as_ptr());
            let (mut module, mut message) = (null_mut(), null_mut());
            if LLVMParseIRInContext(context, buffer, &mut module, &mut message) != 0 {
                let why = take_message(message);
                LLVMContextDispose(context);
                return Err(Error::Translate(format!("LLVM IR does not parse: {why}")));
            }
            Ok(LlvmModule { context, module })
        }
    }

    /// The module as LLVM prints it.
    pub fn print(&self) -> String {
        // SAFETY: the module is live; the string is LLVM's, freed by `take_message`.
        unsafe { take_message(LLVMPrintModuleToString(self.module)) }
    }

    /// Runs LLVM's verifier.
    pub fn verify(&self) -> Result<()> {
        let mut message = null_mut();
        // SAFETY: the module is live; the message is LLVM's, freed by `take_message`.
        let failed = unsafe { LLVMVerifyModule(self.module, RETURN_STATUS, &mut message) } != 0;
        // SAFETY: null or the verifier's message.
        let why = unsafe { take_message(message) };
        if failed {
            Err(Error::Translate(format!("LLVM IR does not verify: {why}")))
        } else {
            Ok(())
        }
    }
}

/// An LLVM message as a string, freed.
///
/// # Safety
/// `message` is null or a string LLVM allocated for its caller to dispose.
unsafe fn take_message(message: *mut c_char) -> String {
    if message.is_null() {
        return String::new();
    }
    // SAFETY: as the caller guarantees.
    unsafe {
        let text = CStr::from_ptr(message).to_string_lossy().into_owned();
        LLVMDisposeMessage(message);
        text
    }
}

/// Makes `module` loadable for `target` (see the module docs), and verifies it.
pub fn make_loadable(module: &mut LlvmModule, target: &AotTarget) -> Result<()> {
    let runtime = runtime_symbols(target);
    // SAFETY: every reference used below belongs to `module` (or its context), which is
    // borrowed mutably for the whole edit; a function is deleted only after its uses were
    // replaced, and no reference to it is used afterwards.
    unsafe {
        let mut edit = Edit::new(module);
        let declared: Vec<(LLVMValueRef, String)> = edit
            .functions()
            .into_iter()
            .filter(|&f| LLVMIsDeclaration(f) != 0)
            .map(|f| (f, value_name(f)))
            .filter(|(_, name)| runtime.contains_key(name.as_str()))
            .collect();
        let ctors = edit.take_structors(c"llvm.global_ctors")?;
        let dtors = edit.take_structors(c"llvm.global_dtors")?;
        let mut slots = Vec::new();
        for (declaration, name) in declared {
            edit.trampoline(declaration, &name)?;
            slots.push(name);
        }
        edit.slot_table(&slots)?;
        edit.calls_in_order("archc_init", &ctors)?;
        edit.calls_in_order("archc_fini", &dtors)?;
        for name in ["archc_entry", "archc_set_params"] {
            edit.packed(name)?;
        }
    }
    module.verify()
}

/// The name of a global value.
///
/// # Safety
/// `value` is a live LLVM value.
unsafe fn value_name(value: LLVMValueRef) -> String {
    let mut len = 0;
    // SAFETY: LLVM returns the name's bytes and their count (not NUL-terminated).
    unsafe {
        let name = LLVMGetValueName2(value, &mut len);
        String::from_utf8_lossy(std::slice::from_raw_parts(name.cast::<u8>(), len)).into_owned()
    }
}

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error::Abi(format!("symbol name `{}` holds a NUL", name.escape_debug())))
}

/// An edit of a module: its context, a builder and the types it uses.
struct Edit<'m> {
    module: &'m mut LlvmModule,
    builder: LLVMBuilderRef,
    ptr: LLVMTypeRef,
    void: LLVMTypeRef,
    i64: LLVMTypeRef,
}

impl Drop for Edit<'_> {
    fn drop(&mut self) {
        // SAFETY: created in `new`, disposed once.
        unsafe { LLVMDisposeBuilder(self.builder) };
    }
}

impl<'m> Edit<'m> {
    /// # Safety
    /// `module` is a live module.
    unsafe fn new(module: &'m mut LlvmModule) -> Edit<'m> {
        let context = module.context;
        // SAFETY: the context is live.
        unsafe {
            Edit {
                module,
                builder: LLVMCreateBuilderInContext(context),
                ptr: LLVMPointerTypeInContext(context, 0),
                void: LLVMVoidTypeInContext(context),
                i64: LLVMInt64TypeInContext(context),
            }
        }
    }

    fn functions(&self) -> Vec<LLVMValueRef> {
        let mut out = Vec::new();
        // SAFETY: walks the live module's function list.
        unsafe {
            let mut f = LLVMGetFirstFunction(self.module.module);
            while !f.is_null() {
                out.push(f);
                f = LLVMGetNextFunction(f);
            }
        }
        out
    }

    /// A new function `name` of type `ty` (external), with an entry block the builder is
    /// positioned at.
    ///
    /// # Safety
    /// `ty` is a function type of this context.
    unsafe fn define(&mut self, name: &str, ty: LLVMTypeRef) -> Result<LLVMValueRef> {
        let c = c_name(name)?;
        // SAFETY: as the caller guarantees; the name is copied by LLVM.
        unsafe {
            if !LLVMGetNamedFunction(self.module.module, c.as_ptr()).is_null() {
                return Err(Error::Abi(format!("the module already has a function `{name}`")));
            }
            let f = LLVMAddFunction(self.module.module, c.as_ptr(), ty);
            let entry = LLVMAppendBasicBlockInContext(self.module.context, f, c"".as_ptr());
            LLVMPositionBuilderAtEnd(self.builder, entry);
            Ok(f)
        }
    }

    /// A new global `name` initialised to `init`.
    ///
    /// # Safety
    /// `init` is a constant of this context.
    unsafe fn global(&mut self, name: &str, init: LLVMValueRef) -> Result<LLVMValueRef> {
        let c = c_name(name)?;
        // SAFETY: as the caller guarantees; the name is copied by LLVM.
        unsafe {
            if !LLVMGetNamedGlobal(self.module.module, c.as_ptr()).is_null() {
                return Err(Error::Abi(format!("the module already has a global `{name}`")));
            }
            let g = LLVMAddGlobal(self.module.module, LLVMTypeOf(init), c.as_ptr());
            LLVMSetInitializer(g, init);
            Ok(g)
        }
    }

    /// The functions of the structor list `list` (`llvm.global_ctors` / `_dtors`) by
    /// priority (stable), the list removed; none without one.
    ///
    /// # Safety
    /// The module is live.
    unsafe fn take_structors(&mut self, list: &CStr) -> Result<Vec<LLVMValueRef>> {
        // SAFETY: the global, its initialiser and their elements belong to the module.
        unsafe {
            let global = LLVMGetNamedGlobal(self.module.module, list.as_ptr());
            if global.is_null() {
                return Ok(Vec::new());
            }
            let init = LLVMGetInitializer(global);
            let count = LLVMGetArrayLength2(LLVMGlobalGetValueType(global));
            let mut entries = Vec::new();
            for i in 0..count {
                // `{ i32 priority, ptr function, ptr data }`
                let entry = LLVMGetAggregateElement(init, i as u32);
                let (priority, function) = (LLVMGetAggregateElement(entry, 0), LLVMGetAggregateElement(entry, 1));
                if !LLVMIsAConstantPointerNull(function).is_null() {
                    continue;
                }
                if LLVMIsAConstantInt(priority).is_null() || LLVMIsAFunction(function).is_null() {
                    return Err(Error::Abi(format!(
                        "entry {i} of {} is not a priority and a function",
                        list.to_string_lossy()
                    )));
                }
                entries.push((LLVMConstIntGetSExtValue(priority), function));
            }
            LLVMDeleteGlobal(global);
            entries.sort_by_key(|(priority, _)| *priority);
            Ok(entries.into_iter().map(|(_, f)| f).collect())
        }
    }

    /// Replaces `declaration` by a definition calling through `archc_slot.<name>`.
    ///
    /// # Safety
    /// `declaration` is a function declaration of the module, not used afterwards.
    unsafe fn trampoline(&mut self, declaration: LLVMValueRef, name: &str) -> Result<()> {
        // SAFETY: as the caller guarantees; the declaration's uses move to the definition
        // (of the same type) before it is deleted.
        unsafe {
            let ty = LLVMGlobalGetValueType(declaration);
            let slot = self.global(&format!("archc_slot.{name}"), LLVMConstPointerNull(self.ptr))?;
            // The definition takes the name; the declaration's attributes and metadata
            // (the middle end's facts about the runtime function) are deleted with it.
            LLVMSetValueName2(declaration, c"".as_ptr(), 0);
            let f = self.define(name, ty)?;
            let conv = LLVMGetFunctionCallConv(declaration);
            LLVMSetFunctionCallConv(f, conv);
            LLVMReplaceAllUsesWith(declaration, f);
            LLVMDeleteFunction(declaration);
            let callee = LLVMBuildLoad2(self.builder, self.ptr, slot, c"f".as_ptr());
            let mut args = Vec::new();
            for i in 0..LLVMCountParams(f) {
                let arg = LLVMGetParam(f, i);
                let arg_name = format!("a{i}");
                LLVMSetValueName2(arg, arg_name.as_ptr().cast(), arg_name.len());
                args.push(arg);
            }
            let returns = LLVMGetTypeKind(LLVMGetReturnType(ty)) != LLVMTypeKind_LLVMVoidTypeKind;
            let result = if returns { c"r" } else { c"" };
            let call = LLVMBuildCall2(self.builder, ty, callee, args.as_mut_ptr(), args.len() as u32, result.as_ptr());
            LLVMSetInstructionCallConv(call, conv);
            if LLVMIsFunctionVarArg(ty) != 0 {
                // The caller's variadic arguments, forwarded.
                LLVMSetTailCallKind(call, LLVMTailCallKind_LLVMTailCallKindMustTail);
            }
            if returns {
                LLVMBuildRet(self.builder, call);
            } else {
                LLVMBuildRetVoid(self.builder);
            }
            Ok(())
        }
    }

    /// `archc_slot_names`: the slots' names as a null-terminated array of C strings.
    ///
    /// # Safety
    /// The module is live.
    unsafe fn slot_table(&mut self, slots: &[String]) -> Result<()> {
        // SAFETY: the constants are built in the module's context.
        unsafe {
            let mut refs = Vec::new();
            for (i, name) in slots.iter().enumerate() {
                let text = LLVMConstStringInContext2(self.module.context, name.as_ptr().cast(), name.len(), 0);
                let g = self.global(&format!("archc_slot_name.{i}"), text)?;
                LLVMSetGlobalConstant(g, 1);
                LLVMSetLinkage(g, LLVMLinkage_LLVMPrivateLinkage);
                refs.push(g);
            }
            refs.push(LLVMConstPointerNull(self.ptr));
            let table = LLVMConstArray2(self.ptr, refs.as_mut_ptr(), refs.len() as u64);
            self.global("archc_slot_names", table)?;
            Ok(())
        }
    }

    /// `void <name>()` calling each of `functions` in order.
    ///
    /// # Safety
    /// `functions` are functions of the module taking no arguments.
    unsafe fn calls_in_order(&mut self, name: &str, functions: &[LLVMValueRef]) -> Result<()> {
        // SAFETY: as the caller guarantees.
        unsafe {
            let ty = LLVMFunctionType(self.void, null_mut(), 0, 0);
            self.define(name, ty)?;
            for &f in functions {
                LLVMBuildCall2(self.builder, LLVMGlobalGetValueType(f), f, null_mut(), 0, c"".as_ptr());
            }
            LLVMBuildRetVoid(self.builder);
            Ok(())
        }
    }

    /// `void archc_packed_<name>(ptr %args)`: loads argument `i` through `args[i]` and
    /// calls the C interface `_mlir_ciface_<name>`.
    ///
    /// # Safety
    /// The module is live.
    unsafe fn packed(&mut self, name: &str) -> Result<()> {
        let ciface = c_name(&format!("_mlir_ciface_{name}"))?;
        // SAFETY: the C interface and the types read from it belong to the module.
        unsafe {
            let target = LLVMGetNamedFunction(self.module.module, ciface.as_ptr());
            if target.is_null() || LLVMIsDeclaration(target) != 0 {
                return Err(Error::Abi(format!("no C interface of {name}")));
            }
            let ty = LLVMGlobalGetValueType(target);
            if LLVMGetTypeKind(LLVMGetReturnType(ty)) != LLVMTypeKind_LLVMVoidTypeKind {
                return Err(Error::Abi(format!("the C interface of {name} returns a value")));
            }
            let mut types = vec![null_mut(); LLVMCountParamTypes(ty) as usize];
            LLVMGetParamTypes(ty, types.as_mut_ptr());
            let mut param = [self.ptr];
            let packed_ty = LLVMFunctionType(self.void, param.as_mut_ptr(), 1, 0);
            let f = self.define(&format!("archc_packed_{name}"), packed_ty)?;
            let args = LLVMGetParam(f, 0);
            LLVMSetValueName2(args, c"args".as_ptr(), 4);
            let mut values = Vec::new();
            for (i, &t) in types.iter().enumerate() {
                let mut index = [LLVMConstInt(self.i64, i as u64, 0)];
                let (p, q, v) = (c_name(&format!("p{i}"))?, c_name(&format!("q{i}"))?, c_name(&format!("v{i}"))?);
                let at = LLVMBuildInBoundsGEP2(self.builder, self.ptr, args, index.as_mut_ptr(), 1, p.as_ptr());
                let arg = LLVMBuildLoad2(self.builder, self.ptr, at, q.as_ptr());
                values.push(LLVMBuildLoad2(self.builder, t, arg, v.as_ptr()));
            }
            LLVMBuildCall2(self.builder, ty, target, values.as_mut_ptr(), values.len() as u32, c"".as_ptr());
            LLVMBuildRetVoid(self.builder);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use melior::ir::Module;

    /// LLVM-dialect MLIR translated by MLIR (as the build does), read back by LLVM.
    fn from_mlir(text: &str) -> LlvmModule {
        let context = crate::jit::context();
        let module = Module::parse(&context, text).expect("the test module parses");
        let ir = crate::jit::llvm_ir(&module).expect("translates");
        LlvmModule::parse(ir.as_bytes()).expect("LLVM parses MLIR's output")
    }

    fn loadable(mut module: LlvmModule, target: &AotTarget) -> String {
        make_loadable(&mut module, target).expect("made loadable");
        module.print()
    }

    const ENTRY: &str = "
      llvm.func @_mlir_ciface_archc_entry(%seed: i64, %d: !llvm.ptr, %x: f32, %b: i1) {
        %n = llvm.mlir.constant(16 : i64) : i64
        %p = llvm.call @malloc(%n) : (i64) -> !llvm.ptr
        %u = llvm.call @archc_rand_uniform_f32(%seed, %n) : (i64, i64) -> f32
        llvm.call @__kmpc_fork_call(%d, %b, %p, %u) vararg(!llvm.func<void (ptr, i1, ptr, ...)>) : (!llvm.ptr, i1, !llvm.ptr, f32) -> ()
        llvm.call @free(%p) : (!llvm.ptr) -> ()
        llvm.return
      }
      llvm.func @_mlir_ciface_archc_set_params() {
        llvm.return
      }";

    #[test]
    fn runtime_declarations_become_trampolines_through_slots() {
        let text = format!(
            "module {{
               llvm.func @malloc(i64) -> !llvm.ptr
               llvm.func @free(!llvm.ptr)
               llvm.func @archc_rand_uniform_f32(i64, i64) -> f32
               llvm.func @__kmpc_fork_call(!llvm.ptr, i1, !llvm.ptr, ...)
               llvm.func @not_a_runtime_function(!llvm.ptr)
               {ENTRY}
             }}"
        );
        let ir = loadable(from_mlir(&text), &AotTarget::Cpu);
        for slot in ["malloc", "free", "archc_rand_uniform_f32", "__kmpc_fork_call"] {
            assert!(ir.contains(&format!("@archc_slot.{slot} = global ptr null")), "{slot}: {ir}");
        }
        let trampoline = "define float @archc_rand_uniform_f32(i64 %a0, i64 %a1) {\n  \
                          %f = load ptr, ptr @archc_slot.archc_rand_uniform_f32, align 8\n  \
                          %r = call float %f(i64 %a0, i64 %a1)\n  ret float %r\n}";
        assert!(ir.contains(trampoline), "{ir}");
        assert!(ir.contains("define void @free(ptr %a0) {\n  %f = load ptr, ptr @archc_slot.free, align 8\n  call void %f(ptr %a0)\n  ret void\n}"), "{ir}");
        let forward = "define void @__kmpc_fork_call(ptr %a0, i1 %a1, ptr %a2, ...) {\n  \
                       %f = load ptr, ptr @archc_slot.__kmpc_fork_call, align 8\n  \
                       musttail call void (ptr, i1, ptr, ...) %f(ptr %a0, i1 %a1, ptr %a2, ...)\n  ret void\n}";
        assert!(ir.contains(forward), "{ir}");
        // Calls reach the trampolines; other declarations stay.
        assert!(
            ir.contains("call void (ptr, i1, ptr, ...) @__kmpc_fork_call(ptr %1, i1 %3, ptr %5, float %6)"),
            "{ir}"
        );
        assert!(ir.contains("declare void @not_a_runtime_function(ptr)"), "{ir}");
        assert!(!ir.contains("declare ptr @malloc") && !ir.contains("archc_slot.not_a_runtime"), "{ir}");
        let table = "@archc_slot_names = global [5 x ptr] [ptr @archc_slot_name.0, ptr @archc_slot_name.1, \
                     ptr @archc_slot_name.2, ptr @archc_slot_name.3, ptr null]";
        assert!(ir.contains(table), "{ir}");
        assert!(ir.contains("@archc_slot_name.0 = private constant [7 x i8] c\"malloc\\00\""), "{ir}");
        assert!(ir.contains("@archc_slot_name.3 = private constant [17 x i8] c\"__kmpc_fork_call\\00\""), "{ir}");
        // Without structors, the init and fini functions do nothing.
        assert!(ir.contains("define void @archc_init() {\n  ret void\n}"), "{ir}");
        assert!(ir.contains("define void @archc_fini() {\n  ret void\n}"), "{ir}");
    }

    #[test]
    fn declarations_as_the_middle_end_leaves_them_lose_attributes_and_metadata() {
        let ir = "declare noalias noundef ptr @malloc(i64 noundef) local_unnamed_addr #0\n\
                  declare !callback !0 void @__kmpc_fork_call(ptr, i32, ptr, ...) local_unnamed_addr\n\
                  define void @_mlir_ciface_archc_entry(i64 %0) {\n  %p = tail call ptr @malloc(i64 %0)\n  \
                  call void (ptr, i32, ptr, ...) @__kmpc_fork_call(ptr %p, i32 0, ptr null)\n  ret void\n}\n\
                  define void @_mlir_ciface_archc_set_params() {\n  ret void\n}\n\
                  attributes #0 = { mustprogress nofree nounwind willreturn allockind(\"alloc,uninitialized\") allocsize(0) }\n\
                  !0 = !{!1}\n!1 = !{i64 2, i64 -1, i64 -1, i1 true}\n";
        let ir = loadable(LlvmModule::parse(ir.as_bytes()).expect("parses"), &AotTarget::Cpu);
        assert!(ir.contains("define ptr @malloc(i64 %a0) {"), "{ir}");
        assert!(ir.contains("define void @__kmpc_fork_call(ptr %a0, i32 %a1, ptr %a2, ...) {"), "{ir}");
        assert!(ir.contains("%p = tail call ptr @malloc(i64 %0)"), "{ir}");
        assert!(!ir.contains("allocsize") && !ir.contains("!callback"), "{ir}");
    }

    #[test]
    fn constructors_become_init_functions_in_priority_order() {
        let text = format!(
            "module {{
               llvm.mlir.global_ctors ctors = [@late, @a_load, @b.load], priorities = [200 : i32, 123 : i32, 123 : i32], data = [#llvm.zero, #llvm.zero, #llvm.zero]
               llvm.mlir.global_dtors dtors = [@b.unload, @a_unload], priorities = [124 : i32, 123 : i32], data = [#llvm.zero, #llvm.zero]
               llvm.func internal @late() {{ llvm.return }}
               llvm.func internal @a_load() {{ llvm.return }}
               llvm.func internal @b.load() {{ llvm.return }}
               llvm.func internal @a_unload() {{ llvm.return }}
               llvm.func internal @b.unload() {{ llvm.return }}
               llvm.func @malloc(i64) -> !llvm.ptr
               llvm.func @free(!llvm.ptr)
               llvm.func @archc_rand_uniform_f32(i64, i64) -> f32
               llvm.func @__kmpc_fork_call(!llvm.ptr, i1, !llvm.ptr, ...)
               {ENTRY}
             }}"
        );
        let module = from_mlir(&text);
        assert!(module.print().contains("@llvm.global_ctors = appending global [3 x"), "the test has constructors");
        let ir = loadable(module, &AotTarget::Cpu);
        assert!(!ir.contains("@llvm.global_ctors") && !ir.contains("@llvm.global_dtors"), "{ir}");
        let init = "define void @archc_init() {\n  call void @a_load()\n  call void @b.load()\n  call void @late()\n  ret void\n}";
        assert!(ir.contains(init), "{ir}");
        let fini = "define void @archc_fini() {\n  call void @a_unload()\n  call void @b.unload()\n  ret void\n}";
        assert!(ir.contains(fini), "{ir}");
    }

    #[test]
    fn packed_entries_load_each_argument_through_the_array() {
        let text = format!(
            "module {{
               llvm.func @malloc(i64) -> !llvm.ptr
               llvm.func @free(!llvm.ptr)
               llvm.func @archc_rand_uniform_f32(i64, i64) -> f32
               llvm.func @__kmpc_fork_call(!llvm.ptr, i1, !llvm.ptr, ...)
               {ENTRY}
             }}"
        );
        let ir = loadable(from_mlir(&text), &AotTarget::Cpu);
        // Each argument: its pointer from the array, its value through the pointer (at the
        // alignment of the module's data layout).
        let mut expected = String::from("define void @archc_packed_archc_entry(ptr %args) {\n");
        for (i, t) in ["i64", "ptr", "float", "i1"].iter().enumerate() {
            expected.push_str(&format!(
                "  %p{i} = getelementptr inbounds ptr, ptr %args, i64 {i}\n  %q{i} = load ptr, ptr %p{i}, align 8\n  \
                 %v{i} = load {t}, ptr %q{i}, align "
            ));
            let at = ir.find(&expected).unwrap_or_else(|| panic!("{expected}\nin\n{ir}"));
            let line_end = at + expected.len() + ir[at + expected.len()..].find('\n').expect("line");
            expected = ir[at..=line_end].to_string();
        }
        expected.push_str("  call void @_mlir_ciface_archc_entry(i64 %v0, ptr %v1, float %v2, i1 %v3)\n  ret void\n}");
        assert!(ir.contains(&expected), "{ir}");
        assert!(ir.contains("define void @archc_packed_archc_set_params(ptr %args) {\n  call void @_mlir_ciface_archc_set_params()\n  ret void\n}"), "{ir}");
    }

    #[test]
    fn a_module_without_a_c_interface_is_refused() {
        let module = from_mlir("module { llvm.func @_mlir_ciface_archc_entry() { llvm.return } }");
        let mut module = module;
        let e = make_loadable(&mut module, &AotTarget::Cpu).expect_err("no set_params");
        assert_eq!(e, Error::Abi("no C interface of archc_set_params".into()));
        let bad = LlvmModule::parse(b"define void @f( {").err().expect("refused");
        assert!(matches!(&bad, Error::Translate(m) if m.starts_with("LLVM IR does not parse:")), "{bad}");
        assert!(bad.is_internal());
    }

    #[test]
    fn cuda_runtime_functions_are_reached_through_slots_too() {
        let ir = "declare ptr @mgpuModuleLoadJIT(ptr, i32)\ndeclare void @mgpuModuleUnload(ptr)\n\
                  @m = internal global ptr null\n@bin = internal constant [4 x i8] c\"PTX\\00\"\n\
                  @llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 123, ptr @m_load, ptr null }]\n\
                  @llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 123, ptr @m_unload, ptr null }]\n\
                  define internal void @m_load() section \".text.startup\" {\n  %1 = call ptr @mgpuModuleLoadJIT(ptr @bin, i32 3)\n  \
                  store ptr %1, ptr @m\n  ret void\n}\n\
                  define internal void @m_unload() section \".text.startup\" {\n  %1 = load ptr, ptr @m\n  \
                  call void @mgpuModuleUnload(ptr %1)\n  ret void\n}\n\
                  define void @_mlir_ciface_archc_entry(i64 %0) {\n  ret void\n}\n\
                  define void @_mlir_ciface_archc_set_params() {\n  ret void\n}\n";
        let ir = loadable(LlvmModule::parse(ir.as_bytes()).expect("parses"), &AotTarget::Cuda("sm_80".into()));
        assert!(ir.contains("define ptr @mgpuModuleLoadJIT(ptr %a0, i32 %a1) {"), "{ir}");
        assert!(ir.contains("@archc_slot.mgpuModuleUnload = global ptr null"), "{ir}");
        assert!(ir.contains("define void @archc_init() {\n  call void @m_load()\n  ret void\n}"), "{ir}");
        assert!(ir.contains("define void @archc_fini() {\n  call void @m_unload()\n  ret void\n}"), "{ir}");
    }
}
