//! The training loop on candle: seeded mini-batches (ChaCha8), candle's AdamW, early
//! stopping on the validation accuracy, the best checkpoint kept. The trainable model is the
//! head, and with `--unfreeze N` also copies of the last N temporal blocks of the backbone,
//! which then run on every batch from the cached input of the first of them.
//!
//! Determinism: the batch order and the initial weights come from one seeded generator;
//! candle's CPU kernels do not split a reduction across threads, so one seed gives the
//! same weights on every run (a test checks it).

use std::collections::BTreeMap;

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::backbone::{self, Backbone, Block};
use super::head::{
    balanced_weights, predictions, weighted_cross_entropy, Head, HeadKind, Standardizer,
    StandardizerFit,
};
use super::store::Matrix;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    pub head: HeadKind,
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Learning rate of the unfrozen backbone blocks (no weight decay on them).
    pub backbone_learning_rate: f64,
    pub unfreeze: usize,
    pub temporal_lag: usize,
    /// The camera-motion features (`train::motion`) appended to each frame's embedding.
    pub motion_features: bool,
    /// Which of embeddings and motion features the head uses (with `motion_features`).
    pub head_inputs: HeadInputs,
    pub seed: u64,
}

/// What the head is trained on, when the camera-motion features are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadInputs {
    Both,
    Embeddings,
    Motion,
}

impl HeadInputs {
    pub fn name(self) -> &'static str {
        match self {
            HeadInputs::Both => "both",
            HeadInputs::Embeddings => "embeddings",
            HeadInputs::Motion => "motion",
        }
    }
}

/// One epoch's numbers (`metrics.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

/// The inputs of one split.
pub enum Inputs {
    /// Frozen backbone: one feature row per frame ([e_t] or [e_t, e_t − e_{t−lag}], the
    /// latter from e_t's own window), [n, F].
    Rows(Matrix),
    /// Unfrozen: per window the input of the first trainable block [W, T·D], and per
    /// frame its window and position.
    Windows {
        h: Matrix,
        t: usize,
        d: usize,
        window: Vec<u32>,
        position: Vec<u32>,
    },
}

pub struct Split {
    pub inputs: Inputs,
    pub y: Vec<usize>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Bytes of its inputs held in memory.
    pub fn resident_bytes(&self) -> usize {
        match &self.inputs {
            Inputs::Rows(x) => x.resident_bytes(),
            Inputs::Windows { h, .. } => h.resident_bytes(),
        }
    }
}

/// The trainable model: the head on standardized features, and the unfrozen blocks.
pub struct Classifier<'a> {
    pub head: Head,
    pub standardizer: Standardizer,
    pub lag: usize,
    backbone: Option<&'a Backbone>,
    /// Index of the first trainable temporal block.
    pub first: usize,
    blocks: Vec<Block>,
    /// (ONNX initializer name, variable) of the trainable blocks.
    block_vars: Vec<(String, Var)>,
    t: usize,
    /// Camera-motion values at the end of each position's vector (0: none).
    motion: usize,
}

impl<'a> Classifier<'a> {
    /// Features [n, F] of the frames (`window`, `position`) from embeddings [W, T, D].
    fn features(&self, emb: &Tensor, window: &[u32], position: &[u32]) -> Result<Tensor> {
        let (w, t, d) = emb.dims3()?;
        let flat = emb.reshape((w * t, d))?;
        let at = |p: &dyn Fn(u32) -> u32| -> Result<Tensor> {
            let idx: Vec<u32> = window
                .iter()
                .zip(position)
                .map(|(&w, &pos)| w * t as u32 + p(pos))
                .collect();
            flat.index_select(&Tensor::from_vec(idx, window.len(), &Device::Cpu)?, 0)
        };
        let cur = at(&|p| p)?;
        if self.lag == 0 {
            return Ok(cur);
        }
        let lag = self.lag as u32;
        let prev = at(&|p| p.saturating_sub(lag))?;
        Tensor::cat(&[&cur, &(&cur - prev)?], 1)
    }

    /// Embeddings [W, T, D(+motion)] from the windows' block inputs (+ motion values,
    /// passed through).
    fn embeddings(&self, h: &Tensor) -> Result<Tensor> {
        let backbone = self.backbone.expect("windows need the backbone");
        let mask = Backbone::causal_mask(self.t)?;
        if self.motion == 0 {
            return backbone.embeddings_from(h, &self.blocks, &mask);
        }
        let d = h.dim(2)? - self.motion;
        let e = backbone.embeddings_from(&h.narrow(2, 0, d)?.contiguous()?, &self.blocks, &mask)?;
        Tensor::cat(&[&e, &h.narrow(2, d, self.motion)?], 2)
    }

    /// Raw (unstandardized) features of a split's frames `rows`.
    fn raw_features(&self, split: &Split, rows: &[usize]) -> Result<Tensor> {
        let read = |e: anyhow::Error| candle_core::Error::Msg(format!("{e:#}"));
        match &split.inputs {
            Inputs::Rows(x) => {
                let v = x.gather(rows).map_err(read)?;
                Tensor::from_vec(v, (rows.len(), x.cols()), &Device::Cpu)
            }
            Inputs::Windows {
                h,
                t,
                d,
                window,
                position,
            } => {
                // Only the windows these rows use, renumbered.
                let mut local: BTreeMap<u32, u32> = BTreeMap::new();
                for &r in rows {
                    let n = local.len() as u32;
                    local.entry(window[r]).or_insert(n);
                }
                let mut order = vec![0usize; local.len()];
                for (&w, &l) in &local {
                    order[l as usize] = w as usize;
                }
                let v = h.gather(&order).map_err(read)?;
                let hb = Tensor::from_vec(v, (order.len(), *t, *d), &Device::Cpu)?;
                let emb = self.embeddings(&hb)?;
                let wl: Vec<u32> = rows.iter().map(|&r| local[&window[r]]).collect();
                let pl: Vec<u32> = rows.iter().map(|&r| position[r]).collect();
                self.features(&emb, &wl, &pl)
            }
        }
    }

    /// Logits [n, K] of a split's frames `rows`.
    pub fn logits(&self, split: &Split, rows: &[usize]) -> Result<Tensor> {
        let x = self.raw_features(split, rows)?;
        self.head.forward(&self.standardizer.apply(&x)?)
    }

    /// Logits [n, K] of all of a split's frames, computed in chunks (no gradient kept).
    pub fn logits_all(&self, split: &Split) -> Result<Tensor> {
        let mut parts = Vec::new();
        for rows in chunks(split.len()) {
            parts.push(self.logits(split, &rows)?.detach());
        }
        if parts.is_empty() {
            return Tensor::zeros(
                (0, self.head.classes()),
                candle_core::DType::F32,
                &Device::Cpu,
            );
        }
        Tensor::cat(&parts, 0)
    }

    pub fn logits_array(&self, split: &Split) -> Result<Array2<f32>> {
        let l = self.logits_all(split)?;
        let (n, k) = l.dims2()?;
        Ok(Array2::from_shape_vec((n, k), l.flatten_all()?.to_vec1::<f32>()?).expect("[n, K]"))
    }

    fn vars(&self) -> Vec<Var> {
        self.head
            .vars()
            .into_iter()
            .chain(self.block_vars.iter().map(|(_, v)| v.clone()))
            .collect()
    }

    /// The trained block weights by ONNX initializer name (empty when frozen).
    pub fn block_weights(&self) -> Result<BTreeMap<String, Vec<f32>>> {
        self.block_vars
            .iter()
            .map(|(name, v)| Ok((name.clone(), backbone::to_vec(v.as_tensor())?)))
            .collect()
    }
}

/// Builds the classifier: copies of the blocks from `first` on as variables, the
/// standardizer fitted on the training frames' initial features, the seeded head.
pub fn classifier<'a>(
    config: &TrainConfig,
    classes: usize,
    backbone: Option<&'a Backbone>,
    train: &Split,
    t: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Classifier<'a>> {
    let mut blocks = Vec::new();
    let mut block_vars = Vec::new();
    let first = backbone.map_or(0, |b| b.temporal.len().saturating_sub(config.unfreeze));
    if let (Some(b), true) = (backbone, config.unfreeze > 0) {
        for (i, blk) in b.temporal.iter().enumerate().skip(first) {
            let (copy, vars) = blk.to_vars()?;
            blocks.push(copy);
            block_vars.extend(
                vars.into_iter()
                    .map(|(name, v)| (format!("{}temporal.{i}.{name}", b.prefix), v)),
            );
        }
    }
    let mut c = Classifier {
        head: Head::init(config.head, 1, classes, rng)?,
        standardizer: Standardizer::identity(1),
        lag: config.temporal_lag,
        backbone,
        first,
        blocks,
        block_vars,
        t,
        motion: if config.motion_features {
            super::motion::FEATURES
        } else {
            0
        },
    };
    let mut fit = StandardizerFit::default();
    for rows in chunks(train.len()) {
        let x = c.raw_features(train, &rows)?.detach();
        let (n, f) = x.dims2()?;
        fit.add(
            Array2::from_shape_vec((n, f), x.flatten_all()?.to_vec1::<f32>()?)
                .expect("[n, F]")
                .view(),
        );
    }
    c.standardizer = fit.finish();
    let f = c.standardizer.mean.len();
    if c.motion > 0 {
        // Per position [embedding, motion]; with a lag [that, its change].
        let per = if c.lag > 0 { f / 2 } else { f };
        for (j, k) in c.standardizer.keep.iter_mut().enumerate() {
            let motion = j % per >= per - c.motion;
            let used = match config.head_inputs {
                HeadInputs::Both => true,
                HeadInputs::Embeddings => !motion,
                HeadInputs::Motion => motion,
            };
            *k = if used { 1.0 } else { 0.0 };
        }
    }
    c.head = Head::init(config.head, f, classes, rng)?;
    Ok(c)
}

/// Rows per chunk where a whole split is read (standardization, evaluation).
const CHUNK_ROWS: usize = 4096;

fn chunks(n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .step_by(CHUNK_ROWS)
        .map(|a| (a..(a + CHUNK_ROWS).min(n)).collect())
        .collect()
}

pub struct Trained<'a> {
    pub classifier: Classifier<'a>,
    pub history: Vec<EpochMetrics>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    pub stopped_early: bool,
}

/// Mean loss and accuracy of the classifier on a split.
pub fn evaluate(c: &Classifier<'_>, split: &Split, class_weight: &[f64]) -> Result<(f64, f64)> {
    let logits = c.logits_all(split)?;
    let loss = weighted_cross_entropy(&logits, &split.y, class_weight)?.to_scalar::<f32>()?;
    let (n, k) = logits.dims2()?;
    let l =
        Array2::from_shape_vec((n, k), logits.flatten_all()?.to_vec1::<f32>()?).expect("[n, K]");
    let correct = predictions(&l)
        .iter()
        .zip(&split.y)
        .filter(|(p, y)| p == y)
        .count();
    Ok((
        f64::from(loss),
        correct as f64 / split.y.len().max(1) as f64,
    ))
}

/// Mini-batches of training frame indices: frames in random order (frozen), or whole
/// windows in random order, as many as hold about `batch_size` frames (unfrozen: the
/// trainable blocks then run once per window, not once per frame).
fn batches(split: &Split, batch_size: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    match &split.inputs {
        Inputs::Rows(_) => {
            let mut order: Vec<usize> = (0..split.len()).collect();
            order.shuffle(rng);
            order
                .chunks(batch_size.max(1))
                .map(<[usize]>::to_vec)
                .collect()
        }
        Inputs::Windows { window, .. } => {
            let mut by_window: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for (r, &w) in window.iter().enumerate() {
                by_window.entry(w).or_default().push(r);
            }
            let mut groups: Vec<Vec<usize>> = by_window.into_values().collect();
            groups.shuffle(rng);
            let mut out: Vec<Vec<usize>> = Vec::new();
            let mut cur = Vec::new();
            for g in groups {
                cur.extend(g);
                if cur.len() >= batch_size.max(1) {
                    out.push(std::mem::take(&mut cur));
                }
            }
            if !cur.is_empty() {
                out.push(cur);
            }
            out
        }
    }
}

fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_tensor().copy()).collect()
}

pub fn train<'a>(
    config: &TrainConfig,
    classes: usize,
    backbone: Option<&'a Backbone>,
    t: usize,
    train: &Split,
    val: Option<&Split>,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Trained<'a>> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let c = classifier(config, classes, backbone, train, t, &mut rng)?;
    let class_weight = balanced_weights(&train.y, classes);
    let mut head_opt = AdamW::new(
        c.head.vars(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let mut block_opt = AdamW::new(
        c.block_vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: config.backbone_learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let vars = c.vars();
    let mut best = ((f64::INFINITY, f64::NEG_INFINITY), snapshot(&vars)?, 0usize);
    let mut history = Vec::new();
    let mut stopped_early = false;
    for epoch in 1..=config.epochs {
        let mut loss_sum = 0.0;
        let mut n = 0;
        for rows in batches(train, config.batch_size, &mut rng) {
            let logits = c.logits(train, &rows)?;
            let yb: Vec<usize> = rows.iter().map(|&i| train.y[i]).collect();
            let loss = weighted_cross_entropy(&logits, &yb, &class_weight)?;
            let grads = loss.backward()?;
            head_opt.step(&grads)?;
            block_opt.step(&grads)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            n += 1;
        }
        let train_loss = loss_sum / f64::from(n.max(1));
        let (val_loss, val_accuracy) = match val {
            Some(v) => {
                let (l, a) = evaluate(&c, v, &class_weight)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let m = EpochMetrics {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
        };
        on_epoch(&m);
        history.push(m);
        // The kept epoch: best validation accuracy, ties broken by the lower validation
        // loss. (On the small sets this was measured on, the validation loss grows from
        // the first epochs on, as the head grows confident, while accuracy keeps rising;
        // stopping on the loss kept epoch 2–3.)
        match (val_loss, val_accuracy) {
            (Some(l), Some(a)) => {
                if a > best.0 .1 || (a == best.0 .1 && l < best.0 .0) {
                    best = ((l, a), snapshot(&vars)?, epoch);
                } else if epoch - best.2 >= config.patience {
                    stopped_early = true;
                    break;
                }
            }
            _ => best = ((train_loss, 0.0), Vec::new(), epoch),
        }
    }
    if val.is_some() {
        for (v, t) in vars.iter().zip(&best.1) {
            v.set(t)?;
        }
    }
    Ok(Trained {
        classifier: c,
        history,
        best_epoch: best.2,
        stopped_early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn separable(n: usize, seed: u64) -> Split {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let x: Vec<f32> = (0..n * 6)
            .map(|k| {
                let (i, j) = (k / 6, k % 6);
                let centre = if j == y[i] { 2.0 } else { 0.0 };
                centre + 0.3 * (rng.random::<f32>() - 0.5)
            })
            .collect();
        Split {
            inputs: Inputs::Rows(Matrix::in_memory(n, 6, x)),
            y,
        }
    }

    fn config(head: HeadKind) -> TrainConfig {
        TrainConfig {
            head,
            epochs: 200,
            patience: 20,
            batch_size: 8,
            learning_rate: 0.01,
            weight_decay: 0.0,
            backbone_learning_rate: 0.001,
            unfreeze: 0,
            temporal_lag: 0,
            motion_features: false,
            head_inputs: HeadInputs::Both,
            seed: 4,
        }
    }

    #[test]
    fn both_heads_learn_a_separable_problem_and_one_seed_gives_one_head() {
        let (tr, va) = (separable(60, 1), separable(30, 2));
        for kind in [HeadKind::Softmax, HeadKind::Mlp { hidden: 8 }] {
            let a = train(&config(kind), 3, None, 1, &tr, Some(&va), |_| {}).unwrap();
            let (_, acc) = evaluate(&a.classifier, &va, &[1.0; 3]).unwrap();
            assert!(acc > 0.95, "{kind:?}: {acc}");
            let b = train(&config(kind), 3, None, 1, &tr, Some(&va), |_| {}).unwrap();
            assert_eq!(a.history, b.history);
            let la = a
                .classifier
                .head
                .folded(&a.classifier.standardizer)
                .unwrap();
            let lb = b
                .classifier
                .head
                .folded(&b.classifier.standardizer)
                .unwrap();
            assert_eq!(la, lb);
            assert!(a.best_epoch >= 1 && a.best_epoch <= a.history.len());
        }
    }
}
