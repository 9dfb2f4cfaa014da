"""Train zoe-tiny from nothing on 2 CPU cores: tokenizer, then the VAE, then the text encoder and
the DiT jointly on latents cached from the trained VAE. Writes models/zoe-tiny/.

    /usr/bin/python3 tools/train/train_tiny.py [--out models/zoe-tiny] [--work tools/train/work]
                                               [--stages tok,data,vae,encode,dit,dit2,export] [--quick]

Every stage saves its result in the work directory, so a later stage can be rerun alone.
Deterministic: fixed seeds everywhere, 2 threads. Losses go to stdout and WORK/train.log.
Training runs in bfloat16 autocast (the CPU's AVX512-BF16 units; master weights f32); the
shipped weights are the f32 EMA weights rounded to f16.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "world"))
import st  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from wan import T5Encoder, WanModel, WanVAE_  # noqa: E402
from world import World  # noqa: E402
from zoe_tiny import first_frame_mask  # noqa: E402
import binding  # noqa: E402
import geometry  # noqa: E402

torch.set_num_threads(int(os.environ.get("ZOE_THREADS", "2")))

# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------
C = dict(
    n_clips=5000,            # rendered training clips
    seed0=0,                 # the first scene seed (each stage renders its own clips)
    i2v_fraction=0.5,        # share of clips that also get the first-frame conditioning latent
    heldout_mod=10,          # prompts with crc32 % heldout_mod == 0 never appear in training
    vae=dict(dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
             temperal_downsample=[False, True, True], dropout=0.0),
    vae_steps=1500, vae_batch=4, vae_frames=9, vae_lr=5e-4,
    vae_crop_frac=0.4, vae_crop_batch=8, vae_crop_frames=5, vae_crop=32, vae_kl=1e-6, vae_obj_weight=5.0, vae_latent_noise=0.1,
    vae_edge=0.0,            # weight of an L1 term on Sobel edges (object-weighted): corners of small shapes
    t5=dict(vocab=None, dim=128, dim_attn=128, dim_ffn=256, num_heads=4, num_layers=3, num_buckets=32,
            shared_pos=False, dropout=0.0),
    dit=dict(model_type="t2v", patch_size=[1, 2, 2], text_len=32, in_dim=None, dim=256, ffn_dim=1024,
             freq_dim=256, text_dim=128, out_dim=None, num_heads=4, num_layers=8, window_size=[-1, -1],
             qk_norm=True, cross_attn_norm=True, eps=1e-6),
    dit_steps=3000, dit_batch=32, dit_lr=4e-4, dit_warmup=200, dit_min_lr=0.1, ema=0.999,
    dit_budget_s=None,       # wall seconds the DiT may take: the LR schedule runs on the larger of the
                             # step and time fractions and stops at 1, so a busy machine still decays
    init_from=None,          # a model folder (f16 safetensors) whose T5 and DiT to start from
    dit_out="dit.pt",        # where the DiT stage saves its weights, in the work folder
    aux_block=None,          # the DiT block whose output a geometry head reads (None: no head)
    aux_weight=1.0,          # weight of the geometry loss (tools/train/geometry.py)
    bind_weight=0.0,         # weight of the text encoder's word-binding loss (tools/train/binding.py)
    obj_weight=0.0,          # extra diffusion-loss weight near objects (0: uniform)
    two_object_weight=1.0,   # how much more often a batch draws a two-object clip than a one-object one
    snapshot_every=0,        # every so many steps, save the EMA weights to WORK/<dit_out>_snap.pt (0: never)
    stage=None,              # the stage of STAGES being run (None: steps run by hand with --stages)
    latent_norm=None,        # [mean, std] per latent channel to keep (None: measured on the clips)
    text_dropout=0.1, i2v_prob=0.6, train_shift=3.0,
    sampling=dict(sampler="euler", steps=20, shift=3.0, cfg=4.0),
)
# The recipe: stages of at most 75 minutes on 2 cores. Each later stage starts from the model
# folder the stage before wrote (f16 weights, a fresh optimizer with a short warm-up) and renders
# clips of its own (other seeds), so each stage can run on its own: make train-tiny STAGE=N.
# Every DiT stage trains the geometry head on block 4 (the A/B runs: it took one-object motion
# from 62.5% to 80% over the same steps without it) and has a wall-time budget, so that a busy
# machine trains fewer steps (with the whole LR decay) instead of running past 75 minutes.
# Every DiT stage also trains the text encoder's word-binding heads (run 6 against run 5, the
# same 1800 steps and batches: two-object motion 54% -> 63%; run 7, 5936 steps more: 96%).
# Stages 2 and 3 are the "long" continuations that made the shipped weights (MODEL_CARD.md):
# 10000 fresh clips, fewer image-to-video samples, two-object clips drawn 2.5x as often.
LATER = dict(n_clips=10000, aux_block=4, bind_weight=0.3, dit_steps=6000, dit_lr=3e-4, dit_warmup=100,
             ema=0.999, i2v_prob=0.25, two_object_weight=2.5, dit_budget_s=3000)
STAGES = {
    1: dict(steps=["tok", "data", "vae", "encode", "dit", "export"],
            set=dict(seed0=0, aux_block=4, bind_weight=0.3, dit_budget_s=2700)),
    2: dict(steps=["from_model", "data", "encode", "dit", "export"], set=dict(LATER, seed0=1_000_000)),
    3: dict(steps=["from_model", "data", "encode", "dit", "export"], set=dict(LATER, seed0=2_000_000)),
}

LOG = None


def log(msg):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def heldout(prompt, mod):
    return zlib.crc32(prompt.encode()) % mod == 0


# ------------------------------------------------------------------------------------------------
# stages
# ------------------------------------------------------------------------------------------------
def stage_tok(work):
    subprocess.run([sys.executable, os.path.join(HERE, "make_tokenizer.py"), os.path.join(work, "tok")], check=True)


def stage_data(work, world):
    """Render n_clips clips (seeds seed0.. skipping held-out prompts) and their geometry labels ->
    work/clips.npy, labels.npy, prompts.json."""
    t0 = time.time()
    n = C["n_clips"]
    clips = np.empty((n, world.T, world.H, world.W, 3), np.uint8)
    labels = None
    prompts, seeds = [], []
    seed = C["seed0"]
    while len(prompts) < n:
        scene = world.sample_scene(seed)
        p = world.prompt(scene)
        if not heldout(p, C["heldout_mod"]):
            lab = geometry.scene_labels(world, scene)
            if labels is None:
                labels = np.empty((n,) + lab.shape, np.float16)
            labels[len(prompts)] = lab
            clips[len(prompts)] = world.render(scene)
            prompts.append(p)
            seeds.append(seed)
        seed += 1
    np.save(os.path.join(work, "clips.npy"), clips)
    np.save(os.path.join(work, "labels.npy"), labels)
    with open(os.path.join(work, "prompts.json"), "w") as f:
        json.dump(dict(prompts=prompts, seeds=seeds), f)
    log(f"data: {n} clips rendered in {time.time() - t0:.0f}s (seeds {C['seed0']}..{seed - 1})")


def to_video(clips_u8):
    """uint8 [B, T, H, W, 3] -> float [B, 3, T, H, W] in [-1, 1]."""
    x = torch.from_numpy(clips_u8).float().div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def lr_at(step, total, base, warmup, min_frac):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def init_vae(vae):
    """Initialize the VAE as a working block-average autoencoder, so that training starts with a
    clean signal path instead of fighting the RMS norms (a randomly initialized Wan VAE this small
    spends hundreds of steps predicting the mean colour; its residual stream is a linear chain whose
    direction only keeps the sign of the brightness):
      - every residual branch ends in a zero conv (the blocks start as identities);
      - every conv on the residual stream (conv1s, shortcuts, resample convs, heads) copies channel i
        to channel i on its centre tap (downsampling convs average the 2x2 block they cover), so
        the stream carries [R+1, G+1, B+1, 1, 0...] block means down to the latent and back;
      - temporal: upsample3d's time_conv copies each frame into its two output frames,
        downsample3d's keeps the latest frame; the causal 3x3x3 convs see only the current frame;
      - the log-variance starts at -6 so the posterior noise does not drown the signal."""
    from wan import CausalConv3d, Resample, ResidualBlock

    def copy_centre(w):
        w.zero_()
        n = min(w.shape[0], w.shape[1])
        idx = torch.arange(n)
        if w.dim() == 5:
            w[idx, idx, w.shape[2] - 1, w.shape[3] // 2, w.shape[4] // 2] = 1.0
        else:
            w[idx, idx, w.shape[2] // 2, w.shape[3] // 2] = 1.0

    with torch.no_grad():
        for m in vae.modules():
            if isinstance(m, CausalConv3d) and m.kernel_size == (3, 3, 3):
                m.weight[:, :, :2] = 0
        for m in vae.modules():
            if isinstance(m, ResidualBlock):
                m.residual[6].weight.zero_()
                m.residual[6].bias.zero_()
                if isinstance(m.shortcut, CausalConv3d):
                    copy_centre(m.shortcut.weight)
                    m.shortcut.bias.zero_()
            if isinstance(m, Resample) and m.mode != "none":
                conv = m.resample[1]
                conv.bias.zero_()
                if m.mode.startswith("up"):
                    copy_centre(conv.weight)
                else:   # ZeroPad2d((0,1,0,1)) then 3x3 stride 2: taps 0,1 cover the 2x2 block
                    conv.weight.zero_()
                    n = min(conv.weight.shape[0], conv.weight.shape[1])
                    idx = torch.arange(n)
                    for a in (0, 1):
                        for b in (0, 1):
                            conv.weight[idx, idx, a, b] = 0.25
                if m.mode in ("upsample3d", "downsample3d"):
                    w = m.time_conv.weight
                    w.zero_()
                    m.time_conv.bias.zero_()
                    c = w.shape[1]
                    eye = torch.eye(c)
                    if m.mode == "upsample3d":
                        w[:c, :, 2, 0, 0] = eye
                        w[c:, :, 2, 0, 0] = eye
                    else:
                        w[:, :, 2, 0, 0] = eye
        enc, dec = vae.encoder, vae.decoder
        copy_centre(enc.conv1.weight)
        enc.conv1.bias.zero_()
        enc.conv1.bias[:3] = 1.0
        enc.conv1.bias[3] = 1.0
        copy_centre(enc.head[2].weight)
        enc.head[2].bias.zero_()
        copy_centre(vae.conv1.weight)
        vae.conv1.bias.zero_()
        vae.conv1.bias[vae.z_dim:] = -6.0
        copy_centre(vae.conv2.weight)
        vae.conv2.bias.zero_()
        copy_centre(dec.conv1.weight)
        dec.conv1.bias.zero_()
        copy_centre(dec.head[2].weight)
        dec.head[2].bias.fill_(-1.0)


def sobel(v):
    """|horizontal| + |vertical| Sobel response of each frame and channel, [B, C, T, H, W]."""
    b, c, t, h, w = v.shape
    k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=v.dtype) / 4
    x = v.transpose(1, 2).reshape(b * t * c, 1, h, w)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), torch.stack([k, k.t()])[:, None])
    return g.abs().sum(1).view(b, t, c, h, w).transpose(1, 2)


def world_size(clips):
    return clips.shape[2]


def stage_vae(work):
    t0 = time.time()
    clips = np.load(os.path.join(work, "clips.npy"), mmap_mode="r")
    n = clips.shape[0]
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    vae = WanVAE_(**C["vae"])
    init_vae(vae)
    opt = torch.optim.AdamW(vae.parameters(), lr=C["vae_lr"], betas=(0.9, 0.99), weight_decay=0.0)
    S = C["vae_steps"]
    T = clips.shape[1]
    hist = []
    losses = open(os.path.join(work, "vae_losses.tsv"), "w", buffering=1)
    losses.write("step\tl1\twmse\tkl\tpost_std\tmu_std\n")
    for step in range(S):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, S, C["vae_lr"], 20, 0.05)
        # curriculum: many cheap steps on crops of short windows first, then whole frames
        if step < C["vae_crop_frac"] * S:
            B, Tw, cs = C["vae_crop_batch"], C["vae_crop_frames"], C["vae_crop"]
        else:
            B, Tw, cs = C["vae_batch"], C["vae_frames"], world_size(clips)
        idx = rng.integers(0, n, B)
        off = rng.integers(0, T - Tw + 1, B)
        oy = rng.integers(0, clips.shape[2] - cs + 1, B)
        ox = rng.integers(0, clips.shape[3] - cs + 1, B)
        batch = np.stack([clips[i, o:o + Tw, y0:y0 + cs, x0:x0 + cs] for i, o, y0, x0 in zip(idx, off, oy, ox)])
        if rng.random() < 0.5:   # horizontal flips: more layouts for free
            batch = batch[:, :, :, ::-1]
        x = to_video(np.ascontiguousarray(batch))
        # f32: torch 1.13's bf16 Conv3d backward is slower here than f32 (4x on the crops)
        mu, logvar = vae.encode_seq(x)
        logvar = logvar.clamp(-30, 20)
        # posterior sample plus a noise floor (a fraction of the latent's spread), so that the
        # decoder tolerates the small errors a denoiser makes
        floor = C["vae_latent_noise"] * mu.detach().std(dim=(0, 2, 3, 4), keepdim=True)
        z = mu + torch.randn_like(mu) * torch.sqrt(torch.exp(logvar) + floor ** 2)
        y = vae.decode_seq(z)
        # objects are ~10% of the pixels: weight pixels that differ from the clip's background
        # (its median colour) so that shapes are learned early, not only the background
        bg = x.flatten(2).median(dim=2).values[:, :, None, None, None]
        wgt = 1 + C["vae_obj_weight"] * ((x - bg).abs().sum(1, keepdim=True) > 0.05).float()
        wgt = wgt / wgt.mean()
        l1 = (wgt * (y - x).abs()).mean()
        l2 = (wgt * (y - x).pow(2)).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = l1 + l2 + C["vae_kl"] * kl
        if C["vae_edge"] > 0:
            loss = loss + C["vae_edge"] * (wgt * (sobel(y) - sobel(x)).abs()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 10.0)
        opt.step()
        hist.append([(y - x).abs().mean().item(), l2.item(), kl.item(), torch.exp(0.5 * logvar).mean().item(), mu.std().item()])
        losses.write(f"{step}\t" + "\t".join(f"{v:.5f}" for v in hist[-1]) + "\n")
        if step % 25 == 0 or step == S - 1:
            h = np.mean(hist[-25:], 0)
            log(f"vae step {step:5d}/{S} {cs}x{cs}x{Tw} l1 {h[0]:.4f} wmse {h[1]:.5f} kl {h[2]:.3f} post_std {h[3]:.3f} "
                f"mu_std {h[4]:.3f} ({time.time() - t0:.0f}s)")
    losses.close()
    torch.save(vae.state_dict(), os.path.join(work, "vae.pt"))
    log(f"vae: {S} steps in {time.time() - t0:.0f}s")


@torch.no_grad()
def stage_encode(work):
    """Cache the VAE means of all clips, the latent mean/std, and y (first frame + zeros, encoded)
    for the i2v share of the clips."""
    t0 = time.time()
    clips = np.load(os.path.join(work, "clips.npy"), mmap_mode="r")
    n = clips.shape[0]
    vae = WanVAE_(**C["vae"]).eval()
    vae.load_state_dict(torch.load(os.path.join(work, "vae.pt")))
    B = 4
    mus = []
    for i in range(0, n, B):
        x = to_video(np.ascontiguousarray(clips[i:i + B]))
        with torch.cpu.amp.autocast(dtype=torch.bfloat16):
            mu, _ = vae.encode_seq(x)
        mus.append(mu.float())
    mu = torch.cat(mus)
    if C["latent_norm"]:   # later stages keep the normalization the DiT was trained with
        mean, std = (torch.tensor(v) for v in C["latent_norm"])
    else:
        mean = mu.mean(dim=(0, 2, 3, 4))
        std = mu.std(dim=(0, 2, 3, 4))
    n_i2v = int(n * C["i2v_fraction"])
    ys = []
    for i in range(0, n_i2v, B):
        x = to_video(np.ascontiguousarray(clips[i:i + B]))
        x[:, :, 1:] = 0
        with torch.cpu.amp.autocast(dtype=torch.bfloat16):
            y, _ = vae.encode_seq(x)
        ys.append(y.float())
    y = torch.cat(ys)
    zn = (mu - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    yn = (y - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    torch.save(dict(z=zn, y=yn, mean=mean, std=std), os.path.join(work, "latents.pt"))
    log(f"encode: {n} clips + {n_i2v} first-frame conditionings in {time.time() - t0:.0f}s; "
        f"latent mean {[round(v, 3) for v in mean.tolist()]} std {[round(v, 3) for v in std.tolist()]}")


def ema_update(ema, model, decay):
    with torch.no_grad():
        for pe, pm in zip(ema.values(), model.state_dict().values()):
            if pe.dtype.is_floating_point:
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)


class GeluTanhF32(nn.Module):
    """The DiT's GELU (tanh approximation) computed in f32: the same function, and on this CPU
    torch 1.13's bf16 GELU and its backward cost a fifth of a training step."""

    def forward(self, x):
        return F.gelu(x.float(), approximate="tanh")


def patch_embedding_as_linear(conv):
    """The patch embedding (a Conv3d whose kernel is its stride) as the linear layer it is, with
    the same weights: torch 1.13's bf16 Conv3d backward costs a sixth of a training step here."""
    p = conv.kernel_size

    def forward(x):
        b, c, f, h, w = x.shape
        u = x.view(b, c, f // p[0], p[0], h // p[1], p[1], w // p[2], p[2])
        u = u.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, f // p[0], h // p[1], w // p[2], -1)
        return F.linear(u, conv.weight.flatten(1), conv.bias).permute(0, 4, 1, 2, 3)
    conv.forward = forward


def faster_training(dit):
    """Training-time replacements that compute the same DiT faster on this CPU (the parameters
    and their names do not change, so the exported weights are the same model)."""
    for m in list(dit.modules()):
        for name, child in m.named_children():
            if isinstance(child, nn.GELU) and child.approximate == "tanh":
                setattr(m, name, GeluTanhF32())
    patch_embedding_as_linear(dit.patch_embedding)


def load_model_weights(folder):
    """T5 and DiT state dicts (f32) of an exported model folder."""
    return ({k: v.float() for k, v in st.load(os.path.join(folder, "t5.safetensors")).items()},
            {k: v.float() for k, v in st.load(os.path.join(folder, "dit.safetensors")).items()})


def stage_dit(work, world):
    t0, c0 = time.time(), time.process_time()
    lat = torch.load(os.path.join(work, "latents.pt"))
    z, y = lat["z"], lat["y"]
    n, zc, fl, h, w = z.shape
    n_i2v = y.shape[0]
    with open(os.path.join(work, "prompts.json")) as f:
        prompts = json.load(f)["prompts"]
    tok = Tokenizer(os.path.join(work, "tok", "tokenizer.json"))
    L = C["dit"]["text_len"]
    ids_all, mask_all = tok.batch(prompts, L)
    ids_all, mask_all = torch.tensor(ids_all), torch.tensor(mask_all)
    e_ids, e_mask = tok.batch([""], L)
    e_ids, e_mask = torch.tensor(e_ids[0]), torch.tensor(e_mask[0])
    use_aux = C["aux_block"] is not None
    labels = None
    if use_aux or C["obj_weight"] > 0:
        labels = torch.from_numpy(np.load(os.path.join(work, "labels.npy")))
    bind_lab = bind_head = None
    if C["bind_weight"] > 0:
        bind_lab = torch.from_numpy(binding.token_labels(world, tok, prompts, ids_all))
    log(f"dit: longest prompt {int(mask_all.sum(1).max())} tokens (text_len {L})")
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    t5 = T5Encoder(**C["t5"])
    t5.init_weights()
    dit = WanModel(**C["dit"])
    if C["init_from"]:
        t5_sd, dit_sd = load_model_weights(C["init_from"])
        t5.load_state_dict(t5_sd)
        dit.load_state_dict(dit_sd)
        rng = np.random.default_rng(C.get("data_seed", 3))
        log(f"dit: starts from {C['init_from']}")
    faster_training(dit)
    head = None
    feats = {}
    if use_aux:   # training only: reads a middle block's output, not exported
        head = geometry.GeometryHead(C["dit"]["dim"], C["dit"]["patch_size"])
        dit.blocks[C["aux_block"]].register_forward_hook(lambda m, i, o: feats.__setitem__("x", o))
    if bind_lab is not None:   # training only, not exported
        bind_head = binding.BindingHead(C["t5"]["dim"], world)
    params = list(t5.parameters()) + list(dit.parameters()) + (list(head.parameters()) if head else []) \
        + (list(bind_head.parameters()) if bind_head else [])
    log(f"dit: DiT {sum(p.numel() for p in dit.parameters()) / 1e6:.2f}M params, "
        f"T5 {sum(p.numel() for p in t5.parameters()) / 1e6:.2f}M params")
    opt = torch.optim.AdamW(params, lr=C["dit_lr"], betas=(0.9, 0.99), weight_decay=0.01)
    ema_t5 = {k: v.detach().clone() for k, v in t5.state_dict().items()}
    ema_dit = {k: v.detach().clone() for k, v in dit.state_dict().items()}
    warm = C["init_from"] is not None
    msk1 = first_frame_mask(fl, h, w)
    S, B = C["dit_steps"], C["dit_batch"]
    p = C["dit"]["patch_size"]
    grid = (fl // p[0], h // p[1], w // p[2])
    rope_cache = {}
    hist = []
    sh = C["train_shift"]
    losses = open(os.path.join(work, C["dit_out"].replace(".pt", "_losses.tsv")), "w", buffering=1)
    losses.write("step\tloss\tgeo_dense\tgeo_object\tbinding\tgrad_norm\tlr\n")
    budget = C["dit_budget_s"]
    done = S
    draw = np.where([" and " in q for q in prompts], C["two_object_weight"], 1.0)
    draw = draw / draw.sum()
    for step in range(S):
        at = step
        if budget:
            at = max(step, int(S * (time.time() - t0) / budget))
            if at >= S:
                done = step
                break
        for g in opt.param_groups:
            g["lr"] = lr_at(at, S, C["dit_lr"], C["dit_warmup"], C["dit_min_lr"])
        idx = torch.from_numpy(rng.integers(0, n, B) if C["two_object_weight"] == 1.0 else rng.choice(n, B, p=draw))
        x0 = z[idx]
        is_i2v = torch.from_numpy((rng.random(B) < C["i2v_prob"]) & (idx.numpy() < n_i2v))
        extra = torch.zeros(B, 4 + zc, fl, h, w)
        for b in torch.nonzero(is_i2v).flatten().tolist():
            extra[b, :4] = msk1
            extra[b, 4:] = y[idx[b]]
        drop = torch.from_numpy(rng.random(B) < C["text_dropout"])
        ids, mask = ids_all[idx].clone(), mask_all[idx].clone()
        ids[drop] = e_ids
        mask[drop] = e_mask
        u = torch.from_numpy(rng.random(B)).float()
        sig = sh * u / (1 + (sh - 1) * u)
        noise = torch.from_numpy(rng.standard_normal((B, zc, fl, h, w))).float()
        s5 = sig.view(B, 1, 1, 1, 1)
        xt = (1 - s5) * x0 + s5 * noise
        target = noise - x0
        lab = labels[idx].float() if labels is not None else None
        with torch.cpu.amp.autocast(dtype=torch.bfloat16):
            ctx = t5(ids, mask) * mask[..., None]
            bind_pred = bind_head(ctx) if bind_head is not None else None
            pred = dit(torch.cat([xt, extra], 1), sig * 1000, ctx, rope_cache=rope_cache)
            aux_pred = head(feats.pop("x"), grid) if head is not None else None
        err = (pred.float() - target).pow(2)
        if C["obj_weight"] > 0:
            err = err * geometry.object_weight(lab, C["obj_weight"])
        loss = err.mean()
        diff = loss.item()
        aux_d = aux_o = 0.0
        if aux_pred is not None:
            aux, aux_d, aux_o = geometry.geometry_loss(aux_pred, lab)
            loss = loss + C["aux_weight"] * aux
        bind = 0.0
        if bind_pred is not None:
            bl = bind_lab[idx].clone()
            bl[drop] = binding.IGNORE
            b_loss = binding.binding_loss(bind_pred, bl)
            bind = b_loss.item()
            loss = loss + C["bind_weight"] * b_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = C["ema"] if warm else min(C["ema"], (1 + step) / (10 + step))
        ema_update(ema_t5, t5, d)
        ema_update(ema_dit, dit, d)
        hist.append([diff, gn.item(), aux_d, aux_o, bind])
        losses.write(f"{step}\t{diff:.5f}\t{aux_d:.5f}\t{aux_o:.5f}\t{bind:.5f}\t{gn.item():.4f}\t{opt.param_groups[0]['lr']:.3e}\n")
        if C["snapshot_every"] and step % C["snapshot_every"] == 0 and step > 0:
            torch.save(dict(t5=ema_t5, dit=ema_dit), os.path.join(work, C["dit_out"].replace(".pt", "_snap.pt")))
        if step % 100 == 0 or step == S - 1:
            hh = np.mean(hist[-100:], 0)
            log(f"dit step {step:5d}/{S} loss {hh[0]:.4f} grad {hh[1]:.3f} "
                + (f"geo {hh[2]:.4f}/{hh[3]:.4f} " if head is not None else "")
                + (f"binding {hh[4]:.4f} " if bind_head is not None else "")
                + f"lr {opt.param_groups[0]['lr']:.2e} ({time.time() - t0:.0f}s wall, {time.process_time() - c0:.0f}s cpu, "
                f"load {os.getloadavg()[0]:.2f})")
    losses.close()
    torch.save(dict(t5=ema_t5, dit=ema_dit, t5_raw=t5.state_dict(), dit_raw=dit.state_dict()),
               os.path.join(work, C["dit_out"]))
    log(f"dit: {done} steps in {time.time() - t0:.0f}s wall, {time.process_time() - c0:.0f}s cpu"
        + (f" (time budget {budget}s)" if budget else ""))


def stage_export(work, out, world_path):
    os.makedirs(out, exist_ok=True)
    d = torch.load(os.path.join(work, C["dit_out"]))
    vae = torch.load(os.path.join(work, "vae.pt"))
    lat = torch.load(os.path.join(work, "latents.pt"))
    meta = {"format": "pt", "model": "zoe-tiny"}
    st.save(os.path.join(out, "t5.safetensors"), {k: v.half() for k, v in d["t5"].items()}, meta)
    st.save(os.path.join(out, "dit.safetensors"), {k: v.half() for k, v in d["dit"].items()}, meta)
    st.save(os.path.join(out, "vae.safetensors"), {k: v.half() for k, v in vae.items()}, meta)
    shutil.copyfile(os.path.join(work, "tok", "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    if os.path.abspath(world_path) != os.path.abspath(os.path.join(out, "world.json")):
        shutil.copyfile(world_path, os.path.join(out, "world.json"))
    w = World(world_path)
    cfg = dict(
        name="zoe-tiny",
        arch="wan2.1",
        t5=C["t5"], dit=C["dit"], vae=C["vae"],
        latent=dict(mean=[float(v) for v in lat["mean"]], std=[float(v) for v in lat["std"]],
                    note="normalized latent = (mu - mean) / std; decode uses z * std + mean "
                         "(Wan's scale = [mean, 1/std])"),
        i2v=dict(in_dim=C["dit"]["in_dim"], channels="[noisy latent (z_dim), mask (4), y (z_dim)]",
                 mask="1 on latent frame 0 (all 4 channels) when the first frame is given, else 0",
                 y="normalized VAE mean of [first frame, zeros for the other frames]; zeros for text-to-video"),
        sampling=dict(C["sampling"], fps=w.fps, width=w.W, height=w.H, frames=w.T, negative_prompt="",
                      timestep="t = sigma * 1000 (float)", prediction="v = noise - x0",
                      vae_stride=[4, 8, 8], patch_size=C["dit"]["patch_size"]),
        tokenizer=dict(file="tokenizer.json", text_len=C["dit"]["text_len"], pad_id=0, eos_id=1, unk_id=2),
        weights=dict(t5="t5.safetensors", dit="dit.safetensors", vae="vae.safetensors", dtype="F16"),
    )
    if C["stage"]:   # the next stage checks that it starts from this one
        cfg["training"] = dict(stage=C["stage"], stages=len(STAGES),
                               note="written by make train-tiny STAGE=%d (tools/train/train_tiny.py)" % C["stage"])
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "model.lua"), "w") as f:
        f.write("-- zoe-tiny: a Wan2.1-style model (umT5-style encoder, DiT, causal 3-D VAE) in miniature.\n"
                "-- Read as data by zoe.models (no io, os or require); the parts' configs are in config.json.\n"
                'return {family = "wan", name = "zoe-tiny", config = "config.json"}\n')
    log(f"export: wrote {out}")


def stage_from_model(work, out):
    """Later stages start from the model folder the stage before wrote: its tokenizer, VAE,
    latent normalization and configuration; the DiT and T5 start from its weights."""
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    have = cfg.get("training", {}).get("stage")
    if have != C["stage"] - 1:
        raise SystemExit(f"train-tiny: stage {C['stage']} starts from stage {C['stage'] - 1}'s result, but {out} "
                         f"holds {'stage %s' % have if have else 'no staged result'}; run STAGE={C['stage'] - 1} first")
    os.makedirs(os.path.join(work, "tok"), exist_ok=True)
    shutil.copyfile(os.path.join(out, "tokenizer.json"), os.path.join(work, "tok", "tokenizer.json"))
    torch.save({k: v.float() for k, v in st.load(os.path.join(out, "vae.safetensors")).items()},
               os.path.join(work, "vae.pt"))
    for k in ("t5", "dit", "vae"):
        C[k] = cfg[k]
    C["latent_norm"] = [cfg["latent"]["mean"], cfg["latent"]["std"]]
    C["init_from"] = out
    log(f"from_model: {out} (stage {have})")


class Clock:
    """Wall and CPU time (all threads of this process) and the machine's load, per stage: the
    machine is shared, so wall time alone says little."""

    def __init__(self):
        self.t0, self.c0, self.loads = time.time(), time.process_time(), []

    def sample(self):
        self.loads.append(os.getloadavg()[0])

    def summary(self):
        self.sample()
        return dict(wall_s=round(time.time() - self.t0), cpu_s=round(time.process_time() - self.c0),
                    load_mean=round(float(np.mean(self.loads)), 2))


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "zoe-tiny"))
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--world", default=os.path.join(ROOT, "models", "zoe-tiny", "world.json"))
    ap.add_argument("--stage", type=int, help="one stage of the recipe (STAGES), from the result of the one before")
    ap.add_argument("--stages", help="steps to run, e.g. tok,data,vae,encode,dit,export (default: the stage's)")
    ap.add_argument("--set", action="append", default=[], help="override a config value, e.g. dit_steps=100")
    ap.add_argument("--list-stages", action="store_true", help="print the stage numbers")
    a = ap.parse_args()
    if a.list_stages:
        print(" ".join(str(k) for k in sorted(STAGES)))
        return
    if a.stage is None and a.stages is None:
        ap.error("give --stage N (1.." + str(len(STAGES)) + ") or --stages")
    work = a.work
    steps = []
    if a.stage is not None:
        if a.stage not in STAGES:
            ap.error(f"no stage {a.stage}: the recipe has stages 1..{len(STAGES)}")
        C.update(STAGES[a.stage]["set"], stage=a.stage)
        steps = STAGES[a.stage]["steps"]
        work = os.path.join(a.work, f"stage{a.stage}")
    if a.stages:
        steps = a.stages.split(",")
    for kv in a.set:
        k, v = kv.split("=", 1)
        C[k] = json.loads(v)
    os.makedirs(work, exist_ok=True)
    LOG = os.path.join(work, "train.log")
    world = World(a.world)
    clock = Clock()
    if "tok" in steps:
        stage_tok(work)
    if "from_model" in steps:
        stage_from_model(work, a.out)
    tok_path = os.path.join(work, "tok", "tokenizer.json")
    C["t5"]["vocab"] = len(Tokenizer(tok_path).vocab)
    C["dit"]["in_dim"] = 2 * C["vae"]["z_dim"] + 4
    C["dit"]["out_dim"] = C["vae"]["z_dim"]
    C["dit"]["text_dim"] = C["t5"]["dim"]
    log("config " + json.dumps(C))
    times = {}
    for name in ("data", "vae", "encode", "dit"):
        if name in steps:
            c = Clock()
            {"data": lambda: stage_data(work, world), "vae": lambda: stage_vae(work),
             "encode": lambda: stage_encode(work), "dit": lambda: stage_dit(work, world)}[name]()
            times[name] = c.summary()
            log(f"{name}: {json.dumps(times[name])}")
    if "export" in steps:
        stage_export(work, a.out, a.world)
    times["total"] = clock.summary()
    log(f"total: {json.dumps(times['total'])} ({times['total']['wall_s'] / 60:.1f} min wall)")
    with open(os.path.join(work, "times.json"), "w") as f:
        json.dump(times, f, indent=1)


if __name__ == "__main__":
    main()
