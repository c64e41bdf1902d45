//! Decoding with FFmpeg (`ffmpeg-next`): the only module that names `ffmpeg_next` types.
//!
//! Packets are read one by one (`Packet::read`), not through the packet iterator, which
//! stops silently on read errors. Only the frames the [`Sampler`] keeps are converted, by
//! swscale, straight to the model's frame size (area filter, RGB24). Inputs are restricted
//! to the local-file protocol and to real container formats: FFmpeg otherwise opens a text
//! file as "video" through its `tty` demuxer. Frames are turned as a player shows them
//! (the stream's display matrix, [`Orientation`]), and one file's decoding can be bounded
//! in time ([`decode_file_bounded`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame::video::Video as AvFrame;
use ffmpeg_next as ffmpeg;

use crate::sample::{Decision, Sampler};

/// Demuxers accepted for input. FFmpeg matches these names against each demuxer's own
/// comma-separated name list (`mov` matches `mov,mp4,m4a,3gp,3g2,mj2`). Audio-only
/// containers are accepted so that their error says "no video stream", which is the cause.
const FORMAT_WHITELIST: &str =
    "mov,mp4,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,m4v,ogg,asf,nut,mxf,dv,ivf,\
h261,h263,h264,hevc,vvc,av1,obu,mjpeg,gif,yuv4mpegpipe,rm,wtv,3gp,mp3,wav,flac,aac,w64";

#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    pub frame_width: u32,
    pub frame_height: u32,
    /// FFmpeg decoder threads for this file.
    pub threads: usize,
}

/// What the container declares about the video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub container: String,
    pub codec: String,
    /// The picture's size as displayed (after [`Orientation`]).
    pub width: u32,
    pub height: u32,
    /// How the display matrix turns the stored picture; frames come out turned.
    pub orientation: Orientation,
    /// Average frame rate, when the container knows it.
    pub fps: Option<f64>,
    /// Frame count the container declares (unreliable for some formats; a hint only).
    pub declared_frames: Option<u64>,
    pub duration_s: Option<f64>,
}

/// One kept frame, already converted to the model's frame size.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// 0-based decoded-frame index in presentation order.
    pub index: u64,
    /// Seconds from the stream start.
    pub pts_seconds: f64,
    /// Packed RGB24, `frame_width * frame_height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// How decoding of one file went.
#[derive(Debug, Clone)]
pub struct DecodeSummary {
    pub info: VideoInfo,
    /// Frames produced by the decoder (kept or not).
    pub frames_decoded: u64,
    pub frames_kept: u64,
    /// Packets the decoder rejected (corrupt data); decoding went on after each.
    pub decode_errors: u64,
    /// Seconds from the stream start to the end of the last video packet read.
    pub end_seconds: f64,
    /// Set when the file could not be read to its end: the frames before it are valid.
    pub error: Option<DecodeError>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeError {
    #[error("not a readable video file: {0}")]
    Open(String),
    /// FFmpeg knows the format, but it is not a video container framegpt reads (an image,
    /// a playlist, a subtitle file).
    #[error("not a video: {0}")]
    NotAVideo(String),
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("no video stream (streams found: {0})")]
    NoVideoStream(String),
    #[error("unsupported video codec `{0}`: {1}")]
    UnsupportedCodec(String, String),
    #[error("read error after {frames} frames ({at_seconds:.2} s): {cause}")]
    Read {
        frames: u64,
        at_seconds: f64,
        cause: String,
    },
    #[error("truncated: the container declares {declared}, but decoding ended after {got}")]
    Truncated { declared: String, got: String },
    #[error("no frame could be decoded ({0} decode errors)")]
    NoFrames(u64),
    #[error("swscale failed: {0}")]
    Scale(String),
    #[error(
        "timed out after {limit_s} s (--file-timeout) with {frames} frames decoded; hint: \
raise --file-timeout for very long videos, or pass --file-timeout none"
    )]
    TimedOut { limit_s: String, frames: u64 },
    #[error("interrupted")]
    Cancelled,
}

/// Initializes FFmpeg once and routes its log into `tracing` (warnings and errors).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        log_bridge::install();
    });
}

/// Decodes `path`, passing each kept frame to `sink` (which returns `false` to stop).
/// `Err` means nothing could be decoded at all; a failure part-way is `summary.error`.
pub fn decode_file(
    path: &Path,
    options: DecodeOptions,
    sampler: &mut Sampler,
    cancel: &AtomicBool,
    sink: impl FnMut(DecodedFrame) -> bool,
) -> Result<DecodeSummary, DecodeError> {
    decode_file_with(path, options, sampler, cancel, |_| {}, sink)
}

/// [`decode_file`], calling `on_open` with the stream information before the first frame.
pub fn decode_file_with(
    path: &Path,
    options: DecodeOptions,
    sampler: &mut Sampler,
    cancel: &AtomicBool,
    on_open: impl FnOnce(&VideoInfo),
    sink: impl FnMut(DecodedFrame) -> bool,
) -> Result<DecodeSummary, DecodeError> {
    decode_file_bounded(path, options, None, sampler, cancel, on_open, sink)
}

/// When one file's decoding must end (`--file-timeout`).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    fn passed(deadline: Option<Deadline>) -> bool {
        deadline.is_some_and(|d| Instant::now() >= d.at)
    }

    fn error(&self, frames: u64) -> DecodeError {
        DecodeError::TimedOut {
            limit_s: format!("{}", self.limit.as_secs_f64()),
            frames,
        }
    }
}

/// [`decode_file_with`], ending with [`DecodeError::TimedOut`] once `timeout` has passed
/// since the call: checked by FFmpeg while it opens and reads the file (its interrupt
/// callback, so a read that keeps failing and retrying ends too), before every packet and
/// after every frame. One call into the decoder is not cut short.
pub fn decode_file_bounded(
    path: &Path,
    options: DecodeOptions,
    timeout: Option<Duration>,
    sampler: &mut Sampler,
    cancel: &AtomicBool,
    on_open: impl FnOnce(&VideoInfo),
    mut sink: impl FnMut(DecodedFrame) -> bool,
) -> Result<DecodeSummary, DecodeError> {
    init();
    let deadline = timeout.map(|limit| Deadline {
        at: Instant::now() + limit,
        limit,
    });
    if std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(false)
    {
        return Err(DecodeError::Empty);
    }
    let mut ictx = match open_input(path, deadline) {
        Err(_) if Deadline::passed(deadline) => return Err(deadline.expect("set").error(0)),
        other => other?,
    };
    let keyframes_only = sampler.spec().keyframes_only;
    let mut video = VideoStream::open(&ictx, options, keyframes_only)?;
    if !video.info.orientation.is_identity() {
        tracing::info!(
            "`{}`: its display matrix shows the picture {}: analyzed as displayed",
            path.display(),
            video.info.orientation.describe()
        );
    }
    on_open(&video.info);
    let start_s = sampler.spec().start_s;
    if start_s > 0.0 {
        let ts = (start_s * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
        if let Err(e) = ictx.seek(ts, ..ts) {
            tracing::debug!("seek to {start_s} s failed ({e}); decoding from the start");
        }
    }
    let mut state = DrainState {
        options,
        time_base: video.time_base,
        stream_start: video.start,
        fps: video.info.fps,
        // Frame numbers count decoded frames; after a seek or when skipping non-key
        // frames they come from the timestamp instead (round(time × frame rate)).
        index_from_time: start_s > 0.0 || keyframes_only,
        orientation: video.info.orientation,
        deadline,
        frames_decoded: 0,
        last_seconds: None,
        scaler: None,
        stop: false,
        error: None,
    };
    let mut summary = DecodeSummary {
        info: video.info.clone(),
        frames_decoded: 0,
        frames_kept: 0,
        decode_errors: 0,
        end_seconds: 0.0,
        error: None,
    };
    let mut decoding = Decoding {
        state: &mut state,
        sampler: &mut *sampler,
        sink: &mut sink,
        summary: &mut summary,
    };
    let read_error = decoding.read_packets(&mut ictx, &mut video, cancel, path)?;
    if !state.stop {
        let _ = video.decoder.send_eof();
        state.drain(&mut video.decoder, sampler, &mut sink, &mut summary);
    }
    summary.frames_decoded = state.frames_decoded;
    if let Some(e @ DecodeError::TimedOut { .. }) = state.error.take() {
        return Err(e);
    }
    if let Some(e) = state.error.take() {
        summary.error = Some(e);
    } else if let Some(cause) = read_error {
        summary.error = Some(DecodeError::Read {
            frames: state.frames_decoded,
            at_seconds: state.last_seconds.unwrap_or(0.0),
            cause,
        });
    } else if state.frames_decoded == 0 {
        return Err(DecodeError::NoFrames(summary.decode_errors));
    } else if !state.stop && !sampler.spec().may_stop_early() {
        summary.error = check_truncation(&summary, keyframes_only || start_s > 0.0);
    }
    Ok(summary)
}

/// Opens the container, allowing local files and the whitelisted formats only. With a
/// deadline, FFmpeg's interrupt callback ends any read (while opening and afterwards) once
/// it has passed.
fn open_input(
    path: &Path,
    deadline: Option<Deadline>,
) -> Result<ffmpeg::format::context::Input, DecodeError> {
    let mut dict = ffmpeg::Dictionary::new();
    dict.set("protocol_whitelist", "file");
    dict.set("format_whitelist", FORMAT_WHITELIST);
    // The `file:` prefix keeps a name containing `:` from being read as a protocol. FFmpeg
    // (and ffmpeg-next) take a UTF-8 name: a name that is not UTF-8 is opened here and
    // passed as `/proc/self/fd/N`, which names the same file (the handle lives until
    // FFmpeg has opened its own).
    let (url, _held) = match path.to_str() {
        Some(name) => (format!("file:{name}"), None),
        None => {
            let file = std::fs::File::open(path)
                .map_err(|e| DecodeError::Open(format!("cannot open it: {e}")))?;
            let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file);
            (format!("file:/proc/self/fd/{fd}"), Some(file))
        }
    };
    let opened = match deadline {
        Some(d) => ffmpeg::format::input_with_interrupt_and_dictionary(
            &url,
            move || Instant::now() >= d.at,
            dict,
        ),
        None => ffmpeg::format::input_with_dictionary(&url, dict),
    };
    opened.map_err(|e| match foreign_format(path) {
        Some(cause) => DecodeError::NotAVideo(cause),
        None => DecodeError::Open(describe_open_error(e)),
    })
}

/// The best video stream of a container, with its decoder open.
struct VideoStream {
    index: usize,
    time_base: f64,
    /// The stream's start time, in `time_base` units.
    start: i64,
    keyframes_only: bool,
    decoder: ffmpeg::decoder::Video,
    info: VideoInfo,
}

impl VideoStream {
    fn open(
        ictx: &ffmpeg::format::context::Input,
        options: DecodeOptions,
        keyframes_only: bool,
    ) -> Result<Self, DecodeError> {
        let Some(stream) = ictx.streams().best(ffmpeg::media::Type::Video) else {
            let kinds: Vec<String> = ictx
                .streams()
                .map(|s| format!("{:?}", s.parameters().medium()).to_lowercase())
                .collect();
            return Err(DecodeError::NoVideoStream(if kinds.is_empty() {
                "none".into()
            } else {
                kinds.join(", ")
            }));
        };
        let time_base = f64::from(stream.time_base());
        let duration_s = if stream.duration() > 0 {
            Some(stream.duration() as f64 * time_base)
        } else if ictx.duration() > 0 {
            Some(ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
        } else {
            None
        };
        let params = stream.parameters();
        let codec_name = format!("{:?}", params.id()).to_lowercase();
        let unsupported =
            |e: ffmpeg::Error| DecodeError::UnsupportedCodec(codec_name.clone(), e.to_string());
        let mut ctx =
            ffmpeg::codec::context::Context::from_parameters(params).map_err(unsupported)?;
        ctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: options.threads.max(1),
            ..Default::default()
        });
        let mut decoder = ctx.decoder().video().map_err(unsupported)?;
        // The deblocking filter only smooths block edges; at the model's 64x64 they are
        // gone after the area resize, and skipping the filter decodes H.264 faster.
        decoder.skip_loop_filter(ffmpeg::codec::discard::Discard::All);
        if keyframes_only {
            decoder.skip_frame(ffmpeg::codec::discard::Discard::NonKey);
        }
        let orientation = stream
            .side_data()
            .find(|d| d.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
            .and_then(|d| display_matrix(d.data()))
            .map_or_else(Orientation::default, Orientation::from_display_matrix);
        let (width, height) = if orientation.transpose {
            (decoder.height(), decoder.width())
        } else {
            (decoder.width(), decoder.height())
        };
        let info = VideoInfo {
            container: ictx.format().name().to_string(),
            codec: codec_name.clone(),
            width,
            height,
            orientation,
            fps: rational_to_positive(stream.avg_frame_rate())
                .or_else(|| rational_to_positive(stream.rate())),
            declared_frames: (stream.frames() > 0).then_some(stream.frames() as u64),
            duration_s,
        };
        Ok(VideoStream {
            index: stream.index(),
            time_base,
            start: if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
                0
            } else {
                stream.start_time()
            },
            keyframes_only,
            decoder,
            info,
        })
    }
}

/// What the packet loop updates.
struct Decoding<'a, S: FnMut(DecodedFrame) -> bool> {
    state: &'a mut DrainState,
    sampler: &'a mut Sampler,
    sink: &'a mut S,
    summary: &'a mut DecodeSummary,
}

impl<S: FnMut(DecodedFrame) -> bool> Decoding<'_, S> {
    /// Reads packets until the end, a stop from the sink, or a read error (returned).
    fn read_packets(
        &mut self,
        ictx: &mut ffmpeg::format::context::Input,
        video: &mut VideoStream,
        cancel: &AtomicBool,
        path: &Path,
    ) -> Result<Option<String>, DecodeError> {
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(DecodeError::Cancelled);
            }
            if let Some(d) = self
                .state
                .deadline
                .filter(|_| Deadline::passed(self.state.deadline))
            {
                return Err(d.error(self.state.frames_decoded));
            }
            // A fresh packet each time: av_read_frame does not release what a packet
            // already holds, so reusing one leaks every packet read (memory grew with
            // video length).
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(ictx) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(None),
                // The interrupt callback ended the read (`Exit`): the loop's check says why.
                Err(_) if Deadline::passed(self.state.deadline) => continue,
                Err(e) => return Ok(Some(e.to_string())),
            }
            if packet.stream() != video.index {
                continue;
            }
            if let Some(pts) = packet.pts().or(packet.dts()) {
                let end = (pts - video.start + packet.duration().max(0)) as f64 * video.time_base;
                self.summary.end_seconds = self.summary.end_seconds.max(end);
            }
            if video.keyframes_only && !packet.is_key() {
                continue;
            }
            if let Err(e) = video.decoder.send_packet(&packet) {
                self.summary.decode_errors += 1;
                tracing::debug!("{}: packet rejected: {e}", path.display());
            }
            self.state
                .drain(&mut video.decoder, self.sampler, self.sink, self.summary);
            if self.state.stop {
                return Ok(None);
            }
        }
    }
}

/// Compares what was decoded with what the container declares. A truncated AVI decodes to
/// fewer frames without any error, so this is the only place that notices.
fn check_truncation(s: &DecodeSummary, skipped_frames: bool) -> Option<DecodeError> {
    if let (Some(declared), false) = (s.info.declared_frames, skipped_frames) {
        let missing = declared.saturating_sub(s.frames_decoded);
        if missing > 2 + declared / 100 {
            return Some(DecodeError::Truncated {
                declared: format!("{declared} frames"),
                got: format!("{} frames ({:.2} s)", s.frames_decoded, s.end_seconds),
            });
        }
    }
    if let Some(duration) = s.info.duration_s {
        let missing_s = duration - s.end_seconds;
        if missing_s > (0.05 * duration).max(1.0) {
            return Some(DecodeError::Truncated {
                declared: format!("{duration:.2} s"),
                got: format!("{:.2} s ({} frames)", s.end_seconds, s.frames_decoded),
            });
        }
    }
    None
}

struct DrainState {
    options: DecodeOptions,
    orientation: Orientation,
    deadline: Option<Deadline>,
    time_base: f64,
    stream_start: i64,
    fps: Option<f64>,
    index_from_time: bool,
    frames_decoded: u64,
    last_seconds: Option<f64>,
    scaler: Option<(scaling::Context, (Pixel, u32, u32))>,
    stop: bool,
    error: Option<DecodeError>,
}

impl DrainState {
    fn drain(
        &mut self,
        decoder: &mut ffmpeg::decoder::Video,
        sampler: &mut Sampler,
        sink: &mut impl FnMut(DecodedFrame) -> bool,
        summary: &mut DecodeSummary,
    ) {
        let mut frame = AvFrame::empty();
        while !self.stop && decoder.receive_frame(&mut frame).is_ok() {
            let seconds = match frame.timestamp() {
                Some(ts) => (ts - self.stream_start) as f64 * self.time_base,
                None => self
                    .last_seconds
                    .map_or(0.0, |s| s + 1.0 / self.fps.unwrap_or(25.0)),
            };
            let index = if self.index_from_time {
                (seconds * self.fps.unwrap_or(25.0)).round().max(0.0) as u64
            } else {
                self.frames_decoded
            };
            self.frames_decoded += 1;
            self.last_seconds = Some(seconds);
            if let Some(d) = self.deadline.filter(|_| Deadline::passed(self.deadline)) {
                self.error = Some(d.error(self.frames_decoded));
                self.stop = true;
                break;
            }
            match sampler.decide(seconds) {
                Decision::Skip => continue,
                Decision::Stop => {
                    self.stop = true;
                    break;
                }
                Decision::Keep => {}
            }
            let rgb = match self.convert(&frame) {
                Ok(rgb) => rgb,
                Err(e) => {
                    self.error = Some(e);
                    self.stop = true;
                    break;
                }
            };
            summary.frames_kept += 1;
            if !sink(DecodedFrame {
                index,
                pts_seconds: seconds,
                rgb,
            }) || sampler.is_full()
            {
                self.stop = true;
            }
        }
    }

    /// The frame scaled to the model's size and turned as displayed: a quarter turn scales
    /// to the transposed size first, so the turned picture has the model's size.
    fn convert(&mut self, frame: &AvFrame) -> Result<Vec<u8>, DecodeError> {
        let (w, h) = if self.orientation.transpose {
            (self.options.frame_height, self.options.frame_width)
        } else {
            (self.options.frame_width, self.options.frame_height)
        };
        let key = (frame.format(), frame.width(), frame.height());
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::RGB24,
                w,
                h,
                scaling::Flags::AREA,
            )
            .map_err(|e| DecodeError::Scale(e.to_string()))?;
            self.scaler = Some((ctx, key));
        }
        let (scaler, _) = self.scaler.as_mut().expect("scaler was just created");
        let mut out = AvFrame::empty();
        scaler
            .run(frame, &mut out)
            .map_err(|e| DecodeError::Scale(e.to_string()))?;
        let stride = out.stride(0);
        let row = (w * 3) as usize;
        let data = out.data(0);
        let mut rgb = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            rgb.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(self.orientation.apply(&rgb, w as usize, h as usize))
    }
}

/// The 3×3 display matrix of a stream's side data (nine native-endian 32-bit integers,
/// 16.16 fixed point except the last column, as FFmpeg stores it).
fn display_matrix(bytes: &[u8]) -> Option<[i32; 9]> {
    let mut m = [0i32; 9];
    for (v, chunk) in m.iter_mut().zip(bytes.get(..36)?.chunks_exact(4)) {
        *v = i32::from_ne_bytes(chunk.try_into().ok()?);
    }
    Some(m)
}

/// How a player turns the stored picture for display, decided from the stream's display
/// matrix as FFmpeg's own autorotate does (`fftools/ffmpeg_filter.c`, FFmpeg 5.1): quarter
/// turns and mirrors. An output pixel (x, y) comes from the stored (scaled) picture at
/// (a, b) = transpose ? (y, x) : (x, y), each mirrored when its flip is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Orientation {
    /// Clockwise turn in degrees: 0, 90, 180 or 270.
    pub rotation_deg: u16,
    /// Rows and columns swapped (a 90° or 270° turn).
    pub transpose: bool,
    /// Source column mirrored (after the swap).
    pub flip_x: bool,
    /// Source row mirrored (after the swap).
    pub flip_y: bool,
}

impl Orientation {
    /// The turn a display matrix asks for. An angle that is not a quarter turn is not
    /// applied (FFmpeg rotates by any angle; that would crop or pad the picture).
    pub fn from_display_matrix(m: [i32; 9]) -> Self {
        let fp = |v: i32| f64::from(v) / 65536.0;
        let (s0, s1) = (fp(m[0]).hypot(fp(m[3])), fp(m[1]).hypot(fp(m[4])));
        if s0 == 0.0 || s1 == 0.0 {
            return Orientation::default();
        }
        // av_display_rotation_get is the counterclockwise angle; FFmpeg negates it.
        let ccw = -(fp(m[1]) / s1).atan2(fp(m[0]) / s0).to_degrees();
        let mut theta = -ccw.round();
        theta -= 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
        let near = |deg: f64| (theta - deg).abs() < 1.0;
        let turn = |rotation_deg, transpose, flip_x, flip_y| Orientation {
            rotation_deg,
            transpose,
            flip_x,
            flip_y,
        };
        if near(90.0) {
            // transpose=cclock_flip when m[3] > 0, else transpose=clock
            turn(90, true, false, m[3] <= 0)
        } else if near(180.0) {
            turn(180, false, m[0] < 0, m[4] < 0)
        } else if near(270.0) {
            // transpose=clock_flip when m[3] < 0, else transpose=cclock
            turn(270, true, true, m[3] < 0)
        } else if theta.abs() < 1.0 || near(360.0) {
            turn(0, false, false, m[4] < 0)
        } else {
            tracing::warn!("display matrix rotates by {theta}°, not a quarter turn: not applied");
            Orientation::default()
        }
    }

    /// Nothing to do.
    pub fn is_identity(&self) -> bool {
        !(self.transpose || self.flip_x || self.flip_y)
    }

    /// What it does, for a log line: "turned 90° clockwise", "mirrored", ...
    pub fn describe(&self) -> String {
        let mirrored = match (self.rotation_deg, self.flip_x, self.flip_y) {
            (0, false, false) | (90, false, true) | (180, true, true) | (270, true, false) => "",
            _ => " and mirrored",
        };
        format!("turned {}° clockwise{mirrored}", self.rotation_deg)
    }

    /// `rgb` (packed RGB24, `width` × `height`) turned; the result is `height` × `width`
    /// when transposing.
    pub fn apply(&self, rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
        if self.is_identity() {
            return rgb.to_vec();
        }
        let (out_w, out_h) = if self.transpose {
            (height, width)
        } else {
            (width, height)
        };
        let mut out = Vec::with_capacity(rgb.len());
        for y in 0..out_h {
            for x in 0..out_w {
                let (a, b) = if self.transpose { (y, x) } else { (x, y) };
                let sx = if self.flip_x { width - 1 - a } else { a };
                let sy = if self.flip_y { height - 1 - b } else { b };
                let i = (sy * width + sx) * 3;
                out.extend_from_slice(&rgb[i..i + 3]);
            }
        }
        out
    }
}

fn rational_to_positive(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

/// Why a file FFmpeg refused is not a video, when FFmpeg recognises its format and that
/// format is not on the whitelist: "image format png_pipe", "playlist format hls".
fn foreign_format(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let name = probe::format_name(path, &head)?;
    let allowed: Vec<&str> = FORMAT_WHITELIST.split(',').collect();
    if name.split(',').any(|n| allowed.contains(&n)) {
        return None;
    }
    Some(if name.ends_with("_pipe") || name.starts_with("image2") {
        format!("image format {name} (framegpt reads videos, not still images)")
    } else if ["hls", "concat", "ffconcat", "dash", "mpd"].contains(&name.as_str()) {
        format!("playlist format {name} (framegpt does not follow playlists)")
    } else {
        format!("format {name}, which is not a video container framegpt reads")
    })
}

// FFmpeg's format probe is C: allowed here next to the log bridge.
#[allow(unsafe_code)]
mod probe {
    use super::ffmpeg::ffi;
    use std::ffi::{CStr, CString};

    /// The demuxer FFmpeg would pick for a file with this name and these first bytes (no
    /// whitelist, nothing opened: only the bytes given are looked at).
    pub fn format_name(path: &std::path::Path, head: &[u8]) -> Option<String> {
        let mut buf = head.to_vec();
        buf.resize(head.len() + ffi::AVPROBE_PADDING_SIZE as usize, 0);
        let name = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
        let pd = ffi::AVProbeData {
            filename: name.as_ptr(),
            buf: buf.as_mut_ptr(),
            buf_size: i32::try_from(head.len()).ok()?,
            mime_type: std::ptr::null(),
        };
        // SAFETY: `pd` points at live buffers, `buf` zero-padded as FFmpeg requires; the
        // returned format is a static FFmpeg table entry with a NUL-terminated name.
        unsafe {
            let format = ffi::av_probe_input_format(&pd, 1);
            if format.is_null() || (*format).name.is_null() {
                return None;
            }
            Some(
                CStr::from_ptr((*format).name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }
}

fn describe_open_error(e: ffmpeg::Error) -> String {
    match e {
        ffmpeg::Error::InvalidData => {
            "FFmpeg found no supported video container in it (not a video, or corrupt or truncated beyond repair)".to_string()
        }
        ffmpeg::Error::DemuxerNotFound => "no demuxer for this format".to_string(),
        ffmpeg::Error::Eof => {
            "the file ends inside the container header (truncated)".to_string()
        }
        other => other.to_string(),
    }
}

// FFmpeg's log callback is C: the only unsafe code in the crate.
#[allow(unsafe_code)]
mod log_bridge {
    //! FFmpeg's own log, routed into `tracing` (so `-v` and `RUST_LOG` control it).
    use super::ffmpeg::ffi;
    use std::ffi::{c_char, c_int, c_void, CStr};

    pub fn install() {
        unsafe {
            ffi::av_log_set_level(ffi::AV_LOG_WARNING);
            ffi::av_log_set_callback(Some(callback));
        }
    }

    unsafe extern "C" fn callback(
        avcl: *mut c_void,
        level: c_int,
        fmt: *const c_char,
        vl: *mut ffi::__va_list_tag,
    ) {
        if level > ffi::AV_LOG_WARNING {
            return;
        }
        let mut buf = [0 as c_char; 1024];
        let mut prefix: c_int = 1;
        // SAFETY: FFmpeg hands us a valid format string and va_list; the buffer is ours.
        let line = unsafe {
            ffi::av_log_format_line2(
                avcl,
                level,
                fmt,
                vl,
                buf.as_mut_ptr(),
                buf.len() as c_int,
                &mut prefix,
            );
            CStr::from_ptr(buf.as_ptr())
        };
        let text = line.to_string_lossy();
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if level <= ffi::AV_LOG_ERROR {
            tracing::warn!(target: "ffmpeg", "{text}");
        } else {
            tracing::info!(target: "ffmpeg", "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::SampleSpec;

    fn rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn decode_once(path: &Path) -> u64 {
        let mut sampler = Sampler::new(SampleSpec {
            every: 50,
            ..Default::default()
        });
        let options = DecodeOptions {
            frame_width: 64,
            frame_height: 64,
            threads: 1,
        };
        decode_file(path, options, &mut sampler, &AtomicBool::new(false), |_| {
            true
        })
        .unwrap()
        .frames_decoded
    }

    /// The display matrices FFmpeg 5.1's mp4 muxer writes for `rotate=90/180/270` (as
    /// `ffprobe -show_streams` prints them), with the turn FFmpeg's autorotate applies to
    /// each (checked against the `ffmpeg` program in tests/cli/decoding.rs).
    #[test]
    fn display_matrices_give_ffmpegs_turns() {
        const ONE: i32 = 65536;
        const W: i32 = 1 << 30;
        let cases = [
            ([ONE, 0, 0, 0, ONE, 0, 0, 0, W], 0, false, false, false),
            ([0, -ONE, 0, ONE, 0, 0, 0, 0, W], 270, true, true, false),
            ([-ONE, 0, 0, 0, -ONE, 0, 0, 0, W], 180, false, true, true),
            ([0, ONE, 0, -ONE, 0, 0, 0, 0, W], 90, true, false, true),
            // Mirrored: a vertical flip alone, and a transpose (cclock_flip).
            ([ONE, 0, 0, 0, -ONE, 0, 0, 0, W], 0, false, false, true),
            ([0, ONE, 0, ONE, 0, 0, 0, 0, W], 90, true, false, false),
        ];
        for (m, deg, transpose, flip_x, flip_y) in cases {
            let o = Orientation::from_display_matrix(m);
            assert_eq!(
                (o.rotation_deg, o.transpose, o.flip_x, o.flip_y),
                (deg, transpose, flip_x, flip_y),
                "{m:?}"
            );
        }
        assert!(Orientation::from_display_matrix([0; 9]).is_identity());
        assert_eq!(display_matrix(&[0u8; 35]), None);
    }

    /// A 3×2 picture turned: 90° clockwise puts the bottom-left pixel top-left.
    #[test]
    fn orientation_moves_pixels_like_ffmpegs_transpose() {
        // Pixels numbered 0..6 row by row (one channel repeated three times).
        let rgb: Vec<u8> = (0..6u8).flat_map(|v| [v, v, v]).collect();
        let px =
            |o: Orientation| -> Vec<u8> { o.apply(&rgb, 3, 2).chunks(3).map(|c| c[0]).collect() };
        let turn = |transpose, flip_x, flip_y| Orientation {
            rotation_deg: 0,
            transpose,
            flip_x,
            flip_y,
        };
        // 0 1 2      clock: 3 0     cclock: 2 5     180: 5 4 3
        // 3 4 5             4 1             1 4          2 1 0
        //                   5 2             0 3
        assert_eq!(px(turn(true, false, true)), [3, 0, 4, 1, 5, 2]);
        assert_eq!(px(turn(true, true, false)), [2, 5, 1, 4, 0, 3]);
        assert_eq!(px(turn(false, true, true)), [5, 4, 3, 2, 1, 0]);
        assert_eq!(px(turn(true, false, false)), [0, 3, 1, 4, 2, 5]);
        assert_eq!(px(Orientation::default()), [0, 1, 2, 3, 4, 5]);
    }

    /// Regression: reusing one `Packet` for `av_read_frame` leaked every packet's data, so
    /// memory grew with the length of the video (a 600 s 1080p clip peaked at 443 MB).
    #[test]
    fn decoding_does_not_leak_packets() {
        let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cockatoo.mp4");
        let size_kb = std::fs::metadata(&clip).unwrap().len() / 1024;
        for _ in 0..5 {
            assert_eq!(decode_once(&clip), 280);
        }
        let before = rss_kb();
        let rounds = 30;
        for _ in 0..rounds {
            decode_once(&clip);
        }
        let grown = rss_kb().saturating_sub(before);
        // With the leak this grew by about rounds × the file size (30 × 176 KB).
        assert!(
            grown < rounds * size_kb / 3,
            "RSS grew by {grown} KB over {rounds} decodes of a {size_kb} KB file"
        );
    }
}
