//! The classification head: dense layers with ReLU between them (one layer: softmax
//! regression; two: an MLP with one hidden layer), the class-balanced cross-entropy loss
//! and its gradients, written out by hand. Training math runs in f64 (small data, exact
//! gradient checks); the exported head is f32.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::rng::SplitMix64;
use crate::onnx_graph::DenseLayer;

/// Which head to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// Softmax regression: logits = x·W + b.
    Softmax,
    /// One hidden ReLU layer of `hidden` units.
    Mlp { hidden: usize },
}

/// Per-feature standardization, computed on the training set.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Array1<f64>,
    pub std: Array1<f64>,
}

impl Standardizer {
    pub fn fit(x: ArrayView2<'_, f64>) -> Self {
        let mean = x.mean_axis(Axis(0)).expect("at least one row");
        let std = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        Standardizer { mean, std }
    }

    pub fn apply(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        (&x - &self.mean) / &self.std
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// [inputs, outputs].
    pub w: Array2<f64>,
    pub b: Array1<f64>,
}

/// A head's parameters (on standardized inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub layers: Vec<Layer>,
}

/// Gradients with the same shapes as [`Head`].
pub type Grads = Head;

impl Head {
    /// Seeded initialization: uniform ±sqrt(6 / fan_in) (He) for hidden layers,
    /// ±sqrt(1 / fan_in) for the output layer, zero biases.
    pub fn init(kind: HeadKind, inputs: usize, classes: usize, rng: &mut SplitMix64) -> Head {
        let sizes = match kind {
            HeadKind::Softmax => vec![inputs, classes],
            HeadKind::Mlp { hidden } => vec![inputs, hidden, classes],
        };
        let n = sizes.len() - 1;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let scale = if i + 1 == n { 1.0 } else { 6.0 } / s[0] as f64;
                let a = scale.sqrt();
                Layer {
                    w: Array2::from_shape_fn((s[0], s[1]), |_| (2.0 * rng.next_f64() - 1.0) * a),
                    b: Array1::zeros(s[1]),
                }
            })
            .collect();
        Head { layers }
    }

    pub fn zeros_like(&self) -> Head {
        Head {
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    w: Array2::zeros(l.w.raw_dim()),
                    b: Array1::zeros(l.b.raw_dim()),
                })
                .collect(),
        }
    }

    /// Logits [n, K] and the activations each layer saw.
    fn forward_cached(&self, x: ArrayView2<'_, f64>) -> (Array2<f64>, Vec<Array2<f64>>) {
        let mut acts = vec![x.to_owned()];
        let mut h = x.to_owned();
        for (i, l) in self.layers.iter().enumerate() {
            h = h.dot(&l.w) + &l.b;
            if i + 1 < self.layers.len() {
                h.mapv_inplace(|v| v.max(0.0));
                acts.push(h.clone());
            }
        }
        (h, acts)
    }

    pub fn logits(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.forward_cached(x).0
    }

    /// Mean class-weighted cross-entropy over the rows, and its gradient.
    /// `class_weight[k]` weighs rows of class k (class-balanced: n / (K · n_k)); the mean
    /// divides by the sum of the row weights.
    pub fn loss_and_grads(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[usize],
        class_weight: &[f64],
    ) -> (f64, Grads) {
        let (logits, acts) = self.forward_cached(x);
        let probs = softmax_rows(&logits);
        let total_w: f64 = y.iter().map(|&k| class_weight[k]).sum();
        let mut loss = 0.0;
        let mut d = probs.clone();
        for (i, &k) in y.iter().enumerate() {
            let w = class_weight[k] / total_w;
            loss -= w * probs[[i, k]].max(1e-300).ln();
            let mut row = d.row_mut(i);
            row[k] -= 1.0;
            row *= w;
        }
        let mut grads = self.zeros_like();
        for li in (0..self.layers.len()).rev() {
            let a = &acts[li];
            grads.layers[li].w = a.t().dot(&d);
            grads.layers[li].b = d.sum_axis(Axis(0));
            if li > 0 {
                let mut da = d.dot(&self.layers[li].w.t());
                da.zip_mut_with(a, |g, &act| {
                    if act <= 0.0 {
                        *g = 0.0
                    }
                });
                d = da;
            }
        }
        (loss, grads)
    }

    /// The head on raw (unstandardized) inputs, f32, as ONNX dense layers: the
    /// standardization is folded into the first layer (W' = W / std, b' = b − (mean/std)·W).
    pub fn folded(&self, standardizer: &Standardizer) -> Vec<DenseLayer> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (w, b) = if i == 0 {
                    let inv = standardizer.std.mapv(|s| 1.0 / s);
                    let w = &l.w * &inv.view().insert_axis(Axis(1));
                    let b = &l.b - &(&standardizer.mean * &inv).dot(&l.w);
                    (w, b)
                } else {
                    (l.w.clone(), l.b.clone())
                };
                DenseLayer {
                    inputs: w.nrows(),
                    outputs: w.ncols(),
                    weight: w.iter().map(|&v| v as f32).collect(),
                    bias: b.iter().map(|&v| v as f32).collect(),
                }
            })
            .collect()
    }
}

/// Logits of folded f32 layers on raw inputs: what ONNX Runtime computes from the
/// exported graph.
pub fn folded_logits(layers: &[DenseLayer], x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut h = x.to_owned();
    for (i, l) in layers.iter().enumerate() {
        let w = ArrayView2::from_shape((l.inputs, l.outputs), &l.weight).expect("shape");
        let b = ndarray::ArrayView1::from(&l.bias);
        h = h.dot(&w) + b;
        if i + 1 < layers.len() {
            h.mapv_inplace(|v| v.max(0.0));
        }
    }
    h
}

pub fn softmax_rows(logits: &Array2<f64>) -> Array2<f64> {
    let mut p = logits.clone();
    for mut row in p.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row /= s;
    }
    p
}

/// Class-balanced weights n / (K · n_k) (0 for an absent class).
pub fn balanced_weights(y: &[usize], classes: usize) -> Vec<f64> {
    let mut n = vec![0usize; classes];
    for &k in y {
        n[k] += 1;
    }
    n.iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                y.len() as f64 / (classes * c) as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rng: &mut SplitMix64, n: usize, d: usize) -> (Array2<f64>, Vec<usize>) {
        let x = Array2::from_shape_fn((n, d), |_| rng.next_f64() * 2.0 - 1.0);
        let y = (0..n).map(|i| i % 3).collect();
        (x, y)
    }

    /// Analytic gradients against central finite differences, for both heads.
    #[test]
    fn gradients_match_finite_differences() {
        for kind in [HeadKind::Softmax, HeadKind::Mlp { hidden: 5 }] {
            let mut rng = SplitMix64::new(11);
            let (x, y) = data(&mut rng, 7, 4);
            let mut head = Head::init(kind, 4, 3, &mut rng);
            for l in &mut head.layers {
                l.b.mapv_inplace(|_| rng.next_f64() - 0.5);
            }
            let cw = [0.5, 1.0, 2.0];
            let (_, grads) = head.loss_and_grads(x.view(), &y, &cw);
            let eps = 1e-6;
            for li in 0..head.layers.len() {
                let (r, c) = head.layers[li].w.dim();
                for i in 0..r {
                    for j in 0..c {
                        let mut p = head.clone();
                        p.layers[li].w[[i, j]] += eps;
                        let mut m = head.clone();
                        m.layers[li].w[[i, j]] -= eps;
                        let num = (p.loss_and_grads(x.view(), &y, &cw).0
                            - m.loss_and_grads(x.view(), &y, &cw).0)
                            / (2.0 * eps);
                        let ana = grads.layers[li].w[[i, j]];
                        assert!(
                            (num - ana).abs() < 1e-6,
                            "{kind:?} w{li}[{i},{j}]: {num} vs {ana}"
                        );
                    }
                }
                for j in 0..c {
                    let mut p = head.clone();
                    p.layers[li].b[j] += eps;
                    let mut m = head.clone();
                    m.layers[li].b[j] -= eps;
                    let num = (p.loss_and_grads(x.view(), &y, &cw).0
                        - m.loss_and_grads(x.view(), &y, &cw).0)
                        / (2.0 * eps);
                    let ana = grads.layers[li].b[j];
                    assert!(
                        (num - ana).abs() < 1e-6,
                        "{kind:?} b{li}[{j}]: {num} vs {ana}"
                    );
                }
            }
        }
    }

    #[test]
    fn folding_the_standardization_keeps_the_logits() {
        let mut rng = SplitMix64::new(5);
        let (x, _) = data(&mut rng, 6, 4);
        let x = x.mapv(|v| v * 3.0 + 1.0);
        let st = Standardizer::fit(x.view());
        let head = Head::init(HeadKind::Mlp { hidden: 3 }, 4, 3, &mut rng);
        let want = head.logits(st.apply(x.view()).view());
        let got = folded_logits(&head.folded(&st), x.mapv(|v| v as f32).view());
        for (a, b) in want.iter().zip(got.iter()) {
            assert!((*a as f32 - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = softmax_rows(&ndarray::array![[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
    }
}
