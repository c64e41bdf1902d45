//! The bad-input corpus (issue 12): a generator that writes 30 kinds of bad, odd and good
//! input into a folder at test time (a few KB each, from `samples/`, the fixtures and bytes
//! written here), and one batch that runs them all together with the good files.
//!
//! Each kind says what a correct run does with it: a result, an error row whose cause
//! names what is wrong, or no row at all (what discovery rightly skips).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{assert_no_temp_files, clip_rows, column, fixture, framegpt, run, sample};

/// What a correct run does with one corpus entry.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Analyzed: status ok, with this many frames (None: any number above 0).
    Ok(Option<u64>),
    /// An error row whose cause contains this.
    Error(&'static str),
    /// No row (discovery skips it).
    Skipped,
}

pub struct Entry {
    /// Path relative to the corpus root.
    pub rel: PathBuf,
    /// The `video` cell its row has (neutralized, escaped).
    pub video: String,
    pub expect: Expect,
}

fn png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // One stored (uncompressed) deflate block of filter-0 scanlines, zlib-wrapped.
    let raw: Vec<u8> = (0..height)
        .flat_map(|_| std::iter::once(0).chain(std::iter::repeat_n(0x80, 3 * width as usize)))
        .collect();
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend((raw.len() as u16).to_le_bytes());
    z.extend((!(raw.len() as u16)).to_le_bytes());
    z.extend(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", b"");
    out
}

/// Pseudo-random bytes (a fixed seed: the corpus is the same on every run).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        })
        .collect()
}

/// Writes the corpus into `root`; returns its entries.
pub fn write_corpus(root: &Path) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut add = |rel: PathBuf, video: &str, expect: Expect| {
        entries.push(Entry {
            rel,
            video: video.to_string(),
            expect,
        })
    };
    let put = |rel: &str, bytes: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let good = std::fs::read(sample("realshort.mp4")).unwrap();
    let cockatoo = std::fs::read(sample("cockatoo.mp4")).unwrap();

    // Good files, plainly named and with hostile names.
    for (name, video) in [
        ("good.mp4", "good.mp4"),
        ("=1+1.mp4", "'=1+1.mp4"),
        ("+plus.mp4", "'+plus.mp4"),
        ("-minus.mp4", "'-minus.mp4"),
        ("@at.mp4", "'@at.mp4"),
        ("comma, \"quote\".mp4", "comma, \"quote\".mp4"),
        ("new\nline.mp4", "new\nline.mp4"),
        ("ünïcødé 映像.mp4", "ünïcødé 映像.mp4"),
        ("deep/er/nested.mp4", "deep/er/nested.mp4"),
    ] {
        put(name, &good);
        add(name.into(), video, Expect::Ok(Some(36)));
    }
    let not_utf8 = PathBuf::from(OsString::from_vec(b"latin1-caf\xe9.mp4".to_vec()));
    std::fs::write(root.join(&not_utf8), &good).unwrap();
    add(not_utf8, "latin1-caf\\xE9.mp4", Expect::Ok(Some(36)));
    // A 1x1 one-frame GIF is a (very short) video; under a folder only video names count.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    put("one-pixel-gif.mp4", gif);
    add(
        "one-pixel-gif.mp4".into(),
        "one-pixel-gif.mp4",
        Expect::Ok(Some(1)),
    );
    put("one-pixel.gif", gif);
    add("one-pixel.gif".into(), "", Expect::Skipped);

    // Bad content.
    let bad: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("empty.mp4", vec![], "empty file"),
        ("text.mp4", b"just some text\n".repeat(40), "no supported video container"),
        ("random.mp4", noise(20_000, 7), "no supported video container"),
        ("zeros.mp4", vec![0; 10_000], "no supported video container"),
        ("header-only.mp4", cockatoo[..1024].to_vec(), "ends inside the container header"),
        (
            "truncated.mp4",
            cockatoo[..cockatoo.len() * 6 / 10].to_vec(),
            "truncated: the container declares 280 frames",
        ),
        (
            "corrupt.mp4",
            {
                let mut b = cockatoo.clone();
                b[..4096].fill(0x5a);
                b
            },
            "not a readable video file",
        ),
        (
            "audio-only.mp4",
            std::fs::read(fixture("media/audio-only.m4a")).unwrap(),
            "no video stream",
        ),
        (
            "cut-short.avi",
            {
                let avi = std::fs::read(fixture("media/clip.avi")).unwrap();
                avi[..avi.len() / 2].to_vec()
            },
            "truncated: the container declares 40 frames",
        ),
        ("image.mp4", png(4, 4), "not a video: image format png_pipe"),
        (
            "bitmap.mp4",
            {
                let mut b = b"BM".to_vec();
                b.extend(70u32.to_le_bytes());
                b.extend([0; 4]);
                b.extend(54u32.to_le_bytes());
                b.extend(40u32.to_le_bytes());
                b.extend(2i32.to_le_bytes());
                b.extend(2i32.to_le_bytes());
                b.extend(1u16.to_le_bytes());
                b.extend(24u16.to_le_bytes());
                b.extend([0; 24]);
                b.extend([0; 16]);
                b
            },
            "not a video: image format bmp_pipe",
        ),
        (
            "playlist-named.mp4",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n/etc/passwd\n#EXT-X-ENDLIST\n".to_vec(),
            "not a video: playlist format hls",
        ),
        (
            "concat.mp4",
            b"ffconcat version 1.0\nfile '/etc/passwd'\n".to_vec(),
            "not a video: playlist format concat",
        ),
        (
            "subtitles.mp4",
            b"1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:03,000 --> 00:00:04,000\nworld\n\n"
                .to_vec(),
            "not a video: format srt",
        ),
        ("=formula-error.mp4", b"=cmd|' /C calc'!A0\n".to_vec(), "no supported video container"),
    ];
    for (name, bytes, cause) in bad {
        put(name, &bytes);
        let video = if name.starts_with('=') {
            format!("'{name}")
        } else {
            name.to_string()
        };
        add(name.into(), &video, Expect::Error(cause));
    }

    // What the file system can do.
    std::os::unix::fs::symlink(
        root.join("does-not-exist.mp4"),
        root.join("broken-link.mp4"),
    )
    .unwrap();
    add(
        "broken-link.mp4".into(),
        &root.join("broken-link.mp4").display().to_string(),
        Expect::Error("broken symbolic link"),
    );
    std::fs::create_dir_all(root.join("loop")).unwrap();
    std::os::unix::fs::symlink("..", root.join("loop/up")).unwrap();
    add("loop/up".into(), "", Expect::Skipped);
    let fifo = root.join("fifo.mp4");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    add("fifo.mp4".into(), "", Expect::Skipped);
    std::fs::create_dir_all(root.join("folder.mp4")).unwrap();
    add("folder.mp4".into(), "", Expect::Skipped);
    put(".hidden.mp4", &good);
    add(".hidden.mp4".into(), "", Expect::Skipped);
    put("notes.txt", b"not a video name\n");
    add("notes.txt".into(), "", Expect::Skipped);
    put("playlist.m3u8", b"#EXTM3U\n#EXTINF:10,\n/etc/passwd\n");
    add("playlist.m3u8".into(), "", Expect::Skipped);
    entries
}

#[test]
fn the_bad_input_corpus_runs_in_one_batch_with_good_files() {
    let corpus = TempDir::new().unwrap();
    let entries = write_corpus(corpus.path());
    assert!(entries.len() >= 25, "{} kinds", entries.len());
    let out = TempDir::new().unwrap();
    let home = TempDir::new().unwrap();
    let r = run(framegpt()
        .env("HOME", home.path())
        .env("FRAMEGPT_ORT_LIB", super::hardening::ort_library())
        .arg("analyze")
        .arg(corpus.path())
        .args(["-r", "--jobs", "2", "-o"])
        .arg(out.path()));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let (h, rows) = clip_rows(out.path());
    let videos = column(&h, &rows, "video");
    let (status, error, frames) = (
        column(&h, &rows, "status"),
        column(&h, &rows, "error"),
        column(&h, &rows, "frames_analyzed"),
    );
    let mut expected_rows = 0;
    for e in &entries {
        let row = videos.iter().position(|v| *v == e.video);
        match (&e.expect, row) {
            (Expect::Skipped, _) => {
                let name = e.rel.to_string_lossy();
                assert!(
                    !videos.iter().any(|v| v.contains(&*name)),
                    "{name} has a row"
                );
            }
            (_, None) => panic!("no row for {:?}; rows: {videos:?}", e.video),
            (Expect::Ok(n), Some(i)) => {
                expected_rows += 1;
                assert_eq!(status[i], "ok", "{:?}: {}", e.video, error[i]);
                let got: u64 = frames[i].parse().unwrap();
                match n {
                    Some(n) => assert_eq!(got, *n, "{:?}", e.video),
                    None => assert!(got > 0, "{:?}", e.video),
                }
                let frames_csv = out.path().join(&e.rel).join("frames.csv");
                assert!(frames_csv.is_file(), "{}", frames_csv.display());
            }
            (Expect::Error(cause), Some(i)) => {
                expected_rows += 1;
                assert_eq!(status[i], "error", "{:?}", e.video);
                assert!(error[i].contains(cause), "{:?}: {}", e.video, error[i]);
                assert!(!error[i].ends_with('\n'), "{:?}", e.video);
            }
        }
    }
    assert_eq!(rows.len(), expected_rows, "{videos:?}");
    // No cell of clips.csv could start a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
    // Nothing written outside -o, no temporary, no empty folder, the manifest complete.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    assert_no_temp_files(out.path());
    assert_eq!(
        super::hardening::empty_dirs(out.path()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(super::manifest(out.path())["complete"], true);
}
