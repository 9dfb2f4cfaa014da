"""Measure zoe-tiny's quality: for N prompt+seed pairs never seen in training (prompts held out
of training by train_tiny.py's rule, seeds from a range training never used), sample with the
PyTorch model (f32 compute on the shipped f16 weights, the default sampler/steps/shift/cfg),
decode, analyze (tools/eval/analyze.py) and print the table.

    /usr/bin/python3 tools/eval/eval_tiny.py [--model models/zoe-tiny] [--n 240] [--sheet out.png]
        [--steps S] [--shift X] [--cfg G] [--sampler euler|unipc] [--vae-roundtrip]

--vae-roundtrip scores ground-truth clips passed through the VAE (encode + decode): the ceiling
the VAE allows.
"""
import argparse
import json
import os
import sys
import time
import zlib

import numpy as np

# OpenMP threads that spin while they wait stall each other on a busy machine (10x slower)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from analyze import Analyzer, Report, score  # noqa: E402
from world import World, contact_sheet, write_png, to_tensor_layout  # noqa: E402
from zoe_tiny import ZoeTiny, to_uint8_frames  # noqa: E402

torch.set_num_threads(2)
EVAL_SEED0 = 50_000_000
HELDOUT_MOD = 10


def eval_pairs(world, n):
    """n (prompt, scene seed, noise seed) with held-out prompts, half one-object, half two-object."""
    out = []
    seed = EVAL_SEED0
    want = {1: (n + 1) // 2, 2: n // 2}
    while sum(want.values()) > 0:
        scene = world.sample_scene(seed)
        p = world.prompt(scene)
        k = len(scene["objects"])
        if zlib.crc32(p.encode()) % HELDOUT_MOD == 0 and want[k] > 0:
            out.append((p, seed))
            want[k] -= 1
        seed += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "zoe-tiny"))
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--shift", type=float)
    ap.add_argument("--cfg", type=float)
    ap.add_argument("--sampler")
    ap.add_argument("--sheet", help="write a contact sheet PNG of the first 12 samples")
    ap.add_argument("--vae-roundtrip", action="store_true")
    ap.add_argument("--i2v", action="store_true", help="give the ground-truth first frame (image-to-video)")
    ap.add_argument("--json", help="write per-sample results")
    a = ap.parse_args()
    world = World(os.path.join(a.model, "world.json"))
    an = Analyzer(world)
    m = ZoeTiny(a.model)
    pairs = eval_pairs(world, a.n)
    report = Report()
    rows, sheets = [], []
    t0 = time.time()
    s = m.cfg["sampling"]
    desc = (f"sampler {a.sampler or s['sampler']}, steps {a.steps or s['steps']}, shift {a.shift or s['shift']}, "
            f"cfg {a.cfg if a.cfg is not None else s['cfg']}")
    for i in range(0, len(pairs), a.batch):
        chunk = pairs[i:i + a.batch]
        if a.vae_roundtrip:
            vids = []
            for p, sd in chunk:
                clip = world.render(world.sample_scene(sd))
                x = torch.from_numpy(to_tensor_layout(clip))[None]
                z = m.vae.encode(x, m.scale)
                vids.append(m.decode_batch(z)[0])
        else:
            ff = None
            if a.i2v:
                ff = [torch.from_numpy(to_tensor_layout(world.render(world.sample_scene(sd))))[:, 0] for _, sd in chunk]
            z = m.sample_latents([p for p, _ in chunk], [sd for _, sd in chunk], steps=a.steps, shift=a.shift,
                                 cfg=a.cfg, sampler=a.sampler, first_frames=ff)
            vids = list(m.decode_batch(z))
        for (p, sd), v in zip(chunk, vids):
            frames = to_uint8_frames(v)
            res = an.analyze(frames)
            spec = world.parse(p)
            sc = score(res, spec)
            report.add(sc, len(spec["objects"]))
            rows.append(dict(prompt=p, seed=sd, result=res, score=sc))
            if len(sheets) < 12:
                sheets.append(contact_sheet(frames[::2]))
        print(f"{len(rows)}/{len(pairs)} ({time.time() - t0:.0f}s) {json.dumps(report.all.rates())}", file=sys.stderr, flush=True)
    print(f"zoe-tiny eval: {len(rows)} held-out prompt+seed pairs ({desc}{', VAE round trip of ground truth' if a.vae_roundtrip else ''}{', image-to-video from the true first frame' if a.i2v else ''}); "
          f"{time.time() - t0:.0f}s")
    print(report.text())
    if a.sheet and sheets:
        write_png(a.sheet, np.concatenate(sheets, 0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)


if __name__ == "__main__":
    main()
