use crate::common::*;
use archc_compiler::tir::{DType, Op, PoolOp};
use archc_runtime::Tensor;

fn conv_op(stride: &[i64], padding: &[(i64, i64)], dilation: &[i64], groups: i64) -> Op {
    Op::Conv { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
}

#[test]
fn conv1d_basic_and_padded() {
    // out[o] = x[o] * 1 + x[o + 1] * 0 + x[o + 2] * -1 = x[o] - x[o + 2]
    let x = f32s(&[1, 1, 5], &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let w = f32s(&[1, 1, 3], &[1.0, 0.0, -1.0]);
    let got = eval(conv_op(&[1], &[(0, 0)], &[1], 1), &[x.clone(), w.clone()], tt(DType::F32, &[1, 1, 3]));
    assert_eq!(got.as_f32().unwrap(), &[-2.0, -2.0, -2.0]);
    // With padding (1, 1): o = 0 reads [pad, 1, 2] -> 0 - 2; o = 4 reads [4, 5, pad] -> 4 - 0.
    let got = eval(conv_op(&[1], &[(1, 1)], &[1], 1), &[x, w], tt(DType::F32, &[1, 1, 5]));
    assert_eq!(got.as_f32().unwrap(), &[-2.0, -2.0, -2.0, -2.0, 4.0]);
}

#[test]
fn conv1d_stride_dilation_groups_asymmetric_padding() {
    // x: 2 channels of 7 points, channel 0 = 1..7, channel 1 = 10..70.
    // w: 4 output channels, 2 groups (in 1 channel each), kernel 2:
    //   oc0 = [1, 1], oc1 = [1, -1] (group 0), oc2 = [1, 0], oc3 = [0, 2] (group 1).
    // stride 2, dilation 2, padding (1, 2): padded length 10, dilated kernel 3,
    // out = (10 - 3) / 2 + 1 = 4. Output o reads c0 = 2o - 1 and c1 = 2o + 1:
    //   o=0: (pad, 1), o=1: (1, 3), o=2: (3, 5), o=3: (5, pad).
    // Channel 0 at 1, 3, 5 is 2, 4, 6; channel 1 is 20, 40, 60.
    //   oc0 = x0[c0] + x0[c1] = [0+2, 2+4, 4+6, 6+0] = [2, 6, 10, 6]
    //   oc1 = x0[c0] - x0[c1] = [-2, -2, -2, 6]
    //   oc2 = x1[c0]          = [0, 20, 40, 60]
    //   oc3 = 2 * x1[c1]      = [40, 80, 120, 0]
    let x = f32s(&[1, 2, 7], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]);
    let w = f32s(&[4, 1, 2], &[1.0, 1.0, 1.0, -1.0, 1.0, 0.0, 0.0, 2.0]);
    let got = eval(conv_op(&[2], &[(1, 2)], &[2], 2), &[x, w], tt(DType::F32, &[1, 4, 4]));
    #[rustfmt::skip]
    let want = [
        2.0, 6.0, 10.0, 6.0,
        -2.0, -2.0, -2.0, 6.0,
        0.0, 20.0, 40.0, 60.0,
        40.0, 80.0, 120.0, 0.0,
    ];
    assert_eq!(got.as_f32().unwrap(), &want);
}

#[test]
fn conv2d_diagonal_kernel() {
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 0], [0, 1]]:
    // out[i, j] = x[i, j] + x[i + 1, j + 1] = [[1 + 5, 2 + 6], [4 + 8, 5 + 9]]
    let x = f32s(&[1, 1, 3, 3], &(1..=9).map(|v| v as f32).collect::<Vec<_>>());
    let w = f32s(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let got = eval(conv_op(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1), &[x, w], tt(DType::F32, &[1, 1, 2, 2]));
    assert_eq!(got.as_f32().unwrap(), &[6.0, 8.0, 12.0, 14.0]);
}

/// A direct transcription of the conv definition for 2-d inputs, used as a reference.
#[allow(clippy::too_many_arguments)]
fn naive_conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    pad: [(i64, i64); 2],
    dil: [usize; 2],
    groups: usize,
) -> Tensor {
    let (xs, ws) = (&x.shape, &w.shape);
    let (xv, wv) = (x.as_f32().unwrap(), w.as_f32().unwrap());
    let (b, cin, h, wd) = (xs[0], xs[1], xs[2] as i64, xs[3] as i64);
    let (cout, cig, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let osz = |n: i64, (lo, hi): (i64, i64), k: usize, d: usize, s: usize| {
        ((n + lo + hi - (d * (k - 1)) as i64 - 1) / s as i64 + 1) as usize
    };
    let (oh, ow) = (osz(h, pad[0], kh, dil[0], stride[0]), osz(wd, pad[1], kw, dil[1], stride[1]));
    let mut out = vec![0f32; b * cout * oh * ow];
    for n in 0..b {
        for oc in 0..cout {
            let g = oc / (cout / groups);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f64;
                    for ic in 0..cig {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride[0] + ky * dil[0]) as i64 - pad[0].0;
                                let ix = (ox * stride[1] + kx * dil[1]) as i64 - pad[1].0;
                                if iy < 0 || ix < 0 || iy >= h || ix >= wd {
                                    continue;
                                }
                                let c = g * cig + ic;
                                let xi = ((n * cin + c) * h as usize + iy as usize) * wd as usize + ix as usize;
                                let wi = ((oc * cig + ic) * kh + ky) * kw + kx;
                                acc += xv[xi] as f64 * wv[wi] as f64;
                            }
                        }
                    }
                    out[((n * cout + oc) * oh + oy) * ow + ox] = acc as f32;
                }
            }
        }
    }
    Tensor::from_f32(&[b, cout, oh, ow], out)
}

#[test]
fn conv2d_matches_naive_reference() {
    let cases = [
        // (batch, c_in, c_out, groups, h, w, kh, kw, stride, padding, dilation)
        (2, 3, 4, 1, 6, 5, 3, 2, [1, 1], [(1, 1), (0, 2)], [1, 1]),
        (1, 4, 6, 2, 7, 7, 3, 3, [2, 1], [(2, 0), (1, 1)], [1, 2]),
        (2, 6, 6, 6, 5, 8, 2, 3, [1, 3], [(0, 1), (3, 2)], [2, 1]),
    ];
    for (i, &(b, cin, cout, g, h, wd, kh, kw, stride, pad, dil)) in cases.iter().enumerate() {
        let x = f32s(&[b, cin, h, wd], &noise(b * cin * h * wd, 10 + i as u64));
        let w = f32s(&[cout, cin / g, kh, kw], &noise(cout * cin / g * kh * kw, 20 + i as u64));
        let want = naive_conv2d(&x, &w, stride, pad, dil, g);
        let op = conv_op(&stride.map(|s| s as i64), &pad, &dil.map(|d| d as i64), g as i64);
        let got = eval(op, &[x, w], tt(DType::F32, &want.shape));
        assert_close(&got, &want, 1e-6);
    }
}

#[test]
fn conv_errors() {
    let x = f32s(&[1, 3, 4], &[0.0; 12]);
    let w = f32s(&[2, 1, 2], &[0.0; 4]);
    let e = eval_err(conv_op(&[1], &[(0, 0)], &[1], 2), &[x.clone(), w.clone()], tt(DType::F32, &[1, 2, 3]));
    assert!(e.contains("channels do not divide into groups"), "{e}");
    let w5 = f32s(&[1, 3, 5], &[0.0; 15]);
    let e = eval_err(conv_op(&[1], &[(0, 0)], &[1], 1), &[x.clone(), w5], tt(DType::F32, &[1, 1, 0]));
    assert!(e.contains("exceeds padded input"), "{e}");
    let w3 = f32s(&[1, 3, 2], &[0.0; 6]);
    let e = eval_err(conv_op(&[1], &[(0, 0)], &[1], 1), &[x, w3], tt(DType::F32, &[1, 1, 4]));
    assert!(e.contains("result is f32[1, 1, 3], declared f32[1, 1, 4]"), "{e}");
}

fn pool_op(op: PoolOp, window: &[i64], stride: &[i64], padding: &[(i64, i64)]) -> Op {
    Op::Pool { op, window: window.to_vec(), stride: stride.to_vec(), padding: padding.to_vec() }
}

#[test]
fn max_pool_1d_with_and_without_padding() {
    let x = f32s(&[1, 1, 5], &[1.0, 3.0, 2.0, 5.0, 4.0]);
    // Windows [1, 3], [2, 5]; the trailing 4 is dropped.
    let got = eval(pool_op(PoolOp::Max, &[2], &[2], &[(0, 0)]), &[x.clone()], tt(DType::F32, &[1, 1, 2]));
    assert_eq!(got.as_f32().unwrap(), &[3.0, 5.0]);
    // Padding (1, 1): windows [pad, 1], [3, 2], [5, 4]; padding never wins.
    let got = eval(pool_op(PoolOp::Max, &[2], &[2], &[(1, 1)]), &[x.clone()], tt(DType::F32, &[1, 1, 3]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 3.0, 5.0]);
    let neg = f32s(&[1, 2], &[-3.0, -1.0]);
    let got = eval(pool_op(PoolOp::Max, &[2], &[1], &[(1, 0)]), &[neg], tt(DType::F32, &[1, 2]));
    assert_eq!(got.as_f32().unwrap(), &[-3.0, -1.0]);
}

#[test]
fn avg_pool_counts_padding_as_zeros() {
    let x = f32s(&[1, 1, 5], &[1.0, 3.0, 2.0, 5.0, 4.0]);
    // Windows [pad, 1], [3, 2], [5, 4] divided by 2: [0.5, 2.5, 4.5]
    let got = eval(pool_op(PoolOp::Avg, &[2], &[2], &[(1, 1)]), &[x], tt(DType::F32, &[1, 1, 3]));
    assert_eq!(got.as_f32().unwrap(), &[0.5, 2.5, 4.5]);
    // Window 3, stride 1, padding (1, 1) over [1, 2, 3]: [(0+1+2)/3, (1+2+3)/3, (2+3+0)/3]
    let got = eval(pool_op(PoolOp::Avg, &[3], &[1], &[(1, 1)]), &[f32s(&[3], &[1.0, 2.0, 3.0])], tt(DType::F32, &[3]));
    assert_close(&got, &f32s(&[3], &[1.0, 2.0, 5.0 / 3.0]), 1e-7);
}

#[test]
fn pool_2d_over_trailing_axes() {
    // x = 0..16 as 4x4; 2x2 windows with stride 2 -> maxima [[5, 7], [13, 15]],
    // means [[2.5, 4.5], [10.5, 12.5]].
    let x = f32s(&[1, 1, 4, 4], &(0..16).map(|v| v as f32).collect::<Vec<_>>());
    let op = pool_op(PoolOp::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)]);
    assert_eq!(eval(op, &[x.clone()], tt(DType::F32, &[1, 1, 2, 2])).as_f32().unwrap(), &[5.0, 7.0, 13.0, 15.0]);
    let op = pool_op(PoolOp::Avg, &[2, 2], &[2, 2], &[(0, 0), (0, 0)]);
    assert_eq!(eval(op, &[x.clone()], tt(DType::F32, &[1, 1, 2, 2])).as_f32().unwrap(), &[2.5, 4.5, 10.5, 12.5]);
    // Over the last axis only, leading axes untouched: rows' pairwise maxima.
    let op = pool_op(PoolOp::Max, &[2], &[2], &[(0, 0)]);
    let got = eval(op, &[x.clone()], tt(DType::F32, &[1, 1, 4, 2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0]);
    let e = eval_err(pool_op(PoolOp::Max, &[5], &[1], &[(0, 0)]), &[x.clone()], tt(DType::F32, &[1, 1, 4, 0]));
    assert!(e.contains("exceeds padded input"), "{e}");
    let e = eval_err(pool_op(PoolOp::Avg, &[2], &[1], &[(0, 0)]), &[x.cast(DType::I64)], tt(DType::I64, &[1, 1, 4, 3]));
    assert!(e.contains("dtype"), "{e}");
}

#[test]
fn max_pool_propagates_nan() {
    let x = f32s(&[4], &[1.0, f32::NAN, 3.0, 2.0]);
    let got = eval(pool_op(PoolOp::Max, &[2], &[2], &[(0, 0)]), &[x], tt(DType::F32, &[2]));
    assert!(got.as_f32().unwrap()[0].is_nan());
    assert_eq!(got.as_f32().unwrap()[1], 3.0);
}
