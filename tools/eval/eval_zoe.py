#!/usr/bin/python3
"""zoe-tiny's quality as the runtime renders it (make eval-tiny): the held-out prompt+seed
pairs of eval_tiny.py (prompts training never saw, seeds it never used) are rendered by
`zoe tools/eval/render.lua` to MP4 files (crf 10, the model's default settings), decoded
with the ffmpeg command line, analyzed (tools/eval/analyze.py) and scored against the
prompts. Prints the table that MODEL_CARD.md quotes.

    /usr/bin/python3 tools/eval/eval_zoe.py [--zoe bin/zoe] [--model zoe-tiny] [--n 240] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from analyze import Analyzer, Report, read_video, score  # noqa: E402
from eval_tiny import eval_pairs  # noqa: E402
from world import World  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoe", default=os.path.join(ROOT, "bin", "zoe"))
    ap.add_argument("--model", default="zoe-tiny")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--keep", help="keep the rendered videos in this folder")
    a = ap.parse_args()
    world = World(os.path.join(ROOT, "models", "zoe-tiny", "world.json"))
    pairs = eval_pairs(world, a.n)
    work = a.keep or tempfile.mkdtemp(prefix="zoe-eval-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "pairs.json"), "w") as f:
        json.dump([dict(prompt=p, seed=s) for p, s in pairs], f)
    t0 = time.time()
    subprocess.run([a.zoe, "--quiet", os.path.join(HERE, "render.lua"), os.path.join(work, "pairs.json"), work, a.model],
                   check=True, cwd=ROOT)
    render_s = time.time() - t0
    an = Analyzer(world)
    report = Report()
    for i, (p, s) in enumerate(pairs, 1):
        frames = read_video(os.path.join(work, f"{i:04d}.mp4"), world.W, world.H)
        spec = world.parse(p)
        sc = score(an.analyze(frames), spec)
        report.add(sc, len(spec["objects"]))
    print(f"zoe-tiny eval, rendered by the runtime: {len(pairs)} held-out prompt+seed pairs, "
          f"{render_s:.0f} s to render ({render_s / len(pairs):.2f} s per video)")
    print(report.text())
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
