#!/usr/bin/python3
"""The PyTorch side of make bench-wan: the same stages as bench/wan.lua, on the same
random full-size checkpoint (tools/wan_random.py), with the PyTorch mirror of Wan2.1's
modules (tools/train/wan.py, proven against the official fixtures), in f32 and in bf16
autocast, on the same thread count. Prints one line per stage: seconds and peak RSS, and a
RESULT line that bench/bench_wan.sh reads.

usage: /usr/bin/python3 tools/bench_wan_torch.py CHECKPOINT_DIR THREADS [stage ...]
"""
import os
import resource
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "train"))
sys.path.insert(0, HERE)
import st  # noqa: E402
import wan  # noqa: E402


def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def timed(name, key, fn, reps=1):
    fn()  # warm up (page weights in, allocate)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"torch {name:<44} {best:8.2f} s  peak RSS {peak_gb():.2f} GB", flush=True)
    print(f"RESULT {key} {best:.4f}", flush=True)  # read by bench/bench_wan.sh
    return best


def main():
    ckpt, threads = sys.argv[1], int(sys.argv[2])
    stages = set(sys.argv[3:]) or {"t5", "dit", "vae"}
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with torch.no_grad():
        if "t5" in stages:
            enc = wan.T5Encoder(vocab=256384, dim=4096, dim_attn=4096, dim_ffn=10240, num_heads=64, num_layers=24,
                                num_buckets=32, shared_pos=False).to(torch.bfloat16)
            enc.load_state_dict(torch.load(os.path.join(ckpt, "models_t5_umt5-xxl-enc-bf16.pth")))
            ids = torch.arange(100, 140).view(1, 40)
            mask = torch.ones(1, 40, dtype=torch.long)
            timed("umT5-XXL, 40 tokens, bf16", "t5_bf16", lambda: enc(ids, mask), reps=3)
            del enc
        if "dit" in stages:
            cfg = dict(dim=1536, ffn_dim=8960, freq_dim=256, in_dim=16, num_heads=12, num_layers=30, out_dim=16,
                       text_len=512, text_dim=4096, eps=1e-6)
            dit = wan.WanModel(**cfg)
            sd = st.load(os.path.join(ckpt, "diffusion_pytorch_model.safetensors"))
            dit.load_state_dict({k: v.float() for k, v in sd.items()})
            del sd
            x = torch.randn(1, 16, 5, 24, 40)
            t = torch.tensor([500.0])
            ctx = torch.randn(1, 40, 4096)
            timed("DiT forward 320x192x17, f32", "dit_f32", lambda: dit(x, t, ctx))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                timed("DiT forward 320x192x17, bf16 autocast", "dit_bf16", lambda: dit(x, t, ctx))
            del dit
        if "vae" in stages:
            vae = wan.WanVAE_(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                              temperal_downsample=[False, True, True])
            vae.load_state_dict(torch.load(os.path.join(ckpt, "Wan2.1_VAE.pth")))
            z = torch.randn(1, 16, 5, 24, 40)
            scale = [torch.zeros(16), torch.ones(16)]
            timed("VAE decode 17 frames 320x192, f32", "vae_f32", lambda: vae.decode(z, scale))


if __name__ == "__main__":
    main()
