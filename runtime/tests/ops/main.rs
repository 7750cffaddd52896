//! Op-by-op tests of the reference interpreter against hand-computed values.

// `&[x.clone()]` reads better than `std::slice::from_ref(&x)` in these tables of cases.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;
mod contract;
mod control;
mod conv;
mod elementwise;
mod fft;
mod index;
mod models;
mod movement;
mod random;
mod reduce;
