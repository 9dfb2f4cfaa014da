#!/usr/bin/python3
"""The PyTorch side of make bench-cogvideox: the same stages as bench/cogvideox.lua, on the same
random full-size checkpoint (tools/cogvideox_random.py), with the PyTorch mirror of CogVideoX
(tools/cogvideox_torch.py, proven against diffusers' fixtures), on the same thread count. The text
encoder in bf16 as released (resident, as PyTorch loads it), the transformer in f32 and in bf16
autocast, the VAE in f32. Prints one line per stage: seconds and peak RSS, and a RESULT line that
bench/bench_cogvideox.sh reads.

usage: /usr/bin/python3 tools/bench_cogvideox_torch.py MODEL_DIR THREADS [stage ...]
  (stages: t5 dit vae, the default; dit_bf16w: the transformer's bf16 weights as they are, for
  the 5B)
"""
import json
import os
import resource
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cogvideox_torch as cog  # noqa: E402
import st  # noqa: E402


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def timed(name, key, fn, reps=1):
    fn()  # warm up (page weights in, allocate)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"torch {name:<48} {best:8.2f} s  peak RSS {peak_gb():.2f} GB", flush=True)
    print(f"RESULT {key} {best:.4f}", flush=True)  # read by bench/bench_cogvideox.sh
    return best


DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def load_lean(path):
    """A safetensors file read tensor by tensor straight into torch tensors (st.load holds the
    whole file and a copy: 14 GB more than the 9.5 GB of T5-XXL, which the shared machine lacks)."""
    header, base = st.read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            t = torch.empty(info["shape"], dtype=DTYPES[info["dtype"]])
            f.seek(base + info["data_offsets"][0])
            f.readinto(t.view(-1).view(torch.uint8).numpy())
            out[name] = t
    return out


def load_sharded(index_path):
    with open(index_path) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    out = {}
    for s in shards:
        out.update(load_lean(os.path.join(os.path.dirname(index_path), s)))
    return out


def main():
    d, threads = sys.argv[1], int(sys.argv[2])
    stages = set(sys.argv[3:]) or {"t5", "dit", "vae"}
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with torch.no_grad():
        if "t5" in stages:
            with open(os.path.join(d, "text_encoder", "config.json")) as f:
                cfg = json.load(f)
            state = load_sharded(os.path.join(d, "text_encoder", "model.safetensors.index.json"))  # bf16 as released
            ids = torch.arange(100, 326).view(1, 226) % 300
            timed("T5-XXL, 226 tokens, bf16", "t5_bf16", lambda: cog.t5_encoder(state, cfg, ids), reps=3)
            del state
        if "dit" in stages:
            with open(os.path.join(d, "transformer", "config.json")) as f:
                cfg = json.load(f)
            w = {k: v.float() for k, v in load_lean(os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors")).items()}
            x = torch.randn(1, 5, 16, 24, 40)
            t = torch.tensor([500])
            text = torch.randn(1, 226, 4096)
            timed("transformer forward 320x192x17, f32", "dit_f32", lambda: cog.transformer(w, cfg, x, t, text))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("transformer forward 320x192x17, bf16 autocast", "dit_bf16",
                      lambda: cog.transformer(w, cfg, x, t, text))
            del w
        if "dit_bf16w" in stages:
            # the 5B (11 GB in bf16; 22 GB in f32 is more than the shared machine has): its bf16
            # matrices as released under autocast, the 1-D norm weights and biases in f32 (torch
            # 1.13's layer_norm on the CPU refuses to mix them)
            with open(os.path.join(d, "transformer", "config.json")) as f:
                cfg = json.load(f)
            w = {k: v if v.dim() > 1 else v.float()
                 for k, v in load_lean(os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors")).items()}
            x = torch.randn(1, 5, 16, 24, 40)
            t = torch.tensor([500])
            text = torch.randn(1, 226, 4096)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("transformer forward 320x192x17, bf16 weights, autocast", "dit_bf16w",
                      lambda: cog.transformer(w, cfg, x, t, text))
            del w
        if "vae" in stages:
            with open(os.path.join(d, "vae", "config.json")) as f:
                cfg = json.load(f)
            vae = cog.VAE(load_lean(os.path.join(d, "vae", "diffusion_pytorch_model.safetensors")), cfg)
            z = torch.randn(1, 16, 5, 24, 40)
            timed("VAE decode 17 frames 320x192, f32", "vae_f32", lambda: vae.decode(z))


if __name__ == "__main__":
    main()
