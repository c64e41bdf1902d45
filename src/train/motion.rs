//! Camera-motion features of a frame, from its patches and those of the frame before it
//! in the same window: what a pan or a zoom is, which the backbone's mean-pooled
//! embedding averages away (docs/BENCHMARKS.md, "Finetuning").
//!
//! Per patch, a Lucas–Kanade step on the patch's pixels (all channels): with
//! A = (cur + prev)/2 and D = cur − prev, on each 2×2 cell of pixels the spatial
//! gradients Ix, Iy of A and the temporal change It of D are averaged; the sums
//! Sxx = ΣIx², Syy = ΣIy², Sxy = ΣIxIy, Sxt = ΣIxIt, Syt = ΣIyIt over the patch give its
//! shift (u, v) in pixels as the solution of
//! [Sxx + λ, Sxy; Sxy, Syy + λ]·(u, v) = −(Sxt, Syt), clipped to ±[`MAX_SHIFT`]; λ keeps
//! flat patches at (0, 0) (about the energy of a gradient of 1.25 grey levels per pixel over the patch).
//!
//! The frame's features, [`FEATURES`] values, are linear in the 64 shifts, plus one:
//! mean u, mean v; divergence Σ(u·X + v·Y)/Σ(X² + Y²) and curl Σ(v·X − u·Y)/Σ(X² + Y²)
//! with (X, Y) the patch centre in [−1, 1] (a zoom and a roll); mean u and mean v of each
//! quadrant; and ln(mean It² + 1e-4), how much the picture changes.
//!
//! The first frame of a window has no frame before it there, so it is compared with
//! itself (no motion), exactly as the exported graph does (`onnx_graph::motion`); the
//! finetune self-check compares the two on real footage.

/// Values per frame: 12 linear in the shifts at each of the two scales, and the energy.
pub const FEATURES: usize = 2 * LINEAR + 1;
/// The values linear in one scale's shifts.
pub const LINEAR: usize = 12;
/// Largest |shift| per patch, in pixels of its scale.
pub const MAX_SHIFT: f32 = 3.0;
/// Added inside the logarithm of the mean squared change.
pub const ENERGY_EPS: f32 = 1e-4;

/// The layout of the input patches and the constants derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionSpec {
    /// Patch side in pixels (P, even); a patch holds P·P·3 values ordered (py, px, channel).
    pub patch: usize,
    pub grid_x: usize,
    pub grid_y: usize,
    /// Per channel, (1.25 grey levels)² in normalized units: λ of a scale is this times
    /// its cells per patch, summed over the channels.
    pub grey2: [f32; 3],
}

impl MotionSpec {
    /// From the contract: frame size, patch size and the input normalization; `None`
    /// when the patch side is odd or below 4 (no second scale).
    pub fn new(contract: &crate::model::ModelContract) -> Option<Self> {
        let p = contract.patch_size as usize;
        if p < 4 || p % 2 == 1 {
            return None;
        }
        Some(MotionSpec {
            patch: p,
            grid_x: contract.patches_x(),
            grid_y: contract.patches_y(),
            grey2: contract.std.map(|s| {
                let g = 1.25 / (255.0 * s);
                g * g
            }),
        })
    }

    pub fn patches(&self) -> usize {
        self.grid_x * self.grid_y
    }

    /// λ at a scale whose patches have side `side`.
    pub fn lambda(&self, side: usize) -> f32 {
        ((side - 1) * (side - 1)) as f32 * self.grey2.iter().sum::<f32>()
    }

    /// Patch centres (X, Y) in [−1, 1], in patch order (row-major).
    pub fn centres(&self) -> Vec<(f32, f32)> {
        (0..self.patches())
            .map(|n| {
                let (gy, gx) = (n / self.grid_x, n % self.grid_x);
                (
                    (gx as f32 + 0.5) / (self.grid_x as f32 / 2.0) - 1.0,
                    (gy as f32 + 0.5) / (self.grid_y as f32 / 2.0) - 1.0,
                )
            })
            .collect()
    }

    /// The linear part of one scale, [patches, LINEAR] for u and for v, shifts in that
    /// scale's pixels (`pixel`: full-resolution pixels per scale pixel): the values are
    /// Σ_n u_n·wu[n] + v_n·wv[n] (mean u, mean v, divergence, curl, mean u per quadrant,
    /// mean v per quadrant, in full-resolution pixels).
    pub fn weights(&self, pixel: f32) -> (Vec<f32>, Vec<f32>) {
        let k = LINEAR;
        let n = self.patches();
        let centres = self.centres();
        let r2: f32 = centres.iter().map(|(x, y)| x * x + y * y).sum();
        let mut quadrant_size = [0usize; 4];
        let quadrant = |x: f32, y: f32| usize::from(x > 0.0) + 2 * usize::from(y > 0.0);
        for &(x, y) in &centres {
            quadrant_size[quadrant(x, y)] += 1;
        }
        let (mut wu, mut wv) = (vec![0f32; n * k], vec![0f32; n * k]);
        for (i, &(x, y)) in centres.iter().enumerate() {
            let (u, v) = (&mut wu[i * k..(i + 1) * k], &mut wv[i * k..(i + 1) * k]);
            u[0] = pixel / n as f32;
            v[1] = pixel / n as f32;
            u[2] = pixel * x / r2;
            v[2] = pixel * y / r2;
            u[3] = -pixel * y / r2;
            v[3] = pixel * x / r2;
            let q = quadrant(x, y);
            u[4 + q] = pixel / quadrant_size[q].max(1) as f32;
            v[8 + q] = pixel / quadrant_size[q].max(1) as f32;
        }
        (wu, wv)
    }
}

/// One patch at half resolution: each 2×2 block of pixels averaged (side P/2).
fn pooled(patch: &[f32], p: usize) -> Vec<f32> {
    let h = p / 2;
    let mut out = vec![0f32; h * h * 3];
    for y in 0..h {
        for x in 0..h {
            for c in 0..3 {
                let at = |py: usize, px: usize| patch[(py * p + px) * 3 + c];
                let s = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1))
                    + (at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1));
                out[(y * h + x) * 3 + c] = s * 0.25;
            }
        }
    }
    out
}

/// The shift (u, v) of one patch of side `p` in its pixels and its Σ It², from the
/// patch in two frames, with regularizer `lambda`.
fn patch_shift(p: usize, lambda: f32, cur: &[f32], prev: &[f32]) -> (f32, f32, f32) {
    let at = |x: &[f32], py: usize, px: usize, c: usize| x[(py * p + px) * 3 + c];
    let (mut sxx, mut syy, mut sxy, mut sxt, mut syt, mut stt) =
        (0f32, 0f32, 0f32, 0f32, 0f32, 0f32);
    for py in 0..p - 1 {
        for px in 0..p - 1 {
            for c in 0..3 {
                let a = |y, x| 0.5 * (at(cur, y, x, c) + at(prev, y, x, c));
                let d = |y, x| at(cur, y, x, c) - at(prev, y, x, c);
                let (a00, a01, a10, a11) =
                    (a(py, px), a(py, px + 1), a(py + 1, px), a(py + 1, px + 1));
                let ix = 0.5 * ((a01 - a00) + (a11 - a10));
                let iy = 0.5 * ((a10 - a00) + (a11 - a01));
                let it = 0.25 * (((d(py, px) + d(py, px + 1)) + d(py + 1, px)) + d(py + 1, px + 1));
                sxx += ix * ix;
                syy += iy * iy;
                sxy += ix * iy;
                sxt += ix * it;
                syt += iy * it;
                stt += it * it;
            }
        }
    }
    let (a, d) = (sxx + lambda, syy + lambda);
    let det = a * d - sxy * sxy;
    let u = ((sxy * syt - d * sxt) / det).clamp(-MAX_SHIFT, MAX_SHIFT);
    let v = ((sxy * sxt - a * syt) / det).clamp(-MAX_SHIFT, MAX_SHIFT);
    (u, v, stt)
}

/// The features [b, t, FEATURES] of windows `input` [b, t, patches, P·P·3].
pub fn features(spec: &MotionSpec, input: &[f32], b: usize, t: usize) -> Vec<f32> {
    let n = spec.patches();
    let p = spec.patch;
    let c = p * p * 3;
    let frame = n * c;
    assert_eq!(input.len(), b * t * frame, "windows of [t, patches, P·P·3]");
    let (wu1, wv1) = spec.weights(1.0);
    let (wu2, wv2) = spec.weights(2.0);
    let (l1, l2) = (spec.lambda(p), spec.lambda(p / 2));
    let k = LINEAR;
    let cells = ((p - 1) * (p - 1) * 3 * n) as f32;
    // Every patch at half resolution, once (each frame is also the previous of the next).
    let half: Vec<f32> = input.chunks_exact(c).flat_map(|x| pooled(x, p)).collect();
    let (c2, frame2) = (c / 4, frame / 4);
    let mut out = Vec::with_capacity(b * t * FEATURES);
    for w in 0..b {
        for s in 0..t {
            let (at, before) = (w * t + s, w * t + s.saturating_sub(1));
            let cur = &input[at * frame..][..frame];
            let prev = &input[before * frame..][..frame];
            let (cur2, prev2) = (
                &half[at * frame2..][..frame2],
                &half[before * frame2..][..frame2],
            );
            let mut lin = vec![0f32; 2 * k];
            let mut energy = 0f32;
            for i in 0..n {
                let (pc, pp) = (&cur[i * c..][..c], &prev[i * c..][..c]);
                let (u, v, stt) = patch_shift(p, l1, pc, pp);
                let (u2, v2, _) =
                    patch_shift(p / 2, l2, &cur2[i * c2..][..c2], &prev2[i * c2..][..c2]);
                for j in 0..k {
                    lin[j] += u * wu1[i * k + j] + v * wv1[i * k + j];
                    lin[k + j] += u2 * wu2[i * k + j] + v2 * wv2[i * k + j];
                }
                energy += stt;
            }
            out.extend_from_slice(&lin);
            out.push((energy * (1.0 / cells) + ENERGY_EPS).ln());
        }
    }
    smooth(&out, b, t)
}

/// [T, T]: row t averages the positions 1..=t (the first, compared with itself, only
/// itself).
pub fn smoothing(t: usize) -> Vec<f32> {
    let mut m = vec![0f32; t * t];
    m[0] = 1.0;
    for r in 1..t {
        for c in 1..=r {
            m[r * t + c] = 1.0 / r as f32;
        }
    }
    m
}

/// Each window's per-position features averaged causally ([`smoothing`]): the shifts of
/// one frame pair are noisy, the camera's motion changes slowly.
fn smooth(x: &[f32], b: usize, t: usize) -> Vec<f32> {
    let a = smoothing(t);
    let mut out = vec![0f32; x.len()];
    for w in 0..b {
        for r in 0..t {
            for c in 0..t {
                let k = a[r * t + c];
                if k != 0.0 {
                    for j in 0..FEATURES {
                        out[(w * t + r) * FEATURES + j] += k * x[(w * t + c) * FEATURES + j];
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MotionSpec {
        MotionSpec {
            patch: 8,
            grid_x: 8,
            grid_y: 8,
            grey2: [0.001; 3],
        }
    }

    /// A smooth textured picture at 64×64, shifted by (dx, dy) pixels and scaled by s about
    /// the centre, as patches (values about [−1, 1]).
    fn frame(dx: f32, dy: f32, s: f32) -> Vec<f32> {
        let sp = spec();
        let mut out = vec![0f32; sp.patches() * 192];
        for n in 0..sp.patches() {
            let (gy, gx) = (n / 8, n % 8);
            for py in 0..8 {
                for px in 0..8 {
                    let x = (gx * 8 + px) as f32 + 0.5 - 32.0;
                    let y = (gy * 8 + py) as f32 + 0.5 - 32.0;
                    // The picture at (x, y) shows the scene at ((x − dx)/s, (y − dy)/s).
                    let (sx, sy) = ((x - dx) / s, (y - dy) / s);
                    let v = (sx * 0.31).sin() + (sy * 0.27).cos() + (0.13 * (sx + sy)).sin();
                    for c in 0..3 {
                        out[n * 192 + (py * 8 + px) * 3 + c] = v * (1.0 + 0.1 * c as f32);
                    }
                }
            }
        }
        out
    }

    fn pair(a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
        a.into_iter().chain(b).collect()
    }

    #[test]
    fn a_pan_gives_its_direction_and_size_and_the_first_frame_none() {
        let f = features(
            &spec(),
            &pair(frame(0.0, 0.0, 1.0), frame(1.0, 0.0, 1.0)),
            1,
            2,
        );
        // The first frame is compared with itself.
        assert!(
            f[..FEATURES - 1].iter().all(|v| *v == 0.0),
            "{:?}",
            &f[..FEATURES]
        );
        let m = &f[FEATURES..];
        assert!((m[0] - 1.0).abs() < 0.25, "mean u of a 1-px pan: {}", m[0]);
        assert!(m[1].abs() < 0.1, "mean v: {}", m[1]);
        assert!(m[2].abs() < 0.1, "divergence of a pan: {}", m[2]);
        for q in 0..4 {
            assert!(m[4 + q] > 0.7, "quadrant {q}: {}", m[4 + q]);
        }
        let up = features(
            &spec(),
            &pair(frame(0.0, 0.0, 1.0), frame(0.0, -1.0, 1.0)),
            1,
            2,
        );
        assert!(
            (up[FEATURES + 1] + 1.0).abs() < 0.25,
            "mean v: {}",
            up[FEATURES + 1]
        );
        // The half-resolution scale sees the same pan, in full-resolution pixels.
        assert!(
            (m[LINEAR] - 1.0).abs() < 0.25,
            "mean u at half resolution: {}",
            m[LINEAR]
        );
        assert!(
            m[LINEAR + 1].abs() < 0.1,
            "mean v at half resolution: {}",
            m[LINEAR + 1]
        );
        // More change, more energy.
        assert!(m[FEATURES - 1] > f[FEATURES - 1]);
    }

    #[test]
    fn a_zoom_in_diverges_and_a_zoom_out_converges() {
        let zin = features(
            &spec(),
            &pair(frame(0.0, 0.0, 1.0), frame(0.0, 0.0, 1.04)),
            1,
            2,
        );
        let zout = features(
            &spec(),
            &pair(frame(0.0, 0.0, 1.04), frame(0.0, 0.0, 1.0)),
            1,
            2,
        );
        let (a, b) = (&zin[FEATURES..], &zout[FEATURES..]);
        assert!(a[2] > 0.5, "zoom in: divergence {}", a[2]);
        assert!(b[2] < -0.5, "zoom out: divergence {}", b[2]);
        assert!(
            a[0].abs() < 0.15 && a[1].abs() < 0.15,
            "zoom in: mean shift {a:?}"
        );
        assert!(a[3].abs() < 0.15, "zoom in: curl {}", a[3]);
        // Quadrants move apart: left ones left, right ones right.
        assert!(a[4] < 0.0 && a[5] > 0.0, "{a:?}");
        assert!(
            a[LINEAR + 2] > 0.5,
            "zoom in at half resolution: {}",
            a[LINEAR + 2]
        );
        assert!(
            b[LINEAR + 2] < -0.5,
            "zoom out at half resolution: {}",
            b[LINEAR + 2]
        );
    }
}
