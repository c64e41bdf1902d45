//! Training a classification head on the frozen backbone's per-frame embeddings, in Rust.
//!
//! ```text
//! data (folders / CSV) ─▶ split by source file ─▶ features (cached pipeline run)
//!   ─▶ standardize ─▶ head (softmax / MLP, AdamW, early stopping) ─▶ metrics ─▶ export
//! ```

pub mod data;
pub mod features;
pub mod head;
pub mod metrics;
pub mod optim;
pub mod rng;

use ndarray::{Array2, Axis};

use data::Dataset;
use features::{slice_clip, Extracted};

/// Labelled feature rows, one per frame, with the clip each came from.
#[derive(Debug, Clone)]
pub struct Rows {
    /// [rows, D].
    pub x: Array2<f64>,
    pub y: Vec<usize>,
    /// Index into the dataset's clips.
    pub clip: Vec<usize>,
}

/// The frames of the clips `indices` as rows; clips that could not be read or have no
/// frames in their range are returned as (clip index, reason).
pub fn gather(
    dataset: &Dataset,
    indices: &[usize],
    extracted: &Extracted,
    skip_frames: usize,
    lag: usize,
) -> (Rows, Vec<(usize, String)>) {
    let mut parts = Vec::new();
    let mut y = Vec::new();
    let mut clip = Vec::new();
    let mut problems = Vec::new();
    for &ci in indices {
        let c = &dataset.clips[ci];
        match extracted.sources.get(&c.path) {
            Some(Ok(f)) => {
                let rows = slice_clip(f, c.start_s, c.end_s, skip_frames);
                if rows.is_empty() {
                    problems.push((
                        ci,
                        format!(
                            "no frames in its range after skipping the first {skip_frames} (the file has {} sampled frames)",
                            f.times_s.len()
                        ),
                    ));
                    continue;
                }
                parts.push(with_delta(&f.x, &rows, lag));
                y.extend(std::iter::repeat_n(c.label, rows.len()));
                clip.extend(std::iter::repeat_n(ci, rows.len()));
            }
            Some(Err(e)) => problems.push((ci, e.clone())),
            None => problems.push((ci, "no features".into())),
        }
    }
    let dim = extracted
        .sources
        .values()
        .find_map(|r| r.as_ref().ok().map(|f| f.x.ncols()))
        .unwrap_or(0)
        * if lag > 0 { 2 } else { 1 };
    let x = if parts.is_empty() {
        Array2::zeros((0, dim))
    } else {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).expect("same width")
    };
    (Rows { x, y, clip }, problems)
}

/// The rows `rows` of `x` (as f64); with `lag` > 0 each row is followed by its difference
/// to the row `lag` frames earlier (the first row where there is none): [e_t, e_t − e_{t−lag}],
/// what the exported graph computes inside each window.
pub fn with_delta(x: &Array2<f32>, rows: &[usize], lag: usize) -> Array2<f64> {
    let cur = x.select(Axis(0), rows).mapv(f64::from);
    if lag == 0 {
        return cur;
    }
    let prev_rows: Vec<usize> = rows.iter().map(|&i| i.saturating_sub(lag)).collect();
    let prev = x.select(Axis(0), &prev_rows).mapv(f64::from);
    let delta = &cur - &prev;
    ndarray::concatenate(Axis(1), &[cur.view(), delta.view()]).expect("same rows")
}

/// Per-clip predictions: the argmax of the mean logits over each clip's frames.
/// Returns (truth, predicted) per clip, in order of first appearance.
pub fn clip_predictions(rows: &Rows, logits: &Array2<f64>) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = Vec::new();
    let mut sums: std::collections::BTreeMap<usize, (ndarray::Array1<f64>, usize)> =
        Default::default();
    for (i, &c) in rows.clip.iter().enumerate() {
        let e = sums.entry(c).or_insert_with(|| {
            order.push(c);
            (ndarray::Array1::zeros(logits.ncols()), rows.y[i])
        });
        e.0 += &logits.row(i);
    }
    let mut truth = Vec::new();
    let mut pred = Vec::new();
    for c in order {
        let (s, y) = &sums[&c];
        truth.push(*y);
        pred.push(optim::predictions(&s.view().insert_axis(Axis(0)).to_owned())[0]);
    }
    (truth, pred)
}
