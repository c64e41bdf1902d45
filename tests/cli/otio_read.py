"""Reads a framegpt EDL and OTIO file back with OpenTimelineIO (tests/cli/report.rs).

usage: otio_read.py SCENES.edl SCENES.otio RATE
prints JSON: {"edl": [[start_frame, frames], ...], "otio": [[start_frame, frames], ...],
              "edl_record": [[start_frame, frames], ...]}
"""
import json
import sys

import opentimelineio as otio


def clips(timeline):
    return [c for c in timeline.find_clips()]


def spans(timeline, attr):
    out = []
    for c in clips(timeline):
        r = getattr(c, attr)() if callable(getattr(c, attr)) else getattr(c, attr)
        out.append([round(r.start_time.to_frames()), round(r.duration.to_frames())])
    return out


def main():
    edl_path, otio_path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    edl = otio.adapters.read_from_file(edl_path, adapter_name="cmx_3600", rate=rate)
    native = otio.adapters.read_from_file(otio_path)
    print(
        json.dumps(
            {
                "edl": spans(edl, "source_range"),
                "edl_record": spans(edl, "range_in_parent"),
                "otio": spans(native, "source_range"),
                "otio_urls": [c.media_reference.target_url for c in clips(native)],
            }
        )
    )


if __name__ == "__main__":
    main()
