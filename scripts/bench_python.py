#!/usr/bin/env python3
"""The "equivalent Python pipeline" that DESIGN.md's speed bar compares framegpt against.

    PyAV decode -> 64x64 RGB24 (swscale area filter) -> numpy patchify -> overlapping windows
    (T from the model metadata, stride T/2, batches of 8 windows) -> onnxruntime (CPU)
    -> per-frame MSE surprise.

It mirrors framegpt's `analyze` work for surprise (src/patchify.rs, src/score.rs): patch n
is grid row n // gx, column n % gx; inside a patch the values are ordered (py, px, channel);
value = (pixel / 255 - mean) / std. Window k starts at frame k*S; window 0 owns positions
0..T-1, later windows own T-S..T-1; past the last frame the window is padded with the last
frame. It streams (memory bounded by T + S frames plus one batch), like framegpt.

Done as fast as plain Python reasonably allows: numpy-vectorized patchify and MSE, frame
threads in the decoder, ONNX Runtime with the same settings as framegpt (intra-op threads
= --threads, spinning off, all graph optimizations), and like framegpt's decoder it skips
H.264's deblocking filter (`--deblock` keeps it). On samples/cockatoo.mp4 its surprise
matches `framegpt analyze` to 3.3e-4 (0.5 %; the swscale set-ups differ slightly). Not done: embeddings, thumbnails,
shot detection, CSV writing (framegpt's `analyze` does all of those on top).

Timed: from opening the file to the last surprise value (the model is loaded before).
Prints one JSON line: {"frames", "seconds", "fps", ...}.

    python scripts/bench_python.py VIDEO [--model models/framegpt-base.onnx] [--threads 2]
"""

import argparse
import json
import os
import sys
import time
from collections import deque

import av
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def triplet(s):
    v = [float(x) for x in s.split(",")]
    assert len(v) == 3, s
    return np.array(v, dtype=np.float32)


class Patchifier:
    def __init__(self, width, height, patch, mean, std):
        self.w, self.h, self.p = width, height, patch
        self.gx, self.gy = width // patch, height // patch
        # Same arithmetic as src/patchify.rs: pixel * scale + offset, in f32.
        self.scale = (np.float32(1.0) / (np.float32(255.0) * std)).astype(np.float32)
        self.offset = (-mean / std).astype(np.float32)

    def __call__(self, rgb):
        """(H, W, 3) uint8 -> (N, 3*P*P) float32."""
        p = self.p
        x = rgb.reshape(self.gy, p, self.gx, p, 3).transpose(0, 2, 1, 3, 4)
        x = x.astype(np.float32) * self.scale + self.offset
        return x.reshape(self.gy * self.gx, p * p * 3)


class Windower:
    """src/score.rs's Windower: windows of T frames, stride S, each target owned once."""

    def __init__(self, t, s):
        self.t, self.s = t, s
        self.buf = deque()
        self.base = 0  # position of buf[0]
        self.seen = 0
        self.next = 0

    def push(self, frame):
        self.buf.append(frame)
        self.seen += 1
        out = []
        while self.seen > self.next * self.s + self.t:
            out.append(self._emit(self.next))
            self.next += 1
        return out

    def finish(self):
        out = []
        if self.seen == 0:
            return out
        last = self.seen - 1
        while self.next == 0 or self.next * self.s + (self.t - self.s) <= last:
            out.append(self._emit(self.next))
            self.next += 1
        return out

    def _emit(self, k):
        t, s = self.t, self.s
        start, last = k * s, self.seen - 1
        frames = [self.buf[min(start + p, last) - self.base] for p in range(t)]
        window = np.stack(frames)  # (T, N, C)
        first = 0 if k == 0 else t - s
        # Owned positions whose next frame exists: surprise of frame start+p+1.
        positions = [p for p in range(first, t) if start + p + 1 <= last]
        targets = (
            np.stack([self.buf[start + p + 1 - self.base] for p in positions])
            if positions
            else None
        )
        keep_from = min((k + 1) * s, self.seen)
        while self.base < keep_from:
            self.buf.popleft()
            self.base += 1
        return window, start, positions, targets


def load_model(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # As in framegpt: spinning threads fight the decoder for the cores.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    md = sess.get_modelmeta().custom_metadata_map
    w, h = (int(v) for v in md["framegpt.frame_size"].lower().split("x"))
    meta = dict(
        width=w,
        height=h,
        patch=int(md["framegpt.patch_size"]),
        context=int(md["framegpt.context_frames"]),
        mean=triplet(md["framegpt.mean"]),
        std=triplet(md["framegpt.std"]),
    )
    return sess, meta


def run(video, sess, meta, threads, batch, stride, skip_loop_filter=True):
    t = meta["context"]
    patchify = Patchifier(meta["width"], meta["height"], meta["patch"], meta["mean"], meta["std"])
    windower = Windower(t, stride or max(t // 2, 1))
    surprise = {}  # frame position -> MSE
    pending = []
    input_name = sess.get_inputs()[0].name
    out_index = [o.name for o in sess.get_outputs()].index("next_patches")

    def run_batch(windows):
        x = np.stack([w[0] for w in windows])  # (B, T, N, C)
        # All outputs, as framegpt reads next_patches and embeddings (and logits if any).
        pred = sess.run(None, {input_name: x})[out_index]
        for i, (_, start, positions, targets) in enumerate(windows):
            if positions:
                d = pred[i, positions] - targets
                mse = np.mean(np.square(d), axis=(1, 2))
                for p, v in zip(positions, mse):
                    surprise[start + p + 1] = float(v)

    started = time.perf_counter()
    frames = 0
    with av.open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "FRAME"
        stream.thread_count = threads
        if skip_loop_filter:
            # As framegpt's decoder (src/decode.rs): no deblocking, its edges vanish at 64x64.
            stream.codec_context.options = {"skip_loop_filter": "all"}
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(
                width=meta["width"], height=meta["height"], format="rgb24", interpolation="AREA"
            )
            pending.extend(windower.push(patchify(rgb)))
            frames += 1
            while len(pending) >= batch:
                run_batch(pending[:batch])
                pending = pending[batch:]
    pending.extend(windower.finish())
    for i in range(0, len(pending), batch):
        run_batch(pending[i : i + batch])
    seconds = time.perf_counter() - started
    return frames, seconds, surprise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "framegpt-base.onnx"))
    ap.add_argument("--threads", type=int, default=2, help="decoder and ORT intra-op threads")
    ap.add_argument("--batch", type=int, default=8, help="windows per inference call")
    ap.add_argument("--stride", type=int, default=0, help="window stride [default: T/2]")
    ap.add_argument(
        "--deblock",
        action="store_true",
        help="keep H.264's deblocking filter (framegpt skips it, so the default does too)",
    )
    ap.add_argument("--dump", help="write `frame,surprise` CSV here (parity checks)")
    args = ap.parse_args()

    sess, meta = load_model(args.model, args.threads)
    frames, seconds, surprise = run(
        args.video, sess, meta, args.threads, args.batch, args.stride, not args.deblock
    )
    if args.dump:
        with open(args.dump, "w") as f:
            f.write("frame,surprise\n")
            for k in sorted(surprise):
                f.write(f"{k},{surprise[k]:.6f}\n")
    print(
        json.dumps(
            {
                "stage": "python",
                "frames": frames,
                "seconds": seconds,
                "fps": frames / max(seconds, 1e-9),
                "threads": args.threads,
                "batch": args.batch,
                "deblock": args.deblock,
                "av": av.__version__,
                "onnxruntime": ort.__version__,
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
