"""zoe-tiny in PyTorch: load models/zoe-tiny (config.json, *.safetensors, tokenizer.json) and
generate, exactly the way the runtime is meant to (f32 compute on the shipped f16 weights).

    m = ZoeTiny("models/zoe-tiny")
    video = m.generate("a red circle moving left on a white background", seed=1)   # [3, T, H, W] in [-1, 1]

Pipeline (Wan2.1 text2video / image2video minus CLIP):
  1. ids, mask = tokenizer(prompt) padded to text_len (</s> appended); context = T5(ids, mask),
     rows past the prompt's length dropped (the DiT zero-pads them back to text_len).
  2. noise [z_dim, F', H/8, W/8] (F' = (frames-1)/4 + 1); the DiT input is
     cat([x_t, mask (4 ch), y (z_dim ch)]) along channels; text-to-video: mask = y = 0;
     image-to-video: y = normalized VAE mean of [first frame, zeros...], mask = 1 on latent frame 0.
  3. v = uncond + cfg * (cond - uncond), uncond from the empty prompt "" (ids [</s>]).
  4. sampler: Euler (default) or UniPC, see sampling.py; t = sigma * 1000.
  5. decode: z * std + mean (per channel), VAE decode one latent frame at a time, clamp(-1, 1).
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import st  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from wan import T5Encoder, WanModel, WanVAE_  # noqa: E402
from sampling import euler_sample, unipc_sample  # noqa: E402


def first_frame_mask(z_dim_frames, lat_h, lat_w, frames_given=1, frames=None):
    """Wan2.1-I2V's mask: pixel-frame mask (1 on given frames), frame 0 repeated 4 times, viewed as
    [F', 4] and transposed -> [4, F', h, w]."""
    fl = z_dim_frames
    n_pix = frames if frames is not None else 4 * (fl - 1) + 1
    msk = torch.zeros(1, n_pix, lat_h, lat_w)
    msk[:, :frames_given] = 1
    msk = torch.cat([torch.repeat_interleave(msk[:, 0:1], repeats=4, dim=1), msk[:, 1:]], dim=1)
    msk = msk.view(1, msk.shape[1] // 4, 4, lat_h, lat_w)
    return msk.transpose(1, 2)[0]


class ZoeTiny:
    def __init__(self, path, dtype=torch.float32):
        with open(os.path.join(path, "config.json")) as f:
            self.cfg = json.load(f)
        c = self.cfg
        self.tok = Tokenizer(os.path.join(path, "tokenizer.json"))
        self.t5 = T5Encoder(**c["t5"]).eval()
        self.dit = WanModel(**c["dit"]).eval()
        self.vae = WanVAE_(**c["vae"]).eval()
        for mod, name in ((self.t5, "t5"), (self.dit, "dit"), (self.vae, "vae")):
            sd = {k: v.to(dtype) for k, v in st.load(os.path.join(path, f"{name}.safetensors")).items()}
            mod.load_state_dict(sd, strict=True)
            mod.to(dtype)
        self.mean = torch.tensor(c["latent"]["mean"], dtype=dtype)
        self.std = torch.tensor(c["latent"]["std"], dtype=dtype)
        self.scale = [self.mean, 1.0 / self.std]
        self.text_len = c["dit"]["text_len"]
        self.z_dim = c["vae"]["z_dim"]
        s = c["sampling"]
        self.frames, self.height, self.width = s["frames"], s["height"], s["width"]
        self.rope_cache = {}

    @torch.no_grad()
    def encode_text(self, prompts):
        """-> list of [L_i, dim] tensors (the real rows only, L_i includes </s>)."""
        ids, mask = self.tok.batch(prompts, self.text_len)
        ids, mask = torch.tensor(ids), torch.tensor(mask)
        out = self.t5(ids, mask)
        return [out[i, :int(mask[i].sum())] for i in range(len(prompts))], ids, mask

    def latent_shape(self):
        return (self.z_dim, (self.frames - 1) // 4 + 1, self.height // 8, self.width // 8)

    @torch.no_grad()
    def encode_first_frame(self, frame):
        """frame [3, H, W] in [-1, 1] -> (mask [4, F', h, w], y [z, F', h, w])."""
        zc, fl, h, w = self.latent_shape()
        vid = torch.zeros(1, 3, self.frames, self.height, self.width)
        vid[0, :, 0] = frame
        y = self.vae.encode(vid, self.scale)[0]
        return first_frame_mask(fl, h, w), y

    @torch.no_grad()
    def denoiser(self, context, context_null, cond=None):
        """-> model_fn(x, t) giving the guided v. context [L, dim] (real rows), cond (mask, y) or None."""
        zc, fl, h, w = self.latent_shape()
        if cond is None:
            extra = torch.zeros(4 + zc, fl, h, w)
        else:
            extra = torch.cat([cond[0], cond[1]], 0)

        def pad(c):
            return torch.cat([c, c.new_zeros(self.text_len - c.shape[0], c.shape[1])])[None]
        ctx = torch.cat([pad(context), pad(context_null)])
        g = self.cfg["sampling"]["cfg"] if self._cfg is None else self._cfg

        def fn(x, t):
            inp = torch.cat([x, extra], 0)[None].expand(2, -1, -1, -1, -1)
            tt = torch.full((2,), float(t))
            out = self.dit(inp, tt, ctx, rope_cache=self.rope_cache)
            return out[1] + g * (out[0] - out[1])
        return fn

    _cfg = None

    @torch.no_grad()
    def sample_latent(self, prompt, seed=0, steps=None, shift=None, cfg=None, sampler=None, first_frame=None,
                      noise=None, negative_prompt=""):
        s = self.cfg["sampling"]
        steps = steps or s["steps"]
        shift = shift or s["shift"]
        sampler = sampler or s["sampler"]
        self._cfg = cfg
        ctx, _, _ = self.encode_text([prompt, negative_prompt])
        cond = self.encode_first_frame(first_frame) if first_frame is not None else None
        if noise is None:
            g = torch.Generator().manual_seed(seed)
            noise = torch.randn(self.latent_shape(), generator=g)
        fn = self.denoiser(ctx[0], ctx[1], cond)
        run = euler_sample if sampler == "euler" else unipc_sample
        lat = run(fn, noise, steps, shift)
        self._cfg = None
        return lat[-1]

    @torch.no_grad()
    def sample_latents(self, prompts, seeds, steps=None, shift=None, cfg=None, sampler=None, negative_prompt="",
                       first_frames=None):
        """Text-to-video (or image-to-video with first_frames, a list of [3, H, W]) for several prompts at
        once (batched DiT calls; same result per prompt as sample_latent up to float rounding).
        -> [N, z, F', h, w]."""
        s = self.cfg["sampling"]
        steps = steps or s["steps"]
        shift = shift or s["shift"]
        sampler = sampler or s["sampler"]
        g = s["cfg"] if cfg is None else cfg
        n = len(prompts)
        ctx, _, _ = self.encode_text(list(prompts) + [negative_prompt])

        def pad(c):
            return torch.cat([c, c.new_zeros(self.text_len - c.shape[0], c.shape[1])])
        context = torch.stack([pad(c) for c in ctx[:n]] + [pad(ctx[n])] * n)
        noise = []
        for sd in seeds:
            gen = torch.Generator().manual_seed(int(sd))
            noise.append(torch.randn(self.latent_shape(), generator=gen))
        noise = torch.stack(noise)
        zc, fl, h, w = self.latent_shape()
        extra = torch.zeros(2 * n, 4 + zc, fl, h, w)
        if first_frames is not None:
            for i, fr in enumerate(first_frames):
                msk, y = self.encode_first_frame(fr)
                extra[i] = extra[n + i] = torch.cat([msk, y], 0)

        def fn(x, t):
            inp = torch.cat([torch.cat([x, x]), extra], 1)
            out = self.dit(inp, torch.full((2 * n,), float(t)), context, rope_cache=self.rope_cache)
            return out[n:] + g * (out[:n] - out[n:])
        run = euler_sample if sampler == "euler" else unipc_sample
        return run(fn, noise, steps, shift)[-1]

    @torch.no_grad()
    def decode_batch(self, z):
        return self.vae.decode(z, self.scale).clamp(-1, 1)

    @torch.no_grad()
    def decode(self, z):
        """normalized latent [z, F', h, w] -> video [3, T, H, W] clamped to [-1, 1]."""
        return self.vae.decode(z[None], self.scale)[0].clamp(-1, 1)

    @torch.no_grad()
    def generate(self, prompt, seed=0, **kw):
        return self.decode(self.sample_latent(prompt, seed, **kw))


def to_uint8_frames(video):
    """[3, T, H, W] in [-1, 1] -> uint8 [T, H, W, 3]."""
    v = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(1, 2, 3, 0).contiguous().numpy()
