//! NumPy `.npy`, in one place: [`NpyStream`] writes float32 rows as they come, and
//! the tests read them back through `ndarray-npy` (`read_f32_2d`).
//!
//! Why the writer is ours: `ndarray-npy` writes a whole array from memory, and an
//! embeddings file grows with the video while memory must stay flat. [`NpyStream`]
//! writes a header with room for any row count (format 1.0, 128 bytes, as NumPy pads it)
//! and fixes the count at the end; the test below reads its output with `ndarray-npy`,
//! so the two agree on the format.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::write::AtomicFile;

/// Streams float32 rows into a `.npy` file of shape [rows, cols], under a temporary name
/// until [`NpyStream::finish`].
pub struct NpyStream {
    out: std::io::BufWriter<std::fs::File>,
    file: AtomicFile,
    cols: usize,
    rows: u64,
}

const HEADER_LEN: usize = 128;

impl NpyStream {
    pub fn create(path: &Path, cols: usize) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        let handle = file.file().try_clone()?;
        let mut out = std::io::BufWriter::new(handle);
        out.write_all(&header(0, cols))?;
        Ok(NpyStream {
            out,
            file,
            cols,
            rows: 0,
        })
    }

    pub fn row(&mut self, values: &[f32]) -> Result<()> {
        anyhow::ensure!(
            values.len() == self.cols,
            "embedding has {} values, expected {}",
            values.len(),
            self.cols
        );
        for v in values {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        let path = self.file.path().to_path_buf();
        let failed = || format!("failed to write `{}`", path.display());
        self.out.flush().with_context(failed)?;
        let mut f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0)).with_context(failed)?;
        f.write_all(&header(self.rows, self.cols))
            .with_context(failed)?;
        drop(f);
        self.file.commit()
    }
}

fn header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let pad = HEADER_LEN - 10 - dict.len() - 1;
    h.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    debug_assert_eq!(h.len(), HEADER_LEN);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a float32 2-D `.npy` (any valid header) through `ndarray-npy`.
    fn read_f32_2d(path: &Path) -> Result<ndarray::Array2<f32>> {
        ndarray_npy::read_npy(path).with_context(|| format!("failed to read `{}`", path.display()))
    }

    #[test]
    fn what_the_stream_writes_ndarray_npy_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.npy");
        let mut w = NpyStream::create(&path, 3).unwrap();
        w.row(&[1.0, 2.0, 3.0]).unwrap();
        w.row(&[4.0, 5.0, -6.5]).unwrap();
        assert!(!path.exists(), "nothing under the final name before finish");
        w.finish().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (HEADER_LEN + 6 * 4) as u64
        );
        let a = read_f32_2d(&path).unwrap();
        assert_eq!(a, ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, -6.5]]);
    }

    #[test]
    fn an_empty_stream_is_a_valid_empty_array() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.npy");
        NpyStream::create(&path, 4).unwrap().finish().unwrap();
        assert_eq!(read_f32_2d(&path).unwrap().dim(), (0, 4));
    }

    #[test]
    fn a_wrong_row_length_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = NpyStream::create(&dir.path().join("e.npy"), 3).unwrap();
        assert!(w.row(&[1.0]).is_err());
    }
}
