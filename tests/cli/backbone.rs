//! The Rust backbone (`train::backbone`, candle) against ONNX Runtime on the same weights
//! and the same real frames (a module of the one integration test binary).
use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use framegpt::model::{Device as OrtDevice, Model, SessionOptions};
use framegpt::train::backbone::{to_vec, Backbone, Block};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/framegpt-tiny-named.onnx")
}

/// Real frames: the first `n` frames of `samples/realshort.mp4`, patchified as the
/// pipeline does, [n, N·C].
fn real_frames(contract: &framegpt::model::ModelContract, n: usize) -> Vec<Vec<f32>> {
    let patchifier = framegpt::patchify::Patchifier::new(contract);
    let mut sampler = framegpt::sample::Sampler::new(framegpt::sample::SampleSpec::default());
    let mut frames = Vec::new();
    let options = framegpt::decode::DecodeOptions {
        frame_width: contract.frame_width,
        frame_height: contract.frame_height,
        threads: 1,
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/realshort.mp4");
    framegpt::decode::decode_file(&path, options, &mut sampler, &AtomicBool::new(false), |f| {
        frames.push(patchifier.patchify(&f.rgb));
        frames.len() < n
    })
    .unwrap();
    assert_eq!(frames.len(), n);
    frames
}

/// The Rust forward pass against ONNX Runtime on the same weights and the same real
/// frames: both outputs, full and short windows. Measured: max abs diff ~1e-6.
#[test]
fn forward_matches_onnx_runtime_on_real_frames() {
    let path = fixture();
    let bytes = std::fs::read(&path).unwrap();
    let inits = framegpt::onnx_graph::read_float_initializers(&bytes).unwrap();
    let backbone = Backbone::from_initializers(&inits, 4).unwrap();
    assert_eq!((backbone.d, backbone.temporal.len()), (32, 2));
    let mut model = Model::load(
        &path,
        SessionOptions {
            device: OrtDevice::Cpu,
            threads: 1,
        },
    )
    .unwrap();
    let contract = model.contract().clone();
    let (n, c) = (contract.num_patches(), contract.patch_dim());
    let frames = real_frames(&contract, 24);
    for (b, t) in [(2usize, 8usize), (1, 5)] {
        // Windows at stride 8 over the clip: real motion inside each window.
        let data: Vec<f32> = (0..b)
            .flat_map(|w| frames[w * 8..w * 8 + t].concat())
            .collect();
        let input = ndarray::Array4::from_shape_vec((b, t, n, c), data.clone()).unwrap();
        let ort = model.run(input.view()).unwrap();
        let x = Tensor::from_vec(data, (b, t, n, c), &Device::Cpu).unwrap();
        let (next, emb) = backbone.forward(&x).unwrap();
        let diff = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let d_next = diff(
            ort.next_patches.as_slice().unwrap(),
            &to_vec(&next).unwrap(),
        );
        let d_emb = diff(ort.embeddings.as_slice().unwrap(), &to_vec(&emb).unwrap());
        eprintln!("B={b} T={t}: max abs diff next_patches {d_next:.2e}, embeddings {d_emb:.2e}");
        assert!(d_next < 1e-4 && d_emb < 1e-4, "{d_next} {d_emb}");
        // The embeddings are not trivially constant.
        let spread = ort.embeddings.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.1, "{spread}");
    }
}

#[test]
fn temporal_input_then_the_last_blocks_gives_the_embeddings() {
    let bytes = std::fs::read(fixture()).unwrap();
    let inits = framegpt::onnx_graph::read_float_initializers(&bytes).unwrap();
    let backbone = Backbone::from_initializers(&inits, 4).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 8, 64, 192), &Device::Cpu).unwrap();
    let (_, emb) = backbone.forward(&x).unwrap();
    let mask = Backbone::causal_mask(8).unwrap();
    for first in 0..=2 {
        let h = backbone.temporal_input(&x, first).unwrap();
        let (blocks, _): (Vec<Block>, Vec<_>) = backbone.temporal[first..]
            .iter()
            .map(|b| b.to_vars().unwrap())
            .unzip();
        let e = backbone.embeddings_from(&h, &blocks, &mask).unwrap();
        let d = (e - &emb)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "first {first}: {d}");
    }
}
