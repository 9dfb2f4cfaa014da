"""zoe-tiny's preview projection: a linear map from its normalized latent (16 channels, what the
sampler holds) to RGB in [-1, 1], fitted by least squares on training clips, written into
models/zoe-tiny/config.json as "preview" (the runtime's model:preview(z), lua/zoe/preview.lua).

    /usr/bin/python3 tools/train/fit_preview.py [--model models/zoe-tiny] [--clips 400] [--check 100]

The clips are the training set's (world seeds 0, 1, ... skipping held-out prompts, as the data
stage renders them); each is encoded by the shipped VAE (its normalized mean, as the latents
stage caches them). The target of latent frame k is its pixel frames averaged (frame 1 alone,
then groups of 4, the VAE's causal time stride) and 8x8 pixel blocks averaged (its spatial
stride). --check more clips past the fitting ones measure the projection (PSNR at latent size).
Run it again whenever the VAE or the latent normalization changes (make refit-tiny does, with the
step caches' calibration).
"""
import argparse
import json
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "world"))
from world import World, to_tensor_layout  # noqa: E402
from zoe_tiny import ZoeTiny  # noqa: E402

torch.set_num_threads(int(os.environ.get("ZOE_THREADS", "2")))
HELDOUT_MOD = 10  # train_tiny.py's heldout_mod: those prompts are never trained on


def training_clips(world, n, skip=0):
    """The first n training clips after 'skip' of them, as [n, 3, T, H, W] in [-1, 1]."""
    out, seed, seen = [], 0, 0
    while len(out) < n:
        scene = world.sample_scene(seed)
        p = world.prompt(scene)
        seed += 1
        if zlib.crc32(p.encode()) % HELDOUT_MOD == 0:
            continue
        seen += 1
        if seen <= skip:
            continue
        out.append(torch.from_numpy(to_tensor_layout(world.render(scene))))
    return torch.stack(out)


def latent_targets(video):
    """[B, 3, 1 + 4k, H, W] -> [B, 3, 1 + k, H/8, W/8]: each latent frame's pixels, averaged."""
    first = video[:, :, :1]
    rest = video[:, :, 1:]
    b, c, t, h, w = rest.shape
    rest = rest.reshape(b, c, t // 4, 4, h, w).mean(3)
    frames = torch.cat([first, rest], 2)
    b, c, t, h, w = frames.shape
    return F.avg_pool2d(frames.transpose(1, 2).reshape(b * t, c, h, w), 8).reshape(b, t, c, h // 8, w // 8).transpose(1, 2)


@torch.no_grad()
def encode(m, clips, batch=8):
    zs = []
    for i in range(0, clips.shape[0], batch):
        zs.append(m.vae.encode(clips[i:i + batch], m.scale))
    return torch.cat(zs)


def rows(z, rgb):
    """-> X [N, C + 1] (a ones column for the bias), Y [N, 3] over every latent position."""
    c = z.shape[1]
    x = z.transpose(0, 1).reshape(c, -1).T.double()
    y = rgb.transpose(0, 1).reshape(3, -1).T.double()
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "zoe-tiny"))
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--check", type=int, default=100)
    a = ap.parse_args()
    m = ZoeTiny(a.model)
    world = World(os.path.join(a.model, "world.json"))
    clips = training_clips(world, a.clips + a.check)
    z = encode(m, clips)
    rgb = latent_targets(clips)
    X, Y = rows(z[:a.clips], rgb[:a.clips])
    W = torch.linalg.lstsq(X, Y).solution  # [C + 1, 3]
    Xc, Yc = rows(z[a.clips:], rgb[a.clips:])
    pred = (Xc @ W).clamp(-1, 1)
    mse = ((pred - Yc) ** 2).mean().item()
    psnr = 10 * np.log10(4 / mse)
    path = os.path.join(a.model, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["preview"] = dict(
        factors=[[round(float(v), 6) for v in row] for row in W[:-1].tolist()],
        bias=[round(float(v), 6) for v in W[-1].tolist()],
        note=(f"latent -> RGB in [-1, 1]: rgb = factors^T z + bias on the normalized latent; least squares "
              f"on {a.clips} training clips (tools/train/fit_preview.py), PSNR {psnr:.1f} dB at latent size "
              f"on {a.check} more"),
    )
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    print(f"preview projection: {a.clips} clips, PSNR {psnr:.2f} dB on {a.check} others -> {path}")


if __name__ == "__main__":
    main()
