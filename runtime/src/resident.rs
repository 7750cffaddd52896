//! State that lives in an executor between calls: a training run's parameters, optimizer
//! moments and buffers, a supernet's shared weights.
//!
//! Contract:
//! - State is a set of named tensors an [`Executor`](crate::Executor) keeps where it
//!   computes (host memory for the interpreter and the CPU backends, device memory for the
//!   GPU backend). It is put once, read back on demand (checkpoints, evaluation, anomaly
//!   reports), and otherwise only touched by bound calls.
//! - A bound call ([`Bindings`]) names, per argument of the function, the state it reads or
//!   that the next given input fills it, and per result, the state it replaces or that it
//!   is returned. The replaced state's old value is given up (donated): a training step
//!   moves no parameter between the caller and the executor, only its batch in and its
//!   loss and metrics out.
//! - A call that fails leaves the state as it was before the call.
//! - [`HostState`] is the host-memory store the CPU executors share: arguments are moved
//!   out of the store for the call and back after it, so nothing is copied.

use crate::interp::RunError;
use crate::tensor::Tensor;
use std::collections::HashMap;

/// Where a bound call's arguments come from and its results go (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bindings {
    /// One per argument of the function: the state it reads, or `None` for the next
    /// given input.
    pub args: Vec<Option<String>>,
    /// One per result: the state it replaces, or `None` for a returned result.
    pub results: Vec<Option<String>>,
}

impl Bindings {
    /// The bindings of `f` where every argument and result whose name starts with one of
    /// `prefixes` is the state of that name.
    pub fn by_prefix(f: &archc_compiler::tir::Func, prefixes: &[&str]) -> Bindings {
        let bound = |n: &String| prefixes.iter().any(|p| n.starts_with(p)).then(|| n.clone());
        Bindings { args: f.arg_names.iter().map(bound).collect(), results: f.result_names.iter().map(bound).collect() }
    }

    /// How many inputs a call must be given.
    pub fn given(&self) -> usize {
        self.args.iter().filter(|a| a.is_none()).count()
    }

    /// The positions of the returned results among all results.
    pub fn returned(&self) -> impl Iterator<Item = usize> + '_ {
        self.results.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i)
    }
}

/// The error of a state that does not exist.
pub fn no_state(name: &str) -> RunError {
    RunError::State { name: name.to_string(), message: "no such state".into() }
}

/// Named tensors in host memory (see the module docs).
#[derive(Default, Debug)]
pub struct HostState {
    values: HashMap<String, Tensor>,
}

impl HostState {
    /// Sets (or replaces) the state `name`.
    pub fn put(&mut self, name: &str, value: Tensor) {
        self.values.insert(name.to_string(), value);
    }

    /// The state `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor, RunError> {
        self.values.get(name).ok_or_else(|| no_state(name))
    }

    /// The first of `names` (in order) holding a NaN or an infinity.
    pub fn first_non_finite(&self, names: &[String]) -> Result<Option<String>, RunError> {
        for name in names {
            if !crate::finite::is_finite(self.get(name)?) {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// Runs `run` on the arguments `bindings` gives: the state's tensors moved in, the
    /// given inputs in order. The bound results replace their state; the rest are returned
    /// in order. On any error the state is as before.
    pub fn call(
        &mut self,
        bindings: &Bindings,
        given: Vec<Tensor>,
        run: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>, RunError>,
    ) -> Result<Vec<Tensor>, RunError> {
        if given.len() != bindings.given() {
            let message = format!("{} inputs given, the bindings take {}", given.len(), bindings.given());
            return Err(RunError::State { name: String::new(), message });
        }
        for name in bindings.args.iter().chain(&bindings.results).flatten() {
            self.get(name)?;
        }
        let mut given = given.into_iter();
        // Each state is moved in once; a second argument bound to it gets a copy.
        let mut moved: HashMap<&str, usize> = HashMap::new();
        let mut args: Vec<Tensor> = Vec::with_capacity(bindings.args.len());
        for (i, a) in bindings.args.iter().enumerate() {
            let t = match a {
                Some(name) => match moved.get(name.as_str()) {
                    Some(&j) => args[j].clone(),
                    None => {
                        moved.insert(name, i);
                        self.values.remove(name).expect("checked above")
                    }
                },
                None => given.next().expect("counted above"),
            };
            args.push(t);
        }
        let ran = run(&args);
        // The moved state goes back first: a result replaces it below.
        for (i, t) in args.into_iter().enumerate() {
            if let Some(name) = bindings.args[i].as_deref().filter(|n| moved.get(n) == Some(&i)) {
                self.values.insert(name.to_string(), t);
            }
        }
        let results = ran?;
        if results.len() != bindings.results.len() {
            let message = format!("{} results, the bindings place {}", results.len(), bindings.results.len());
            return Err(RunError::State { name: String::new(), message });
        }
        let mut out = Vec::with_capacity(results.len());
        for (r, t) in bindings.results.iter().zip(results) {
            match r {
                Some(name) => self.put(name, t),
                None => out.push(t),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: f32) -> Tensor {
        Tensor::from_f32(&[1], vec![v])
    }

    fn value(st: &HostState, name: &str) -> f32 {
        st.get(name).unwrap().to_f64_vec().unwrap()[0] as f32
    }

    /// `w` and `m` in the state, `x` given: `(w + x, m + 1, w * x)`.
    fn bindings() -> Bindings {
        let s = |n: &str| Some(n.to_string());
        Bindings { args: vec![s("w"), None, s("m")], results: vec![s("w"), s("m"), None] }
    }

    fn step(args: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
        let v: Vec<f32> = args.iter().map(|a| a.to_f64_vec().unwrap()[0] as f32).collect();
        Ok(vec![t(v[0] + v[1]), t(v[2] + 1.0), t(v[0] * v[1])])
    }

    fn store() -> HostState {
        let mut st = HostState::default();
        st.put("w", t(2.0));
        st.put("m", t(0.0));
        st
    }

    #[test]
    fn bound_results_replace_the_state_and_the_rest_are_returned() {
        let mut st = store();
        let out = st.call(&bindings(), vec![t(3.0)], step).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_f64_vec().unwrap(), vec![6.0]);
        assert_eq!((value(&st, "w"), value(&st, "m")), (5.0, 1.0));
        st.call(&bindings(), vec![t(1.0)], step).unwrap();
        assert_eq!((value(&st, "w"), value(&st, "m")), (6.0, 2.0));
    }

    #[test]
    fn a_failed_call_leaves_the_state_as_it_was() {
        let mut st = store();
        let fail = |_: &[Tensor]| Err(RunError::UnknownFunc("f".into()));
        assert!(st.call(&bindings(), vec![t(3.0)], fail).is_err());
        assert_eq!((value(&st, "w"), value(&st, "m")), (2.0, 0.0));
        let short = |_: &[Tensor]| Ok(vec![t(1.0)]);
        let err = st.call(&bindings(), vec![t(3.0)], short).unwrap_err();
        assert!(err.to_string().contains("1 results, the bindings place 3"), "{err}");
        assert_eq!((value(&st, "w"), value(&st, "m")), (2.0, 0.0));
    }

    #[test]
    fn missing_state_and_wrong_input_counts_are_errors() {
        let mut st = store();
        let err = st.call(&bindings(), vec![], step).unwrap_err();
        assert!(err.to_string().contains("0 inputs given, the bindings take 1"), "{err}");
        let mut b = bindings();
        b.args[2] = Some("v".into());
        let err = st.call(&b, vec![t(1.0)], step).unwrap_err();
        assert_eq!(err.to_string(), "resident state v: no such state");
        assert_eq!((value(&st, "w"), value(&st, "m")), (2.0, 0.0));
    }

    #[test]
    fn a_state_bound_to_two_arguments_reaches_both() {
        let mut st = store();
        let b = Bindings { args: vec![Some("w".into()), Some("w".into())], results: vec![None] };
        let sum = |args: &[Tensor]| step(&[args[0].clone(), args[1].clone(), t(0.0)]).map(|mut r| vec![r.remove(0)]);
        let out = st.call(&b, vec![], sum).unwrap();
        assert_eq!(out[0].to_f64_vec().unwrap(), vec![4.0]);
        assert_eq!(value(&st, "w"), 2.0);
    }

    #[test]
    fn non_finite_state_is_found_in_order() {
        let mut st = store();
        st.put("n", t(f32::NAN));
        st.put("i", t(f32::INFINITY));
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(st.first_non_finite(&names(&["w", "m"])).unwrap(), None);
        assert_eq!(st.first_non_finite(&names(&["w", "i", "n"])).unwrap().as_deref(), Some("i"));
    }
}
