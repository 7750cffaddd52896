//! A small, defensive reader for the pickles inside PyTorch zip checkpoints
//! (`data.pkl`, written by `torch.save` with pickle protocol 2).
//!
//! Contract:
//! - [`unpickle`] runs the pickle stack machine over bytes and returns the final value,
//!   or a message naming the offending opcode and byte offset. It never panics, never
//!   executes anything, and bounds its memory and work: container nesting is at most
//!   [`MAX_DEPTH`], and every copy (`BINGET`, `BINPUT`, `MEMOIZE`, `DUP`) is charged, by
//!   the approximate bytes it takes, against a budget of [`MAX_COPIED`] plus
//!   [`COPIED_PER_INPUT_BYTE`] per input byte before it is made, so a pickle that
//!   doubles a value through the memo is refused after a few megabytes, not gigabytes.
//!   Every other opcode does work proportional to the input it consumes or the values
//!   it pops.
//! - Opcodes: protocol 0-2 binary opcodes (`PROTO STOP MARK POP POP_MARK DUP NONE
//!   NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 BINFLOAT BINSTRING SHORT_BINSTRING
//!   BINUNICODE BINBYTES SHORT_BINBYTES EMPTY_TUPLE TUPLE TUPLE1-3 EMPTY_LIST LIST APPEND
//!   APPENDS EMPTY_DICT DICT SETITEM SETITEMS GLOBAL BINPERSID REDUCE BUILD NEWOBJ BINPUT
//!   LONG_BINPUT BINGET LONG_BINGET`) and the protocol-4 ones a newer writer may use
//!   (`FRAME SHORT_BINUNICODE BINUNICODE8 BINBYTES8 STACK_GLOBAL MEMOIZE`). Any other
//!   opcode is an error.
//! - Calls (`REDUCE`, `NEWOBJ`) are interpreted only for what torch checkpoints need:
//!   `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` give a [`TensorRef`],
//!   `torch._utils._rebuild_parameter` gives its tensor, `collections.OrderedDict()` an
//!   empty dict. Every other call gives an opaque value naming the callable; `BUILD`
//!   state is discarded. `BINPERSID` turns torch's storage ids
//!   `('storage', torch.XStorage, key, location, numel)` into a [`StorageRef`].
//! - The memo holds copies, not shared references: enough for the tree-shaped data
//!   `torch.save` writes, not for pickles that mutate a container after memoizing it and
//!   then refer to it again.

use std::collections::HashMap;

/// The deepest container nesting accepted.
pub const MAX_DEPTH: u32 = 256;
/// The bytes of copies any pickle may make (see the module docs).
pub const MAX_COPIED: u64 = 64 << 20;
/// Further bytes of copies allowed per byte of pickle.
pub const COPIED_PER_INPUT_BYTE: u64 = 32;

/// The approximate size of a value that holds no container or text.
const VALUE_BYTES: u64 = std::mem::size_of::<Value>() as u64;

/// The element type of a torch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDType {
    F32,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDType {
    /// The dtype of a `torch.<name>` storage class, e.g. `FloatStorage`.
    fn from_class(name: &str) -> Option<StorageDType> {
        Some(match name {
            "FloatStorage" => StorageDType::F32,
            "DoubleStorage" => StorageDType::F64,
            "LongStorage" => StorageDType::I64,
            "IntStorage" => StorageDType::I32,
            "ShortStorage" => StorageDType::I16,
            "CharStorage" => StorageDType::I8,
            "ByteStorage" => StorageDType::U8,
            "BoolStorage" => StorageDType::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDType::F64 | StorageDType::I64 => 8,
            StorageDType::F32 | StorageDType::I32 => 4,
            StorageDType::I16 => 2,
            StorageDType::I8 | StorageDType::U8 | StorageDType::Bool => 1,
        }
    }
}

/// A storage named by a persistent id: raw data at `data/<key>` in the archive.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub dtype: StorageDType,
    pub key: String,
    /// Elements, as the persistent id declares them.
    pub numel: u64,
}

/// A strided view of a storage (all in elements).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// A container's items, its nesting depth (1 + the deepest item's) and its weight (the
/// approximate bytes of it and everything in it).
#[derive(Clone, Debug, PartialEq)]
pub struct Seq<T> {
    pub items: Vec<T>,
    depth: u32,
    size: u64,
}

impl<T> Seq<T> {
    fn empty() -> Seq<T> {
        Seq { items: Vec::new(), depth: 1, size: VALUE_BYTES }
    }
}

/// A pickled value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Global {
        module: String,
        name: String,
    },
    Storage(StorageRef),
    Tensor(TensorRef),
    Tuple(Seq<Value>),
    List(Seq<Value>),
    Dict(Seq<(Value, Value)>),
    /// The result of a call this reader does not interpret: `module.name` of the callable.
    Opaque(String),
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(s) => s.depth,
            _ => 0,
        }
    }

    /// The approximate bytes of this value and everything in it.
    fn size(&self) -> u64 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.size,
            Value::Dict(s) => s.size,
            Value::Str(t) | Value::Opaque(t) => VALUE_BYTES + t.len() as u64,
            Value::Bytes(b) => VALUE_BYTES + b.len() as u64,
            Value::Global { module, name } => VALUE_BYTES + (module.len() + name.len()) as u64,
            Value::Storage(s) => VALUE_BYTES + s.key.len() as u64,
            Value::Tensor(t) => VALUE_BYTES + (t.storage.key.len() + 8 * (t.shape.len() + t.strides.len())) as u64,
            _ => VALUE_BYTES,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Global { .. } => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Opaque(_) => "object",
        }
    }
}

/// Something a [`Seq`] can hold.
pub trait Item {
    fn depth(&self) -> u32;
    fn size(&self) -> u64;
}

impl Item for Value {
    fn depth(&self) -> u32 {
        Value::depth(self)
    }
    fn size(&self) -> u64 {
        Value::size(self)
    }
}

impl Item for (Value, Value) {
    fn depth(&self) -> u32 {
        self.0.depth().max(self.1.depth())
    }
    fn size(&self) -> u64 {
        self.0.size().saturating_add(self.1.size())
    }
}

impl<T: Item> Seq<T> {
    fn from_items(items: Vec<T>) -> Result<Seq<T>, String> {
        let mut seq = Seq::empty();
        for item in items {
            seq.push(item)?;
        }
        Ok(seq)
    }

    fn push(&mut self, item: T) -> Result<(), String> {
        let depth = item.depth() + 1;
        if depth > MAX_DEPTH {
            return Err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        self.depth = self.depth.max(depth);
        self.size = self.size.saturating_add(item.size());
        self.items.push(item);
        Ok(())
    }
}

/// Runs the pickle in `bytes` and returns its value.
pub fn unpickle(bytes: &[u8]) -> Result<Value, String> {
    let budget = MAX_COPIED.saturating_add(COPIED_PER_INPUT_BYTE.saturating_mul(bytes.len() as u64));
    let mut m =
        Machine { input: bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), copied: 0, budget };
    loop {
        let at = m.pos;
        let op = m.byte()?;
        match m.step(op) {
            Ok(true) => return m.pop(),
            Ok(false) => {}
            Err(e) => return Err(format!("pickle opcode 0x{op:02x} at byte {at}: {e}")),
        }
    }
}

/// The stack machine's state.
struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack lengths at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Bytes copied so far, and the most allowed.
    copied: u64,
    budget: u64,
}

impl Machine<'_> {
    // ---- input ----

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.input.len()).ok_or("truncated pickle")?;
        let out = &self.input[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, String> {
        Ok(u16::from_le_bytes(self.array()?) as usize)
    }

    fn u32(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn u64(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| "length out of range".into())
    }

    /// A newline-terminated line (for `GLOBAL`).
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.input[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("unterminated line")?;
        let line = std::str::from_utf8(&rest[..n]).map_err(|_| "line is not UTF-8")?.to_string();
        self.pos += n + 1;
        Ok(line)
    }

    fn text(&mut self, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?;
        Ok(Value::Str(std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8")?.to_string()))
    }

    fn bytes(&mut self, n: usize) -> Result<Value, String> {
        Ok(Value::Bytes(self.take(n)?.to_vec()))
    }

    // ---- stack ----

    fn push(&mut self, v: Value) -> Result<bool, String> {
        self.stack.push(v);
        Ok(false)
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        Ok(self.stack.pop().expect("non-empty"))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        Ok(self.stack.last_mut().expect("non-empty"))
    }

    /// The values pushed since the last `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no MARK")?;
        Ok(self.stack.split_off(mark))
    }

    /// Charges a copy of `size` bytes against the budget, before it is made.
    fn charge(&mut self, size: u64) -> Result<(), String> {
        self.copied = self.copied.saturating_add(size);
        if self.copied > self.budget {
            return Err(format!("memo copies exceed {} bytes", self.budget));
        }
        Ok(())
    }

    fn memo_get(&mut self, key: usize) -> Result<bool, String> {
        let key = u32::try_from(key).map_err(|_| "memo key out of range")?;
        let size = self.memo.get(&key).ok_or_else(|| format!("memo key {key} unset"))?.size();
        self.charge(size)?;
        let v = self.memo[&key].clone();
        self.push(v)
    }

    fn memo_put(&mut self, key: usize) -> Result<bool, String> {
        let key = u32::try_from(key).map_err(|_| "memo key out of range")?;
        let size = self.top()?.size();
        self.charge(size)?;
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(false)
    }

    fn tuple(&mut self, n: usize) -> Result<bool, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err("stack underflow".into());
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.push(Value::Tuple(Seq::from_items(items)?))
    }

    /// Appends `items` to the list on top of the stack.
    fn extend_list(&mut self, items: Vec<Value>) -> Result<bool, String> {
        let Value::List(list) = self.top()? else { return Err("APPEND to a non-list".into()) };
        for item in items {
            list.push(item)?;
        }
        Ok(false)
    }

    /// Sets `items` (key, value, key, value...) on the dict on top of the stack.
    fn extend_dict(&mut self, items: Vec<Value>) -> Result<bool, String> {
        if items.len() % 2 != 0 {
            return Err("odd number of items for SETITEMS".into());
        }
        let Value::Dict(dict) = self.top()? else { return Err("SETITEM on a non-dict".into()) };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.push((k, v))?; // a repeated key is kept; readers let the last one win
        }
        Ok(false)
    }

    // ---- opcodes ----

    /// Executes one opcode; `Ok(true)` at `STOP`.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            0x80 => self.byte().map(|_| false),       // PROTO
            0x95 => self.array::<8>().map(|_| false), // FRAME
            b'.' => Ok(true),                         // STOP
            b'(' => {
                self.marks.push(self.stack.len());
                Ok(false)
            }
            b'0' => self.pop().map(|_| false),
            b'1' => self.pop_mark().map(|_| false),
            b'2' => {
                let size = self.top()?.size();
                self.charge(size)?;
                let v = self.top()?.clone();
                self.push(v)
            }
            _ => self.step_value(op),
        }
    }

    /// Opcodes that push a scalar, a string or a container, or edit a container.
    fn step_value(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()))
            }
            b'K' => {
                let v = self.byte()?;
                self.push(Value::Int(v.into()))
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Value::Int(v as i64))
            }
            0x8a => {
                let n = self.byte()? as usize;
                let v = long1(self.take(n)?)?;
                self.push(Value::Int(v))
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Value::Float(v))
            }
            b'X' | b'T' => {
                let n = self.u32()?;
                let v = if op == b'X' { self.text(n)? } else { self.bytes(n)? };
                self.push(v)
            }
            0x8c | b'U' => {
                let n = self.byte()? as usize;
                let v = if op == 0x8c { self.text(n)? } else { self.bytes(n)? };
                self.push(v)
            }
            0x8d => {
                let n = self.u64()?;
                let v = self.text(n)?;
                self.push(v)
            }
            b'B' => {
                let n = self.u32()?;
                let v = self.bytes(n)?;
                self.push(v)
            }
            b'C' => {
                let n = self.byte()? as usize;
                let v = self.bytes(n)?;
                self.push(v)
            }
            0x8e => {
                let n = self.u64()?;
                let v = self.bytes(n)?;
                self.push(v)
            }
            _ => self.step_container(op),
        }
    }

    fn step_container(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b')' => self.push(Value::Tuple(Seq::empty())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(Seq::from_items(items)?))
            }
            0x85 => self.tuple(1),
            0x86 => self.tuple(2),
            0x87 => self.tuple(3),
            b']' => self.push(Value::List(Seq::empty())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Value::List(Seq::from_items(items)?))
            }
            b'a' => {
                let v = self.pop()?;
                self.extend_list(vec![v])
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)
            }
            b'}' => self.push(Value::Dict(Seq::empty())),
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Value::Dict(Seq::empty()))?;
                self.extend_dict(items)
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_dict(vec![k, v])
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(items)
            }
            _ => self.step_object(op),
        }
    }

    /// Memo, globals, persistent ids and calls.
    fn step_object(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'q' => {
                let k = self.byte()? as usize;
                self.memo_put(k)
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k)
            }
            0x94 => {
                let k = self.memo.len();
                self.memo_put(k)
            }
            b'h' => {
                let k = self.byte()? as usize;
                self.memo_get(k)
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k)
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Value::Global { module, name })
            }
            0x93 => {
                let (Value::Str(name), Value::Str(module)) = (self.pop()?, self.pop()?) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                self.push(Value::Global { module, name })
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent_storage(pid)?;
                self.push(Value::Storage(storage))
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = call(callable, args)?;
                self.push(v)
            }
            b'b' => {
                self.pop()?; // the state: torch's tensors and dicts need none of it
                self.top().map(|_| false)
            }
            _ => Err("unsupported opcode".into()),
        }
    }
}

/// A `LONG1` payload: little-endian two's complement, at most 8 bytes.
fn long1(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err("integer wider than 64 bits".into());
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut word = if negative { [0xff; 8] } else { [0; 8] };
    word[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(word))
}

/// `('storage', torch.XStorage, key, location, numel)`.
fn persistent_storage(pid: Value) -> Result<StorageRef, String> {
    let Value::Tuple(t) = pid else { return Err(format!("persistent id is a {}, not a tuple", pid.kind())) };
    match t.items.as_slice() {
        [Value::Str(tag), Value::Global { module, name }, Value::Str(key), _, Value::Int(numel)]
            if tag == "storage" && module == "torch" =>
        {
            let dtype = StorageDType::from_class(name).ok_or_else(|| format!("unsupported storage torch.{name}"))?;
            let numel = u64::try_from(*numel).map_err(|_| "negative storage size")?;
            Ok(StorageRef { dtype, key: key.clone(), numel })
        }
        _ => Err("persistent id is not ('storage', torch.XStorage, key, location, numel)".into()),
    }
}

/// What `callable(*args)` means to this reader (see the module docs).
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global { module, name } = callable else {
        return Err(format!("call of a {}, not a global", callable.kind()));
    };
    let Value::Tuple(args) = args else { return Err(format!("call arguments are a {}", args.kind())) };
    let args = args.items;
    match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => rebuild_tensor(args),
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err("_rebuild_parameter without a tensor".into()),
        },
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Seq::empty())),
        _ => Ok(Value::Opaque(format!("{module}.{name}"))),
    }
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn rebuild_tensor(args: Vec<Value>) -> Result<Value, String> {
    let mut args = args.into_iter();
    let (Some(Value::Storage(storage)), Some(Value::Int(offset)), Some(size), Some(stride)) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        return Err("_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)".into());
    };
    let offset = u64::try_from(offset).map_err(|_| "negative storage offset")?;
    let shape = int_tuple(size, "size")?;
    let strides = int_tuple(stride, "stride")?;
    if shape.len() != strides.len() {
        return Err(format!("{} sizes but {} strides", shape.len(), strides.len()));
    }
    Ok(Value::Tensor(TensorRef { storage, offset, shape, strides }))
}

fn int_tuple(v: Value, what: &str) -> Result<Vec<u64>, String> {
    let Value::Tuple(t) = v else { return Err(format!("tensor {what} is not a tuple")) };
    t.items
        .into_iter()
        .map(|x| match x {
            Value::Int(i) if i >= 0 => Ok(i as u64),
            _ => Err(format!("tensor {what} holds a negative or non-integer entry")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long1_sign_extends() {
        assert_eq!(long1(&[]).unwrap(), 0);
        assert_eq!(long1(&[0xff]).unwrap(), -1);
        assert_eq!(long1(&[0x00, 0x01]).unwrap(), 256);
        assert!(long1(&[0; 9]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', MAX_DEPTH as usize + 5));
        p.extend(std::iter::repeat_n(b'a', MAX_DEPTH as usize + 4));
        p.push(b'.');
        assert!(unpickle(&p).unwrap_err().contains("nested deeper"));
    }

    /// `]q0` then `(h0 h0 l q0` `rounds` times: memo 0 doubles every round.
    fn memo_doubling(rounds: usize) -> Vec<u8> {
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..rounds {
            p.extend([b'(', b'h', 0, b'h', 0, b'l', b'q', 0]);
        }
        p.push(b'.');
        p
    }

    #[test]
    fn memo_doubling_is_refused_within_the_byte_budget() {
        let p = memo_doubling(40);
        assert!(p.len() < 400);
        let start = std::time::Instant::now();
        let err = unpickle(&p).unwrap_err();
        assert!(err.contains("memo copies exceed"), "{err}");
        // Refused within the budget: 2^40 items would take terabytes; the old value count
        // budget let it reach gigabytes and seconds first.
        assert!(start.elapsed() < std::time::Duration::from_millis(1500), "took {:?}", start.elapsed());
        // The budget charges what a copy holds: a few rounds of doubling are fine.
        assert!(unpickle(&memo_doubling(8)).is_ok());
    }

    #[test]
    fn copies_of_long_strings_are_charged_by_their_bytes() {
        // A 60,000-byte string duplicated 20,000 times would take 1.2 GB.
        let mut p = vec![0x80, 2, b'X'];
        p.extend(60_000u32.to_le_bytes());
        p.extend(std::iter::repeat_n(b'a', 60_000));
        p.extend(std::iter::repeat_n(b'2', 20_000));
        p.push(b'.');
        assert!(unpickle(&p).unwrap_err().contains("memo copies exceed"));
    }

    #[test]
    fn memo_copies_are_bounded() {
        // A list of 200 items, then doubling through the memo many times.
        let mut p = vec![0x80, 2, b']', b'('];
        p.extend(std::iter::repeat_n([b'K', 1], 200).flatten());
        p.extend([b'e', b'q', 0]);
        for _ in 0..200_000 {
            p.extend([b'h', 0, b'0']);
        }
        p.push(b'.');
        assert!(unpickle(&p).unwrap_err().contains("memo copies"));
    }
}
