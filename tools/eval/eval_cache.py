#!/usr/bin/python3
"""The step caches' table (docs/SAMPLING.md): the held-out prompt+seed pairs of make eval-tiny,
rendered uncached and with each policy at a few thresholds (tools/eval/render_cache.lua, the
settings interleaved pair by pair), then scored by tools/eval/analyze.py as eval_zoe.py scores
them. Per setting: DiT evaluations and their speed-up, the denoising wall time's speed-up (same
run, same machine) and of its process CPU time over steps 2..N, the PSNR against the uncached
frames (of the mean squared error over the pairs), and the adherence rates.

    /usr/bin/python3 tools/eval/eval_cache.py [--zoe bin/zoe] [--n 240] [--keep DIR]
        [--settings 'teacache:0.1,0.2 magcache:0.04' ...]
"""
import argparse
import json
import math
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
from analyze import Analyzer, Tally, read_video, score  # noqa: E402
from eval_tiny import eval_pairs  # noqa: E402
from world import World  # noqa: E402

DEFAULT = "teacache:0.1,0.2,0.4 magcache:0.02,0.05,0.1 easycache:0.1,0.2,0.4 first_block:0.1,0.2,0.3"
METRICS = ("colour", "background", "motion", "shape", "both")


def configs_of(text):
    out = [dict(id="uncached")]
    for part in text.split():
        name, ths = part.split(":")
        for th in ths.split(","):
            out.append(dict(id=f"{name}-{th}", cache=name, cache_threshold=float(th)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoe", default=os.path.join(ROOT, "bin", "zoe"))
    ap.add_argument("--model", default="zoe-tiny")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--settings", default=DEFAULT)
    ap.add_argument("--keep", help="keep the rendered videos (and results.json) in this folder; an "
                    "interrupted run in it goes on from where it stopped")
    ap.add_argument("--analyze-only", action="store_true",
                    help="score what --keep DIR holds (the pairs rendered so far) without rendering more")
    a = ap.parse_args()
    world = World(os.path.join(ROOT, "models", "zoe-tiny", "world.json"))
    pairs = eval_pairs(world, a.n)
    configs = configs_of(a.settings)
    work = a.keep or tempfile.mkdtemp(prefix="zoe-cache-eval-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "pairs.json"), "w") as f:
        json.dump([dict(prompt=p, seed=s) for p, s in pairs], f)
    with open(os.path.join(work, "configs.json"), "w") as f:
        json.dump(configs, f)
    load0 = os.getloadavg()
    t0 = time.time()
    if not a.analyze_only:
        subprocess.run([a.zoe, "--quiet", os.path.join(HERE, "render_cache.lua"), os.path.join(work, "pairs.json"),
                        os.path.join(work, "configs.json"), work, a.model], check=True, cwd=ROOT)
    render_s = time.time() - t0
    load1 = os.getloadavg()
    with open(os.path.join(work, "results.json")) as f:
        res = json.load(f)
    pairs = pairs[:res["pairs_done"]]
    an = Analyzer(world)
    base = res["uncached"]
    rows, adherence0 = [], None
    for c in configs:
        tally = Tally()
        for i, (p, s) in enumerate(pairs, 1):
            frames = read_video(os.path.join(work, c["id"], f"{i:04d}.mp4"), world.W, world.H)
            tally.add(score(an.analyze(frames), world.parse(p)))
        rates = tally.rates()
        adherence = sum(rates[k] for k in METRICS) / len(METRICS)
        if adherence0 is None:
            adherence0 = adherence
        r = res[c["id"]]
        n = len(pairs)
        # PSNR of the mean squared error over the pairs (render_cache.lua gives 100 dB for identical
        # frames: a mean of PSNRs would let those outweigh the pairs that did change)
        mses = [4 / 10 ** (p / 10) if p < 100 else 0.0 for p in r["psnr"]]
        mse = sum(mses) / len(mses) if mses else 0.0
        psnr = 10 * math.log10(4 / mse) if mse > 0 else float("inf")
        rows.append((c.get("cache", "none"), c.get("cache_threshold", "-"), r["evaluations"] / n,
                     base["evaluations"] / r["evaluations"], base["denoise"] / r["denoise"],
                     base["cpu"] / r["cpu"] if r.get("cpu") else float("nan"), psnr, rates,
                     100 * (adherence - adherence0), adherence))
    print(f"step caches on {a.model}: {len(pairs)} held-out prompt+seed pairs x {len(configs)} settings, "
          f"{render_s:.0f} s to render; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
          f"(denoising time: the sum over the pairs, each setting in turn per pair)")
    print("| policy | threshold | DiT evaluations per video | fewer evaluations | faster denoising (wall) | "
          "faster (CPU, steps 2-N) | PSNR vs uncached | colour | background | motion | shape | both | "
          "adherence (mean) | change |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for pol, th, ev, sp_e, sp_w, sp_c, psnr, rates, delta, adh in rows:
        cells = " | ".join(f"{100 * rates[k]:.1f}%" for k in METRICS)
        ps = "exact" if psnr == float("inf") else f"{psnr:.1f} dB"
        print(f"| {pol} | {th} | {ev:.2f} | {sp_e:.2f}x | {sp_w:.2f}x | {sp_c:.2f}x | {ps} | {cells} | "
              f"{100 * adh:.1f}% | {delta:+.1f} |")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
