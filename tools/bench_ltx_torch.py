#!/usr/bin/python3
"""The PyTorch side of make bench-ltx: the stages bench/ltx.lua times, on the same random
full-size checkpoint (tools/ltx_random.py, diffusers layout) with the PyTorch mirror of
LTX-Video's modules (tools/ltx_mirror.py, proven against the fixtures by
tools/ltx_check_fixtures.py), on the same thread count:

  transformer  one forward at 512x320x65 (1440 tokens): f32 weights, then bf16 autocast
  vae          the decode of that clip: f32, then bf16 autocast

Prints one line per stage (seconds, peak RSS, load average) and RESULT lines that
bench/bench_ltx.sh reads.

usage: /usr/bin/python3 tools/bench_ltx_torch.py CHECKPOINT_DIR THREADS [stage ...]
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltx_mirror  # noqa: E402
import st  # noqa: E402


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def timed(name, key, fn, warm=True):
    if warm:
        fn()  # page the weights in, allocate
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"torch {name:<44} {dt:8.2f} s  peak RSS {peak_gb():.2f} GB  (load {load()})", flush=True)
    print(f"RESULT {key} {dt:.4f}", flush=True)


def load_into(model, path):
    """The file's tensors copied into the model's (float32) parameters one at a time from a
    mapping of the file: never a second copy of the whole checkpoint in memory."""
    header, base = st.read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    own = model.state_dict()
    assert set(own) == {k for k in header if k != "__metadata__"}, "names differ"
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.asarray(data[base + b:base + e])
        if info["dtype"] == "BF16":
            t = torch.from_numpy(raw.view(np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(raw.view(np.float32).copy())
        own[name].copy_(t.view(info["shape"]))


def part(ckpt, sub, cls):
    cfg = json.load(open(os.path.join(ckpt, sub, "config.json")))
    model = cls(cfg)
    load_into(model, os.path.join(ckpt, sub, "diffusion_pytorch_model.safetensors"))
    return model.eval(), cfg


def main():
    ckpt, threads = sys.argv[1], int(sys.argv[2])
    stages = set(sys.argv[3:]) or {"transformer", "vae"}
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with torch.no_grad():
        if "transformer" in stages:
            tr, _ = part(ckpt, "transformer", ltx_mirror.Transformer)
            x = torch.randn(1, 1440, 128)
            t = torch.tensor([500.0])
            ctx = torch.randn(1, 64, 4096)
            mask = torch.ones(1, 64)
            args = (x, t, ctx, mask, (9, 10, 16), (8 / 25, 32, 32))
            timed("transformer forward 512x320x65, f32", "transformer_f32", lambda: tr(*args))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("transformer forward 512x320x65, bf16 autocast", "transformer_bf16", lambda: tr(*args))
            del tr
        if "vae" in stages:
            vae, cfg = part(ckpt, "vae", ltx_mirror.VAE)
            z = torch.randn(1, 128, 9, 10, 16)
            t = torch.tensor([0.05]) if cfg["timestep_conditioning"] else None
            # one decode each (minutes apiece); the weights are paged in by the load
            timed("VAE decode 512x320x65, f32", "vae_f32", lambda: vae.decode(z, t), warm=False)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("VAE decode 512x320x65, bf16 autocast", "vae_bf16", lambda: vae.decode(z, t), warm=False)


if __name__ == "__main__":
    main()
