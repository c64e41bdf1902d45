//! AdamW and the training loop: seeded mini-batches, early stopping on the validation
//! loss, the best checkpoint kept. Everything runs in a fixed order on one thread (the
//! data is small; parallel float reductions would make the result depend on scheduling),
//! so one seed gives the same head bit for bit.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::head::{balanced_weights, Head, HeadKind};
use super::rng::SplitMix64;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    pub head: HeadKind,
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

/// One epoch's numbers (`metrics.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Trained {
    pub head: Head,
    pub history: Vec<EpochMetrics>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    pub stopped_early: bool,
}

struct AdamW {
    m: Head,
    v: Head,
    t: i32,
    lr: f64,
    weight_decay: f64,
}

impl AdamW {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(head: &Head, lr: f64, weight_decay: f64) -> Self {
        AdamW {
            m: head.zeros_like(),
            v: head.zeros_like(),
            t: 0,
            lr,
            weight_decay,
        }
    }

    /// One step; decoupled weight decay on the weights, not on the biases.
    fn step(&mut self, head: &mut Head, grads: &Head) {
        self.t += 1;
        let c1 = 1.0 - Self::BETA1.powi(self.t);
        let c2 = 1.0 - Self::BETA2.powi(self.t);
        let (lr, wd) = (self.lr, self.weight_decay);
        let update = |p: &mut f64, g: &f64, m: &mut f64, v: &mut f64, decay: f64| {
            *m = Self::BETA1 * *m + (1.0 - Self::BETA1) * g;
            *v = Self::BETA2 * *v + (1.0 - Self::BETA2) * g * g;
            let mh = *m / c1;
            let vh = *v / c2;
            *p -= lr * (mh / (vh.sqrt() + Self::EPS) + decay * *p);
        };
        for (li, layer) in head.layers.iter_mut().enumerate() {
            let (m, v) = (&mut self.m.layers[li], &mut self.v.layers[li]);
            Zip::from(&mut layer.w)
                .and(&grads.layers[li].w)
                .and(&mut m.w)
                .and(&mut v.w)
                .for_each(|p, g, m, v| update(p, g, m, v, wd));
            Zip::from(&mut layer.b)
                .and(&grads.layers[li].b)
                .and(&mut m.b)
                .and(&mut v.b)
                .for_each(|p, g, m, v| update(p, g, m, v, 0.0));
        }
    }
}

/// Labelled rows (standardized features).
pub struct Split<'a> {
    pub x: ArrayView2<'a, f64>,
    pub y: &'a [usize],
}

/// Loss (class-balanced) and accuracy of `head` on `split`.
pub fn evaluate(head: &Head, split: &Split<'_>, class_weight: &[f64]) -> (f64, f64) {
    let (loss, _) = head.loss_and_grads(split.x, split.y, class_weight);
    let logits = head.logits(split.x);
    let correct = predictions(&logits)
        .iter()
        .zip(split.y)
        .filter(|(p, y)| p == y)
        .count();
    (loss, correct as f64 / split.y.len().max(1) as f64)
}

pub fn predictions(logits: &Array2<f64>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
                    if v > best.1 {
                        (k, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

/// Trains a head; with a validation split, stops after `patience` epochs without a better
/// validation loss and returns the best epoch's weights.
pub fn train(
    config: &TrainConfig,
    classes: usize,
    train: &Split<'_>,
    val: Option<&Split<'_>>,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Trained {
    let mut rng = SplitMix64::new(config.seed);
    let mut head = Head::init(config.head, train.x.ncols(), classes, &mut rng);
    let class_weight = balanced_weights(train.y, classes);
    let mut opt = AdamW::new(&head, config.learning_rate, config.weight_decay);
    let mut order: Vec<usize> = (0..train.y.len()).collect();
    let mut best = (f64::INFINITY, head.clone(), 0usize);
    let mut history = Vec::new();
    let mut stopped_early = false;
    for epoch in 1..=config.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(config.batch_size.max(1)) {
            let xb = train.x.select(Axis(0), chunk);
            let yb: Vec<usize> = chunk.iter().map(|&i| train.y[i]).collect();
            let (loss, grads) = head.loss_and_grads(xb.view(), &yb, &class_weight);
            opt.step(&mut head, &grads);
            loss_sum += loss;
            batches += 1;
        }
        let train_loss = loss_sum / batches.max(1) as f64;
        let (val_loss, val_accuracy) = match val {
            Some(v) => {
                let (l, a) = evaluate(&head, v, &class_weight);
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
        let score = val_loss.unwrap_or(train_loss);
        if score < best.0 {
            best = (score, head.clone(), epoch);
        } else if val.is_some() && epoch - best.2 >= config.patience {
            stopped_early = true;
            break;
        }
    }
    if val.is_none() {
        // Without a validation split, keep the last weights.
        best.1 = head;
        best.2 = history.len();
    }
    Trained {
        head: best.1,
        history,
        best_epoch: best.2,
        stopped_early,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn separable(n: usize) -> (Array2<f64>, Vec<usize>) {
        let mut rng = SplitMix64::new(2);
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let x = Array2::from_shape_fn((n, 6), |(i, j)| {
            let centre = if j == y[i] { 2.0 } else { 0.0 };
            centre + 0.3 * (rng.next_f64() - 0.5)
        });
        (x, y)
    }

    fn config(head: HeadKind) -> TrainConfig {
        TrainConfig {
            head,
            epochs: 200,
            patience: 20,
            batch_size: 8,
            learning_rate: 0.01,
            weight_decay: 0.0,
            seed: 9,
        }
    }

    #[test]
    fn overfits_a_tiny_separable_set() {
        let (x, y) = separable(30);
        for head in [HeadKind::Softmax, HeadKind::Mlp { hidden: 8 }] {
            let split = Split { x: x.view(), y: &y };
            let t = train(&config(head), 3, &split, None, |_| {});
            let (_, acc) = evaluate(&t.head, &split, &[1.0; 3]);
            assert_eq!(acc, 1.0, "{head:?}");
        }
    }

    #[test]
    fn same_seed_same_weights_bit_for_bit() {
        let (x, y) = separable(40);
        let split = Split { x: x.view(), y: &y };
        let val = Split {
            x: x.slice(ndarray::s![..10, ..]),
            y: &y[..10],
        };
        let run = || {
            train(
                &config(HeadKind::Mlp { hidden: 4 }),
                3,
                &split,
                Some(&val),
                |_| {},
            )
        };
        let (a, b) = (run(), run());
        let bits = |h: &Head| -> Vec<u64> {
            h.layers
                .iter()
                .flat_map(|l| l.w.iter().chain(l.b.iter()).map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&a.head), bits(&b.head));
        assert_eq!(a.best_epoch, b.best_epoch);
    }
}
