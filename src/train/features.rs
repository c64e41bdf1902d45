//! The no-model baseline's per-frame features: downscaled raw pixels of single frames.
//! (The backbone's features are per window, `windows.rs`.)

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use ndarray::Array2;
use rayon::prelude::*;

use crate::decode::{self, DecodeOptions};
use crate::sample::{SampleSpec, Sampler};

/// Per-frame features of one source file, in presentation order.
#[derive(Debug, Clone)]
pub struct SourceFeatures {
    pub times_s: Vec<f64>,
    /// [frames, D].
    pub x: Array2<f32>,
}

/// What feature extraction did.
#[derive(Debug, Default)]
pub struct Extracted {
    pub sources: BTreeMap<PathBuf, Result<SourceFeatures, String>>,
    pub cache_hits: usize,
    pub decoded: usize,
}

/// The no-model baseline's features: each sampled frame downscaled to `side`×`side` RGB,
/// values in [0, 1]. Not cached (decoding to a tiny size is fast).
pub fn extract_pixels(sources: &[PathBuf], sample: &SampleSpec, side: u32) -> Extracted {
    let cancel = AtomicBool::new(false);
    let results: Vec<(PathBuf, Result<SourceFeatures, String>)> = sources
        .par_iter()
        .map(|path| {
            let mut sampler = Sampler::new(sample.clone());
            let mut times_s = Vec::new();
            let mut data = Vec::new();
            let options = DecodeOptions {
                frame_width: side,
                frame_height: side,
                threads: 1,
            };
            let r = decode::decode_file(path, options, &mut sampler, &cancel, |f| {
                times_s.push(f.pts_seconds);
                data.extend(f.rgb.iter().map(|&v| f32::from(v) / 255.0));
                true
            });
            let r = match r {
                Ok(s) if s.error.is_none() => {
                    let d = (side * side * 3) as usize;
                    Ok(SourceFeatures {
                        x: Array2::from_shape_vec((times_s.len(), d), data).expect("rows of d"),
                        times_s,
                    })
                }
                Ok(s) => Err(s.error.map(|e| e.to_string()).unwrap_or_default()),
                Err(e) => Err(e.to_string()),
            };
            (path.clone(), r)
        })
        .collect();
    Extracted {
        decoded: results.len(),
        sources: results.into_iter().collect(),
        cache_hits: 0,
    }
}
