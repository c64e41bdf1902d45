//! What is normal for one camera, per patch: the `anomaly` score of adapted models.
//!
//! `framegpt adapt` runs the adapted model over its footage the way `analyze` does (same
//! windows, repeated pictures left out) and records, for every patch position of the frame,
//! the median and spread of five per-patch features of each predicted frame:
//!
//! | feature | what |
//! |---|---|
//! | `log_error` | ln(mean squared error of the model's prediction of the patch + ε) |
//! | `log_motion` | ln(mean absolute change of the patch from the previous picture + ε) |
//! | `r`, `g`, `b` | the patch's mean colour (normalized) |
//!
//! The model file carries them as metadata `framegpt.normal` (JSON, [`PatchNormal`]). For a
//! frame of new footage, each feature of each patch becomes a z-score against that patch's
//! normal; a patch's score is the mean of its squared z-scores (the three colours counting as
//! one feature), and the frame's *patch score* is the mean over the most unusual eighth of the
//! patches. So a region that stops moving where this camera always sees motion (low
//! `log_motion`), a change of exposure (colour), an object where there never is one, and
//! motion or prediction error far above this camera's usual all count, each where it happens;
//! a frame-wide mean error (`surprise`) cannot tell the first two from normal footage.
//!
//! Version 2 also records how the whole frame behaves on this camera: the median and spread
//! of ln(patch score) and of ln(`surprise`) over the footage. The frame's `anomaly` is then
//! ln(e^za + e^zs), za and zs those two logs as z-scores against the camera's own: a smooth
//! maximum, high when either the pattern of the patches or the frame's prediction error is
//! unusual for this camera. (Where the scene moves a lot of its own, a bird on a perch,
//! frame-wide events such as a speed-up or a shake are better told by the prediction error;
//! a frozen region or an exposure step by the patches.) A version-1 normal gives the patch
//! score alone.
//!
//! Why these choices: docs/BENCHMARKS.md ("Per-camera anomaly score").
//!
//! Pure code, no ONNX Runtime.

use serde::{Deserialize, Serialize};

/// Features per patch.
pub const FEATURES: [&str; 5] = ["log_error", "log_motion", "r", "g", "b"];
/// ε inside the logarithms (normalized units).
pub const LOG_EPS: f32 = 1e-3;
/// Smallest spread a feature may have, added in quadrature: 0.1 in the logs (10 %), and
/// 0.035 normalized units (≈ 2 grey levels) for the colours, so a patch that never changed
/// in the footage does not turn encoder noise into an anomaly.
pub const FLOORS: [f32; 5] = [0.1, 0.1, 0.035, 0.035, 0.035];
/// The frame's score is the mean over this fraction of its patches, the highest.
pub const TOP_FRACTION: f32 = 0.125;

/// The per-patch normal of one camera, as `framegpt.normal` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchNormal {
    pub version: u32,
    /// Predicted frames the statistics come from.
    pub frames: u64,
    pub features: Vec<String>,
    /// [patch][feature].
    pub mean: Vec<Vec<f32>>,
    /// [patch][feature], floors included.
    pub std: Vec<Vec<f32>>,
    /// Version 2: the whole frame's statistics on this camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNormal>,
}

/// Median and spread of two per-frame values over a camera's footage (version 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrameNormal {
    /// ln(patch score): [median, spread].
    pub log_patch_score: [f32; 2],
    /// ln(surprise): [median, spread].
    pub log_surprise: [f32; 2],
}

/// Floor of the per-frame spreads (in the logs).
pub const FRAME_FLOOR: f32 = 0.1;
/// Smallest value inside the per-frame logarithms.
pub const FRAME_LOG_MIN: f32 = 1e-6;
/// Frames whose features are kept to calibrate the patch score (evenly spread over the
/// footage, however long): 2.6 MB at 64 patches.
const CALIBRATION_FRAMES: usize = 2048;
/// ln(surprise) histogram: from ln(FRAME_LOG_MIN) to ln(33).
const SURPRISE_RANGE: (f32, f32) = (-14.0, 3.5);

fn frame_log(v: f32) -> f32 {
    if v.is_finite() {
        v.max(FRAME_LOG_MIN).ln()
    } else {
        FRAME_LOG_MIN.ln()
    }
}

/// The `[median, spread]` of `values` (spread: IQR / 1.349, floor added in quadrature).
fn median_spread(mut values: Vec<f32>) -> [f32; 2] {
    values.sort_unstable_by(f32::total_cmp);
    let q = |p: f64| -> f32 {
        let x = p * (values.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        let w = (x - lo as f64) as f32;
        values[lo] * (1.0 - w) + values[hi] * w
    };
    let iqr = (q(0.75) - q(0.25)) / 1.349;
    [q(0.5), iqr.hypot(FRAME_FLOOR)]
}

/// Per-patch features of one predicted frame: `[patch][feature]`. `current` is the picture
/// the prediction was made from, `target` the one it predicts, `predicted` the prediction;
/// all `[N · C]` in the model's patch layout.
pub fn features(
    predicted: &[f32],
    target: &[f32],
    current: &[f32],
    patch_dim: usize,
) -> Vec<[f32; 5]> {
    debug_assert!(predicted.len() == target.len() && target.len() == current.len());
    predicted
        .chunks_exact(patch_dim)
        .zip(target.chunks_exact(patch_dim))
        .zip(current.chunks_exact(patch_dim))
        .map(|((p, t), c)| {
            let (mut se, mut ad) = (0.0f64, 0.0f64);
            let mut rgb = [0.0f64; 3];
            for (i, ((p, t), c)) in p.iter().zip(t).zip(c).enumerate() {
                se += f64::from(p - t).powi(2);
                ad += f64::from(t - c).abs();
                rgb[i % 3] += f64::from(*t);
            }
            let n = patch_dim as f64;
            let per_channel = (patch_dim / 3).max(1) as f64;
            [
                ((se / n) as f32 + LOG_EPS).ln(),
                ((ad / n) as f32 + LOG_EPS).ln(),
                (rgb[0] / per_channel) as f32,
                (rgb[1] / per_channel) as f32,
                (rgb[2] / per_channel) as f32,
            ]
        })
        .collect()
}

/// Where the histograms of [`NormalAccumulator`] hold each feature: the logs from ln(ε)
/// down a little to ln(33) (a squared error of 33 normalized units is beyond any picture),
/// the colours over the whole normalized range of the model's mean and std (values outside
/// land in the end bins).
const RANGES: [(f32, f32); 5] = [
    (-7.5, 3.5),
    (-7.5, 3.5),
    (-2.5, 3.0),
    (-2.5, 3.0),
    (-2.5, 3.0),
];
const BINS: usize = 512;

/// Histograms of the features per patch over many frames: the normal is their median and
/// interquartile range, so the few frames of a loop point or a cut in the footage do not
/// widen what counts as normal for every patch (they would, through a mean and a variance).
#[derive(Debug, Clone)]
pub struct NormalAccumulator {
    /// [patch][feature][bin].
    counts: Vec<[Vec<u32>; 5]>,
    frames: u64,
    /// Histogram of ln(surprise) per frame.
    surprise: Vec<u32>,
    /// The features of every `keep_every`-th frame, at most [`CALIBRATION_FRAMES`]: when
    /// full, every other is dropped and the step doubles, so they stay evenly spread.
    kept: Vec<Vec<[f32; 5]>>,
    keep_every: u64,
}

impl NormalAccumulator {
    pub fn new(patches: usize) -> Self {
        NormalAccumulator {
            counts: (0..patches)
                .map(|_| std::array::from_fn(|_| vec![0u32; BINS]))
                .collect(),
            frames: 0,
            surprise: vec![0u32; BINS],
            kept: Vec::new(),
            keep_every: 1,
        }
    }

    /// Adds one predicted frame: its per-patch [`features`] and its `surprise` (the mean
    /// squared error of its prediction, as `analyze` writes it).
    pub fn push(&mut self, features: &[[f32; 5]], surprise: f32) {
        let (lo, hi) = SURPRISE_RANGE;
        let b = ((frame_log(surprise) - lo) / (hi - lo) * BINS as f32).floor();
        self.surprise[(b.max(0.0) as usize).min(BINS - 1)] += 1;
        if self.frames.is_multiple_of(self.keep_every) {
            if self.kept.len() == CALIBRATION_FRAMES {
                let mut k = 0;
                self.kept.retain(|_| {
                    k += 1;
                    k % 2 == 1
                });
                self.keep_every *= 2;
            }
            if self.frames.is_multiple_of(self.keep_every) {
                self.kept.push(features.to_vec());
            }
        }
        debug_assert_eq!(features.len(), self.counts.len());
        for (c, f) in self.counts.iter_mut().zip(features) {
            for k in 0..5 {
                let (lo, hi) = RANGES[k];
                let x = if f[k].is_finite() { f[k] } else { lo };
                let b = ((x - lo) / (hi - lo) * BINS as f32).floor();
                c[k][(b.max(0.0) as usize).min(BINS - 1)] += 1;
            }
        }
        self.frames += 1;
    }

    /// The normal, or `None` without any frame: per patch and feature the median, and as
    /// spread the interquartile range / 1.349 (a normal distribution's σ) with the floor
    /// added in quadrature.
    pub fn finish(&self) -> Option<PatchNormal> {
        if self.frames == 0 {
            return None;
        }
        let mut mean = Vec::with_capacity(self.counts.len());
        let mut std = Vec::with_capacity(self.counts.len());
        for c in &self.counts {
            let q = |k: usize, p: f64| quantile(&c[k], self.frames, p, RANGES[k]);
            mean.push((0..5).map(|k| q(k, 0.5)).collect());
            std.push(
                (0..5)
                    .map(|k| {
                        let iqr = f64::from(q(k, 0.75) - q(k, 0.25)) / 1.349;
                        (iqr * iqr + f64::from(FLOORS[k]).powi(2)).sqrt() as f32
                    })
                    .collect(),
            );
        }
        let mut normal = PatchNormal {
            version: 2,
            frames: self.frames,
            features: FEATURES.iter().map(|s| s.to_string()).collect(),
            mean,
            std,
            frame: None,
        };
        let scores: Vec<f32> = self
            .kept
            .iter()
            .map(|f| frame_log(normal.patch_score(f)))
            .collect();
        let surprise = |p: f64| quantile(&self.surprise, self.frames, p, SURPRISE_RANGE);
        let iqr = (surprise(0.75) - surprise(0.25)) / 1.349;
        normal.frame = Some(FrameNormal {
            log_patch_score: median_spread(scores),
            log_surprise: [surprise(0.5), iqr.hypot(FRAME_FLOOR)],
        });
        Some(normal)
    }
}

/// The `p` quantile of a histogram of `n` values over `range`, linear inside the bin.
fn quantile(counts: &[u32], n: u64, p: f64, (lo, hi): (f32, f32)) -> f32 {
    let width = f64::from(hi - lo) / counts.len() as f64;
    let target = p * n as f64;
    let mut below = 0.0f64;
    for (b, &c) in counts.iter().enumerate() {
        let c = f64::from(c);
        if c > 0.0 && below + c >= target {
            let within = ((target - below) / c).clamp(0.0, 1.0);
            return (f64::from(lo) + (b as f64 + within) * width) as f32;
        }
        below += c;
    }
    hi
}

impl PatchNormal {
    /// Parses `framegpt.normal` and checks it against the model's patch count.
    pub fn parse(raw: &str, patches: usize) -> Result<Self, String> {
        let n: PatchNormal =
            serde_json::from_str(raw).map_err(|e| format!("not the expected JSON: {e}"))?;
        match (n.version, &n.frame) {
            (1, None) => {}
            (2, Some(f)) => {
                let v = [f.log_patch_score, f.log_surprise];
                if !v.iter().flatten().all(|x| x.is_finite()) || v.iter().any(|x| x[1] <= 0.0) {
                    return Err("`frame`: medians must be finite and spreads positive".into());
                }
            }
            (2, None) => return Err("version 2 without `frame`".to_string()),
            (v, _) => {
                return Err(format!(
                    "version {v} (this framegpt reads versions 1 and 2)"
                ))
            }
        }
        if n.features != FEATURES {
            return Err(format!("features {:?}, expected {FEATURES:?}", n.features));
        }
        let rows_ok = |rows: &Vec<Vec<f32>>| {
            rows.len() == patches && rows.iter().all(|r| r.len() == FEATURES.len())
        };
        if !rows_ok(&n.mean) || !rows_ok(&n.std) {
            return Err(format!(
                "expected {patches} patches x {} features in `mean` and `std`",
                FEATURES.len()
            ));
        }
        let finite = n.mean.iter().chain(&n.std).flatten().all(|v| v.is_finite());
        if !finite || n.std.iter().flatten().any(|s| *s <= 0.0) {
            return Err("`mean` and `std` must be finite and `std` positive".to_string());
        }
        Ok(n)
    }

    /// The `anomaly` of one predicted frame from its [`features`] and its `surprise`: with a
    /// version-2 normal ln(e^za + e^zs) (module docs), with version 1 the patch score.
    pub fn score(&self, features: &[[f32; 5]], surprise: f32) -> f32 {
        let patch = self.patch_score(features);
        match &self.frame {
            None => patch,
            Some(f) => {
                let z = |v: f32, [m, s]: [f32; 2]| (frame_log(v) - m) / s;
                let (za, zs) = (z(patch, f.log_patch_score), z(surprise, f.log_surprise));
                let top = za.max(zs);
                top + ((za - top).exp() + (zs - top).exp()).ln()
            }
        }
    }

    /// The patch score of one predicted frame: the mean squared z-score of its patches'
    /// features, over the most unusual eighth of them.
    pub fn patch_score(&self, features: &[[f32; 5]]) -> f32 {
        let mut per_patch: Vec<f32> = features
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(f, (m, s))| {
                let z = |k: usize| ((f[k] - m[k]) / s[k]).powi(2);
                (z(0) + z(1) + (z(2) + z(3) + z(4)) / 3.0) / 3.0
            })
            .collect();
        let k = ((per_patch.len() as f32 * TOP_FRACTION).ceil() as usize)
            .clamp(1, per_patch.len().max(1));
        per_patch.sort_unstable_by(|a, b| b.total_cmp(a));
        per_patch[..k].iter().sum::<f32>() / k as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: impl Fn(usize) -> f32) -> Vec<f32> {
        (0..4 * 6).map(v).collect()
    }

    #[test]
    fn features_are_error_motion_and_colour_per_patch() {
        // 4 patches of 6 values (2 pixels x RGB).
        let current = frame(|_| 0.0);
        let target = frame(|i| if i < 6 { 1.0 } else { 0.0 });
        let predicted = target.clone();
        let f = features(&predicted, &target, &current, 6);
        assert_eq!(f.len(), 4);
        assert!((f[0][0] - LOG_EPS.ln()).abs() < 1e-6, "perfect prediction");
        assert!(
            (f[0][1] - (1.0 + LOG_EPS).ln()).abs() < 1e-6,
            "patch 0 moved by 1"
        );
        assert!((f[1][1] - LOG_EPS.ln()).abs() < 1e-6, "patch 1 still");
        assert_eq!(&f[0][2..], &[1.0, 1.0, 1.0]);
        assert_eq!(&f[3][2..], &[0.0, 0.0, 0.0]);
    }

    fn normal_of(frames: &[Vec<[f32; 5]>]) -> PatchNormal {
        let mut acc = NormalAccumulator::new(frames[0].len());
        for (k, f) in frames.iter().enumerate() {
            acc.push(f, 0.01 * (1.0 + (k % 3) as f32));
        }
        acc.finish().unwrap()
    }

    #[test]
    fn a_patch_that_stops_moving_where_it_always_moves_scores_high() {
        // 8 patches; patch 0 always moves (log_motion around 0), the others never (around -6).
        let normal_frame = |j: usize| -> Vec<[f32; 5]> {
            (0..8)
                .map(|p| {
                    let wobble = if j.is_multiple_of(2) { 0.2 } else { -0.2 };
                    let m = if p == 0 { wobble } else { -6.0 + wobble / 10.0 };
                    [-3.0 + wobble, m, 0.1, 0.2, 0.3]
                })
                .collect()
        };
        let normal = normal_of(&(0..20).map(normal_frame).collect::<Vec<_>>());
        assert_eq!(normal.frames, 20);
        let usual = normal.patch_score(&normal_frame(0));
        let mut frozen = normal_frame(0);
        frozen[0][1] = -6.0;
        let mut brighter = normal_frame(0);
        for p in &mut brighter {
            p[2] += 0.5;
            p[3] += 0.5;
            p[4] += 0.5;
        }
        assert!(usual < 2.0, "{usual}");
        assert!(
            normal.patch_score(&frozen) > 10.0 * usual.max(0.1),
            "{}",
            normal.patch_score(&frozen)
        );
        assert!(normal.patch_score(&brighter) > 10.0 * usual.max(0.1));
        // The frame's anomaly: about 0 for a frame like the footage, high when the patches
        // are unusual, and high when only the frame's prediction error is. (Footage with
        // noise in every patch, as real footage has: the wobble above leaves many patches
        // exactly at their median, whose patch scores of ~0 spread the log widely.)
        let noisy = |j: usize| -> Vec<[f32; 5]> {
            (0..8)
                .map(|p| {
                    let n = |k: usize| ((j * 7 + p * 13 + k * 5) % 11) as f32 / 11.0 - 0.5;
                    [-3.0 + n(0), -2.0 + n(1), 0.1 + 0.1 * n(2), 0.2, 0.3]
                })
                .collect()
        };
        let frames: Vec<_> = (0..200).map(noisy).collect();
        let normal = normal_of(&frames);
        let typical: Vec<f32> = (0..20).map(|j| normal.score(&noisy(j), 0.02)).collect();
        let most = typical.iter().copied().fold(f32::MIN, f32::max);
        assert!(typical.iter().all(|t| t.abs() < 3.0), "{typical:?}");
        let mut frozen = noisy(0);
        frozen[0][1] = -6.0;
        assert!(
            normal.score(&frozen, 0.02) > most + 3.0,
            "{}",
            normal.score(&frozen, 0.02)
        );
        assert!(normal.score(&noisy(0), 2.0) > most + 3.0);
        // A version-1 normal (no frame statistics) gives the patch score.
        let v1 = PatchNormal {
            version: 1,
            frame: None,
            ..normal.clone()
        };
        assert_eq!(v1.score(&frozen, 0.02), normal.patch_score(&frozen));
    }

    #[test]
    fn parse_round_trips_and_refuses_the_wrong_shape() {
        let normal = normal_of(&[vec![[0.0; 5]; 4], vec![[1.0; 5]; 4]]);
        let raw = serde_json::to_string(&normal).unwrap();
        assert_eq!(PatchNormal::parse(&raw, 4).unwrap(), normal);
        assert!(PatchNormal::parse(&raw, 64)
            .unwrap_err()
            .contains("64 patches"));
        assert!(PatchNormal::parse("{}", 4).is_err());
        let mut no_frame = normal.clone();
        no_frame.frame = None;
        let raw = serde_json::to_string(&no_frame).unwrap();
        assert!(PatchNormal::parse(&raw, 4)
            .unwrap_err()
            .contains("without `frame`"));
        no_frame.version = 1;
        let raw = serde_json::to_string(&no_frame).unwrap();
        assert_eq!(PatchNormal::parse(&raw, 4).unwrap(), no_frame);
        // spreads keep their floors: a constant feature is not a zero-width normal
        let constant = normal_of(&[vec![[2.0; 5]; 4], vec![[2.0; 5]; 4]]);
        assert!((constant.std[0][0] - FLOORS[0]).abs() < 0.01);
        assert!((constant.std[0][2] - FLOORS[2]).abs() < 0.01);
        assert!(
            (constant.mean[0][0] - 2.0).abs() < 0.03,
            "{}",
            constant.mean[0][0]
        );
    }

    #[test]
    fn median_and_spread_ignore_a_few_outlying_frames() {
        // 100 frames of a feature spread evenly over [-1, 1], then 3 frames of a jump (+3).
        let mut acc = NormalAccumulator::new(1);
        for j in 0..100 {
            let v = -1.0 + 2.0 * j as f32 / 99.0;
            acc.push(&[[v - 3.0, v - 3.0, v, v, v]], (v - 3.0).exp());
        }
        let clean = acc.finish().unwrap();
        for _ in 0..3 {
            acc.push(&[[3.0, 3.0, 2.9, 2.9, 2.9]], 20.0);
        }
        let n = acc.finish().unwrap();
        assert_eq!(n.frames, 103);
        // uniform on [-1, 1]: median 0, IQR 1 -> sigma 1/1.349
        assert!(n.mean[0][2].abs() < 0.05, "{}", n.mean[0][2]);
        let sigma = (1.0f32 / 1.349).hypot(FLOORS[2]);
        assert!(
            (clean.std[0][2] - sigma).abs() < 0.03,
            "{}",
            clean.std[0][2]
        );
        assert!(
            (n.std[0][2] - clean.std[0][2]).abs() < 0.05,
            "{} vs {}",
            n.std[0][2],
            clean.std[0][2]
        );
        assert!((n.mean[0][0] + 3.0).abs() < 0.06, "{}", n.mean[0][0]);
        // ln(surprise) was spread evenly over [-4, -2]: median -3, spread 1/1.349 (+ floor).
        let f = n.frame.unwrap();
        assert!(
            (f.log_surprise[0] + 3.0).abs() < 0.1,
            "{:?}",
            f.log_surprise
        );
        assert!(
            (f.log_surprise[1] - (1.0f32 / 1.349).hypot(FRAME_FLOOR)).abs() < 0.05,
            "{:?}",
            f.log_surprise
        );
    }

    #[test]
    fn calibration_frames_stay_bounded_and_evenly_spread() {
        let mut acc = NormalAccumulator::new(2);
        for j in 0..10_000u32 {
            acc.push(&[[j as f32, 0.0, 0.0, 0.0, 0.0]; 2], 0.1);
        }
        assert!(acc.kept.len() <= CALIBRATION_FRAMES);
        assert!(acc.kept.len() > CALIBRATION_FRAMES / 2);
        let first: Vec<f32> = acc.kept.iter().map(|f| f[0][0]).collect();
        let step = first[1] - first[0];
        assert!(first.windows(2).all(|w| w[1] - w[0] == step), "even steps");
        assert!(first[0] == 0.0 && *first.last().unwrap() > 10_000.0 - 2.0 * step);
    }
}
