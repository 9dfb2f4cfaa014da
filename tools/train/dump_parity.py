"""Write tests/fixtures/zoe_tiny_parity.safetensors: fixed inputs and the PyTorch results of the
shipped zoe-tiny (models/zoe-tiny, f16 weights widened to f32, f32 compute), so the runtime's Lua
port can prove it computes the same thing.

    /usr/bin/python3 tools/train/dump_parity.py [--model models/zoe-tiny] [--out tests/fixtures/zoe_tiny_parity.safetensors]

Tensors (f32 unless said; latent shapes are [z_dim=16, F'=5, h=8, w=8]):

  text
    ids            i64 [1, 32]   token ids of PROMPT (metadata "prompt"), </s> appended, padded with 0
    mask           i64 [1, 32]   1 on real tokens (</s> included), 0 on padding
    context        [L, 128]      T5 output rows of the real tokens (L = mask.sum()); the T5 runs with
                                 the mask (padded keys get finfo.min), rows past L are dropped
    null_ids       i64 [1, 32]   ids of the empty negative prompt "" (just </s>)
    null_mask      i64 [1, 32]
    context_null   [1, 128]      T5 output for ""

  one denoiser forward (image-to-video channels in use)
    dit.x          [36, 5, 8, 8] DiT input = cat([noisy latent (16), mask (4), y (16)]) along channels
    dit.t          [1]           timestep t = sigma * 1000 (a float, 637.5 here)
    dit.context    [L, 128]      = context (the DiT zero-pads it to text_len = 32 rows itself)
    dit.out        [16, 5, 8, 8]  predicted v (= noise - x0), no guidance

  first-frame conditioning (image-to-video), as the pipeline builds it
    i2v.frame      [3, 64, 64]   the given first frame in [-1, 1]
    i2v.mask       [4, 5, 8, 8]  1 on latent frame 0, else 0
    i2v.y          [16, 5, 8, 8]  normalized VAE mean of the video [frame, 16 zero frames]:
                                 (mu - latent_mean) / latent_std, encoded in chunks 1, 4, 4, 4, 4

  text-to-video sampling, Euler, 20 steps, shift and cfg from config.json (metadata too)
    sample.noise     [16, 5, 8, 8]       initial latent (sigma = 1)
    sample.sigmas    [21]               sigma_0 = 1 ... sigma_20 = 0
    sample.timesteps [20]               t_i = sigma_i * 1000 given to the DiT (floats)
    sample.latents   [20, 16, 5, 8, 8]   latent after each step:
                       v = v_null + cfg * (v_cond - v_null)  (cond = context, null = context_null,
                       both with mask = y = 0)
                       x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v
  the same with Wan's UniPC (order 2, bh2; integer timesteps int(sigma * 1000)):
    unipc.sigmas [21], unipc.timesteps [20], unipc.latents [20, 16, 5, 8, 8]

  one VAE decode of the Euler sample's final latent
    vae.z          [1, 16, 5, 8, 8]     = sample.latents[-1], normalized
    vae.video      [1, 3, 17, 64, 64]  decode: z * latent_std + latent_mean, conv2, the decoder one
                                       latent frame at a time with the feature cache; NOT clamped
                                       (the pipeline clamps to [-1, 1] afterwards)
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
import st  # noqa: E402
from sampling import euler_sample, euler_sigmas, unipc_sample, wan_sigmas  # noqa: E402
from world import World, to_tensor_layout  # noqa: E402
from zoe_tiny import ZoeTiny, first_frame_mask  # noqa: E402

torch.set_num_threads(2)
PROMPT = "a red circle moving left and a blue square moving up on a white background"


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "zoe-tiny"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "zoe_tiny_parity.safetensors"))
    a = ap.parse_args()
    m = ZoeTiny(a.model)
    s = m.cfg["sampling"]
    steps, shift, g = s["steps"], s["shift"], s["cfg"]
    T = {}
    ctx, ids, mask = m.encode_text([PROMPT, ""])
    T["ids"], T["mask"] = ids[:1], mask[:1]
    T["context"] = ctx[0]
    T["null_ids"], T["null_mask"] = ids[1:], mask[1:]
    T["context_null"] = ctx[1]

    gen = torch.Generator().manual_seed(1234)
    zc, fl, h, w = m.latent_shape()
    # first-frame conditioning from a rendered clip of the same prompt
    world = World(os.path.join(a.model, "world.json"))
    _, clip, _ = world.make(77, prompt_spec=world.parse(PROMPT))
    frame = torch.from_numpy(to_tensor_layout(clip))[:, 0]
    msk, y = m.encode_first_frame(frame)
    T["i2v.frame"], T["i2v.mask"], T["i2v.y"] = frame, msk, y
    assert torch.equal(msk, first_frame_mask(fl, h, w))

    x0 = torch.randn(zc, fl, h, w, generator=gen)
    tt = torch.tensor([637.5])
    xin = torch.cat([x0, msk, y], 0)
    T["dit.x"], T["dit.t"], T["dit.context"] = xin, tt, ctx[0]
    c = torch.cat([ctx[0], ctx[0].new_zeros(m.text_len - ctx[0].shape[0], ctx[0].shape[1])])[None]
    T["dit.out"] = m.dit(xin[None], tt, c)[0]

    noise = torch.randn(zc, fl, h, w, generator=gen)
    fn = m.denoiser(ctx[0], ctx[1], None)
    lat = euler_sample(fn, noise.clone(), steps, shift)
    sig = euler_sigmas(steps, shift)
    T["sample.noise"] = noise
    T["sample.sigmas"] = torch.tensor(sig, dtype=torch.float32)
    T["sample.timesteps"] = torch.tensor([v * 1000.0 for v in sig[:-1]], dtype=torch.float32)
    T["sample.latents"] = torch.stack(lat)
    lat_u = unipc_sample(fn, noise.clone(), steps, shift)
    usig, uts = wan_sigmas(steps, shift)
    T["unipc.sigmas"] = torch.tensor(usig, dtype=torch.float32)
    T["unipc.timesteps"] = torch.tensor(uts, dtype=torch.float32)
    T["unipc.latents"] = torch.stack(lat_u)

    T["vae.z"] = lat[-1][None]
    T["vae.video"] = m.vae.decode(lat[-1][None], m.scale)

    T = {k: v.contiguous() for k, v in T.items()}
    meta = dict(prompt=PROMPT, negative_prompt="", steps=steps, shift=shift, cfg=g, sampler="euler",
                model="models/zoe-tiny", note="see tools/train/dump_parity.py for the meaning of each tensor")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    st.save(a.out, T, meta)
    size = os.path.getsize(a.out)
    print(f"wrote {a.out} ({size / 1e6:.2f} MB)")
    for k, v in T.items():
        print(f"  {k:18s} {str(v.dtype).replace('torch.', ''):8s} {list(v.shape)}")


if __name__ == "__main__":
    main()
