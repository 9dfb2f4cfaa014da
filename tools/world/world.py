"""The zoe-tiny world: (prompt, clip) pairs, deterministic from a seed.

Everything the world can say or show comes from models/zoe-tiny/world.json (colours with RGB,
backgrounds with RGB, shapes, motions, layout ranges, the prompt grammar).

    w = World()                         # reads models/zoe-tiny/world.json
    scene = w.sample_scene(seed)        # dict: background, objects (colour, shape, motion, path)
    prompt = w.prompt(scene)
    clip = w.render(scene)              # uint8 [T, H, W, 3], anti-aliased (supersampled)
    prompt, clip, scene = w.make(seed)

Command line: python3 tools/world/world.py SEED [out.png]  prints the prompt, writes a contact sheet.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORLD = os.path.normpath(os.path.join(HERE, "..", "..", "models", "zoe-tiny", "world.json"))


class World:
    def __init__(self, path=DEFAULT_WORLD):
        with open(path) as f:
            self.spec = json.load(f)
        s = self.spec
        self.W, self.H = s["video"]["width"], s["video"]["height"]
        self.T, self.fps = s["video"]["frames"], s["video"]["fps"]
        self.ss = s["video"].get("supersample", 4)
        self.colours = {c["name"]: np.array(c["rgb"], np.float32) for c in s["colours"]}
        self.backgrounds = {c["name"]: np.array(c["rgb"], np.float32) for c in s["backgrounds"]}
        self.colour_names = [c["name"] for c in s["colours"]]
        self.background_names = [c["name"] for c in s["backgrounds"]]
        self.shape_names = [c["name"] for c in s["shapes"]]
        self.motions = {m["name"]: m for m in s["motions"]}
        self.motion_names = [m["name"] for m in s["motions"]]
        self.layout = s["layout"]
        self.grammar = s["grammar"]
        # supersampled pixel-centre grid
        k = self.ss
        ys = (np.arange(self.H * k) + 0.5) / k
        xs = (np.arange(self.W * k) + 0.5) / k
        self._gy, self._gx = np.meshgrid(ys, xs, indexing="ij")

    # -- scenes --------------------------------------------------------------------------------
    def _object_path(self, rng, motion, size_range, travel_range, margin):
        """Centre and size per frame for one object: arrays cx[T], cy[T], size[T]."""
        m = self.motions[motion]
        T = self.T
        s0 = rng.uniform(*size_range)
        f = np.linspace(0.0, 1.0, T)
        if m["kind"] == "scale":
            size = s0 * (m["from"] + (m["to"] - m["from"]) * f)
        else:
            size = np.full(T, s0)
        half = size.max() / 2
        if m["kind"] == "translate":
            d = rng.uniform(*travel_range)
            dx, dy = m["dx"] * d, m["dy"] * d
        else:
            dx = dy = 0.0
        lo_x = margin + half - min(dx, 0)
        hi_x = self.W - margin - half - max(dx, 0)
        lo_y = margin + half - min(dy, 0)
        hi_y = self.H - margin - half - max(dy, 0)
        x0 = rng.uniform(lo_x, hi_x)
        y0 = rng.uniform(lo_y, hi_y)
        return x0 + dx * f, y0 + dy * f, size

    def sample_scene(self, seed, n_objects=None, prompt_spec=None):
        """prompt_spec: optional dict(background=..., objects=[(colour, shape, motion), ...]) to
        render a given prompt with a seed-dependent layout."""
        rng = np.random.default_rng(seed)
        L = self.layout
        if prompt_spec is None:
            if n_objects is None:
                n_objects = 2 if rng.random() < L["two_objects_probability"] else 1
            bg = self.background_names[rng.integers(len(self.background_names))]
            cols = rng.choice(len(self.colour_names), size=n_objects, replace=False)
            objs = [(self.colour_names[c], self.shape_names[rng.integers(len(self.shape_names))],
                     self.motion_names[rng.integers(len(self.motion_names))]) for c in cols]
        else:
            bg = prompt_spec["background"]
            objs = [tuple(o) for o in prompt_spec["objects"]]
            n_objects = len(objs)
        size_range = L["size_one_object"] if n_objects == 1 else L["size_two_objects"]
        for _ in range(1000):
            paths = [self._object_path(rng, o[2], size_range, L["travel"], L["margin"]) for o in objs]
            if n_objects == 1 or self._apart(paths, L["min_gap"]):
                break
        else:
            raise RuntimeError("could not place the objects")
        objects = [dict(colour=o[0], shape=o[1], motion=o[2], cx=p[0], cy=p[1], size=p[2]) for o, p in zip(objs, paths)]
        return dict(background=bg, objects=objects, seed=seed)

    @staticmethod
    def _apart(paths, gap):
        (ax, ay, asz), (bx, by, bsz) = paths
        ok_x = np.abs(ax - bx) >= (asz + bsz) / 2 + gap
        ok_y = np.abs(ay - by) >= (asz + bsz) / 2 + gap
        return bool(np.all(ok_x | ok_y))

    # -- prompts -------------------------------------------------------------------------------
    def _article(self, word):
        a = self.grammar["articles"]
        return a["vowel"] if word[0].lower() in "aeiou" else a["consonant"]

    def object_phrase(self, colour, shape, motion):
        return self.grammar["object"].format(article=self._article(colour), colour=colour, shape=shape, motion=motion)

    def prompt(self, scene):
        objs = [self.object_phrase(o["colour"], o["shape"], o["motion"]) for o in scene["objects"]]
        return self.grammar["scene"].format(objects=self.grammar["join"].join(objs), background=scene["background"])

    def parse(self, prompt):
        """prompt -> dict(background, objects=[(colour, shape, motion)]) or None."""
        p = prompt.strip()
        tail = self.grammar["scene"].split("{objects}")[1]
        pre, post = tail.split("{background}")
        if not p.endswith(post):
            return None
        p = p[:-len(post)] if post else p
        i = p.rfind(pre)
        if i < 0:
            return None
        bg = p[i + len(pre):]
        objs = []
        for part in p[:i].split(self.grammar["join"]):
            w = part.split(" ", 1)
            if len(w) < 2:
                return None
            rest = w[1]
            col = next((c for c in self.colour_names if rest.startswith(c + " ")), None)
            if col is None:
                return None
            rest = rest[len(col) + 1:]
            shp = next((s for s in self.shape_names if rest.startswith(s + " ")), None)
            if shp is None:
                return None
            mot = rest[len(shp) + 1:]
            if mot not in self.motions:
                return None
            objs.append((col, shp, mot))
        if bg not in self.backgrounds:
            return None
        return dict(background=bg, objects=objs)

    def all_object_phrases(self):
        return [(c, s, m) for c in self.colour_names for s in self.shape_names for m in self.motion_names]

    # -- rendering -----------------------------------------------------------------------------
    def _inside(self, shape, cx, cy, size, gx, gy):
        h = size / 2
        dx, dy = gx - cx, gy - cy
        if shape == "circle":
            return dx * dx + dy * dy <= h * h
        if shape == "square":
            return (np.abs(dx) <= h) & (np.abs(dy) <= h)
        if shape == "diamond":
            return np.abs(dx) + np.abs(dy) <= h
        if shape == "triangle":
            t = (dy + h) / size          # 0 at the tip, 1 at the base
            return (t >= 0) & (t <= 1) & (np.abs(dx) <= t * h)
        raise ValueError("unknown shape " + shape)

    def coverage(self, shape, cx, cy, size):
        """Anti-aliased coverage [H, W] in [0, 1] (k x k supersampling), computed in a window."""
        k = self.ss
        h = size / 2 + 1
        x0 = max(int(np.floor(cx - h)), 0)
        x1 = min(int(np.ceil(cx + h)), self.W)
        y0 = max(int(np.floor(cy - h)), 0)
        y1 = min(int(np.ceil(cy + h)), self.H)
        cov = np.zeros((self.H, self.W), np.float32)
        if x1 <= x0 or y1 <= y0:
            return cov
        gx = self._gx[y0 * k:y1 * k, x0 * k:x1 * k]
        gy = self._gy[y0 * k:y1 * k, x0 * k:x1 * k]
        m = self._inside(shape, cx, cy, size, gx, gy).astype(np.float32)
        cov[y0:y1, x0:x1] = m.reshape(y1 - y0, k, x1 - x0, k).mean(axis=(1, 3))
        return cov

    def render(self, scene):
        """uint8 [T, H, W, 3]."""
        T = self.T
        out = np.empty((T, self.H, self.W, 3), np.float32)
        out[:] = self.backgrounds[scene["background"]]
        for o in scene["objects"]:
            col = self.colours[o["colour"]]
            for t in range(T):
                a = self.coverage(o["shape"], o["cx"][t], o["cy"][t], o["size"][t])[..., None]
                out[t] = out[t] * (1 - a) + col * a
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def make(self, seed, n_objects=None, prompt_spec=None):
        scene = self.sample_scene(seed, n_objects, prompt_spec)
        return self.prompt(scene), self.render(scene), scene


def to_tensor_layout(clip_u8):
    """uint8 [T, H, W, 3] -> float32 [3, T, H, W] in [-1, 1]."""
    return (clip_u8.astype(np.float32) / 127.5 - 1.0).transpose(3, 0, 1, 2)


def contact_sheet(clip_u8, cols=None):
    T, H, W, _ = clip_u8.shape
    cols = cols or T
    rows = (T + cols - 1) // cols
    sheet = np.zeros((rows * H, cols * W, 3), np.uint8)
    for t in range(T):
        r, c = divmod(t, cols)
        sheet[r * H:(r + 1) * H, c * W:(c + 1) * W] = clip_u8[t]
    return sheet


def write_png(path, img):
    import struct
    import zlib
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    w = World()
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    prompt, clip, scene = w.make(seed)
    print(prompt)
    if len(sys.argv) > 2:
        write_png(sys.argv[2], contact_sheet(clip, 9))
