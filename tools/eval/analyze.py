"""Analyze a zoe-tiny video: find the background colour, and for each object colour of the world
its shape and motion, using models/zoe-tiny/world.json. Independent of the model and sampler:
it reads frames (an mp4/webm/gif through the ffmpeg command line, or a numpy array).

    python3 tools/eval/analyze.py video.mp4 "a red circle moving left on a white background"
    python3 tools/eval/analyze.py --selftest [N]      # ground-truth clips from the renderer

Method
  background  the world background whose colour is nearest to most pixels (all frames).
  colours     each pixel p is explained as a blend bg + a*(c - bg) of the background and one world
              colour c (the anti-aliasing model of the renderer); it goes to the colour with the
              smallest residual, with coverage a in [0, 1]. A colour is present when its coverage
              sums to >= MIN_AREA pixels in at least half of the frames.
  shape       per frame, the coverage map is compared (soft IoU) with each world shape rendered at
              the same area and centroid, and blurred by a Gaussian of sigma 0, 0.7, 1.4 or 2.1 px
              (a generated or decoded video is softer than the renderer; a soft square is still a
              square); each shape scores its best IoU over the blurs, the best shape in most frames
              wins (frames where the object touches the border are skipped when possible).
  motion      a line fitted to the centroid track and to log(area) over time: |log area change| >=
              log 2 -> growing/shrinking; else displacement >= MIN_TRAVEL px -> moving left/right/
              up/down along the larger axis; else staying still.
"""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from world import World  # noqa: E402

MIN_AREA = 12.0
BLURS = (0.0, 0.7, 1.4, 2.1)
MAX_RESIDUAL = 70.0
MIN_TRAVEL = 8.0
SCALE_LOG = np.log(2.0)


def gaussian_blur(img, sigma):
    if sigma <= 0:
        return img
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, img)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, out)


def read_video(path, width=64, height=64):
    """Decode any video ffmpeg reads to uint8 [T, H, W, 3] (scaled to width x height if needed)."""
    cmd = ["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-vf", f"scale={width}:{height}:flags=area", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    n = len(raw) // (width * height * 3)
    return np.frombuffer(raw[:n * width * height * 3], np.uint8).reshape(n, height, width, 3)


class Analyzer:
    def __init__(self, world=None):
        self.w = world or World()
        self.cols = np.stack([self.w.colours[c] for c in self.w.colour_names])          # [K, 3]
        self.bgs = np.stack([self.w.backgrounds[b] for b in self.w.background_names])   # [B, 3]
        self._tmpl_cache = {}

    def background(self, frames):
        f = frames.reshape(-1, 3).astype(np.float32)
        d = ((f[:, None, :] - self.bgs[None]) ** 2).sum(-1)                              # [N, B]
        near = d.argmin(1)
        close = d.min(1) < 40.0 ** 2
        counts = np.bincount(near[close], minlength=len(self.bgs))
        return self.w.background_names[int(counts.argmax())]

    def coverage(self, frames, bg):
        """-> a [K, T, H, W] coverage of each world colour (0 where another colour explains better)."""
        f = frames.astype(np.float32)
        b = self.w.backgrounds[bg]
        d = self.cols - b                                                                # [K, 3]
        rel = f - b                                                                      # [T,H,W,3]
        a = np.einsum("thwc,kc->kthw", rel, d) / (d * d).sum(-1)[:, None, None, None]
        a = np.clip(a, 0.0, 1.0)
        fit = b + a[..., None] * d[:, None, None, None, :]                               # [K,T,H,W,3]
        res = np.sqrt(((f[None] - fit) ** 2).sum(-1))                                    # [K,T,H,W]
        best = res.argmin(0)
        keep = (res.min(0) < MAX_RESIDUAL)
        out = np.zeros_like(a)
        for k in range(len(self.cols)):
            out[k] = np.where((best == k) & keep, a[k], 0.0)
        out[out < 0.15] = 0.0
        return out

    def _template(self, shape, area, cx, cy):
        if shape == "circle":
            s = np.sqrt(area * 4 / np.pi)
        elif shape == "square":
            s = np.sqrt(area)
        else:
            s = np.sqrt(area * 2)
        if shape == "triangle":
            cy = cy - s / 6.0      # centroid is s/6 below the centre of the bounding box
        return self.w.coverage(shape, cx, cy, s)

    def shape_of(self, cov_frames):
        votes = {}
        T, H, W = cov_frames.shape
        frames = []
        for t in range(T):
            c = cov_frames[t]
            A = c.sum()
            if A < MIN_AREA:
                continue
            ys, xs = np.nonzero(c > 0.5)
            border = len(xs) == 0 or xs.min() <= 0 or ys.min() <= 0 or xs.max() >= W - 1 or ys.max() >= H - 1
            frames.append((border, t, A))
        if not frames:
            return None
        inner = [f for f in frames if not f[0]]
        use = inner if inner else frames
        yy, xx = np.mgrid[0:H, 0:W] + 0.5
        for _, t, A in use:
            c = cov_frames[t]
            cx = (c * xx).sum() / A
            cy = (c * yy).sum() / A
            best, best_iou = None, -1
            for s in self.w.shape_names:
                m0 = self._template(s, A, cx, cy)
                for sg in BLURS:
                    m = gaussian_blur(m0, sg)
                    iou = np.minimum(m, c).sum() / max(np.maximum(m, c).sum(), 1e-6)
                    if iou > best_iou:
                        best, best_iou = s, iou
            votes[best] = votes.get(best, 0) + 1
        return max(votes.items(), key=lambda kv: kv[1])[0]

    def motion_of(self, cov_frames):
        T, H, W = cov_frames.shape
        yy, xx = np.mgrid[0:H, 0:W] + 0.5
        ts, cxs, cys, las = [], [], [], []
        for t in range(T):
            c = cov_frames[t]
            A = c.sum()
            if A < MIN_AREA * 0.5:
                continue
            ts.append(t)
            cxs.append((c * xx).sum() / A)
            cys.append((c * yy).sum() / A)
            las.append(np.log(A))
        if len(ts) < max(3, T // 3):
            return None, {}
        ts = np.array(ts, np.float64)
        span = T - 1
        fx = np.polyfit(ts, cxs, 1)[0] * span
        fy = np.polyfit(ts, cys, 1)[0] * span
        fa = np.polyfit(ts, las, 1)[0] * span
        info = dict(dx=float(fx), dy=float(fy), dlogarea=float(fa))
        if abs(fa) >= SCALE_LOG and abs(fa) > 0.05 * max(abs(fx), abs(fy)):
            return ("growing" if fa > 0 else "shrinking"), info
        if max(abs(fx), abs(fy)) >= MIN_TRAVEL:
            if abs(fx) >= abs(fy):
                return ("moving right" if fx > 0 else "moving left"), info
            return ("moving down" if fy > 0 else "moving up"), info
        return "staying still", info

    def analyze(self, frames):
        """frames uint8 [T, H, W, 3] -> dict(background, objects=[dict(colour, shape, motion, area)])
        objects sorted by mean area, largest first."""
        bg = self.background(frames)
        cov = self.coverage(frames, bg)
        T = frames.shape[0]
        objs = []
        for k, name in enumerate(self.w.colour_names):
            areas = cov[k].sum(axis=(1, 2))
            if (areas >= MIN_AREA).sum() < (T + 1) // 2:
                continue
            motion, info = self.motion_of(cov[k])
            objs.append(dict(colour=name, shape=self.shape_of(cov[k]), motion=motion,
                             area=float(areas.mean()), **info))
        objs.sort(key=lambda o: -o["area"])
        return dict(background=bg, objects=objs)


def score(result, prompt_spec):
    """Compare an analysis with the parsed prompt -> dict of 0/1 per metric (None = not applicable).
    colour: each prompt object's colour is among the detected objects (and, for one-object prompts,
    is the largest one); shape/motion: of the detected object of that colour (0 when not found);
    both: two-object prompts, both colours found."""
    found = {o["colour"]: o for o in result["objects"]}
    n = len(prompt_spec["objects"])
    out = dict(background=int(result["background"] == prompt_spec["background"]),
               colour=[], shape=[], motion=[], both=None)
    for i, (c, s, m) in enumerate(prompt_spec["objects"]):
        o = found.get(c)
        ok_colour = o is not None
        if n == 1:
            ok_colour = ok_colour and result["objects"][0]["colour"] == c
        out["colour"].append(int(ok_colour))
        out["shape"].append(int(o is not None and o["shape"] == s))
        out["motion"].append(int(o is not None and o["motion"] == m))
    if n == 2:
        out["both"] = int(all(c in found for c, _, _ in prompt_spec["objects"]))
    return out


class Tally:
    def __init__(self):
        self.n = dict(colour=[0, 0], background=[0, 0], motion=[0, 0], shape=[0, 0], both=[0, 0])

    def add(self, sc):
        self.n["background"][0] += sc["background"]
        self.n["background"][1] += 1
        for k in ("colour", "shape", "motion"):
            self.n[k][0] += sum(sc[k])
            self.n[k][1] += len(sc[k])
        if sc["both"] is not None:
            self.n["both"][0] += sc["both"]
            self.n["both"][1] += 1

    def rates(self):
        return {k: (v[0] / v[1] if v[1] else float("nan")) for k, v in self.n.items()}

    def table(self, targets=None):
        targets = targets or dict(colour=0.90, background=0.95, motion=0.85, shape=0.75, both=0.70)
        names = dict(colour="colour", background="background", motion="motion direction", shape="shape",
                     both="both objects (2-object prompts)")
        lines = ["| metric | correct | rate | target |", "|---|---|---|---|"]
        for k in ("colour", "background", "motion", "shape", "both"):
            c, n = self.n[k]
            r = c / n if n else float("nan")
            lines.append(f"| {names[k]} | {c}/{n} | {100 * r:.1f}% | {100 * targets[k]:.0f}% {'ok' if r >= targets[k] else 'MISSED'} |")
        return "\n".join(lines)


class Report:
    """The scores of every pair and of the one- and two-object prompts apart, printed as the
    model card's table and one line per object count."""

    def __init__(self):
        self.all, self.by_count = Tally(), {1: Tally(), 2: Tally()}

    def add(self, sc, n_objects):
        self.all.add(sc)
        self.by_count[n_objects].add(sc)

    def text(self):
        lines = [self.all.table()]
        for k, t in self.by_count.items():
            lines.append(f"  {k}-object prompts: " +
                         ", ".join(f"{n} {100 * v:.1f}%" for n, v in t.rates().items() if v == v))
        return "\n".join(lines)


def selftest(n=300):
    w = World()
    an = Analyzer(w)
    tally = Tally()
    bad = 0
    for seed in range(10_000_000, 10_000_000 + n):
        prompt, clip, scene = w.make(seed)
        sc = score(an.analyze(clip), w.parse(prompt))
        tally.add(sc)
        if not (sc["background"] and all(sc["colour"]) and all(sc["shape"]) and all(sc["motion"])):
            bad += 1
            if bad <= 10:
                print("miss:", prompt, json.dumps(an.analyze(clip)["objects"]))
    print(f"ground-truth clips: {n}")
    print(tally.table())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--selftest":
        selftest(int(sys.argv[2]) if len(sys.argv) > 2 else 300)
    else:
        w = World()
        frames = read_video(sys.argv[1], w.W, w.H)
        res = Analyzer(w).analyze(frames)
        print(json.dumps(res, indent=1))
        if len(sys.argv) > 2:
            spec = w.parse(sys.argv[2])
            print(json.dumps(score(res, spec)))
