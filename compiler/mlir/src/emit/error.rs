//! The emitter's errors: [`EmitError`], which says what went wrong and whose fault it is.
//!
//! Contract:
//! - Every fallible function of `emit` returns an [`EmitResult`]. An error's `Display` is
//!   the message the emitter gave when its errors were strings, byte for byte (the CLI
//!   prints it, tests match it).
//! - [`EmitError::is_internal`] says whose fault it is. The user's: inputs that do not fit
//!   the entry ([`EmitError::Input`], [`EmitError::NoEntry`]), what the interpreter
//!   refuses when the sizes decide it ([`EmitError::Refused`], worded as its error), an op
//!   on a dtype or a value this target has no lowering of ([`EmitError::Unsupported`]), a
//!   size left to run time where this lowering needs it now ([`EmitError::Dynamic`]:
//!   callers that asked for dynamic sizes fall back to concrete ones on any error).
//!   archc's own: TIR that the verifier rules out ([`EmitError::Malformed`]) and lowered
//!   values that are not what was declared ([`EmitError::Mismatch`]).
//! - [`EmitError::At`] says where an error happened (a function, an instruction, an
//!   input) and has the kind of the error it wraps.

/// A `Result` of the emitter.
pub type EmitResult<T> = Result<T, EmitError>;

/// Why a module could not be emitted (see the module docs). Where it happened is said
/// by [`EmitError::At`] around it: the function and instruction.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EmitError {
    // The user's.
    /// Inputs that do not fit the entry's argument types (count, dtype, shape), or sizes
    /// that do not bind the size symbols of a type (as in the interpreter: the verifier
    /// allows such programs).
    #[error("{0}")]
    Input(String),
    /// The entry asked for is not a function of the program.
    #[error("no function @{0}")]
    NoEntry(String),
    /// What the interpreter refuses, decided by the sizes: a slice past the end of an
    /// axis, a `max`/`min`/`argmax` over no elements, a negative size.
    #[error("{0}")]
    Refused(String),
    /// An op on a dtype it is not defined on (`sqrt` of an `i64`, `max` of `c64`, random
    /// `i64` values), or a value this target cannot hold (a parameter of symbolic type).
    #[error("{0}")]
    Unsupported(String),
    /// A size only known at run time where this lowering needs a constant (an FFT length,
    /// a channel count, a broadcast, an `expand_shape` group with several dynamic sizes),
    /// or a dynamic size asked for that cannot be one.
    #[error("{0}")]
    Dynamic(String),

    // archc's own.
    /// TIR the verifier rules out: an undefined value, a missing callee or parameter,
    /// operands that do not fit a callee's signature, attributes that do not match the
    /// operands (`vmap` flags, `scan` counts, an `einsum` spec), a run-time size nothing
    /// computes.
    #[error("{0}")]
    Malformed(String),
    /// A lowering whose values are not what was declared: an instruction's results, a
    /// callee's results where its caller uses them.
    #[error("{0}")]
    Mismatch(String),

    /// `error` where it happened: `at` is `@f`, `@f result`, `in @f`, `in @f, %3 = conv`
    /// or `input 1`.
    #[error("{at}: {error}")]
    At { at: String, error: Box<EmitError> },
}

impl EmitError {
    /// Whether the error is archc's own bug rather than the user's (see the module docs).
    pub fn is_internal(&self) -> bool {
        use EmitError::*;
        match self {
            Input(_) | NoEntry(_) | Refused(_) | Unsupported(_) | Dynamic(_) => false,
            Malformed(_) | Mismatch(_) => true,
            At { error, .. } => error.is_internal(),
        }
    }

    /// The error as having happened at `at` (`@f`, `in @f, %3 = conv`, `input 1`).
    pub fn at(self, at: impl Into<String>) -> EmitError {
        EmitError::At { at: at.into(), error: Box::new(self) }
    }

    /// The innermost error, without where it happened.
    pub fn root(&self) -> &EmitError {
        match self {
            EmitError::At { error, .. } => error.root(),
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EmitError;

    #[test]
    fn places_wrap_without_changing_text_or_kind() {
        let e = EmitError::Mismatch("lowered to 2 results, declared 1".into()).at("in @main, %3 = call");
        assert_eq!(e.to_string(), "in @main, %3 = call: lowered to 2 results, declared 1");
        assert!(e.is_internal());
        let e = EmitError::Dynamic("size `B` is only known at run time here".into()).at("in @f, %1 = rfft").at("@main");
        assert_eq!(e.to_string(), "@main: in @f, %1 = rfft: size `B` is only known at run time here");
        assert!(!e.is_internal());
        assert!(matches!(e.root(), EmitError::Dynamic(_)));
        assert_eq!(EmitError::NoEntry("main".into()).to_string(), "no function @main");
    }
}
