#!/usr/bin/env python3
"""Compares two `framegpt analyze` output folders file by file, byte for byte, except the
timing columns: `elapsed_s` in clips.csv and in run.json (its per-input records and their
clips.csv rows), which are blanked on both sides first. Exit status 0 when equal.

Usage: scripts/compare_outputs.py BEFORE AFTER
"""
import csv
import io
import json
import sys
from pathlib import Path


def masked(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name == "clips.csv":
        rows = list(csv.reader(io.StringIO(data.decode())))
        k = rows[0].index("elapsed_s")
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for r in rows:
            w.writerow(r[:k] + ["~"] + r[k + 1:] if r is not rows[0] else r)
        return out.getvalue().encode()
    if path.name == "run.json":
        m = json.loads(data)
        for rec in m["inputs"].values():
            rec["elapsed_s"] = "~"
            rec["row"][-1] = "~"
        return json.dumps(m, indent=2, sort_keys=False).encode()
    return data


def main() -> int:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    names = sorted({p.relative_to(before) for p in before.rglob("*") if p.is_file()}
                   | {p.relative_to(after) for p in after.rglob("*") if p.is_file()})
    bad = 0
    for rel in names:
        a, b = before / rel, after / rel
        if not a.is_file() or not b.is_file():
            print(f"ONLY IN ONE {rel}")
            bad += 1
        elif masked(a) != masked(b):
            print(f"DIFFERENT {rel}")
            bad += 1
        else:
            print(f"identical {rel} ({a.stat().st_size} bytes)")
    print(f"{len(names)} files, {bad} different (elapsed_s masked in clips.csv and run.json)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
