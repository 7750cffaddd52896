//! Symbolic dimension expressions.
//!
//! A [`Dim`] is an integer polynomial over named symbols (`B`, `N`) and opaque floor
//! divisions (`(N + 1) / 2`). Construction through [`Dim::add`], [`Dim::mul`], ... keeps
//! the polynomial in a canonical form, so two dims are equal exactly when their
//! canonical forms are equal (`2 * d + d == 3 * d`, `N / 2 + 1 - 1 == N / 2`).
//! Printing is deterministic and parses back with [`Dim::parse`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The largest magnitude a number in a parsed dim may have (the checker's limit too).
pub const MAX_COEFFICIENT: u64 = 1 << 53;

/// An atom of a monomial: a symbol, or a floor division that did not simplify.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    Sym(String),
    /// `num / den` (floor division), `den > 1`, `num` not divisible by `den`.
    FloorDiv(Box<Dim>, i64),
}

/// A product of atoms, sorted (with repetition for powers). Empty = the constant 1.
type Monomial = Vec<Atom>;

/// A canonical integer polynomial: monomial -> non-zero coefficient. Constants (most
/// dims of a concrete program) are held without a map, so that copying and combining
/// them does not allocate; a polynomial whose only term is constant is always held so.
/// Equality, order and hashing are those of the monomial map.
#[derive(Clone)]
pub struct Dim {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Const(i64),
    /// At least one non-constant monomial.
    Poly(BTreeMap<Monomial, i64>),
}

/// The terms of a dim, in canonical order, without allocating.
enum Pairs<'a> {
    Const(Option<(&'a Monomial, &'a i64)>),
    Poly(std::collections::btree_map::Iter<'a, Monomial, i64>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a Monomial, &'a i64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Const(c) => c.take(),
            Pairs::Poly(it) => it.next(),
        }
    }
}

impl Default for Dim {
    fn default() -> Dim {
        Dim::constant(0)
    }
}

impl PartialEq for Dim {
    fn eq(&self, other: &Dim) -> bool {
        self.repr == other.repr
    }
}

impl Eq for Dim {}

impl PartialOrd for Dim {
    fn partial_cmp(&self, other: &Dim) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dim {
    fn cmp(&self, other: &Dim) -> std::cmp::Ordering {
        self.pairs().cmp(other.pairs())
    }
}

impl std::hash::Hash for Dim {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for pair in self.pairs() {
            pair.hash(state);
        }
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        struct Terms<'a>(&'a Dim);
        impl fmt::Debug for Terms<'_> {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.debug_map().entries(self.0.pairs()).finish()
            }
        }
        f.debug_struct("Dim").field("terms", &Terms(self)).finish()
    }
}

impl Dim {
    pub fn constant(c: i64) -> Dim {
        Dim { repr: Repr::Const(c) }
    }

    pub fn sym(name: impl Into<String>) -> Dim {
        Dim::atom(Atom::Sym(name.into()))
    }

    fn atom(a: Atom) -> Dim {
        Dim { repr: Repr::Poly(BTreeMap::from([(vec![a], 1)])) }
    }

    /// The dim of a map of non-zero terms, in canonical form.
    fn from_terms(terms: BTreeMap<Monomial, i64>) -> Dim {
        match terms.keys().all(Vec::is_empty) {
            true => Dim::constant(terms.get(&EMPTY).copied().unwrap_or(0)),
            false => Dim { repr: Repr::Poly(terms) },
        }
    }

    /// The terms as a map (a constant's is built).
    fn to_terms(&self) -> BTreeMap<Monomial, i64> {
        match &self.repr {
            Repr::Const(0) => BTreeMap::new(),
            Repr::Const(c) => BTreeMap::from([(Vec::new(), *c)]),
            Repr::Poly(t) => t.clone(),
        }
    }

    /// The (monomial, coefficient) pairs in canonical order.
    fn pairs(&self) -> Pairs<'_> {
        match &self.repr {
            Repr::Const(0) => Pairs::Const(None),
            Repr::Const(c) => Pairs::Const(Some((&EMPTY, c))),
            Repr::Poly(t) => Pairs::Poly(t.iter()),
        }
    }

    /// How many non-zero terms.
    fn len(&self) -> usize {
        match &self.repr {
            Repr::Const(0) => 0,
            Repr::Const(_) => 1,
            Repr::Poly(t) => t.len(),
        }
    }

    /// The coefficients.
    fn coefficients(&self) -> impl Iterator<Item = i64> + '_ {
        self.pairs().map(|(_, c)| *c)
    }

    /// Every coefficient mapped by `f` (which keeps non-zero ones non-zero).
    fn map_coefficients(&self, f: impl Fn(i64) -> i64) -> Dim {
        match &self.repr {
            Repr::Const(c) => Dim::constant(f(*c)),
            Repr::Poly(t) => Dim { repr: Repr::Poly(t.iter().map(|(m, c)| (m.clone(), f(*c))).collect()) },
        }
    }

    /// The value when the dim has no symbols.
    pub fn as_const(&self) -> Option<i64> {
        match self.repr {
            Repr::Const(c) => Some(c),
            Repr::Poly(_) => None,
        }
    }

    /// The monomials with their coefficients, in canonical order (an empty monomial is
    /// the constant term). Backends that compute sizes at run time walk these.
    pub fn terms(&self) -> impl Iterator<Item = (&[Atom], i64)> {
        self.pairs().map(|(m, c)| (m.as_slice(), *c))
    }

    /// The constant term of the polynomial (`3` in `N / 2 + 3`, `0` in `2 * N`).
    pub fn constant_term(&self) -> i64 {
        match &self.repr {
            Repr::Const(c) => *c,
            Repr::Poly(t) => t.get(&EMPTY).copied().unwrap_or(0),
        }
    }

    pub fn is_const(&self) -> bool {
        self.as_const().is_some()
    }

    pub fn add(&self, other: &Dim) -> Dim {
        if let (Repr::Const(a), Repr::Const(b)) = (&self.repr, &other.repr) {
            return Dim::constant(a.wrapping_add(*b));
        }
        let mut terms = self.to_terms();
        for (m, c) in other.pairs() {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.wrapping_add(*c);
            if *e == 0 {
                terms.remove(m);
            }
        }
        Dim::from_terms(terms)
    }

    pub fn neg(&self) -> Dim {
        self.map_coefficients(i64::wrapping_neg)
    }

    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Dim) -> Dim {
        if let (Repr::Const(a), Repr::Const(b)) = (&self.repr, &other.repr) {
            return Dim::constant(a.wrapping_mul(*b));
        }
        let mut out = Dim::default();
        for (ma, ca) in self.pairs() {
            for (mb, cb) in other.pairs() {
                let mut m: Monomial = ma.iter().chain(mb.iter()).cloned().collect();
                m.sort();
                out = out.add(&Dim::from_terms(BTreeMap::from([(m, ca.wrapping_mul(*cb))])));
            }
        }
        out
    }

    /// Floor division by a positive constant. `None` when `den <= 0`.
    pub fn floor_div(&self, den: i64) -> Option<Dim> {
        if den <= 0 {
            return None;
        }
        if den == 1 {
            return Some(self.clone());
        }
        if let Some(c) = self.as_const() {
            return Some(Dim::constant(c.div_euclid(den)));
        }
        // (k * den * X + r) / den == k * X + r / den when every coefficient divides.
        if self.coefficients().all(|c| c % den == 0) {
            return Some(self.map_coefficients(|c| c / den));
        }
        // (X + q * den + r) / den == (X + r) / den + q, with 0 <= r < den.
        let c = self.constant_term();
        let (q, r) = (c.div_euclid(den), c.rem_euclid(den));
        if q != 0 {
            let rest = self.sub(&Dim::constant(q * den));
            return Some(rest.floor_div(den)?.add(&Dim::constant(q)));
        }
        let _ = r;
        Some(Dim::atom(Atom::FloorDiv(Box::new(self.clone()), den)))
    }

    /// Division that must be exact (e.g. `d / heads` when `heads` divides `d`).
    pub fn exact_div(&self, den: i64) -> Option<Dim> {
        if den > 0 && self.coefficients().all(|c| c % den == 0) {
            Some(self.map_coefficients(|c| c / den))
        } else {
            None
        }
    }

    /// The symbols this dim mentions (including inside divisions).
    pub fn symbols(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (m, _) in self.pairs() {
            for a in m {
                match a {
                    Atom::Sym(s) => out.push(s.clone()),
                    Atom::FloorDiv(d, _) => out.extend(d.symbols()),
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Evaluates with the given symbol values; `None` if a symbol is unbound.
    pub fn eval(&self, env: &HashMap<String, i64>) -> Option<i64> {
        let mut total = 0i64;
        for (m, c) in self.pairs() {
            let mut v = *c;
            for a in m {
                v = v.wrapping_mul(match a {
                    Atom::Sym(s) => *env.get(s)?,
                    Atom::FloorDiv(d, den) => d.eval(env)?.div_euclid(*den),
                });
            }
            total = total.wrapping_add(v);
        }
        Some(total)
    }

    /// [`Dim::eval`] in checked arithmetic: `None` if a symbol is unbound or a product
    /// or sum overflows `i64`.
    pub fn checked_eval(&self, env: &HashMap<String, i64>) -> Option<i64> {
        let mut total = 0i64;
        for (m, c) in self.pairs() {
            let mut v = *c;
            for a in m {
                let f = match a {
                    Atom::Sym(s) => *env.get(s)?,
                    Atom::FloorDiv(d, den) => d.checked_eval(env)?.div_euclid(*den),
                };
                v = v.checked_mul(f)?;
            }
            total = total.checked_add(v)?;
        }
        Some(total)
    }

    /// Substitutes symbols by dims.
    pub fn subst(&self, env: &HashMap<String, Dim>) -> Dim {
        let mut out = Dim::default();
        for (m, c) in self.pairs() {
            let mut v = Dim::constant(*c);
            for a in m {
                let f = match a {
                    Atom::Sym(s) => env.get(s).cloned().unwrap_or_else(|| Dim::sym(s.clone())),
                    Atom::FloorDiv(d, den) => d.subst(env).floor_div(*den).expect("den > 0"),
                };
                v = v.mul(&f);
            }
            out = out.add(&v);
        }
        out
    }

    /// Parses the printed form: integers, symbols, `+ - * /`, parentheses.
    pub fn parse(text: &str) -> Result<Dim, String> {
        let toks = tokenize(text)?;
        let mut p = DimParser { toks: &toks, pos: 0 };
        let d = p.sum()?;
        if p.pos != toks.len() {
            return Err(format!("unexpected `{}` in dim `{text}`", toks[p.pos]));
        }
        // As in the checker, no dim holds a number beyond 2^53: past it sizes mean
        // nothing, and a folded constant like -2^63 would not print back as a number.
        if d.max_coefficient() > MAX_COEFFICIENT {
            return Err(format!("dim `{text}` has a number beyond 2^53"));
        }
        Ok(d)
    }
}

impl From<i64> for Dim {
    fn from(c: i64) -> Dim {
        Dim::constant(c)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Atom::Sym(s) => write!(f, "{s}"),
            Atom::FloorDiv(d, den) if d.len() == 1 && d.coefficients().all(|c| c > 0) => {
                write!(f, "{d} / {den}")
            }
            Atom::FloorDiv(d, den) => write!(f, "({d}) / {den}"),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.len() == 0 {
            return write!(f, "0");
        }
        // Symbolic terms first (in canonical order), the constant last: `N / 2 + 1`.
        let (constant, mut ordered): (Vec<_>, Vec<_>) = self.pairs().partition(|(m, _)| m.is_empty());
        ordered.extend(constant);
        for (i, (m, c)) in ordered.into_iter().enumerate() {
            let (sign, mag) = if *c < 0 { ("-", c.unsigned_abs()) } else { ("+", c.unsigned_abs()) };
            match (i, sign) {
                (0, "-") => write!(f, "-")?,
                (0, _) => {}
                _ => write!(f, " {sign} ")?,
            }
            // A division among other factors, or negated up front, needs parentheses:
            // `2 * ((N + 1) / 2)` and `-(N / 2)`, not `2 * (N + 1) / 2` (which parses back
            // as `N + 1`) and `-N / 2` (which parses back as `(-N) / 2`).
            let alone = mag == 1 && m.len() == 1 && !(i == 0 && *c < 0);
            let atoms: Vec<String> = m
                .iter()
                .map(|a| match a {
                    Atom::FloorDiv(..) if !alone => format!("({a})"),
                    _ => a.to_string(),
                })
                .collect();
            match (mag, atoms.is_empty()) {
                (_, true) => write!(f, "{mag}")?,
                (1, false) => write!(f, "{}", atoms.join(" * "))?,
                _ => write!(f, "{mag} * {}", atoms.join(" * "))?,
            }
        }
        Ok(())
    }
}

static EMPTY: Monomial = Vec::new();

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut s = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.') {
                s.push(c);
                chars.next();
            }
            out.push(s);
        } else if "+-*/()".contains(c) {
            out.push(c.to_string());
            chars.next();
        } else {
            return Err(format!("unexpected `{c}` in dim `{text}`"));
        }
    }
    Ok(out)
}

struct DimParser<'a> {
    toks: &'a [String],
    pos: usize,
}

impl DimParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(|s| s.as_str())
    }

    fn sum(&mut self) -> Result<Dim, String> {
        let mut acc = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek() {
            let neg = op == "-";
            self.pos += 1;
            let rhs = self.product()?;
            acc = if neg { acc.sub(&rhs) } else { acc.add(&rhs) };
        }
        Ok(acc)
    }

    fn product(&mut self) -> Result<Dim, String> {
        let mut acc = self.factor()?;
        while let Some(op @ ("*" | "/")) = self.peek() {
            let div = op == "/";
            self.pos += 1;
            let rhs = self.factor()?;
            acc = if div {
                let den = rhs.as_const().ok_or("division by a symbolic dim")?;
                acc.floor_div(den).ok_or("division by a non-positive constant")?
            } else {
                acc.mul(&rhs)
            };
        }
        Ok(acc)
    }

    fn factor(&mut self) -> Result<Dim, String> {
        let tok = self.peek().ok_or("unexpected end of dim")?.to_string();
        self.pos += 1;
        match tok.as_str() {
            "(" => {
                let d = self.sum()?;
                if self.peek() != Some(")") {
                    return Err("expected `)` in dim".into());
                }
                self.pos += 1;
                Ok(d)
            }
            "-" => Ok(self.factor()?.neg()),
            t if t.chars().all(|c| c.is_ascii_digit()) => {
                t.parse::<i64>().map(Dim::constant).map_err(|e| e.to_string())
            }
            t if t.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') => Ok(Dim::sym(t)),
            t => Err(format!("unexpected `{t}` in dim")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_compare_equal() {
        let d = Dim::sym("d");
        assert_eq!(d.mul(&2.into()).add(&d), d.mul(&3.into()));
        let n = Dim::sym("N");
        let half = n.floor_div(2).unwrap().add(&1.into());
        assert_eq!(half.sub(&1.into()), n.floor_div(2).unwrap());
        assert_eq!(half.to_string(), "N / 2 + 1");
        assert_ne!(n.floor_div(2).unwrap().mul(&2.into()), n);
    }

    #[test]
    fn constants_are_one_form_however_they_are_reached() {
        let n = Dim::sym("N");
        assert_eq!(n.sub(&n), Dim::constant(0));
        assert_eq!(n.add(&3.into()).sub(&n), Dim::constant(3));
        assert_eq!(n.add(&3.into()).sub(&n).as_const(), Some(3));
        assert_eq!(Dim::parse("2 * N - N * 2 + 5").unwrap(), Dim::constant(5));
        assert_eq!(Dim::constant(6).mul(&7.into()), Dim::constant(42));
        // Order, equality and debug text are the monomial map's, compared term by term
        // from the constant: {} < {[]: 1, [N]: 1} < {[]: 3} < {[N]: 1}.
        let mut ds = vec![n.clone(), Dim::constant(3), Dim::constant(0), n.add(&1.into())];
        ds.sort();
        assert_eq!(ds.iter().map(|d| d.to_string()).collect::<Vec<_>>(), ["0", "N + 1", "3", "N"]);
        assert_eq!(format!("{:?}", Dim::constant(3)), "Dim { terms: {[]: 3} }");
        assert_eq!(format!("{:?}", Dim::constant(0)), "Dim { terms: {} }");
        let hash = |d: &Dim| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            d.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&n.add(&2.into()).sub(&n)), hash(&Dim::constant(2)));
    }

    #[test]
    fn constants_fold() {
        assert_eq!(Dim::constant(7).floor_div(2).unwrap().as_const(), Some(3));
        assert_eq!(Dim::sym("d").mul(&4.into()).floor_div(2).unwrap().to_string(), "2 * d");
    }

    #[test]
    fn print_parse_round_trip() {
        for text in [
            "B",
            "N / 2 + 1",
            "2 * d - 3",
            "B * N",
            "(N + 1) / 2",
            "-B + 4",
            "0",
            "B * B",
            "2 * ((N + 1) / 2)",
            "M * (N / 2)",
            "-(N / 2)",
        ] {
            let d = Dim::parse(text).unwrap();
            assert_eq!(Dim::parse(&d.to_string()).unwrap(), d, "{text}");
        }
        assert_eq!(Dim::parse("N/2+1").unwrap().to_string(), "N / 2 + 1");
    }

    #[test]
    fn eval_and_subst() {
        let d = Dim::parse("N / 2 + 1").unwrap();
        let env = HashMap::from([("N".to_string(), 16)]);
        assert_eq!(d.eval(&env), Some(9));
        let s = d.subst(&HashMap::from([("N".to_string(), Dim::constant(7))]));
        assert_eq!(s.as_const(), Some(4));
        assert_eq!(d.symbols(), vec!["N".to_string()]);
    }
}

impl Dim {
    /// `self / den` when the division is exact term by term (e.g. `B * 64 / B == 64`,
    /// `6 * d / 3 == 2 * d`); `None` otherwise.
    pub fn div_exact(&self, den: &Dim) -> Option<Dim> {
        if let Some(c) = den.as_const() {
            return self.exact_div(c);
        }
        if den.len() != 1 {
            return (self == den).then(|| Dim::constant(1));
        }
        let (dm, dc) = den.pairs().next()?;
        let mut out = Dim::default();
        for (m, c) in self.pairs() {
            if c % dc != 0 {
                return None;
            }
            let mut rest = m.clone();
            for a in dm {
                let pos = rest.iter().position(|x| x == a)?;
                rest.remove(pos);
            }
            out = out.add(&Dim::from_terms(BTreeMap::from([(rest, c / dc)])));
        }
        Some(out)
    }
}

impl Dim {
    /// The largest coefficient magnitude (constant term included): dims beyond any real
    /// size (say `> 2^40`) are rejected by the checker.
    pub fn max_coefficient(&self) -> u64 {
        let own = self.coefficients().map(|c| c.unsigned_abs()).max().unwrap_or(0);
        let inner = self
            .pairs()
            .flat_map(|(m, _)| m.iter())
            .map(|a| match a {
                Atom::Sym(_) => 0,
                Atom::FloorDiv(d, den) => d.max_coefficient().max(den.unsigned_abs()),
            })
            .max()
            .unwrap_or(0);
        own.max(inner)
    }
}
