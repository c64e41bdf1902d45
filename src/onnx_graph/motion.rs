//! The camera-motion features of `train::motion` as graph nodes, from the model's input
//! patches [B, T, N, P·P·3] to [B, T, FEATURES]: the same arithmetic in the same order of
//! steps (sums may add in another order; the finetune self-check bounds the difference).

use super::{int_attribute, NodeProto, TensorProto, FLOAT, INT64};
use crate::train::motion::{smoothing, MotionSpec, ENERGY_EPS, LINEAR, MAX_SHIFT};

/// Appends nodes and constants under `prefix`; returns the name of the features.
struct Builder<'a> {
    prefix: String,
    nodes: &'a mut Vec<NodeProto>,
    inits: &'a mut Vec<TensorProto>,
    count: usize,
}

impl Builder<'_> {
    fn name(&mut self, what: &str) -> String {
        self.count += 1;
        format!("{}/{}_{what}", self.prefix, self.count)
    }

    fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<super::AttributeProto>) -> String {
        let out = self.name(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
        });
        out
    }

    fn floats(&mut self, dims: &[i64], data: Vec<f32>) -> String {
        let name = self.name("const");
        self.inits.push(TensorProto {
            dims: dims.to_vec(),
            data_type: FLOAT,
            float_data: data,
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    fn scalar(&mut self, v: f32) -> String {
        self.floats(&[], vec![v])
    }

    fn ints(&mut self, data: Vec<i64>) -> String {
        let name = self.name("const");
        self.inits.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: INT64,
            int64_data: data,
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// x[..., r0:r0+P−1, c0:c0+P−1, :] on axes 3, 4 of [B, T, N, P, P, 3] (P = `p`).
    fn cell(&mut self, x: &str, p: i64, r0: i64, c0: i64) -> String {
        let starts = self.ints(vec![r0, c0]);
        let ends = self.ints(vec![r0 + p - 1, c0 + p - 1]);
        let axes = self.ints(vec![3, 4]);
        self.op("Slice", &[x, &starts, &ends, &axes], vec![])
    }

    /// ReduceSum over `axes` (opset 13+: axes as an input).
    fn sum(&mut self, x: &str, axes: Vec<i64>, keep: bool) -> String {
        let axes = self.ints(axes);
        self.op(
            "ReduceSum",
            &[x, &axes],
            vec![int_attribute("keepdims", i64::from(keep))],
        )
    }

    fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.op(op, &[a, b], vec![])
    }
}

/// The shifts (u, v) [B, T, N] of the patches at one scale, clipped, and Σ It² per
/// patch, from A = (cur + prev)/2 and D = cur − prev as [B, T, N, side, side, 3].
fn shifts(g: &mut Builder<'_>, a: &str, d: &str, side: i64, lambda: f32) -> [String; 3] {
    let half = g.scalar(0.5);
    let quarter = g.scalar(0.25);
    let corners = [(0, 0), (0, 1), (1, 0), (1, 1)];
    let [a00, a01, a10, a11] = corners.map(|(r, c)| g.cell(a, side, r, c));
    let [d00, d01, d10, d11] = corners.map(|(r, c)| g.cell(d, side, r, c));
    // Ix = ((a01 − a00) + (a11 − a10))/2, Iy = ((a10 − a00) + (a11 − a01))/2,
    // It = (((d00 + d01) + d10) + d11)/4.
    let (x0, x1) = (g.bin("Sub", &a01, &a00), g.bin("Sub", &a11, &a10));
    let ix = g.bin("Add", &x0, &x1);
    let ix = g.bin("Mul", &ix, &half);
    let (y0, y1) = (g.bin("Sub", &a10, &a00), g.bin("Sub", &a11, &a01));
    let iy = g.bin("Add", &y0, &y1);
    let iy = g.bin("Mul", &iy, &half);
    let t0 = g.bin("Add", &d00, &d01);
    let t1 = g.bin("Add", &t0, &d10);
    let t2 = g.bin("Add", &t1, &d11);
    let it = g.bin("Mul", &t2, &quarter);
    let mut sums = Vec::new();
    for (l, r) in [
        (&ix, &ix),
        (&iy, &iy),
        (&ix, &iy),
        (&ix, &it),
        (&iy, &it),
        (&it, &it),
    ] {
        let prod = g.bin("Mul", l, r);
        sums.push(g.sum(&prod, vec![3, 4, 5], false));
    }
    let [sxx, syy, sxy, sxt, syt, stt] = <[String; 6]>::try_from(sums).expect("six sums");
    // (u, v) = solve [Sxx + λ, Sxy; Sxy, Syy + λ]·(u, v) = −(Sxt, Syt), clipped.
    let lambda = g.scalar(lambda);
    let ra = g.bin("Add", &sxx, &lambda);
    let rd = g.bin("Add", &syy, &lambda);
    let ad = g.bin("Mul", &ra, &rd);
    let bb = g.bin("Mul", &sxy, &sxy);
    let det = g.bin("Sub", &ad, &bb);
    let (lo, hi) = (g.scalar(-MAX_SHIFT), g.scalar(MAX_SHIFT));
    let mut solve = |cross: &str, diag: &str, own: &str| {
        let c = g.bin("Mul", &sxy, cross);
        let o = g.bin("Mul", diag, own);
        let num = g.bin("Sub", &c, &o);
        let q = g.bin("Div", &num, &det);
        g.op("Clip", &[&q, &lo, &hi], vec![])
    };
    let u = solve(&syt, &rd, &sxt);
    let v = solve(&sxt, &ra, &syt);
    [u, v, stt]
}

/// `x` [B, T, N, P, P, 3] at half resolution: 2×2 blocks averaged.
fn pool(g: &mut Builder<'_>, x: &str, n: i64, p: i64) -> String {
    let h = p / 2;
    let shape = g.ints(vec![0, 0, n, h, 2, h, 2, 3]);
    let blocks = g.bin("Reshape", x, &shape);
    let sum = g.sum(&blocks, vec![4, 6], false);
    let quarter = g.scalar(0.25);
    g.bin("Mul", &sum, &quarter)
}

/// The linear features of one scale's shifts, [B, T, LINEAR].
fn linear(g: &mut Builder<'_>, spec: &MotionSpec, u: &str, v: &str, pixel: f32) -> String {
    let (wu, wv) = spec.weights(pixel);
    let dims = [spec.patches() as i64, LINEAR as i64];
    let wu = g.floats(&dims, wu);
    let wv = g.floats(&dims, wv);
    let lu = g.bin("MatMul", u, &wu);
    let lv = g.bin("MatMul", v, &wv);
    g.bin("Add", &lu, &lv)
}

/// The features of the window input `patches` ([B, `frames`, N, P·P·3]).
pub(super) fn push_motion(
    prefix: &str,
    patches: &str,
    frames: usize,
    spec: &MotionSpec,
    nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<TensorProto>,
) -> String {
    let mut g = Builder {
        prefix: format!("{prefix}/motion"),
        nodes,
        inits,
        count: 0,
    };
    let p = spec.patch as i64;
    let n = spec.patches() as i64;
    // The frame before each one in its window (the first: itself).
    let prev_index = g.ints((0..frames as i64).map(|t| (t - 1).max(0)).collect());
    let prev = g.op(
        "Gather",
        &[patches, &prev_index],
        vec![int_attribute("axis", 1)],
    );
    let half = g.scalar(0.5);
    let both = g.bin("Add", patches, &prev);
    let a = g.bin("Mul", &both, &half);
    let d = g.bin("Sub", patches, &prev);
    let shape = g.ints(vec![0, 0, n, p, p, 3]);
    let a = g.bin("Reshape", &a, &shape);
    let d = g.bin("Reshape", &d, &shape);
    let [u, v, stt] = shifts(&mut g, &a, &d, p, spec.lambda(spec.patch));
    let lin1 = linear(&mut g, spec, &u, &v, 1.0);
    let (a2, d2) = (pool(&mut g, &a, n, p), pool(&mut g, &d, n, p));
    let [u2, v2, _] = shifts(&mut g, &a2, &d2, p / 2, spec.lambda(spec.patch / 2));
    let lin2 = linear(&mut g, spec, &u2, &v2, 2.0);
    // ln(ΣIt² / cells + eps) at full resolution, [B, T, 1].
    let energy = g.sum(&stt, vec![2], true);
    let cells = ((spec.patch - 1) * (spec.patch - 1) * 3 * spec.patches()) as f32;
    let scale = g.scalar(1.0 / cells);
    let eps = g.scalar(ENERGY_EPS);
    let mean = g.bin("Mul", &energy, &scale);
    let mean = g.bin("Add", &mean, &eps);
    let log = g.op("Log", &[&mean], vec![]);
    let m = g.op(
        "Concat",
        &[&lin1, &lin2, &log],
        vec![int_attribute("axis", 2)],
    );
    let t = frames as i64;
    let avg = g.floats(&[t, t], smoothing(frames));
    g.bin("MatMul", &avg, &m)
}
