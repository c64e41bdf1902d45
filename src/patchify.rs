//! Frame → normalized patches, the Transformer's input (the learned patch embedding lives
//! inside the ONNX graph). Pure.
//!
//! Layout (model contract v1): patches in raster order over the patch grid; inside a patch
//! the `3·P·P` values are ordered (py, px, channel), the natural order of packed RGB24.

use crate::model::ModelContract;

/// How to cut and normalize frames for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Patchifier {
    pub frame_width: usize,
    pub frame_height: usize,
    pub patch_size: usize,
    /// Per channel: value = (pixel / 255 - mean) / std = pixel * scale + offset.
    scale: [f32; 3],
    offset: [f32; 3],
}

impl Patchifier {
    pub fn new(contract: &ModelContract) -> Self {
        Self::from_parts(
            contract.frame_width as usize,
            contract.frame_height as usize,
            contract.patch_size as usize,
            contract.mean,
            contract.std,
        )
    }

    pub fn from_parts(
        width: usize,
        height: usize,
        patch: usize,
        mean: [f32; 3],
        std: [f32; 3],
    ) -> Self {
        let scale = [0, 1, 2].map(|c| 1.0 / (255.0 * std[c]));
        let offset = [0, 1, 2].map(|c| -mean[c] / std[c]);
        Patchifier {
            frame_width: width,
            frame_height: height,
            patch_size: patch,
            scale,
            offset,
        }
    }

    pub fn num_patches(&self) -> usize {
        (self.frame_width / self.patch_size) * (self.frame_height / self.patch_size)
    }

    pub fn patch_dim(&self) -> usize {
        3 * self.patch_size * self.patch_size
    }

    /// Values per frame: N·C.
    pub fn frame_len(&self) -> usize {
        self.num_patches() * self.patch_dim()
    }

    /// Writes the N×C patches of one packed RGB24 frame into `out` (length N·C).
    pub fn patchify_into(&self, rgb: &[u8], out: &mut [f32]) {
        let (w, p) = (self.frame_width, self.patch_size);
        assert_eq!(
            rgb.len(),
            w * self.frame_height * 3,
            "frame is not {}x{} RGB24",
            w,
            self.frame_height
        );
        assert_eq!(out.len(), self.frame_len());
        let grid_x = w / p;
        let row_len = p * 3;
        for (n, patch) in out.chunks_exact_mut(self.patch_dim()).enumerate() {
            let (gy, gx) = (n / grid_x, n % grid_x);
            for py in 0..p {
                let src = ((gy * p + py) * w + gx * p) * 3;
                let dst = &mut patch[py * row_len..(py + 1) * row_len];
                for (i, (d, s)) in dst.iter_mut().zip(&rgb[src..src + row_len]).enumerate() {
                    let c = i % 3;
                    *d = f32::from(*s) * self.scale[c] + self.offset[c];
                }
            }
        }
    }

    pub fn patchify(&self, rgb: &[u8]) -> Vec<f32> {
        let mut out = vec![0.0; self.frame_len()];
        self.patchify_into(rgb, &mut out);
        out
    }

    /// The inverse: normalized patches back to packed RGB24 (for `predict` images).
    pub fn unpatchify(&self, patches: &[f32]) -> Vec<u8> {
        let (w, h, p) = (self.frame_width, self.frame_height, self.patch_size);
        let grid_x = w / p;
        let mut rgb = vec![0u8; w * h * 3];
        for (n, patch) in patches.chunks_exact(self.patch_dim()).enumerate() {
            let (gy, gx) = (n / grid_x, n % grid_x);
            for (i, v) in patch.iter().enumerate() {
                let (py, rest) = (i / (p * 3), i % (p * 3));
                let (px, c) = (rest / 3, rest % 3);
                let pixel = (v - self.offset[c]) / self.scale[c];
                rgb[((gy * p + py) * w + gx * p + px) * 3 + c] =
                    pixel.round().clamp(0.0, 255.0) as u8;
            }
        }
        rgb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_matches_the_contract() {
        // 4x4 frame, 2x2 patches: pixel (x, y) has value 10*y + x in channel 0, 100 in 1, 200 in 2.
        let p = Patchifier::from_parts(4, 4, 2, [0.0; 3], [1.0 / 255.0; 3]);
        let mut rgb = vec![];
        for y in 0..4u8 {
            for x in 0..4u8 {
                rgb.extend([10 * y + x, 100, 200]);
            }
        }
        let out = p.patchify(&rgb);
        assert_eq!(out.len(), 4 * 12);
        // Patch 1 is the top-right one: pixels (2,0), (3,0), (2,1), (3,1).
        let patch1: Vec<f32> = out[12..24].iter().step_by(3).copied().collect();
        assert_eq!(patch1, vec![2.0, 3.0, 12.0, 13.0]);
        // Patch 2 is bottom-left: (0,2) first.
        assert_eq!(out[24], 20.0);
        assert_eq!(&out[1..3], &[100.0, 200.0]);
    }

    #[test]
    fn normalization_uses_mean_and_std() {
        let p = Patchifier::from_parts(2, 2, 2, [0.5, 0.0, 0.25], [0.5, 1.0, 0.25]);
        let out = p.patchify(&[255, 0, 51, 255, 0, 51, 255, 0, 51, 255, 0, 51]);
        assert!((out[0] - 1.0).abs() < 1e-6);
        assert!((out[1] - 0.0).abs() < 1e-6);
        assert!((out[2] - (0.2 - 0.25) / 0.25).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn round_trip(grid in 1usize..5, patch in 1usize..5, seed in any::<u64>()) {
            let side = grid * patch;
            let p = Patchifier::from_parts(side, side, patch, [0.45; 3], [0.225; 3]);
            let rgb: Vec<u8> = (0..side * side * 3).map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7919) % 256) as u8).collect();
            let patches = p.patchify(&rgb);
            prop_assert_eq!(patches.len(), p.num_patches() * p.patch_dim());
            prop_assert_eq!(p.unpatchify(&patches), rgb);
        }
    }
}
