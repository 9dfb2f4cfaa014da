#!/usr/bin/python3
"""CogVideoX in PyTorch: a mirror of diffusers' CogVideoXTransformer3DModel and
AutoencoderKLCogVideoX (and transformers' T5 v1.1 encoder), written from the porting facts and the diffusers source as read for
zoe's port, taking diffusers' weight names. Used for:

  * the PyTorch side of make bench-cogvideox (tools/bench_cogvideox_torch.py), in f32 and bf16
    autocast;
  * references for what ../shared/fixtures/cogvideox-tiny does not cover (the 5B-I2V learned
    position table, 1.5-5B text-to-video, the VAE's spatial tiling): --fixtures writes them to
    tests/fixtures/cogvideox/.

--check first compares this mirror with every output of ../shared/fixtures/cogvideox-tiny
(diffusers' own runs), so what it makes for the rest comes from code proven on the rest.

    /usr/bin/python3 tools/cogvideox_torch.py --check
    /usr/bin/python3 tools/cogvideox_torch.py --fixtures
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)
import st  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "fixtures", "cogvideox-tiny")


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def linear(x, w, name, bias=True):
    return F.linear(x, w[name + ".weight"], w.get(name + ".bias") if bias else None)


# ----------------------------------------------------------------------------------------------
# transformer
# ----------------------------------------------------------------------------------------------

def timestep_embedding(t, dim):
    """diffusers' Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


def sincos_1d(d, pos):
    omega = torch.arange(d // 2, dtype=torch.float64) / (d / 2.0)
    omega = 1.0 / 10000 ** omega
    out = torch.outer(pos.reshape(-1).double(), omega)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_3d(dim, f, hp, wp, s_scale, t_scale):
    """get_3d_sincos_pos_embed -> [f * hp * wp, dim] f32: [temporal | w coordinate | h coordinate]."""
    ds, dt = 3 * dim // 4, dim // 4
    gh = torch.arange(hp, dtype=torch.float32) / s_scale
    gw = torch.arange(wp, dtype=torch.float32) / s_scale
    grid = torch.stack(torch.meshgrid(gw, gh, indexing="xy"), dim=0)  # [2, hp, wp]: w first
    spatial = torch.cat([sincos_1d(ds // 2, grid[0]), sincos_1d(ds // 2, grid[1])], dim=1)  # [hp*wp, ds]
    temporal = sincos_1d(dt, torch.arange(f, dtype=torch.float32) / t_scale)  # [f, dt]
    out = torch.cat([temporal[:, None, :].expand(f, hp * wp, dt), spatial[None].expand(f, hp * wp, ds)], dim=-1)
    return out.reshape(f * hp * wp, dim).float()


def rope_1d(d, pos):
    freqs = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    a = torch.outer(pos, freqs)
    return a.cos().repeat_interleave(2, dim=1), a.sin().repeat_interleave(2, dim=1)


def crop_region(gh, gw, base_w, base_h):
    th, tw = base_h, base_w
    if gh / gw > th / tw:
        rh, rw = th, int(round(th / gh * gw))
    else:
        rw, rh = tw, int(round(tw / gw * gh))
    top, left = int(round((th - rh) / 2.0)), int(round((tw - rw) / 2.0))
    return (top, left), (top + rh, left + rw)


def rope_3d(cfg, frames, height, width):
    """CogVideoXPipeline._prepare_rotary_positional_embeddings: cos, sin [L, head_dim]."""
    dh, p, pt = cfg["attention_head_dim"], cfg["patch_size"], cfg.get("patch_size_t")
    gh, gw = height // (8 * p), width // (8 * p)
    if pt is None:
        (t0, l0), (t1, l1) = crop_region(gh, gw, cfg["sample_width"] // p, cfg["sample_height"] // p)
        hpos = torch.linspace(t0, t1 * (gh - 1) / gh, gh, dtype=torch.float32)
        wpos = torch.linspace(l0, l1 * (gw - 1) / gw, gw, dtype=torch.float32)
        tpos = torch.linspace(0, frames * (frames - 1) / frames, frames, dtype=torch.float32)
    else:
        frames = (frames + pt - 1) // pt
        tpos, hpos, wpos = (torch.arange(n, dtype=torch.float32) for n in (frames, gh, gw))
    dt, dsp = dh // 4, dh // 8 * 3
    parts = [rope_1d(dt, tpos), rope_1d(dsp, hpos), rope_1d(dsp, wpos)]

    def combine(i):
        t, h, w = (pp[i] for pp in parts)
        return torch.cat([t[:, None, None].expand(-1, gh, gw, -1), h[None, :, None].expand(frames, -1, gw, -1),
                          w[None, None].expand(frames, gh, -1, -1)], dim=-1).reshape(frames * gh * gw, -1)
    return combine(0), combine(1)


def apply_rope(x, cos, sin):
    """x [B, H, L, D], pairs (2i, 2i+1) rotated."""
    re, im = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rot = torch.stack([-im, re], dim=-1).flatten(3)
    return (x.float() * cos + rot.float() * sin).to(x.dtype)


def attention(q, k, v):
    """[B, H, L, D]: softmax(q k^T / sqrt(D)) v (torch 1.13 has no scaled_dot_product_attention)."""
    a = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    return torch.matmul(a.softmax(dim=-1), v)


def block(w, pre, cfg, video, text, es, rope):
    D = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    H = cfg["num_attention_heads"]
    eps = cfg.get("norm_eps", 1e-5)
    nt = text.shape[1]

    def norm(name):
        m = linear(es, w, pre + name + ".linear").chunk(6, dim=1)
        nw, nb = w[pre + name + ".norm.weight"], w[pre + name + ".norm.bias"]
        nv = F.layer_norm(video.float(), (D,), nw, nb, eps) * (1 + m[1][:, None]) + m[0][:, None]
        ntx = F.layer_norm(text.float(), (D,), nw, nb, eps) * (1 + m[4][:, None]) + m[3][:, None]
        return torch.cat([ntx, nv], dim=1), m[2][:, None], m[5][:, None]

    h, gate, egate = norm("norm1")
    b, l, _ = h.shape

    def heads(name):
        return linear(h, w, pre + "attn1." + name).view(b, l, H, -1).transpose(1, 2)
    q, k, v = heads("to_q"), heads("to_k"), heads("to_v")
    dh = q.shape[-1]
    # norms in f32 (under bf16 autocast the projections come out bf16; newer torch autocasts
    # layer_norm to f32 itself, 1.13 on the CPU refuses the mix)
    q = F.layer_norm(q.float(), (dh,), w[pre + "attn1.norm_q.weight"], w[pre + "attn1.norm_q.bias"], 1e-6)
    k = F.layer_norm(k.float(), (dh,), w[pre + "attn1.norm_k.weight"], w[pre + "attn1.norm_k.bias"], 1e-6)
    if rope is not None:
        q = torch.cat([q[:, :, :nt], apply_rope(q[:, :, nt:], *rope)], dim=2)
        k = torch.cat([k[:, :, :nt], apply_rope(k[:, :, nt:], *rope)], dim=2)
    a = attention(q, k, v).transpose(1, 2).reshape(b, l, -1)
    a = linear(a, w, pre + "attn1.to_out.0")
    video = video + gate * a[:, nt:]
    text = text + egate * a[:, :nt]
    h, gate, egate = norm("norm2")
    ff = linear(gelu_tanh(linear(h, w, pre + "ff.net.0.proj")), w, pre + "ff.net.2")
    return video + gate * ff[:, nt:], text + egate * ff[:, :nt]


def transformer(w, cfg, x, t, text, rope=None, ofs=None, on_block=None):
    """x [B, F, C, H, W], t [B], text [B, T, Dt] -> [B, F, C_out, H, W]."""
    B, Fr, C, Hh, Ww = x.shape
    D = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    p, pt = cfg["patch_size"], cfg.get("patch_size_t") or 1
    cout = cfg.get("out_channels", 16)
    emb = linear(F.silu(linear(timestep_embedding(t, D), w, "time_embedding.linear_1")), w, "time_embedding.linear_2")
    if cfg.get("ofs_embed_dim"):
        o = timestep_embedding(ofs if ofs is not None else torch.tensor([2.0]), cfg["ofs_embed_dim"])
        emb = emb + linear(F.silu(linear(o, w, "ofs_embedding.linear_1")), w, "ofs_embedding.linear_2")
    te = linear(text, w, "patch_embed.text_proj")
    tokens = x.reshape(B, Fr // pt, pt, C, Hh // p, p, Ww // p, p).permute(0, 1, 4, 6, 3, 2, 5, 7)
    tokens = tokens.reshape(B, (Fr // pt) * (Hh // p) * (Ww // p), C * pt * p * p)
    ve = F.linear(tokens, w["patch_embed.proj.weight"].reshape(D, -1), w.get("patch_embed.proj.bias"))
    hs = torch.cat([te, ve], dim=1)
    if cfg.get("use_learned_positional_embeddings"):
        hs = hs + w["patch_embed.pos_embedding"]
    elif not cfg.get("use_rotary_positional_embeddings"):
        tbl = sincos_3d(D, Fr // pt, Hh // p, Ww // p, cfg.get("spatial_interpolation_scale", 1.875),
                        cfg.get("temporal_interpolation_scale", 1.0))
        hs = torch.cat([hs[:, :text.shape[1]], hs[:, text.shape[1]:] + tbl], dim=1)
    if cfg.get("use_rotary_positional_embeddings") and rope is None:
        rope = rope_3d(cfg, Fr, Hh * 8, Ww * 8)
    nt = text.shape[1]
    text_h, video = hs[:, :nt], hs[:, nt:]
    es = F.silu(emb)
    for i in range(cfg["num_layers"]):
        video, text_h = block(w, "transformer_blocks.%d." % i, cfg, video, text_h, es, rope)
        if on_block:
            on_block(i, video, text_h)
    eps = cfg.get("norm_eps", 1e-5)
    video = F.layer_norm(video.float(), (D,), w["norm_final.weight"], w["norm_final.bias"], eps)
    shift, scale = linear(es, w, "norm_out.linear").chunk(2, dim=1)
    video = F.layer_norm(video, (D,), w["norm_out.norm.weight"], w["norm_out.norm.bias"], eps) * (1 + scale[:, None]) \
        + shift[:, None]
    y = linear(video, w, "proj_out")
    y = y.reshape(B, Fr // pt, Hh // p, Ww // p, cout, pt, p, p).permute(0, 1, 5, 4, 2, 6, 3, 7)
    return y.reshape(B, Fr, cout, Hh, Ww)


# ----------------------------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------------------------

class VAE:
    """AutoencoderKLCogVideoX's decode/encode with the causal caches of _decode/_encode, and
    tiled_decode. w: its state dict; cfg: its config.json."""

    def __init__(self, w, cfg):
        self.w, self.cfg = w, cfg
        self.ch = cfg.get("block_out_channels", [128, 256, 256, 512])
        self.layers = cfg.get("layers_per_block", 3)
        self.groups = cfg.get("norm_num_groups", 32)
        self.eps = cfg.get("norm_eps", 1e-6)
        self.latent = cfg.get("latent_channels", 16)
        self.levels = int(math.log2(cfg.get("temporal_compression_ratio", 4)))
        self.tile_h, self.tile_w = cfg.get("sample_height", 480) // 2, cfg.get("sample_width", 720) // 2

    def cconv(self, cache, key, x, pre):
        wt, b = self.w[pre + ".weight"], self.w[pre + ".bias"]
        kt, kh = wt.shape[2], wt.shape[3]
        if kt > 1:
            prev = cache.get(key)
            x = torch.cat([prev if prev is not None else x[:, :, :1].repeat(1, 1, kt - 1, 1, 1), x], dim=2)
            cache[key] = x[:, :, -(kt - 1):].clone()
        return F.conv3d(x, wt, b, padding=(0, (kh - 1) // 2, (kh - 1) // 2))

    def spatial_norm(self, pre, f, zq):
        if f.shape[2] > 1 and f.shape[2] % 2 == 1:
            z = torch.cat([F.interpolate(zq[:, :, :1], size=(1,) + tuple(f.shape[-2:])),
                           F.interpolate(zq[:, :, 1:], size=(f.shape[2] - 1,) + tuple(f.shape[-2:]))], dim=2)
        else:
            z = F.interpolate(zq, size=f.shape[-3:])
        y = F.conv3d(z, self.w[pre + "conv_y.conv.weight"], self.w[pre + "conv_y.conv.bias"])
        b = F.conv3d(z, self.w[pre + "conv_b.conv.weight"], self.w[pre + "conv_b.conv.bias"])
        g = F.group_norm(f, self.groups, self.w[pre + "norm_layer.weight"], self.w[pre + "norm_layer.bias"], 1e-6)
        return g * y + b

    def resnet(self, cache, pre, x, zq=None):
        def norm(name, v):
            if zq is not None:
                return self.spatial_norm(pre + name + ".", v, zq)
            return F.group_norm(v, self.groups, self.w[pre + name + ".weight"], self.w[pre + name + ".bias"], self.eps)
        h = self.cconv(cache, pre + "conv1", F.silu(norm("norm1", x)), pre + "conv1.conv")
        h = self.cconv(cache, pre + "conv2", F.silu(norm("norm2", h)), pre + "conv2.conv")
        if pre + "conv_shortcut.weight" in self.w:
            x = F.conv3d(x, self.w[pre + "conv_shortcut.weight"], self.w[pre + "conv_shortcut.bias"])
        return h + x

    def frame_conv2d(self, x, pre, stride=1, padding=1):
        b, c, t, h, w = x.shape
        y = F.conv2d(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), self.w[pre + ".weight"], self.w[pre + ".bias"],
                     stride=stride, padding=padding)
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def decode_batch(self, cache, z):
        x = self.cconv(cache, "conv_in", z, "decoder.conv_in.conv")
        for i in range(2):
            x = self.resnet(cache, "decoder.mid_block.resnets.%d." % i, x, z)
        n = len(self.ch)
        for i in range(n):
            pre = "decoder.up_blocks.%d." % i
            for r in range(self.layers + 1):
                x = self.resnet(cache, pre + "resnets.%d." % r, x, z)
            if i < n - 1:
                t = x.shape[2]
                if i < self.levels and t > 1 and t % 2 == 1:
                    x = torch.cat([F.interpolate(x[:, :, 0], scale_factor=2.0)[:, :, None],
                                   F.interpolate(x[:, :, 1:], scale_factor=2.0)], dim=2)
                elif i < self.levels and t > 1:
                    x = F.interpolate(x, scale_factor=2.0)
                else:
                    b, c, t, h, w = x.shape
                    x = F.interpolate(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), scale_factor=2.0)
                    x = x.reshape(b, t, c, 2 * h, 2 * w).permute(0, 2, 1, 3, 4)
                x = self.frame_conv2d(x, pre + "upsamplers.0.conv")
        x = F.silu(self.spatial_norm("decoder.norm_out.", x, z))
        return self.cconv(cache, "conv_out", x, "decoder.conv_out.conv")

    @staticmethod
    def batches(frames, size):
        n, rem = max(frames // size, 1), frames % size
        return [(size * i + (0 if i == 0 else rem), size * (i + 1) + rem) for i in range(n)]

    def decode_frames(self, z):
        cache = {}
        return torch.cat([self.decode_batch(cache, z[:, :, s:e]) for s, e in self.batches(z.shape[2], 2)], dim=2)

    def decode(self, z, tiled=False):
        return self.decode_tiled(z) if tiled else self.decode_frames(z)

    def decode_tiled(self, z):
        up = 2 ** (len(self.ch) - 1)
        lh, lw = int(self.tile_h / up), int(self.tile_w / up)
        step_h, step_w = int(lh * (1 - 1 / 6)), int(lw * (1 - 1 / 5))
        bh, bw = int(self.tile_h * (1 / 6)), int(self.tile_w * (1 / 5))
        keep_h, keep_w = self.tile_h - bh, self.tile_w - bw
        rows = [[self.decode_frames(z[:, :, :, i:i + lh, j:j + lw]) for j in range(0, z.shape[4], step_w)]
                for i in range(0, z.shape[3], step_h)]

        def blend(a, b, dim, extent):
            extent = min(a.shape[dim], b.shape[dim], extent)
            for y in range(extent):
                bs = b.narrow(dim, y, 1)
                bs.copy_(a.narrow(dim, a.shape[dim] - extent + y, 1) * (1 - y / extent) + bs * (y / extent))
            return b
        out = []
        for r, row in enumerate(rows):
            parts = []
            for c, tile in enumerate(row):
                if r > 0:
                    tile = blend(rows[r - 1][c], tile, 3, bh)
                if c > 0:
                    tile = blend(row[c - 1], tile, 4, bw)
                parts.append(tile[:, :, :, :keep_h, :keep_w])
            out.append(torch.cat(parts, dim=4))
        return torch.cat(out, dim=3)

    def encode_batch(self, cache, x):
        x = self.cconv(cache, "conv_in", x, "encoder.conv_in.conv")
        n = len(self.ch)
        for i in range(n):
            pre = "encoder.down_blocks.%d." % i
            for r in range(self.layers):
                x = self.resnet(cache, pre + "resnets.%d." % r, x)
            if i < n - 1:
                t = x.shape[2]
                if i < self.levels and t > 1:
                    odd = t % 2
                    rest = x[:, :, odd:]
                    pooled = (rest[:, :, 0::2] + rest[:, :, 1::2]) / 2
                    x = torch.cat([x[:, :, :1], pooled], dim=2) if odd else pooled
                x = self.frame_conv2d(F.pad(x, (0, 1, 0, 1)), pre + "downsamplers.0.conv", stride=2, padding=0)
        for i in range(2):
            x = self.resnet(cache, "encoder.mid_block.resnets.%d." % i, x)
        x = F.silu(F.group_norm(x, self.groups, self.w["encoder.norm_out.weight"], self.w["encoder.norm_out.bias"], 1e-6))
        return self.cconv(cache, "conv_out", x, "encoder.conv_out.conv")

    def encode(self, video):
        cache = {}
        h = torch.cat([self.encode_batch(cache, video[:, :, s:e]) for s, e in self.batches(video.shape[2], 8)], dim=2)
        return h[:, :self.latent], h[:, self.latent:].clamp(-30, 20)


# ----------------------------------------------------------------------------------------------
# T5 v1.1 encoder (transformers' T5EncoderModel), written on the state dict itself, so that a
# bf16 checkpoint runs in bf16 without a f32 copy of its 4.7 B parameters (19 GB)
# ----------------------------------------------------------------------------------------------

def t5_buckets(L, num_buckets=32, max_distance=128):
    rel = torch.arange(L)[None, :] - torch.arange(L)[:, None]
    nb = num_buckets // 2
    out = (rel > 0).long() * nb
    n = rel.abs()
    exact = nb // 2
    large = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (nb - exact)).long()
    large = large.clamp(max=nb - 1)
    return out + torch.where(n < exact, n, large)


def t5_rms(x, w, eps):
    v = x.float().pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(v + eps)
    return w * x.to(w.dtype) if w.dtype in (torch.float16, torch.bfloat16) else w * x


def t5_encoder(state, cfg, ids, mask=None):
    """ids [B, L] -> [B, L, d_model]; no 1/sqrt(d) in attention, one shared position table."""
    H, eps = cfg["num_heads"], cfg.get("layer_norm_epsilon", 1e-6)
    x = F.embedding(ids, state["shared.weight"])
    B, L, _ = x.shape
    table = state["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    bias = F.embedding(t5_buckets(L, cfg.get("relative_attention_num_buckets", 32),
                                  cfg.get("relative_attention_max_distance", 128)), table).permute(2, 0, 1)[None]
    if mask is not None:
        bias = bias + (1.0 - mask[:, None, None, :].to(bias.dtype)) * torch.finfo(bias.dtype).min
    for i in range(cfg["num_layers"]):
        a, f = "encoder.block.%d.layer.0." % i, "encoder.block.%d.layer.1." % i
        h = t5_rms(x, state[a + "layer_norm.weight"], eps)

        def heads(n):
            return F.linear(h, state[a + "SelfAttention.%s.weight" % n]).view(B, L, H, -1).transpose(1, 2)
        q, k, v = heads("q"), heads("k"), heads("v")
        scores = torch.matmul(q, k.transpose(-1, -2)) + bias
        att = torch.matmul(scores.float().softmax(-1).to(scores.dtype), v).transpose(1, 2).reshape(B, L, -1)
        x = x + F.linear(att, state[a + "SelfAttention.o.weight"])
        h = t5_rms(x, state[f + "layer_norm.weight"], eps)
        g = gelu_tanh(F.linear(h, state[f + "DenseReluDense.wi_0.weight"])) * F.linear(h, state[f + "DenseReluDense.wi_1.weight"])
        x = x + F.linear(g, state[f + "DenseReluDense.wo.weight"])
    return t5_rms(x, state["encoder.final_layer_norm.weight"], eps)


# ----------------------------------------------------------------------------------------------
# --check and --fixtures
# ----------------------------------------------------------------------------------------------

def shared(part):
    with open(os.path.join(SHARED, part, "config.json")) as f:
        cfg = json.load(f)
    return cfg, st.load(os.path.join(SHARED, part, "weights.safetensors")), st.load(os.path.join(SHARED, part, "io.safetensors"))


def relerr(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check():
    worst = 0.0

    def report(name, a, b):
        nonlocal worst
        e = relerr(a, b)
        worst = max(worst, e)
        print("%-40s %.3g" % (name, e))
    for part in ["transformer_2b", "transformer_5b", "transformer_1_5"]:
        cfg, w, io = shared(part)
        out = transformer(w, cfg, io["hidden_states"], io["timestep"], io["encoder_hidden_states"], ofs=io.get("ofs"))
        report(part + " sample", out, io["sample"])
        if "image_rotary_emb_cos" in io:
            c, s = rope_3d(cfg, io["hidden_states"].shape[1], io["hidden_states"].shape[3] * 8, io["hidden_states"].shape[4] * 8)
            report(part + " rope cos", c, io["image_rotary_emb_cos"])
            report(part + " rope sin", s, io["image_rotary_emb_sin"])
    cfg, w, io = shared("vae")
    vae = VAE(w, cfg)
    report("vae decoded", vae.decode(io["z"]), io["decoded"])
    report("vae decoded_even", vae.decode(io["z_even"]), io["decoded_even"])
    mean, logvar = vae.encode(io["video"])
    report("vae encoded_mean", mean, io["encoded_mean"])
    report("vae encoded_logvar", logvar, io["encoded_logvar"])
    cfg, w, io = shared("t5")
    report("t5 out", t5_encoder(w, cfg, io["ids"]), io["out"])
    report("t5 out_long", t5_encoder(w, cfg, io["ids_long"]), io["out_long"])
    report("t5 out_masked", t5_encoder(w, cfg, io["ids"], io["mask"]), io["out_masked"])
    report("t5 out_masked_long", t5_encoder(w, cfg, io["ids_long"], io["mask_long"]), io["out_masked_long"])
    print("worst %.3g" % worst)
    return worst < 1e-5


def fixtures():
    out = os.path.join(ROOT, "tests", "fixtures", "cogvideox")
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(19)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale
    tensors, configs = {}, {}
    # 5B-I2V: transformer_5b's blocks with 8 input channels and a learned position table
    cfg, w, io = shared("transformer_5b")
    cfg = dict(cfg, in_channels=8, use_learned_positional_embeddings=True)
    w = dict(w)
    w["patch_embed.proj.weight"] = randn(32, 8, 2, 2, scale=0.2)
    w["patch_embed.pos_embedding"] = randn(1, 7 + 18, 32, scale=0.5)
    x = randn(2, 3, 8, 4, 6)
    tensors.update({"i2v5b.patch_embed.proj.weight": w["patch_embed.proj.weight"],
                    "i2v5b.patch_embed.pos_embedding": w["patch_embed.pos_embedding"], "i2v5b.hidden_states": x,
                    "i2v5b.sample": transformer(w, cfg, x, io["timestep"], io["encoder_hidden_states"])})
    configs["i2v5b"] = {"base": "transformer_5b", "config": cfg}
    # 1.5-5B text-to-video: transformer_1_5's blocks, 4 input channels, no ofs embedding
    cfg, w, io = shared("transformer_1_5")
    cfg = dict(cfg, in_channels=4, ofs_embed_dim=None)
    w = {k: v for k, v in w.items() if not k.startswith("ofs_embedding.")}
    w["patch_embed.proj.weight"] = randn(32, 4 * 8, scale=0.2)
    x = randn(2, 4, 4, 4, 6)
    tensors.update({"t2v15.patch_embed.proj.weight": w["patch_embed.proj.weight"], "t2v15.hidden_states": x,
                    "t2v15.sample": transformer(w, cfg, x, io["timestep"], io["encoder_hidden_states"])})
    configs["t2v15"] = {"base": "transformer_1_5", "config": cfg}
    # the VAE's spatial tiling: tiles of 48x40 pixels (6x5 latent) stepping 5 and 4 latent rows
    # and columns, blending 8 pixels, over a 7x6 latent (2 x 2 tiles, the last ones partial)
    cfg, w, io = shared("vae")
    cfg = dict(cfg, sample_height=96, sample_width=80)
    vae = VAE(w, cfg)
    z = randn(1, 4, 2, 7, 6)
    tensors.update({"tiled.z": z, "tiled.decoded": vae.decode(z, tiled=True)})
    configs["tiled"] = {"base": "vae", "config": cfg}
    st.save(os.path.join(out, "variants.safetensors"), {k: v.contiguous() for k, v in tensors.items()},
            {"made_by": "tools/cogvideox_torch.py --fixtures"})
    with open(os.path.join(out, "variants.json"), "w") as f:
        json.dump(configs, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    with torch.no_grad():
        if "--check" in sys.argv:
            sys.exit(0 if check() else 1)
        if "--fixtures" in sys.argv:
            if not check():
                sys.exit("the mirror does not match ../shared; no fixtures written")
            fixtures()
