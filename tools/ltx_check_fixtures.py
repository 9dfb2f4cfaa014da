#!/usr/bin/python3
"""Prove tools/ltx_mirror.py (the PyTorch side of make bench-ltx) against the LTX-Video
fixtures: loads each part's config.json + weights.safetensors strictly and prints the relative
error ||out - ref|| / ||ref|| of the transformer's sample and each VAE's decoded and encoded
mean (the 0.9.1 decoder's injected noise replayed from the fixture's draws); all must be <= 1e-4.

    /usr/bin/python3 tools/ltx_check_fixtures.py [../shared/fixtures/ltx-tiny]
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltx_mirror  # noqa: E402
import st  # noqa: E402

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "fixtures", "ltx-tiny")
torch.set_num_threads(2)


def part(name, cls):
    cfg = json.load(open(os.path.join(ROOT, name, "config.json")))
    model = cls(cfg)
    sd = st.load(os.path.join(ROOT, name, "weights.safetensors"))
    model.load_state_dict(sd, strict=True)
    return model, st.load(os.path.join(ROOT, name, "io.safetensors"))


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


worst = 0.0


def report(name, a, b):
    global worst
    e = rel(a, b)
    worst = max(worst, e)
    print(f"{name:<32} {e:.3g}")


with torch.no_grad():
    tr, io = part("transformer", ltx_mirror.Transformer)
    grid = (int(io["num_frames"]), int(io["height"]), int(io["width"]))
    out = tr(io["hidden_states"], io["timestep"], io["encoder_hidden_states"], io["encoder_attention_mask"], grid,
             io["rope_interpolation_scale"].tolist())
    report("transformer sample", out, io["sample"])
    for name in ("vae_090", "vae_091", "vae_095"):
        vae, io = part(name, ltx_mirror.VAE)
        ordered = [k for k in io if k.startswith("decoder_noise.")]
        draws = iter([io[k] for k in ordered])
        real_randn = torch.randn
        torch.randn = lambda *a, **k: next(draws)
        try:
            t = io.get("decode_timestep")
            report(name + " decoded", vae.decode(io["decoder_input"], t), io["decoded"])
        finally:
            torch.randn = real_randn
        report(name + " encoded mean", vae.encode(io["video"]), io["encoded_mean"])
print(f"worst {worst:.3g} ({'ok' if worst <= 1e-4 else 'FAILED'})")
sys.exit(0 if worst <= 1e-4 else 1)
