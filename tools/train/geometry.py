"""Training-only geometric supervision for the zoe-tiny DiT (REPA-style: a small head on a middle
block predicts, per latent pixel, what the renderer drew there). The labels are exact: they come
from the scenes (tools/world/world.py), not from the VAE. The head is dropped at export, so the
runtime needs nothing new.

Labels, [N_LABELS, F', H/8, W/8] per clip (latent frame j covers pixel frames 4j-3..4j, frame 0
alone, as the causal VAE groups them); values averaged over those pixel frames:
  0      coverage: the share of the 8x8 pixel block covered by an object
  1..4   coverage split by shape (circle, square, triangle, diamond)
  5, 6   offset from the latent pixel's centre to its object's centre (latent px)
  7, 8   the object's velocity (latent px per latent frame)
  9      the object's size (latent px, minus 2.5)
  10     the object's growth (log size change per latent frame, x4)
Channels 5..10 mean something only where an object is: their loss is weighted by coverage.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_LABELS = 11
VAE_T, VAE_S = 4, 8


def latent_frames(T):
    """pixel-frame groups of the causal VAE: [[0], [1..4], [5..8], ...]."""
    return [[0]] + [list(range(4 * j - 3, 4 * j + 1)) for j in range(1, (T - 1) // VAE_T + 1)]


def scene_labels(world, scene):
    """-> float32 [N_LABELS, F', H/8, W/8] for one scene."""
    T, H, W = world.T, world.H, world.W
    groups = latent_frames(T)
    h, w = H // VAE_S, W // VAE_S
    out = np.zeros((N_LABELS, len(groups), h, w), np.float32)
    py, px = np.mgrid[0:h, 0:w] + 0.5                                   # latent pixel centres
    shapes = world.shape_names
    for o in scene["objects"]:
        cx, cy, size = (np.asarray(o[k], np.float64) / VAE_S for k in ("cx", "cy", "size"))
        vx, vy = (cx[-1] - cx[0]) / (T - 1) * VAE_T, (cy[-1] - cy[0]) / (T - 1) * VAE_T
        grow = np.log(size[-1] / size[0]) / (T - 1) * VAE_T * 4
        for j, g in enumerate(groups):
            cov = np.mean([world.coverage(o["shape"], o["cx"][t], o["cy"][t], o["size"][t]) for t in g], 0)
            cov = cov.reshape(h, VAE_S, w, VAE_S).mean(axis=(1, 3))
            out[0, j] += cov
            out[1 + shapes.index(o["shape"]), j] += cov
            mx, my, ms = cx[g].mean(), cy[g].mean(), size[g].mean()
            for c, v in ((5, mx - px), (6, my - py), (7, vx), (8, vy), (9, ms - 2.5), (10, grow)):
                out[c, j] += cov * v
    # channels 5.. were accumulated weighted by coverage: divide back (objects never overlap)
    tot = np.maximum(out[0], 1e-6)
    out[5:] /= tot[None]
    out[5:] *= (out[0] > 1e-6)[None]
    out[0] = np.minimum(out[0], 1.0)
    return out


class GeometryHead(nn.Module):
    """Per token: LayerNorm, Linear, GELU, Linear to the labels of the token's patch."""

    def __init__(self, dim, patch_size):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                 nn.Linear(dim, N_LABELS * int(np.prod(patch_size))))

    def forward(self, x, grid):
        f, h, w = grid
        b = x.shape[0]
        y = self.net(x).view(b, f, h, w, *self.patch_size, N_LABELS)
        y = torch.einsum('bfhwpqrc->bcfphqwr', y)
        return y.reshape(b, N_LABELS, *[i * j for i, j in zip(grid, self.patch_size)])


def geometry_loss(pred, lab):
    """MSE on coverage and shape everywhere; on the object channels weighted by coverage."""
    pred = pred.float()
    dense = F.mse_loss(pred[:, :5], lab[:, :5])
    wgt = lab[:, :1]
    obj = ((pred[:, 5:] - lab[:, 5:]).pow(2) * wgt).sum() / (wgt.sum() * (N_LABELS - 5) + 1e-6)
    return dense + obj, dense.item(), obj.item()


def object_weight(lab, strength):
    """A per-latent-pixel loss weight [B, 1, F', h, w]: 1 + strength near objects (coverage
    dilated by one latent pixel), normalized to mean 1 per clip."""
    near = F.max_pool3d(lab[:, :1], (1, 3, 3), stride=1, padding=(0, 1, 1))
    w = 1 + strength * (near > 0.02).float()
    return w / w.mean(dim=(1, 2, 3, 4), keepdim=True)
