//! Numeric approximations that backends emit inline instead of a library call per
//! element, kept in one place so that every backend uses the same fit.

/// Numerator of the f32 error function `erf(x) = x P(x^2) / Q(x^2)` on `x` clamped to
/// `[-4, 4]` (erf rounds to +-1 in f32 beyond), highest power first: the minimax fit of
/// Eigen's `generic_fast_erf_float` (also in XLA). Within 6.5e-8 of erf when evaluated in
/// f64, about 5e-7 in f32.
pub const ERF_F32_P: [f64; 7] = [
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
];

/// Denominator of [`ERF_F32_P`]'s fit, highest power first.
pub const ERF_F32_Q: [f64; 5] =
    [-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03, -1.42647390514189e-02];
