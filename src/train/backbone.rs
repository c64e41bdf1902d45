//! The framegpt backbone (class `FrameGPT` in `models/train.py`) in Rust on candle, with
//! its weights read from the ONNX file's initializers by their PyTorch state_dict names
//! (`patch_proj.weight`, `temporal.1.attn.qkv.weight`, …; the model must be exported with
//! `do_constant_folding=False`, which keeps those names and Linear weights as [out, in]).
//!
//! It exists for `finetune --unfreeze N`: the frozen part of the network runs once per
//! window ([`Backbone::temporal_input`]), and the last N temporal blocks of the frame path
//! become trainable [`Block`]s whose gradients candle computes. [`Backbone::forward`] is
//! the whole network, checked against ONNX Runtime on real frames by a test.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::Linear;

use crate::onnx_graph::FloatTensor;

/// PyTorch's `nn.LayerNorm` default.
const LN_EPS: f32 = 1e-5;

#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("the model has no initializer `{0}`\nhint: finetuning the backbone needs a model exported with its PyTorch parameter names (`torch.onnx.export(..., do_constant_folding=False)`, as models/train.py does); `--unfreeze 0` works with any model")]
    Missing(String),
    #[error("initializer `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// Weights by name, as tensors on the CPU.
struct Weights<'a> {
    map: &'a BTreeMap<String, FloatTensor>,
    /// Prefix of every name (`backbone.` when the exported module wraps FrameGPT).
    prefix: &'a str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> std::result::Result<Tensor, BackboneError> {
        let name = format!("{}{name}", self.prefix);
        let name = name.as_str();
        let t = self
            .map
            .get(name)
            .ok_or_else(|| BackboneError::Missing(name.to_string()))?;
        if t.dims != shape {
            return Err(BackboneError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                got: t.dims.clone(),
            });
        }
        Ok(Tensor::from_vec(t.data.clone(), shape, &Device::Cpu)?)
    }

    fn linear(
        &self,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
    ) -> std::result::Result<Linear, BackboneError> {
        let w = self.get(&format!("{prefix}.weight"), &[out, inp])?;
        let b = if bias {
            Some(self.get(&format!("{prefix}.bias"), &[out])?)
        } else {
            None
        };
        Ok(Linear::new(w, b))
    }

    fn layer_norm(&self, prefix: &str, d: usize) -> std::result::Result<LayerNorm, BackboneError> {
        Ok(LayerNorm {
            weight: self.get(&format!("{prefix}.weight"), &[d])?,
            bias: self.get(&format!("{prefix}.bias"), &[d])?,
        })
    }

    fn count(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                self.map
                    .contains_key(&format!("{}{prefix}.{i}.ln1.weight", self.prefix))
            })
            .count()
    }
}

/// `nn.LayerNorm` over the last axis, from differentiable ops (candle's fused layer-norm
/// kernel has no backward pass).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, LN_EPS)
    }
}

/// Pre-LayerNorm Transformer block: x + attn(ln1 x), then + mlp(ln2 x) (GELU, erf form).
#[derive(Debug, Clone)]
pub struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    out: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn load(
        w: &Weights<'_>,
        prefix: &str,
        d: usize,
        heads: usize,
    ) -> std::result::Result<Block, BackboneError> {
        let hidden = w
            .map
            .get(&format!("{}{prefix}.mlp.0.bias", w.prefix))
            .map_or(2 * d, |t| t.data.len());
        Ok(Block {
            ln1: w.layer_norm(&format!("{prefix}.ln1"), d)?,
            qkv: w.linear(&format!("{prefix}.attn.qkv"), 3 * d, d, true)?,
            out: w.linear(&format!("{prefix}.attn.out"), d, d, true)?,
            ln2: w.layer_norm(&format!("{prefix}.ln2"), d)?,
            fc1: w.linear(&format!("{prefix}.mlp.0"), hidden, d, true)?,
            fc2: w.linear(&format!("{prefix}.mlp.2"), d, hidden, true)?,
            heads,
        })
    }

    /// x: [B, n, d]; `mask`: [n, n] added to the attention scores.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self.attention(&self.ln1.forward(x)?, mask)?)?;
        let h = self.fc1.forward(&self.ln2.forward(&x)?)?.gelu_erf()?;
        x + self.fc2.forward(&h)?
    }

    fn attention(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let dh = d / self.heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, n, 3, self.heads, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let mut att = (q.matmul(&k.t()?)? * (1.0 / (dh as f64).sqrt()))?;
        if let Some(m) = mask {
            att = att.broadcast_add(m)?;
        }
        let y = candle_nn::ops::softmax(&att, D::Minus1)?.matmul(&v)?;
        self.out
            .forward(&y.transpose(1, 2)?.contiguous()?.reshape((b, n, d))?)
    }

    /// The block's parameters as trainable variables (names relative to the block), and
    /// the block rebuilt on them.
    pub fn to_vars(&self) -> Result<(Block, Vec<(String, Var)>)> {
        let mut vars = Vec::new();
        let mut var = |name: &str, t: &Tensor| -> Result<Tensor> {
            let v = Var::from_tensor(t)?;
            let t = v.as_tensor().clone();
            vars.push((name.to_string(), v));
            Ok(t)
        };
        let mut linear = |name: &str, l: &Linear| -> Result<Linear> {
            let w = var(&format!("{name}.weight"), l.weight())?;
            let b = match l.bias() {
                Some(b) => Some(var(&format!("{name}.bias"), b)?),
                None => None,
            };
            Ok(Linear::new(w, b))
        };
        let qkv = linear("attn.qkv", &self.qkv)?;
        let out = linear("attn.out", &self.out)?;
        let fc1 = linear("mlp.0", &self.fc1)?;
        let fc2 = linear("mlp.2", &self.fc2)?;
        let mut ln = |name: &str, l: &LayerNorm| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: var(&format!("{name}.weight"), &l.weight)?,
                bias: var(&format!("{name}.bias"), &l.bias)?,
            })
        };
        let ln1 = ln("ln1", &self.ln1)?;
        let ln2 = ln("ln2", &self.ln2)?;
        Ok((
            Block {
                ln1,
                qkv,
                out,
                ln2,
                fc1,
                fc2,
                heads: self.heads,
            },
            vars,
        ))
    }
}

/// The whole backbone.
pub struct Backbone {
    /// Prefix of the initializer names (`""`, or `backbone.` when the exported module
    /// wraps FrameGPT, as the base model with a boundary head does).
    pub prefix: String,
    pub d: usize,
    pub heads: usize,
    patch_proj: Linear,
    motion_proj: Linear,
    pos: Tensor,
    spatial: Vec<Block>,
    patch_time_pos: Tensor,
    patch_temporal: Vec<Block>,
    time_pos: Tensor,
    frame_ln: LayerNorm,
    /// The causal temporal blocks of the frame path (`temporal.{i}`).
    pub temporal: Vec<Block>,
    pub emb_ln: LayerNorm,
    /// What turns the patch tokens and the frame embeddings into `next_patches`.
    pub predictor: Predictor,
    t_max: usize,
}

/// The prediction path: the frame embedding projected onto every patch token
/// (`ctx_proj`), the per-frame decoder blocks, `head_ln`, the residual `head` and the
/// `gate` that mixes the current frame with the running mean. `framegpt adapt` trains it.
#[derive(Debug, Clone)]
pub struct Predictor {
    d: usize,
    ctx_proj: Linear,
    decoder: Vec<Block>,
    head_ln: LayerNorm,
    head: Linear,
    gate: Linear,
}

impl Predictor {
    /// `next_patches` [B, T, N, C] from the patches [B, T, N, C], the patch tokens
    /// [B·T, N, d] and the embeddings [B, T, d].
    pub fn forward(&self, patches: &Tensor, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let (b, t, n, c) = patches.dims4()?;
        let mut y = x.broadcast_add(&self.ctx_proj.forward(emb)?.reshape((b * t, 1, self.d))?)?;
        for blk in &self.decoder {
            y = blk.forward(&y, None)?;
        }
        let y = self.head_ln.forward(&y)?;
        let delta = self.head.forward(&y)?.reshape((b, t, n, c))?;
        let g = candle_nn::ops::sigmoid(&self.gate.forward(&y)?)?.reshape((b, t, n, 1))?;
        // Running mean over the frames <= t (sequential sums, as ONNX's CumSum).
        let mut sum = patches.narrow(1, 0, 1)?;
        let mut means = vec![sum.clone()];
        for s in 1..t {
            sum = (sum + patches.narrow(1, s, 1)?)?;
            means.push((&sum / (s + 1) as f64)?);
        }
        let running_mean = Tensor::cat(&means, 1)?;
        let next = (patches + g.broadcast_mul(&(running_mean - patches)?)?)?;
        next + delta
    }

    /// The predictor's parameters as trainable variables (state_dict names without the
    /// model's prefix: `ctx_proj.weight`, `decoder.0.attn.qkv.weight`, `head.bias`, …)
    /// and the predictor rebuilt on them.
    pub fn to_vars(&self) -> Result<(Predictor, Vec<(String, Var)>)> {
        let mut vars = Vec::new();
        let mut linear = |name: &str, l: &Linear| -> Result<Linear> {
            let mut var = |suffix: &str, t: &Tensor| -> Result<Tensor> {
                let v = Var::from_tensor(t)?;
                let t = v.as_tensor().clone();
                vars.push((format!("{name}.{suffix}"), v));
                Ok(t)
            };
            let w = var("weight", l.weight())?;
            let b = l.bias().map(|b| var("bias", b)).transpose()?;
            Ok(Linear::new(w, b))
        };
        let ctx_proj = linear("ctx_proj", &self.ctx_proj)?;
        let head = linear("head", &self.head)?;
        let gate = linear("gate", &self.gate)?;
        let mut ln_vars = Vec::new();
        let w = Var::from_tensor(&self.head_ln.weight)?;
        let b = Var::from_tensor(&self.head_ln.bias)?;
        let head_ln = LayerNorm {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
        };
        ln_vars.push(("head_ln.weight".to_string(), w));
        ln_vars.push(("head_ln.bias".to_string(), b));
        let mut decoder = Vec::new();
        for (i, blk) in self.decoder.iter().enumerate() {
            let (blk, v) = blk.to_vars()?;
            decoder.push(blk);
            ln_vars.extend(v.into_iter().map(|(n, v)| (format!("decoder.{i}.{n}"), v)));
        }
        vars.extend(ln_vars);
        Ok((
            Predictor {
                d: self.d,
                ctx_proj,
                decoder,
                head_ln,
                head,
                gate,
            },
            vars,
        ))
    }
}

impl Backbone {
    /// Builds the network from the initializers of an ONNX file; `heads` is the attention
    /// head count (not visible in the weights; the base model's provenance records it).
    pub fn from_initializers(
        map: &BTreeMap<String, FloatTensor>,
        heads: usize,
    ) -> std::result::Result<Backbone, BackboneError> {
        let prefix = ["", "backbone."]
            .into_iter()
            .find(|p| map.contains_key(&format!("{p}patch_proj.weight")))
            .ok_or_else(|| BackboneError::Missing("patch_proj.weight".into()))?;
        let w = Weights { map, prefix };
        let pp = &map[&format!("{prefix}patch_proj.weight")];
        let (d, c) = match pp.dims[..] {
            [d, c] => (d, c),
            _ => {
                return Err(BackboneError::Shape {
                    name: "patch_proj.weight".into(),
                    expected: vec![0, 0],
                    got: pp.dims.clone(),
                })
            }
        };
        let n = map
            .get(&format!("{prefix}pos"))
            .map_or(0, |t| t.dims.get(1).copied().unwrap_or(0));
        let t_max = map
            .get(&format!("{prefix}time_pos"))
            .map_or(0, |t| t.dims.get(1).copied().unwrap_or(0));
        let blocks = |prefix: &str| -> std::result::Result<Vec<Block>, BackboneError> {
            (0..w.count(prefix))
                .map(|i| Block::load(&w, &format!("{prefix}.{i}"), d, heads))
                .collect()
        };
        Ok(Backbone {
            prefix: prefix.to_string(),
            d,
            heads,
            patch_proj: w.linear("patch_proj", d, c, true)?,
            motion_proj: w.linear("motion_proj", d, c, false)?,
            pos: w.get("pos", &[1, n, d])?,
            spatial: blocks("spatial")?,
            patch_time_pos: w.get("patch_time_pos", &[1, t_max, d])?,
            patch_temporal: blocks("patch_temporal")?,
            time_pos: w.get("time_pos", &[1, t_max, d])?,
            frame_ln: w.layer_norm("frame_ln", d)?,
            temporal: blocks("temporal")?,
            emb_ln: w.layer_norm("emb_ln", d)?,
            predictor: Predictor {
                d,
                ctx_proj: w.linear("ctx_proj", d, d, true)?,
                decoder: blocks("decoder")?,
                head_ln: w.layer_norm("head_ln", d)?,
                head: w.linear("head", c, d, true)?,
                gate: w.linear("gate", 1, d, true)?,
            },
            t_max,
        })
    }

    /// Causal mask [t, t]: 0 on and below the diagonal, −∞ above.
    pub fn causal_mask(t: usize) -> Result<Tensor> {
        let v: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t > i / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(v, (t, t), &Device::Cpu)
    }

    /// Patch tokens after the spatial and per-patch temporal blocks, [B·T, N, d].
    fn patch_tokens(&self, patches: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, n, _) = patches.dims4()?;
        let d = self.d;
        let prev = if t > 1 {
            Tensor::cat(&[patches.narrow(1, 0, 1)?, patches.narrow(1, 0, t - 1)?], 1)?
        } else {
            patches.clone()
        };
        let x =
            (self.patch_proj.forward(patches)? + self.motion_proj.forward(&(patches - prev)?)?)?;
        let mut x = x.reshape((b * t, n, d))?.broadcast_add(&self.pos)?;
        for (i, blk) in self.spatial.iter().enumerate() {
            x = blk.forward(&x, None)?;
            if let Some(pt) = self.patch_temporal.get(i) {
                let mut y = x
                    .reshape((b, t, n, d))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((b * n, t, d))?;
                if i == 0 {
                    y = y.broadcast_add(&self.patch_time_pos.narrow(1, 0, t)?)?;
                }
                let y = pt.forward(&y, Some(mask))?;
                x = y
                    .reshape((b, n, t, d))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((b * t, n, d))?;
            }
        }
        Ok(x)
    }

    fn frame_tokens(&self, x: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        self.frame_ln
            .forward(&x.mean(1)?)?
            .reshape((b, t, self.d))?
            .broadcast_add(&self.time_pos.narrow(1, 0, t)?)
    }

    /// The input of temporal block `first` (the frame tokens after blocks 0..first),
    /// [B, T, d], from patches [B, T, N, C]: what stays fixed when the blocks from `first`
    /// on are trained.
    pub fn temporal_input(&self, patches: &Tensor, first: usize) -> Result<Tensor> {
        Ok(self.frozen_part(patches, first)?.1)
    }

    /// The patch tokens [B·T, N, d] and the input of temporal block `first` [B, T, d]
    /// (with `first` = the number of temporal blocks: their output, before `emb_ln`).
    pub fn frozen_part(&self, patches: &Tensor, first: usize) -> Result<(Tensor, Tensor)> {
        let (b, t, _, _) = patches.dims4()?;
        if t > self.t_max {
            candle_core::bail!("window of {t} frames, the model's limit is {}", self.t_max);
        }
        let mask = Self::causal_mask(t)?;
        let x = self.patch_tokens(patches, &mask)?;
        let mut h = self.frame_tokens(&x, b, t)?;
        for blk in &self.temporal[..first.min(self.temporal.len())] {
            h = blk.forward(&h, Some(&mask))?;
        }
        Ok((x, h))
    }

    /// `next_patches` [B, T, N, C] and `embeddings` [B, T, d], as the ONNX graph.
    pub fn forward(&self, patches: &Tensor) -> Result<(Tensor, Tensor)> {
        let (x, h) = self.frozen_part(patches, self.temporal.len())?;
        let emb = self.emb_ln.forward(&h)?;
        Ok((self.predictor.forward(patches, &x, &emb)?, emb))
    }

    /// Embeddings [B, T, d] from the output of [`Self::temporal_input`] with the given
    /// temporal blocks (the trainable copies of the last ones).
    pub fn embeddings_from(&self, h: &Tensor, blocks: &[Block], mask: &Tensor) -> Result<Tensor> {
        let mut h = h.clone();
        for blk in blocks {
            h = blk.forward(&h, Some(mask))?;
        }
        self.emb_ln.forward(&h)
    }
}

/// The attention head count of a model: `architecture.heads` in its provenance, else 4
/// (the base model's).
pub fn heads_from_provenance(provenance: Option<&serde_json::Value>) -> usize {
    provenance
        .and_then(|p| p.pointer("/architecture/heads"))
        .and_then(serde_json::Value::as_u64)
        .map_or(4, |h| h as usize)
}

/// A tensor's values as a flat vector.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    // Parity with ONNX Runtime on real frames: tests/cli/finetune.rs, `mod backbone` (its own process, so
    // its allocations do not disturb the RSS-based leak test of decode.rs).

    #[test]
    fn a_constant_folded_model_is_a_clear_error() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-valid.onnx");
        let bytes = std::fs::read(path).unwrap();
        let inits = crate::onnx_graph::read_float_initializers(&bytes).unwrap();
        let err = Backbone::from_initializers(&inits, 4)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("patch_proj.weight") && err.contains("do_constant_folding=False"),
            "{err}"
        );
    }
}
