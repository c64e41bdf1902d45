//! One small JPEG per shot, decoded again from the source video through [`crate::decode`].
//!
//! Why decode again rather than store thumbnails during `analyze`: the report then works
//! on any output folder (older runs, merged shards, a folder copied next to the footage),
//! `analyze` writes nothing it did not write before, and the pipeline's frames stay at the
//! model's 64×64, which is too small and square to recognise a shot by. The cost is one
//! more decode of each video, at a thumbnail's size, when the report is made.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::decode::{self, DecodeOptions};
use crate::sample::{SampleSpec, Sampler};

/// Thumbnail height in pixels; the width keeps the video's aspect ratio.
pub const THUMB_HEIGHT: u32 = 72;
const JPEG_QUALITY: u8 = 80;
/// `shots.csv` times have 3 decimals: a frame within this of a shot's start is its start.
const TIME_TOLERANCE_S: f64 = 0.0015;

/// Decodes `path` once and returns, for each shot start time (ascending), the JPEG of the
/// first frame at or after it (None for starts past the last decoded frame).
pub fn shot_thumbnails(path: &Path, starts_s: &[f64], height: u32) -> Result<Vec<Option<Vec<u8>>>> {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; starts_s.len()];
    let Some(&first) = starts_s.first() else {
        return Ok(out);
    };
    let never = AtomicBool::new(false);
    // A first open for the picture's size (decodes one tiny frame).
    let mut size = None;
    let mut probe = Sampler::new(SampleSpec {
        max_frames: Some(1),
        ..Default::default()
    });
    let probe_options = DecodeOptions {
        frame_width: 16,
        frame_height: 16,
        threads: 1,
    };
    decode::decode_file_with(
        path,
        probe_options,
        &mut probe,
        &never,
        |info| size = Some((info.width, info.height)),
        |_| false,
    )?;
    let (w, h) = size.unwrap_or((16, 9));
    let width = thumb_width(w, h, height);
    let options = DecodeOptions {
        frame_width: width,
        frame_height: height,
        threads: 1,
    };
    let mut sampler = Sampler::new(SampleSpec {
        start_s: (first - 1.0).max(0.0),
        ..Default::default()
    });
    let mut next = 0;
    decode::decode_file(path, options, &mut sampler, &never, |frame| {
        if frame.pts_seconds + TIME_TOLERANCE_S < starts_s[next] {
            return true;
        }
        let jpeg = encode_jpeg(&frame.rgb, width, height);
        while next < starts_s.len() && frame.pts_seconds + TIME_TOLERANCE_S >= starts_s[next] {
            out[next] = jpeg.clone();
            next += 1;
        }
        next < starts_s.len()
    })?;
    Ok(out)
}

/// Width for `height` keeping `w:h`, even, within 32..=256.
fn thumb_width(w: u32, h: u32, height: u32) -> u32 {
    if w == 0 || h == 0 {
        return height * 16 / 9;
    }
    let wd = (f64::from(height) * f64::from(w) / f64::from(h) / 2.0).round() as u32 * 2;
    wd.clamp(32, 256)
}

fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut buf, JPEG_QUALITY);
    match encoder.encode(
        rgb,
        width as u16,
        height as u16,
        jpeg_encoder::ColorType::Rgb,
    ) {
        Ok(()) => Some(buf),
        Err(e) => {
            tracing::warn!("thumbnail: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_keep_the_aspect_ratio() {
        assert_eq!(thumb_width(320, 180, 72), 128);
        assert_eq!(thumb_width(176, 144, 72), 88);
        assert_eq!(thumb_width(10000, 10, 72), 256);
        assert_eq!(thumb_width(0, 0, 72), 128);
    }
}
