#!/usr/bin/python3
"""The PyTorch side of make bench-ltx: the stages bench/ltx.lua times, on the same random
full-size checkpoint (tools/ltx_random.py, diffusers layout) with the PyTorch mirror of
LTX-Video's modules (tools/ltx_mirror.py, proven against the fixtures by
tools/ltx_check_fixtures.py), on the same thread count:

  transformer  one forward at 512x320x65 (1440 tokens), bf16 autocast over the checkpoint's
               bf16 weights (PyTorch's fastest here; f32 weights would take 7.7 GB, more than
               this shared machine spares: ask for transformer_f32 to time them too)
  vae          the decode of that clip: f32 (the decoder's weights only: 3 GB for 0.9.1),
               then bf16 autocast

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


def load_into(model, path, only=None):
    """The file's tensors copied into the model's parameters (their dtype) one at a time from
    a mapping of the file: never a second copy of the whole checkpoint in memory. 'only': a
    name prefix to load (the rest of the model stays as built)."""
    header, base = st.read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    own = model.state_dict()
    names = {k for k in header if k != "__metadata__" and (only is None or k.startswith(only))}
    assert names <= set(own) and (only or names == set(own)), "names differ"
    for name, info in header.items():
        if name not in names:
            continue
        b, e = info["data_offsets"]
        raw = np.asarray(data[base + b:base + e])
        if info["dtype"] == "BF16":
            t = torch.from_numpy(raw.view(np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(raw.view(np.float32).copy())
        own[name].copy_(t.view(info["shape"]))


def part(ckpt, sub, cls, dtype=torch.float32, only=None):
    cfg = json.load(open(os.path.join(ckpt, sub, "config.json")))
    torch.set_default_dtype(dtype)
    model = cls(cfg)
    torch.set_default_dtype(torch.float32)
    if only == "decoder.":  # the encoder is not timed: no weights for it
        model.encoder = None
    load_into(model, os.path.join(ckpt, sub, "diffusion_pytorch_model.safetensors"), only)
    return model.eval(), cfg


def main():
    ckpt, threads = sys.argv[1], int(sys.argv[2])
    stages = set(sys.argv[3:]) or {"transformer", "vae"}
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with torch.no_grad():
        x = torch.randn(1, 1440, 128)
        args = (x, torch.tensor([500.0]), torch.randn(1, 64, 4096), torch.ones(1, 64), (9, 10, 16), (8 / 25, 32, 32))
        for key, dtype in (("transformer_f32", torch.float32), ("transformer", torch.bfloat16)):
            if key not in stages:
                continue
            tr, _ = part(ckpt, "transformer", ltx_mirror.Transformer, dtype)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                timed("transformer forward 512x320x65, " + ("f32" if dtype == torch.float32 else "bf16 autocast"),
                      "transformer_" + ("f32" if dtype == torch.float32 else "bf16"), lambda: tr(*args))
            del tr
        if "vae" in stages:
            vae, cfg = part(ckpt, "vae", ltx_mirror.VAE, only="decoder.")
            z = torch.randn(1, 128, 9, 10, 16)
            t = torch.tensor([0.05]) if cfg["timestep_conditioning"] else None
            # one decode each (minutes apiece); the weights are paged in by the load
            timed("VAE decode 512x320x65, f32", "vae_f32", lambda: vae.decode(z, t), warm=False)
            vae = vae.to(torch.bfloat16)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("VAE decode 512x320x65, bf16 autocast", "vae_bf16", lambda: vae.decode(z.bfloat16(), t), warm=False)


if __name__ == "__main__":
    main()
