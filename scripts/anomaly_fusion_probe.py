#!/usr/bin/env python3
"""Probe (not shipped): does combining `anomaly` with `surprise` rank anomalies better?

Both are calibrated against the camera's own normal footage: per scene, the median and
spread (IQR / 1.349, floor 0.1) of ln(surprise) and ln(anomaly) over the normal stretches
that `framegpt adapt` learned from (the adaptation CSVs of scripts/bench_anomaly.sh), with
the adapted models that script wrote; repeated frames (surprise 0 by definition) are left out
of the calibration and take the previous frame's value in the test videos. Variants per test
frame: za = z of ln(anomaly), zs = z of ln(surprise), max, sum, and lse = ln(e^za + e^zs).
Scored by the shared score_anomaly.py (min-max pooled AUC per scene).

Needs the outputs of `scripts/bench_anomaly.sh` and `SET=tune scripts/bench_anomaly.sh`
(adapted models, predictions) under $ANOM_DATA. Usage:

    ~/.cache/framegpt-bench/sbd-venv/bin/python scripts/anomaly_fusion_probe.py [WORK]

Results: docs/BENCHMARKS.md ("Combining anomaly with surprise: measured, not kept").
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("ANOM_DATA", os.path.expanduser("~/.cache/framegpt-bench/anomaly"))
BENCH = os.environ.get("ANOM_BENCH", os.path.join(ROOT, "..", "shared", "bench", "anomaly"))
FG = os.environ.get("FRAMEGPT", os.path.join(ROOT, "target", "release", "framegpt"))
WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/framegpt-fusion-probe"
SETS = {  # adaptation CSVs, models, test set, predictions of the adapted models
    "tune": ("adapt-tune", "models-tune", "bench/tune-seed0", "pred/tune/adapted_raw"),
    "dev": ("adapt", "models", "bench/dev", "pred/dev/adapted_raw"),
}
VARIANTS = ["za", "zs", "max", "sum", "lse"]


def read(path):
    rows = list(csv.DictReader(open(path, newline="")))
    t = np.array([float(r["time_s"]) for r in rows])
    rep = np.array([r["repeated"] == "1" for r in rows])
    val = lambda c: np.array([float(r[c]) if r[c] else np.nan for r in rows])
    s, a = val("surprise"), val("anomaly")
    s[rep] = np.nan
    return t, s, a


def log(x):
    return np.log(np.maximum(x, 1e-6))


def robust(x):
    x = x[np.isfinite(x)]
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return q2, max((q3 - q1) / 1.349, 0.1)


def main():
    for name, (adapt, models, test, pred) in SETS.items():
        for v in VARIANTS:
            os.makedirs(os.path.join(WORK, name, v), exist_ok=True)
        for f in sorted(os.listdir(os.path.join(DATA, adapt))):
            scene = f[:-4]
            segs = list(csv.DictReader(open(os.path.join(DATA, adapt, f), newline="")))
            videos = sorted({r["path"] for r in segs})
            calib = os.path.join(WORK, "calib", scene)
            if not os.path.isdir(calib):
                model = os.path.join(DATA, models, scene + ".onnx")
                subprocess.run([FG, "analyze", *videos, "-o", calib, "--model", model,
                                "--no-progress", "-q", "--force"], check=True)
            ls, la = [], []
            for vid in videos:
                t, s, a = read(os.path.join(calib, os.path.basename(vid), "frames.csv"))
                normal = np.zeros(len(t), bool)
                for r in segs:
                    if r["path"] == vid:
                        normal |= (t >= float(r["start_s"])) & (t < float(r["end_s"]))
                ls.append(log(s[normal]))
                la.append(log(a[normal]))
            (ms, ss), (ma, sa) = robust(np.concatenate(ls)), robust(np.concatenate(la))
            print(f"{name} {scene}: ln surprise median {ms:.3f} spread {ss:.3f}; "
                  f"ln anomaly median {ma:.3f} spread {sa:.3f}")
            index = json.load(open(os.path.join(DATA, test, f"index_{scene}.json")))
            for v in index["videos"]:
                t, s, a = read(os.path.join(DATA, pred, scene, v["video"], "frames.csv"))
                zs, za = (log(s) - ms) / ss, (log(a) - ma) / sa
                for i in range(1, len(zs)):
                    if not np.isfinite(zs[i]):
                        zs[i] = zs[i - 1]
                out = {"za": za, "zs": zs, "max": np.fmax(za, zs), "sum": za + zs,
                       "lse": np.logaddexp(za, zs)}
                for k, x in out.items():
                    x = np.where(np.isfinite(x), x, np.nanmin(x))
                    stem = os.path.splitext(v["video"])[0]
                    with open(os.path.join(WORK, name, k, stem + ".csv"), "w") as g:
                        g.write("frame,score\n")
                        g.writelines(f"{i},{x[i]:.5f}\n" for i in range(len(x)))
        for idx in sorted(p for p in os.listdir(os.path.join(DATA, test)) if p.startswith("index")):
            print(f"\n{name} {idx}\n| variant | pooled AUC | min-max pooled AUC | speedup | reverse | object | brightness | shake | freeze |")
            sys.stdout.flush()
            for k in VARIANTS:
                subprocess.run([sys.executable, os.path.join(BENCH, "score_anomaly.py"),
                                os.path.join(DATA, test, idx), os.path.join(WORK, name, k),
                                "--row", k], check=True, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
