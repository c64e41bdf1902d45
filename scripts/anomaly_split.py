#!/usr/bin/env python3
"""Per-scene adaptation footage for scripts/bench_anomaly.sh.

  anomaly_split.py ADAPTSET TESTSET OUTDIR

ADAPTSET is a dev anomaly set built with another seed than TESTSET (the test videos).  For
every scene (source clip) it writes OUTDIR/<scene>.csv (`path,start_s,end_s`): the normal
stretches of ADAPTSET's videos of that scene, i.e. every maximal run of label-0 frames,
less MARGIN frames after each event (where the picture jumps back) and before each; and
TESTSET/index_<scene>.json: TESTSET's index with the videos of that scene only (the scorer
reads the ground truth beside its index, so it goes there, never into a repository).
"""
import json
import os
import sys

MARGIN = 8  # frames kept clear of each event on both sides


def runs(labels):
    start = None
    for k, v in enumerate(labels + [1]):
        if v == 0 and start is None:
            start = k
        elif v != 0 and start is not None:
            yield start, k
            start = None


def main():
    adapt, test, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    by_scene = {}
    index = json.load(open(os.path.join(adapt, "index.json")))
    for v in index["videos"]:
        gt = json.load(open(os.path.join(adapt, v["gt"])))
        fps = gt["fps_float"]
        scene = os.path.splitext(os.path.basename(v["source"]))[0]
        labels = gt["labels"]
        n = len(labels)
        for a, b in runs(labels):
            a2 = a + (MARGIN if a > 0 else 0)
            b2 = b - (MARGIN if b < n else 0)
            if b2 - a2 < 16:
                continue
            path = os.path.abspath(os.path.join(adapt, v["video"]))
            by_scene.setdefault(scene, []).append((path, max(0.0, (a2 - 0.5) / fps), (b2 - 0.5) / fps, b2 - a2))
    for scene, rows in sorted(by_scene.items()):
        with open(os.path.join(out, scene + ".csv"), "w") as f:
            f.write("path,start_s,end_s\n")
            for p, s, e, _ in rows:
                f.write(f"{p},{s:.4f},{e:.4f}\n")
        print(f"{scene}: {len(rows)} normal segments, {sum(r[3] for r in rows)} frames of {len({r[0] for r in rows})} videos (seed {index['seed']})")
    tindex = json.load(open(os.path.join(test, "index.json")))
    assert tindex["seed"] != index["seed"], "adaptation and test sets must differ in seed"
    for scene in by_scene:
        sub = dict(tindex)
        sub["videos"] = [v for v in tindex["videos"] if os.path.splitext(os.path.basename(v["source"]))[0] == scene]
        json.dump(sub, open(os.path.join(test, f"index_{scene}.json"), "w"), indent=1)
        print(f"test {scene}: {[v['video'] for v in sub['videos']]} (seed {tindex['seed']})")


if __name__ == "__main__":
    main()
