//! One batch of windows through the model, as every command that runs one needs it: the
//! windows stacked into [B, T, N, C], one `run`, and per owned step the next-frame error,
//! the embedding and the label probabilities. `analyze`, `predict` and `bench` all call
//! [`run_windows`]; what they do with the results (shots, an image, a count) is theirs.

use ndarray::{s, Array4};
use rayon::prelude::*;

use super::{Model, ModelError, ModelOutput};
use crate::score::{self, FrameMeta, Window};
use crate::shots::BoundaryProbs;

/// The results of one owned step of one window.
#[derive(Debug, Clone)]
pub struct StepScore {
    /// Index of the window in the batch.
    pub window: usize,
    /// Position of the step in its window (0..T).
    pub position: usize,
    /// The frame at that position: the embedding and label are for it.
    pub frame: FrameMeta,
    /// Mean squared error of the prediction of the next sampled frame, when there is one.
    pub next_error: Option<f32>,
    /// The next sampled frame's `anomaly` against the model's per-camera normal
    /// ([`crate::normal`]), when the model has one and there is a next frame.
    pub next_anomaly: Option<f32>,
    /// [D].
    pub embedding: Vec<f32>,
    /// Softmax of the logits, when the model has a head.
    pub probs: Option<Vec<f32>>,
    /// Frames after this one that repeat its picture (they take its results).
    pub repeats: Vec<FrameMeta>,
}

/// What one batch gave: the raw outputs and the owned steps in (window, step) order.
#[derive(Debug, Clone)]
pub struct BatchScores {
    pub output: ModelOutput,
    pub steps: Vec<StepScore>,
    /// Contract v2: (frame position, probabilities) for the positions whose `boundary`
    /// output these windows own ([`Window::boundary_steps`]), in frame order.
    pub boundary: Vec<(u64, BoundaryProbs)>,
}

/// Runs `windows` through `model` in one call and scores their owned steps.
pub fn run_windows(model: &mut Model, windows: &[Window]) -> Result<BatchScores, ModelError> {
    let contract = model.contract();
    let (t, n, c) = (
        contract.context_frames,
        contract.num_patches(),
        contract.patch_dim(),
    );
    let mut data = Vec::with_capacity(windows.len() * t * n * c);
    for w in windows {
        data.extend_from_slice(&w.input);
    }
    let input = Array4::from_shape_vec((windows.len(), t, n, c), data)
        .map_err(|e| ModelError::Run(format!("windows are not [B, T, N, C]: {e}")))?;
    let normal = contract.normal.clone(); // an Arc: no copy of the normal
    let normal = normal.as_ref();
    let frame_len = n * c;
    let output = model.run(input.view())?;
    let steps = windows
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, w)| {
            let output = &output;
            w.steps.iter().map(move |st| {
                let p = st.position;
                let pred = output.next_patches.slice(s![i, p, .., ..]);
                let pred = pred.as_slice().expect("standard layout");
                let next_error = st
                    .target
                    .as_ref()
                    .map(|(_, actual)| score::mean_squared_error(pred, actual));
                let next_anomaly = normal.zip(st.target.as_ref()).zip(next_error).map(
                    |((normal, (_, actual)), error)| {
                        let current = &w.input[p * frame_len..(p + 1) * frame_len];
                        normal.score(&crate::normal::features(pred, actual, current, c), error)
                    },
                );
                StepScore {
                    window: i,
                    position: p,
                    frame: st.frame,
                    next_error,
                    next_anomaly,
                    embedding: output.embeddings.slice(s![i, p, ..]).to_vec(),
                    probs: output
                        .logits
                        .as_ref()
                        .map(|l| score::softmax(&l.slice(s![i, p, ..]).to_vec())),
                    repeats: st.repeats.clone(),
                }
            })
        })
        .collect();
    let boundary = output.boundary.as_ref().map_or_else(Vec::new, |b| {
        windows
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                w.boundary_steps.iter().map(move |(p, f)| {
                    let probs = BoundaryProbs {
                        cut: b[[i, *p, 0]],
                        gradual: b[[i, *p, 1]],
                    };
                    (f.position, probs)
                })
            })
            .collect()
    });
    Ok(BatchScores {
        output,
        steps,
        boundary,
    })
}
