"""LTX-Video 2B's transformer and VAE in PyTorch (1.13, no diffusers), written from the
porting facts (../shared/fixtures/ltx-tiny/README.md, ../shared/reference/wan-cogvideox-ltx-facts.md
section 3) with diffusers' module trees, so that state_dict() names and shapes are those of
LTXVideoTransformer3DModel and AutoencoderKLLTXVideo. The PyTorch side of make bench-ltx;
tools/ltx_check_fixtures.py proves it against the fixtures.

  Transformer(cfg)   forward(x [B, L, C], t [B], ctx [B, T, 4096], mask [B, T], grid, rope_scale)
  VAE(cfg)           decode(z [B, 128, F, h, w], t [B] or None), encode(video) -> mean
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def rms(x, eps):
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return rms(x, self.eps) * self.weight


def timestep_features(t, dim=256):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


class TimestepEmbedder(nn.Module):
    """diffusers' TimestepEmbedding under '.timestep_embedder': Linear, SiLU, Linear."""

    def __init__(self, out):
        super().__init__()
        self.timestep_embedder = nn.Module()
        self.timestep_embedder.linear_1 = nn.Linear(256, out)
        self.timestep_embedder.linear_2 = nn.Linear(out, out)

    def forward(self, t):
        e = self.timestep_embedder.linear_1(timestep_features(t))
        return self.timestep_embedder.linear_2(F.silu(e))


# ----------------------------------------------------------------------------------------------
# transformer
# ----------------------------------------------------------------------------------------------

def rope_table(dim, grid, scale):
    """cos, sin [L, dim] as LTXVideoRotaryPosEmbed computes them (float32)."""
    f, h, w = grid
    coords = torch.stack(torch.meshgrid(torch.arange(f, dtype=torch.float32), torch.arange(h, dtype=torch.float32),
                                        torch.arange(w, dtype=torch.float32), indexing="ij"), 0)
    coords[0] = coords[0] * scale[0] * 1 / 20
    coords[1] = coords[1] * scale[1] * 1 / 2048
    coords[2] = coords[2] * scale[2] * 1 / 2048
    coords = coords.flatten(1).t()  # [L, 3]
    freqs = 10000.0 ** torch.linspace(0, 1, dim // 6, dtype=torch.float32) * math.pi / 2
    ang = (freqs[None, :, None] * (coords[:, None, :] * 2 - 1)).flatten(1)  # [L, (j, axis)]
    cos, sin = ang.cos().repeat_interleave(2, -1), ang.sin().repeat_interleave(2, -1)
    pad = dim % 6
    if pad:
        cos = torch.cat([torch.ones(cos.shape[0], pad), cos], -1)
        sin = torch.cat([torch.zeros(sin.shape[0], pad), sin], -1)
    return cos, sin


def apply_rope(x, cos, sin):
    x2 = x.unflatten(-1, (-1, 2))
    rot = torch.stack([-x2[..., 1], x2[..., 0]], -1).flatten(-2)
    return (x.float() * cos + rot.float() * sin).to(x.dtype)


def attention(q, k, v, heads, mask=None, chunk=8):
    """q [B, Lq, D], k/v [B, Lk, D] -> [B, Lq, D]; heads in chunks (the logits are Lq x Lk)."""
    b, lq, d = q.shape
    lk = k.shape[1]
    dh = d // heads
    q = q.view(b, lq, heads, dh).transpose(1, 2)
    k = k.view(b, lk, heads, dh).transpose(1, 2)
    v = v.view(b, lk, heads, dh).transpose(1, 2)
    out = torch.empty_like(q)
    for h0 in range(0, heads, chunk):
        a = torch.matmul(q[:, h0:h0 + chunk], k[:, h0:h0 + chunk].transpose(-1, -2)) * dh ** -0.5
        if mask is not None:
            a = a + mask[:, None, None, :].to(a.dtype)
        out[:, h0:h0 + chunk] = torch.matmul(a.softmax(-1), v[:, h0:h0 + chunk])
    return out.transpose(1, 2).reshape(b, lq, d)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm_q, self.norm_k = RMSNorm(dim, 1e-5), RMSNorm(dim, 1e-5)
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, ctx=None, rope=None, mask=None):
        ctx = x if ctx is None else ctx
        q, k, v = self.norm_q(self.to_q(x)), self.norm_k(self.to_k(ctx)), self.to_v(ctx)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return self.to_out[0](attention(q, k, v, self.heads, mask))


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        proj = nn.Module()
        proj.proj = nn.Linear(dim, 4 * dim)
        self.net = nn.ModuleList([proj, nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](gelu_tanh(self.net[0].proj(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.eps = eps
        self.attn1, self.attn2, self.ff = Attention(dim, heads), Attention(dim, heads), FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(6, dim))

    def forward(self, x, temb, ctx, mask, rope):
        b = x.shape[0]
        ada = self.scale_shift_table[None, None] + temb.view(b, 1, 6, -1)
        sh1, sc1, g1, sh2, sc2, g2 = ada.unbind(2)
        x = x + self.attn1(rms(x, self.eps) * (1 + sc1) + sh1, rope=rope) * g1
        x = x + self.attn2(x, ctx, mask=mask)
        return x + self.ff(rms(x, self.eps) * (1 + sc2) + sh2) * g2


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        self.dim, self.eps = d, cfg.get("norm_eps", 1e-6)
        self.proj_in = nn.Linear(cfg["in_channels"], d)
        self.time_embed = nn.Module()
        self.time_embed.emb = TimestepEmbedder(d)
        self.time_embed.linear = nn.Linear(d, 6 * d)
        cap = nn.Module()
        cap.linear_1, cap.linear_2 = nn.Linear(cfg["caption_channels"], d), nn.Linear(d, d)
        self.caption_projection = cap
        self.transformer_blocks = nn.ModuleList(
            [Block(d, cfg["num_attention_heads"], self.eps) for _ in range(cfg["num_layers"])])
        self.scale_shift_table = nn.Parameter(torch.zeros(2, d))
        self.proj_out = nn.Linear(d, cfg["out_channels"])

    def forward(self, x, t, ctx, mask, grid, rope_scale):
        rope = rope_table(self.dim, grid, rope_scale)
        bias = (1 - mask.float()) * -10000.0
        x = self.proj_in(x)
        emb = self.time_embed.emb(t)
        temb = self.time_embed.linear(F.silu(emb))
        ctx = self.caption_projection.linear_2(gelu_tanh(self.caption_projection.linear_1(ctx)))
        for blk in self.transformer_blocks:
            x = blk(x, temb, ctx, bias, rope)
        shift, scale = (self.scale_shift_table[None] + emb[:, None]).unbind(1)
        x = F.layer_norm(x, (self.dim,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
        return self.proj_out(x)


# ----------------------------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------------------------

class CausalConv3d(nn.Module):
    """LTXVideoCausalConv3d: time padding by repeating the first (and, not causal, the last) frame."""

    def __init__(self, cin, cout, k=3, stride=1, causal=True):
        super().__init__()
        self.k, self.causal = k, causal
        self.conv = nn.Conv3d(cin, cout, k, stride=stride, padding=(0, k // 2, k // 2))

    def forward(self, x):
        if self.k > 1:
            if self.causal:
                x = torch.cat([x[:, :, :1]] * (self.k - 1) + [x], 2)
            else:
                p = (self.k - 1) // 2
                x = torch.cat([x[:, :, :1]] * p + [x] + [x[:, :, -1:]] * p, 2)
        return self.conv(x)


def channel_rms(x, eps=1e-8):
    return x * torch.rsqrt(x.float().pow(2).mean(1, keepdim=True) + eps).to(x.dtype)


class Resnet(nn.Module):
    def __init__(self, cin, cout, causal, noise=False, timestep=False, eps=1e-6):
        super().__init__()
        self.conv1, self.conv2 = CausalConv3d(cin, cout, causal=causal), CausalConv3d(cout, cout, causal=causal)
        if cin != cout:
            self.norm3 = nn.LayerNorm(cin, eps=eps)
            self.conv_shortcut = CausalConv3d(cin, cout, k=1, causal=causal)
        if noise:
            self.per_channel_scale1 = nn.Parameter(torch.zeros(cin, 1, 1))
            self.per_channel_scale2 = nn.Parameter(torch.zeros(cin, 1, 1))
        if timestep:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, cin))

    def forward(self, x, temb=None):
        h = channel_rms(x)
        if hasattr(self, "scale_shift_table"):
            m = temb.unflatten(1, (4, -1)) + self.scale_shift_table[None, ..., None, None, None]
            sh1, sc1, sh2, sc2 = m.unbind(1)
            h = h * (1 + sc1) + sh1
        h = self.conv1(F.silu(h))
        if hasattr(self, "per_channel_scale1"):
            h = h + (torch.randn(h.shape[-2:], dtype=h.dtype) * self.per_channel_scale1)[None, :, None]
        h = channel_rms(h)
        if hasattr(self, "scale_shift_table"):
            h = h * (1 + sc2) + sh2
        h = self.conv2(F.silu(h))
        if hasattr(self, "per_channel_scale2"):
            h = h + (torch.randn(h.shape[-2:], dtype=h.dtype) * self.per_channel_scale2)[None, :, None]
        if hasattr(self, "norm3"):
            x = self.conv_shortcut(self.norm3(x.movedim(1, -1)).movedim(-1, 1))
        return h + x


def depth_to_space(x):
    b, c, f, h, w = x.shape
    return x.reshape(b, c // 8, 2, 2, 2, f, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c // 8, 2 * f, 2 * h, 2 * w)


class Upsampler(nn.Module):
    def __init__(self, cin, residual, factor, causal):
        super().__init__()
        self.residual, self.factor = residual, factor
        self.conv = CausalConv3d(cin, cin * 8 // factor, causal=causal)

    def forward(self, x):
        h = depth_to_space(self.conv(x))[:, :, 1:]
        if self.residual:
            r = depth_to_space(x).repeat(1, 8 // self.factor, 1, 1, 1)[:, :, 1:]
            h = h + r
        return h


class Downsampler(nn.Module):
    """0.9.5's LTXVideoDownsampler3d: space-to-depth of a conv plus the input's, averaged."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.group = cin * stride[0] * stride[1] * stride[2] // cout
        self.conv = CausalConv3d(cin, cout // (stride[0] * stride[1] * stride[2]))

    def s2d(self, x):
        b, c, f, h, w = x.shape
        s = self.stride
        x = x.reshape(b, c, f // s[0], s[0], h // s[1], s[1], w // s[2], s[2])
        return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * s[0] * s[1] * s[2], f // s[0], h // s[1], w // s[2])

    def forward(self, x):
        x = torch.cat([x[:, :, :self.stride[0] - 1], x], 2)
        r = self.s2d(x)
        r = r.unflatten(1, (-1, self.group)).mean(2)
        return self.s2d(self.conv(x)) + r


class Group(nn.Module):
    """A down/mid/up block of diffusers' AutoencoderKLLTXVideo."""


STRIDES = {"spatial": (1, 2, 2), "temporal": (2, 1, 1), "spatiotemporal": (2, 2, 2)}


class VAE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        ch, lat = c["block_out_channels"], c["latent_channels"]
        is095 = c["down_block_types"][-1] == "LTXVideo095DownBlock3D"
        enc = nn.Module()
        enc.conv_in = CausalConv3d(3 * 16, ch[0])
        enc.down_blocks = nn.ModuleList()
        n = len(ch) - (1 if is095 else 0)
        out = ch[0]
        for i in range(n):
            inp = out
            out = ch[i + 1] if is095 or i + 1 < n else ch[i]
            g = Group()
            g.resnets = nn.ModuleList([Resnet(inp, inp, True) for _ in range(c["layers_per_block"][i])])
            if c["spatio_temporal_scaling"][i]:
                if is095:
                    g.downsamplers = nn.ModuleList([Downsampler(inp, out, STRIDES[c["downsample_type"][i]])])
                else:
                    g.downsamplers = nn.ModuleList([CausalConv3d(inp, inp, stride=2)])
            if not is095 and inp != out:
                g.conv_out = Resnet(inp, out, True)
            enc.down_blocks.append(g)
        enc.mid_block = Group()
        enc.mid_block.resnets = nn.ModuleList([Resnet(out, out, True) for _ in range(c["layers_per_block"][-1])])
        enc.conv_out = CausalConv3d(out, lat + 1)
        self.encoder = enc
        dch = list(reversed(c["decoder_block_out_channels"]))
        layers = list(reversed(c["decoder_layers_per_block"]))
        noise = list(reversed(c["decoder_inject_noise"]))
        scaling = list(reversed(c["decoder_spatio_temporal_scaling"]))
        resid, factor = list(reversed(c["upsample_residual"])), list(reversed(c["upsample_factor"]))
        ts = c["timestep_conditioning"]
        dec = nn.Module()
        dec.conv_in = CausalConv3d(lat, dch[0], causal=False)
        dec.mid_block = Group()
        if ts:
            dec.mid_block.time_embedder = TimestepEmbedder(4 * dch[0])
        dec.mid_block.resnets = nn.ModuleList([Resnet(dch[0], dch[0], False, noise[0], ts) for _ in range(layers[0])])
        dec.up_blocks = nn.ModuleList()
        out = dch[0]
        for i in range(len(dch)):
            inp = out // factor[i]
            out = dch[i] // factor[i]
            g = Group()
            if inp != out:
                g.conv_in = Resnet(inp, out, False, noise[i + 1], ts)
            if ts:
                g.time_embedder = TimestepEmbedder(4 * out)
            if scaling[i]:
                g.upsamplers = nn.ModuleList([Upsampler(out * factor[i], resid[i], factor[i], False)])
            g.resnets = nn.ModuleList([Resnet(out, out, False, noise[i + 1], ts) for _ in range(layers[i + 1])])
            dec.up_blocks.append(g)
        dec.conv_out = CausalConv3d(out, 48, causal=False)
        if ts:
            dec.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            dec.time_embedder = TimestepEmbedder(2 * out)
            dec.scale_shift_table = nn.Parameter(torch.zeros(2, out))
        self.decoder = dec
        self.register_buffer("latents_mean", torch.zeros(lat))
        self.register_buffer("latents_std", torch.ones(lat))

    def decode(self, z, t=None):
        d = self.decoder
        x = d.conv_in(z)
        if t is not None:
            t = t * d.timestep_scale_multiplier
        b = z.shape[0]
        te = d.mid_block.time_embedder(t).view(b, -1, 1, 1, 1) if t is not None else None
        for r in d.mid_block.resnets:
            x = r(x, te)
        for g in d.up_blocks:
            if hasattr(g, "conv_in"):
                x = g.conv_in(x)
            te = g.time_embedder(t).view(b, -1, 1, 1, 1) if t is not None else None
            if hasattr(g, "upsamplers"):
                x = g.upsamplers[0](x)
            for r in g.resnets:
                x = r(x, te)
        x = channel_rms(x)
        if t is not None:
            sh, sc = (d.time_embedder(t).unflatten(1, (2, -1)) + d.scale_shift_table[None]).unbind(1)
            x = x * (1 + sc[..., None, None, None]) + sh[..., None, None, None]
        x = d.conv_out(F.silu(x))
        _, _, f, h, w = x.shape
        return x.reshape(b, 3, 4, 4, f, h, w).permute(0, 1, 4, 5, 3, 6, 2).reshape(b, 3, f, 4 * h, 4 * w)

    def encode(self, video):
        e = self.encoder
        b, _, f, h, w = video.shape
        x = video.reshape(b, 3, f, h // 4, 4, w // 4, 4).permute(0, 1, 6, 4, 2, 3, 5).reshape(b, 48, f, h // 4, w // 4)
        x = e.conv_in(x)
        for g in e.down_blocks:
            for r in g.resnets:
                x = r(x)
            if hasattr(g, "downsamplers"):
                x = g.downsamplers[0](x)
            if hasattr(g, "conv_out"):
                x = g.conv_out(x)
        for r in e.mid_block.resnets:
            x = r(x)
        x = e.conv_out(F.silu(channel_rms(x)))
        return x[:, :self.c["latent_channels"]]
