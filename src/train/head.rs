//! The classification head on candle: dense layers with ReLU between them (one layer:
//! softmax regression; two: an MLP with one hidden layer) and the class-balanced
//! cross-entropy loss; candle's autodiff computes the gradients. The exported head is the
//! same f32 weights with the input standardization folded into the first layer.

use candle_core::{Device, Result, Tensor, Var, D};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

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

/// Per-feature standardization, computed on the training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Array1<f64>,
    pub std: Array1<f64>,
    /// Per feature 1 (used) or 0 (left out: the head sees 0 there).
    pub keep: Array1<f64>,
}

impl Standardizer {
    pub fn fit(x: ArrayView2<'_, f32>) -> Self {
        let mut f = StandardizerFit::default();
        f.add(x);
        f.finish()
    }

    /// Identity on F features (no shift, unit scale, all kept).
    pub fn identity(f: usize) -> Self {
        Standardizer {
            mean: Array1::zeros(f),
            std: Array1::ones(f),
            keep: Array1::ones(f),
        }
    }

    /// (x − mean) / std · keep on a tensor of rows [n, F].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let f = self.mean.len();
        let mean = Tensor::from_iter(self.mean.iter().map(|&v| v as f32), &Device::Cpu)?
            .reshape((1, f))?;
        let scale = Tensor::from_iter(
            self.std
                .iter()
                .zip(&self.keep)
                .map(|(&s, &k)| (k / s) as f32),
            &Device::Cpu,
        )?
        .reshape((1, f))?;
        x.broadcast_sub(&mean)?.broadcast_mul(&scale)
    }
}

/// Per-feature mean and standard deviation over chunks of rows (f64 sums).
#[derive(Default)]
pub struct StandardizerFit {
    n: usize,
    sum: Array1<f64>,
    sum_sq: Array1<f64>,
}

impl StandardizerFit {
    pub fn add(&mut self, x: ArrayView2<'_, f32>) {
        if self.n == 0 {
            self.sum = Array1::zeros(x.ncols());
            self.sum_sq = Array1::zeros(x.ncols());
        }
        for row in x.rows() {
            for ((s, q), &v) in self.sum.iter_mut().zip(self.sum_sq.iter_mut()).zip(row) {
                let v = f64::from(v);
                *s += v;
                *q += v * v;
            }
        }
        self.n += x.nrows();
    }

    pub fn finish(self) -> Standardizer {
        let n = self.n.max(1) as f64;
        let mean = &self.sum / n;
        let std = (&self.sum_sq / n - &mean * &mean)
            .mapv(|v| v.max(0.0).sqrt())
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        let keep = Array1::ones(mean.len());
        Standardizer { mean, std, keep }
    }
}

/// A head's parameters (on standardized inputs): per layer W [inputs, outputs] and b.
pub struct Head {
    pub kind: HeadKind,
    pub layers: Vec<(Var, Var)>,
}

impl Head {
    /// Seeded initialization: uniform ±sqrt(6 / fan_in) (He) for hidden layers,
    /// ±sqrt(1 / fan_in) for the output layer, zero biases.
    pub fn init(
        kind: HeadKind,
        inputs: usize,
        classes: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Head> {
        let sizes = match kind {
            HeadKind::Softmax => vec![inputs, classes],
            HeadKind::Mlp { hidden } => vec![inputs, hidden, classes],
        };
        let n = sizes.len() - 1;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| {
                let a = (if i + 1 == n { 1.0 } else { 6.0 } / s[0] as f32).sqrt();
                let w: Vec<f32> = (0..s[0] * s[1]).map(|_| rng.random_range(-a..a)).collect();
                Ok((
                    Var::from_vec(w, (s[0], s[1]), &Device::Cpu)?,
                    Var::zeros(s[1], candle_core::DType::F32, &Device::Cpu)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Head { kind, layers })
    }

    /// Logits [n, K] of standardized rows [n, F].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// Outputs of the last layer.
    pub fn classes(&self) -> usize {
        self.layers
            .last()
            .and_then(|(_, b)| b.as_tensor().dims1().ok())
            .unwrap_or(0)
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// The head on raw (unstandardized) inputs, f32, as ONNX dense layers: the
    /// standardization is folded into the first layer (W' = W·keep / std,
    /// b' = b − (mean·keep/std)·W).
    pub fn folded(&self, standardizer: &Standardizer) -> Result<Vec<DenseLayer>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, (w, b))| {
                let (r, c) = w.dims2()?;
                let w = Array2::from_shape_vec((r, c), w.flatten_all()?.to_vec1::<f32>()?)
                    .expect("[inputs, outputs]")
                    .mapv(f64::from);
                let b = Array1::from(b.to_vec1::<f32>()?).mapv(f64::from);
                let (w, b) = if i == 0 {
                    let inv = &standardizer.keep / &standardizer.std;
                    let folded_b = &b - &(&standardizer.mean * &inv).dot(&w);
                    (&w * &inv.view().insert_axis(Axis(1)), folded_b)
                } else {
                    (w, b)
                };
                Ok(DenseLayer {
                    inputs: r,
                    outputs: c,
                    weight: w.iter().map(|&v| v as f32).collect(),
                    bias: b.iter().map(|&v| v as f32).collect(),
                })
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

/// Class-weighted mean cross-entropy of `logits` [n, K] against `y`: row i weighs
/// `class_weight[y_i]`, and the mean divides by the sum of the row weights.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    y: &[usize],
    class_weight: &[f64],
) -> Result<Tensor> {
    let (n, k) = logits.dims2()?;
    let total: f64 = y.iter().map(|&c| class_weight[c]).sum();
    let mut target = vec![0f32; n * k];
    for (i, &c) in y.iter().enumerate() {
        target[i * k + c] = (class_weight[c] / total) as f32;
    }
    let target = Tensor::from_vec(target, (n, k), &Device::Cpu)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    (logp * target)?.sum_all()?.neg()
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

/// Row-wise argmax.
pub fn predictions(logits: &Array2<f32>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn folding_the_standardization_keeps_the_logits() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((6, 4), |_| rng.random_range(-1.0f32..1.0) * 3.0 + 1.0);
        let st = Standardizer::fit(x.view());
        let head = Head::init(HeadKind::Mlp { hidden: 3 }, 4, 3, &mut rng).unwrap();
        let xt = Tensor::from_slice(x.as_slice().unwrap(), (6, 4), &Device::Cpu).unwrap();
        let want = head.forward(&st.apply(&xt).unwrap()).unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = folded_logits(&head.folded(&st).unwrap(), x.view());
        for (a, b) in want.iter().zip(got.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// candle's gradient of the weighted loss against central finite differences.
    #[test]
    fn loss_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = Tensor::from_vec(
            (0..28)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect::<Vec<_>>(),
            (7, 4),
            &Device::Cpu,
        )
        .unwrap();
        let y: Vec<usize> = (0..7).map(|i| i % 3).collect();
        let cw = [0.5, 1.0, 2.0];
        let head = Head::init(HeadKind::Mlp { hidden: 5 }, 4, 3, &mut rng).unwrap();
        let loss = |h: &Head| {
            weighted_cross_entropy(&h.forward(&x).unwrap(), &y, &cw)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let grads = weighted_cross_entropy(&head.forward(&x).unwrap(), &y, &cw)
            .unwrap()
            .backward()
            .unwrap();
        let w = &head.layers[0].0;
        let g = grads
            .get(w)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let eps = 1e-2f32;
        for i in [0, 3, 7, 12, 19] {
            let mut p = base.clone();
            p[i] += eps;
            w.set(&Tensor::from_vec(p, w.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let lp = loss(&head);
            let mut m = base.clone();
            m[i] -= eps;
            w.set(&Tensor::from_vec(m, w.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let lm = loss(&head);
            let num = (lp - lm) / (2.0 * eps);
            assert!((num - g[i]).abs() < 2e-3, "w0[{i}]: {num} vs {}", g[i]);
        }
    }
}
