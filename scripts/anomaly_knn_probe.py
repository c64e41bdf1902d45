#!/usr/bin/env python3
"""Probe (not shipped): rank anomalies by the distance of each frame's embedding to its nearest
frames of the adaptation footage (a memory bank, as in PatchCore, on framegpt's embeddings).

  anomaly_knn_probe.py CSVDIR TESTSET CALIB TESTOUT OUT

CSVDIR: the per-scene adaptation CSVs (scripts/anomaly_split.py); CALIB/<scene>, TESTOUT/<scene>:
`framegpt analyze --embeddings npy` of the adaptation videos and of the test videos with the
scene's adapted model. The bank is the embeddings of the normal stretches (repeated frames
left out), standardized per dimension; per test frame the mean distance to the k nearest
(k = 1: OUT/knn1, k = 5: OUT/knn5), as prediction files for score_anomaly.py.
Run by `KNN=1 scripts/bench_anomaly_split.sh`; results: docs/BENCHMARKS.md.
"""
import csv
import json
import os
import sys

import numpy as np


def load(d, video):
    rows = list(csv.DictReader(open(os.path.join(d, video, "frames.csv"), newline="")))
    e = np.load(os.path.join(d, video, "embeddings.npy")).astype(np.float64)
    t = np.array([float(r["time_s"]) for r in rows])
    rep = np.array([r["repeated"] == "1" for r in rows])
    return t, rep, e


def knn(q, bank, k):
    d = (q ** 2).sum(1)[:, None] + (bank ** 2).sum(1)[None, :] - 2 * q @ bank.T
    d = np.sqrt(np.maximum(d, 0))
    d.sort(1)
    return d[:, :k].mean(1)


def main():
    csvdir, testset, calib, testout, out = sys.argv[1:6]
    for k in (1, 5):
        os.makedirs(os.path.join(out, f"knn{k}"), exist_ok=True)
    for f in sorted(os.listdir(csvdir)):
        scene = f[:-4]
        segs = list(csv.DictReader(open(os.path.join(csvdir, f), newline="")))
        bank = []
        for vid in sorted({r["path"] for r in segs}):
            t, rep, e = load(os.path.join(calib, scene), os.path.basename(vid))
            normal = np.zeros(len(t), bool)
            for r in segs:
                if r["path"] == vid:
                    normal |= (t >= float(r["start_s"])) & (t < float(r["end_s"]))
            bank.append(e[normal & ~rep])
        bank = np.concatenate(bank)
        mu, sd = bank.mean(0), bank.std(0) + 1e-6
        bank = (bank - mu) / sd
        for v in json.load(open(os.path.join(testset, f"index_{scene}.json")))["videos"]:
            _, _, e = load(os.path.join(testout, scene), v["video"])
            q = (e - mu) / sd
            for k in (1, 5):
                x = knn(q, bank, k)
                with open(os.path.join(out, f"knn{k}", os.path.splitext(v["video"])[0] + ".csv"), "w") as g:
                    g.write("frame,score\n")
                    g.writelines(f"{i},{x[i]:.5f}\n" for i in range(len(x)))


if __name__ == "__main__":
    main()
