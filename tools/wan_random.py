#!/usr/bin/python3
"""A full-size Wan2.1-T2V-1.3B checkpoint with random weights, laid out as the official
release is (names, shapes and dtypes), for benchmarks without the real files:

  OUT/config.json                              the official DiT config
  OUT/diffusion_pytorch_model.safetensors      DiT, bf16, 1.42 B parameters (2.8 GB)
  OUT/models_t5_umt5-xxl-enc-bf16.pth          umT5-XXL encoder, bf16, torch.save zip (11.4 GB)
  OUT/Wan2.1_VAE.pth                           VAE, f32, torch.save zip (508 MB)
  OUT/google/umt5-xxl/tokenizer.json           a tokenizer (see below)

Values are random with a 1/sqrt(fan_in) scale (activations stay finite; the output is
noise). The tokenizer is any T5-style tokenizer.json given with --tokenizer (the real
umT5 one is not here); ids are taken modulo nothing: its ids must be < 256384.

Usage: /usr/bin/python3 tools/wan_random.py OUT [--tokenizer path] [--parts dit,t5,vae]
Memory: the T5 part builds 11.4 GB of bf16 tensors before saving.
"""
import argparse
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "train"))

DIT = {"_class_name": "WanModel", "dim": 1536, "eps": 1e-06, "ffn_dim": 8960, "freq_dim": 256, "in_dim": 16,
       "model_type": "t2v", "num_heads": 12, "num_layers": 30, "out_dim": 16, "text_len": 512}


def dit_shapes(c):
    d, f = c["dim"], c["ffn_dim"]
    s = {"patch_embedding.weight": [d, c["in_dim"], 1, 2, 2], "patch_embedding.bias": [d],
         "text_embedding.0.weight": [d, 4096], "text_embedding.0.bias": [d],
         "text_embedding.2.weight": [d, d], "text_embedding.2.bias": [d],
         "time_embedding.0.weight": [d, c["freq_dim"]], "time_embedding.0.bias": [d],
         "time_embedding.2.weight": [d, d], "time_embedding.2.bias": [d],
         "time_projection.1.weight": [6 * d, d], "time_projection.1.bias": [6 * d],
         "head.modulation": [1, 2, d], "head.head.weight": [4 * c["out_dim"], d], "head.head.bias": [4 * c["out_dim"]]}
    for i in range(c["num_layers"]):
        b = f"blocks.{i}."
        for a in ("self_attn", "cross_attn"):
            for p in "qkvo":
                s[f"{b}{a}.{p}.weight"], s[f"{b}{a}.{p}.bias"] = [d, d], [d]
            s[f"{b}{a}.norm_q.weight"], s[f"{b}{a}.norm_k.weight"] = [d], [d]
        s[b + "norm3.weight"], s[b + "norm3.bias"] = [d], [d]
        s[b + "ffn.0.weight"], s[b + "ffn.0.bias"] = [f, d], [f]
        s[b + "ffn.2.weight"], s[b + "ffn.2.bias"] = [d, f], [d]
        s[b + "modulation"] = [1, 6, d]
    return s


def t5_shapes(vocab=256384, dim=4096, ffn=10240, layers=24, heads=64, buckets=32):
    s = {"token_embedding.weight": [vocab, dim], "norm.weight": [dim]}
    for i in range(layers):
        b = f"blocks.{i}."
        s[b + "norm1.weight"], s[b + "norm2.weight"] = [dim], [dim]
        for p in "qkvo":
            s[f"{b}attn.{p}.weight"] = [dim, dim]
        s[b + "ffn.gate.0.weight"], s[b + "ffn.fc1.weight"] = [ffn, dim], [ffn, dim]
        s[b + "ffn.fc2.weight"] = [dim, ffn]
        s[b + "pos_embedding.embedding.weight"] = [buckets, heads]
    return s


def value(name, shape, dtype, gen):
    if len(shape) == 1 and ("norm" in name or "gamma" in name):
        return torch.ones(shape, dtype=dtype)
    fan_in = 1
    for v in shape[1:]:
        fan_in *= v
    scale = 1.0 if "embedding" in name and "weight" in name and len(shape) == 2 and shape[0] > 10000 else fan_in ** -0.5
    if len(shape) == 1:
        scale = 0.02
    return (torch.randn(shape, generator=gen) * scale).to(dtype)


def save_safetensors_streaming(path, shapes, dtype, gen):
    """The header first (offsets from shapes), then each tensor as it is made."""
    tag = {torch.bfloat16: "BF16", torch.float32: "F32"}[dtype]
    es = 2 if dtype == torch.bfloat16 else 4
    header, off = {}, 0
    for name, shape in shapes.items():
        n = es
        for v in shape:
            n *= v
        header[name] = {"dtype": tag, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape in shapes.items():
            t = value(name, shape, dtype, gen).contiguous()
            f.write(t.view(torch.int16).numpy().tobytes() if dtype == torch.bfloat16 else t.numpy().tobytes())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "models", "zoe-tiny", "tokenizer.json"))
    ap.add_argument("--parts", default="dit,t5,vae")
    a = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(os.path.join(a.out, "google", "umt5-xxl"), exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    parts = a.parts.split(",")
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(DIT, f)
    if "dit" in parts:
        save_safetensors_streaming(os.path.join(a.out, "diffusion_pytorch_model.safetensors"), dit_shapes(DIT),
                                   torch.bfloat16, gen)
        print("dit written", flush=True)
    if "vae" in parts:
        import wan
        vae = wan.WanVAE_(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                          temperal_downsample=[False, True, True])
        path = os.path.join(a.out, "Wan2.1_VAE.pth")
        torch.save(vae.state_dict(), path + ".tmp")
        os.replace(path + ".tmp", path)
        print("vae written", flush=True)
    if "t5" in parts:
        sd = {n: value(n, s, torch.bfloat16, gen) for n, s in t5_shapes().items()}
        path = os.path.join(a.out, "models_t5_umt5-xxl-enc-bf16.pth")
        torch.save(sd, path + ".tmp")
        os.replace(path + ".tmp", path)
        del sd
        print("t5 written", flush=True)
    if os.path.exists(a.tokenizer):
        with open(a.tokenizer, "rb") as src, open(os.path.join(a.out, "google", "umt5-xxl", "tokenizer.json"), "wb") as dst:
            dst.write(src.read())


if __name__ == "__main__":
    main()
