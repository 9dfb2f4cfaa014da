"""Wan2.1's three networks in PyTorch, written from the porting facts
(../shared/reference/wan-cogvideox-ltx-facts.md, sections 1.3-1.7 and 4), with the official
module trees so that state_dict() names and shapes equal the official ones:

  T5Encoder  - Wan's umT5 encoder (wan/modules/t5.py): per-layer relative position bias,
               gated GELU-tanh FFN, RMS norms, no attention scaling, padded keys masked.
  WanModel   - the DiT (wan/modules/model.py), model_type 't2v' structure. Image-to-video
               conditioning is done the Wan2.1-I2V way minus CLIP: the caller concatenates
               [noisy latent, 4-channel mask, VAE-encoded conditioning video] along channels.
  WanVAE_    - the causal 3D VAE (wan/modules/vae.py).

Two ways to run each part:
  * the official call conventions (WanModel.forward_official with lists and float64 time
    embedding / RoPE; WanVAE_.encode / decode chunk by chunk with the feature cache), which
    check_fixtures.py compares against the reference outputs;
  * fast batched paths for training (WanModel.forward with batch tensors; WanVAE_.encode_seq /
    decode_seq that run all frames at once and give the same result as the chunked code,
    see Resample.forward_seq).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CACHE_T = 2


# ----------------------------------------------------------------------------------------------
# T5 encoder (umT5 structure)
# ----------------------------------------------------------------------------------------------

def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GELU(nn.Module):
    def forward(self, x):
        return gelu_tanh(x)


class T5LayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.type_as(self.weight)  # as the official T5LayerNorm: a bf16 encoder stays bf16
        return self.weight * x


class T5Attention(nn.Module):
    def __init__(self, dim, dim_attn, num_heads, dropout=0.0):
        super().__init__()
        assert dim_attn % num_heads == 0
        self.dim = dim
        self.dim_attn = dim_attn
        self.num_heads = num_heads
        self.head_dim = dim_attn // num_heads
        self.q = nn.Linear(dim, dim_attn, bias=False)
        self.k = nn.Linear(dim, dim_attn, bias=False)
        self.v = nn.Linear(dim, dim_attn, bias=False)
        self.o = nn.Linear(dim_attn, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, context=None, mask=None, pos_bias=None):
        context = x if context is None else context
        b, n, c = x.size(0), self.num_heads, self.head_dim
        q = self.q(x).view(b, -1, n, c)
        k = self.k(context).view(b, -1, n, c)
        v = self.v(context).view(b, -1, n, c)
        attn_bias = x.new_zeros(b, n, q.size(1), k.size(1))
        if pos_bias is not None:
            attn_bias = attn_bias + pos_bias
        if mask is not None:
            mask = mask.view(b, 1, 1, -1) if mask.ndim == 2 else mask.unsqueeze(1)
            attn_bias = attn_bias.masked_fill(mask == 0, torch.finfo(x.dtype).min)
        attn = torch.einsum('binc,bjnc->bnij', q, k) + attn_bias
        attn = F.softmax(attn.float(), dim=-1).type_as(attn)
        x = torch.einsum('bnij,bjnc->binc', attn, v)
        x = x.reshape(b, -1, n * c)
        x = self.o(x)
        x = self.dropout(x)
        return x


class T5FeedForward(nn.Module):
    def __init__(self, dim, dim_ffn, dropout=0.0):
        super().__init__()
        self.dim = dim
        self.dim_ffn = dim_ffn
        self.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False), GELU())
        self.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.fc2 = nn.Linear(dim_ffn, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.fc1(x) * self.gate(x)
        x = self.dropout(x)
        x = self.fc2(x)
        x = self.dropout(x)
        return x


class T5RelativeEmbedding(nn.Module):
    def __init__(self, num_buckets, num_heads, bidirectional, max_dist=128):
        super().__init__()
        self.num_buckets = num_buckets
        self.num_heads = num_heads
        self.bidirectional = bidirectional
        self.max_dist = max_dist
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, lq, lk):
        device = self.embedding.weight.device
        rel_pos = torch.arange(lk, device=device).unsqueeze(0) - torch.arange(lq, device=device).unsqueeze(1)
        rel_pos = self._relative_position_bucket(rel_pos)
        rel_pos_embeds = self.embedding(rel_pos)
        return rel_pos_embeds.permute(2, 0, 1).unsqueeze(0).contiguous()  # [1, N, Lq, Lk]

    def _relative_position_bucket(self, rel_pos):
        if self.bidirectional:
            num_buckets = self.num_buckets // 2
            rel_buckets = (rel_pos > 0).long() * num_buckets
            rel_pos = torch.abs(rel_pos)
        else:
            num_buckets = self.num_buckets
            rel_buckets = 0
            rel_pos = -torch.min(rel_pos, torch.zeros_like(rel_pos))
        max_exact = num_buckets // 2
        rel_pos_large = max_exact + (torch.log(rel_pos.float() / max_exact) /
                                     math.log(self.max_dist / max_exact) * (num_buckets - max_exact)).long()
        rel_pos_large = torch.min(rel_pos_large, torch.full_like(rel_pos_large, num_buckets - 1))
        rel_buckets = rel_buckets + torch.where(rel_pos < max_exact, rel_pos, rel_pos_large)
        return rel_buckets


class T5SelfAttention(nn.Module):
    def __init__(self, dim, dim_attn, dim_ffn, num_heads, num_buckets, shared_pos=True, dropout=0.0):
        super().__init__()
        self.shared_pos = shared_pos
        self.norm1 = T5LayerNorm(dim)
        self.attn = T5Attention(dim, dim_attn, num_heads, dropout)
        self.norm2 = T5LayerNorm(dim)
        self.ffn = T5FeedForward(dim, dim_ffn, dropout)
        self.pos_embedding = None if shared_pos else T5RelativeEmbedding(num_buckets, num_heads, bidirectional=True)

    def forward(self, x, mask=None, pos_bias=None):
        e = pos_bias if self.shared_pos else self.pos_embedding(x.size(1), x.size(1))
        x = x + self.attn(self.norm1(x), mask=mask, pos_bias=e)
        x = x + self.ffn(self.norm2(x))
        return x


class T5Encoder(nn.Module):
    def __init__(self, vocab, dim, dim_attn, dim_ffn, num_heads, num_layers, num_buckets,
                 shared_pos=False, dropout=0.0):
        super().__init__()
        self.dim = dim
        self.shared_pos = shared_pos
        self.token_embedding = nn.Embedding(vocab, dim)
        self.pos_embedding = T5RelativeEmbedding(num_buckets, num_heads, bidirectional=True) if shared_pos else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([T5SelfAttention(dim, dim_attn, dim_ffn, num_heads, num_buckets, shared_pos, dropout)
                                     for _ in range(num_layers)])
        self.norm = T5LayerNorm(dim)

    def forward(self, ids, mask=None):
        x = self.token_embedding(ids)
        x = self.dropout(x)
        e = self.pos_embedding(x.size(1), x.size(1)) if self.shared_pos else None
        for block in self.blocks:
            x = block(x, mask, pos_bias=e)
        x = self.norm(x)
        x = self.dropout(x)
        return x

    def init_weights(self):
        """Wan's t5.py init_weights."""
        for m in self.modules():
            if isinstance(m, T5LayerNorm):
                nn.init.ones_(m.weight)
            elif isinstance(m, T5FeedForward):
                nn.init.normal_(m.gate[0].weight, std=m.dim ** -0.5)
                nn.init.normal_(m.fc1.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.fc2.weight, std=m.dim_ffn ** -0.5)
            elif isinstance(m, T5Attention):
                nn.init.normal_(m.q.weight, std=(m.dim * m.dim_attn) ** -0.5)
                nn.init.normal_(m.k.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.v.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.o.weight, std=(m.num_heads * m.dim_attn) ** -0.5)
            elif isinstance(m, T5RelativeEmbedding):
                nn.init.normal_(m.embedding.weight, std=(2 * m.num_buckets * m.num_heads) ** -0.5)
        nn.init.normal_(self.token_embedding.weight, std=1.0)


# ----------------------------------------------------------------------------------------------
# WanModel (DiT)
# ----------------------------------------------------------------------------------------------

def sinusoidal_embedding_1d(dim, position):
    """[len(position), dim] = cat(cos, sin), computed in float64 as the official code does."""
    assert dim % 2 == 0
    half = dim // 2
    position = position.type(torch.float64)
    sinusoid = torch.outer(position, torch.pow(10000, -torch.arange(half).to(position).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1)


def rope_params(max_seq_len, dim, theta=10000):
    assert dim % 2 == 0
    freqs = torch.outer(torch.arange(max_seq_len),
                        1.0 / torch.pow(theta, torch.arange(0, dim, 2).to(torch.float64).div(dim)))
    return torch.polar(torch.ones_like(freqs), freqs)


def rope_apply_official(x, grid_sizes, freqs):
    """Official rope_apply (complex float64). x [B, L, heads, head_dim]."""
    n, c = x.size(2), x.size(3) // 2
    freqs = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
    output = []
    for i, (f, h, w) in enumerate(grid_sizes.tolist()):
        seq_len = f * h * w
        x_i = torch.view_as_complex(x[i, :seq_len].to(torch.float64).reshape(seq_len, n, -1, 2))
        freqs_i = torch.cat([
            freqs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
            freqs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
            freqs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)
        ], dim=-1).reshape(seq_len, 1, -1)
        x_i = torch.view_as_real(x_i * freqs_i).flatten(2)
        x_i = torch.cat([x_i, x[i, seq_len:]])
        output.append(x_i)
    return torch.stack(output).float()


def rope_cos_sin(freqs, f, h, w):
    """(cos, sin) [f*h*w, 1, head_dim/2] float32 for the fast path (same tables as official)."""
    c = freqs.shape[1]
    fr = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
    fi = torch.cat([
        fr[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
        fr[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
        fr[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)
    ], dim=-1).reshape(f * h * w, 1, -1)
    return fi.real.float().contiguous(), fi.imag.float().contiguous()


def rope_apply_fast(x, cos, sin):
    """x [B, L, heads, head_dim]; adjacent pairs (x0, x1) rotated by the angle."""
    b, l, n, d = x.shape
    xr = x.reshape(b, l, n, d // 2, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    y0 = x0 * cos - x1 * sin
    y1 = x0 * sin + x1 * cos
    return torch.stack([y0, y1], dim=-1).reshape(b, l, n, d)


def attention(q, k, v, exact=False):
    """q [B, Lq, N, D], k/v [B, Lk, N, D] -> [B, Lq, N, D]; softmax(q k^T / sqrt(D)) v."""
    dt = q.dtype
    if exact:
        q, k, v = q.double(), k.double(), v.double()
    scale = q.shape[-1] ** -0.5
    a = torch.einsum('binc,bjnc->bnij', q, k) * scale
    a = a.softmax(dim=-1)
    return torch.einsum('bnij,bjnc->binc', a, v).to(dt)


class WanRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class WanLayerNorm(nn.LayerNorm):
    def __init__(self, dim, eps=1e-6, elementwise_affine=False):
        super().__init__(dim, elementwise_affine=elementwise_affine, eps=eps)

    def forward(self, x):
        return super().forward(x.float()).type_as(x)


class WanSelfAttention(nn.Module):
    def __init__(self, dim, num_heads, window_size=(-1, -1), qk_norm=True, eps=1e-6):
        assert dim % num_heads == 0
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = window_size
        self.qk_norm = qk_norm
        self.eps = eps
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = WanRMSNorm(dim, eps=eps) if qk_norm else nn.Identity()
        self.norm_k = WanRMSNorm(dim, eps=eps) if qk_norm else nn.Identity()

    def forward(self, x, rope, exact=False):
        """rope: ('official', grid_sizes, freqs) or ('fast', cos, sin)."""
        b, s, n, d = *x.shape[:2], self.num_heads, self.head_dim
        q = self.norm_q(self.q(x)).view(b, s, n, d)
        k = self.norm_k(self.k(x)).view(b, s, n, d)
        v = self.v(x).view(b, s, n, d)
        if rope[0] == 'official':
            q = rope_apply_official(q, rope[1], rope[2])
            k = rope_apply_official(k, rope[1], rope[2])
        else:
            q = rope_apply_fast(q, rope[1], rope[2])
            k = rope_apply_fast(k, rope[1], rope[2])
        x = attention(q, k, v, exact).flatten(2)
        return self.o(x)


class WanT2VCrossAttention(WanSelfAttention):
    def forward(self, x, context, exact=False):
        b, n, d = x.size(0), self.num_heads, self.head_dim
        q = self.norm_q(self.q(x)).view(b, -1, n, d)
        k = self.norm_k(self.k(context)).view(b, -1, n, d)
        v = self.v(context).view(b, -1, n, d)
        x = attention(q, k, v, exact).flatten(2)
        return self.o(x)


class WanAttentionBlock(nn.Module):
    def __init__(self, dim, ffn_dim, num_heads, window_size=(-1, -1), qk_norm=True, cross_attn_norm=False, eps=1e-6):
        super().__init__()
        self.dim = dim
        self.ffn_dim = ffn_dim
        self.num_heads = num_heads
        self.norm1 = WanLayerNorm(dim, eps)
        self.self_attn = WanSelfAttention(dim, num_heads, window_size, qk_norm, eps)
        self.norm3 = WanLayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
        self.cross_attn = WanT2VCrossAttention(dim, num_heads, (-1, -1), qk_norm, eps)
        self.norm2 = WanLayerNorm(dim, eps)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate='tanh'), nn.Linear(ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, e, rope, context, exact=False):
        e = (self.modulation + e).chunk(6, dim=1)
        y = self.self_attn(self.norm1(x).float() * (1 + e[1]) + e[0], rope, exact)
        x = x + y * e[2]
        x = x + self.cross_attn(self.norm3(x), context, exact)
        y = self.ffn(self.norm2(x).float() * (1 + e[4]) + e[3])
        x = x + y * e[5]
        return x


class Head(nn.Module):
    def __init__(self, dim, out_dim, patch_size, eps=1e-6):
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim
        self.patch_size = patch_size
        out_dim = math.prod(patch_size) * out_dim
        self.norm = WanLayerNorm(dim, eps)
        self.head = nn.Linear(dim, out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def forward(self, x, e):
        e = (self.modulation + e.unsqueeze(1)).chunk(2, dim=1)
        return self.head(self.norm(x) * (1 + e[1]) + e[0])


class WanModel(nn.Module):
    def __init__(self, model_type='t2v', patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=2048, ffn_dim=8192,
                 freq_dim=256, text_dim=4096, out_dim=16, num_heads=16, num_layers=32, window_size=(-1, -1),
                 qk_norm=True, cross_attn_norm=True, eps=1e-6):
        super().__init__()
        assert model_type == 't2v', "zoe-tiny uses the t2v structure (i2v by channel concat, no CLIP)"
        self.model_type = model_type
        self.patch_size = tuple(patch_size)
        self.text_len = text_len
        self.in_dim = in_dim
        self.dim = dim
        self.ffn_dim = ffn_dim
        self.freq_dim = freq_dim
        self.text_dim = text_dim
        self.out_dim = out_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.eps = eps
        self.patch_embedding = nn.Conv3d(in_dim, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate='tanh'), nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([WanAttentionBlock(dim, ffn_dim, num_heads, window_size, qk_norm, cross_attn_norm, eps)
                                     for _ in range(num_layers)])
        self.head = Head(dim, out_dim, self.patch_size, eps)
        assert (dim % num_heads) == 0 and (dim // num_heads) % 2 == 0
        d = dim // num_heads
        self.freqs = torch.cat([rope_params(1024, d - 4 * (d // 6)), rope_params(1024, 2 * (d // 6)),
                                rope_params(1024, 2 * (d // 6))], dim=1)
        self.init_weights()

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for m in self.text_embedding.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=.02)
        for m in self.time_embedding.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=.02)
        nn.init.zeros_(self.head.head.weight)

    def unpatchify(self, x, f, h, w):
        """x [B, f*h*w, prod(patch)*out_dim] -> [B, out_dim, f*pt, h*ph, w*pw]."""
        b = x.shape[0]
        c = self.out_dim
        x = x.view(b, f, h, w, *self.patch_size, c)
        x = torch.einsum('bfhwpqrc->bcfphqwr', x)
        return x.reshape(b, c, *[i * j for i, j in zip((f, h, w), self.patch_size)])

    def time_embed(self, t):
        e = self.time_embedding(sinusoidal_embedding_1d(self.freq_dim, t).float())
        e0 = self.time_projection(e).unflatten(1, (6, self.dim))
        return e, e0

    def embed_context(self, context):
        """context [B, L<=text_len, text_dim] (rows past each prompt's length already zero) ->
        zero-padded to text_len rows, then text_embedding on every row."""
        b, l, c = context.shape
        if l < self.text_len:
            context = torch.cat([context, context.new_zeros(b, self.text_len - l, c)], dim=1)
        return self.text_embedding(context)

    def forward(self, x, t, context, exact=False, rope_cache=None):
        """Batched fast path. x [B, in_dim, F, H, W] (noisy latent, mask, y already concatenated),
        t [B] timesteps (sigma*1000), context [B, L, text_dim] -> [B, out_dim, F, H, W]."""
        x = self.patch_embedding(x)
        b, _, f, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        if rope_cache is not None and (f, h, w) in rope_cache:
            cos, sin = rope_cache[(f, h, w)]
        else:
            cos, sin = rope_cos_sin(self.freqs, f, h, w)
            if rope_cache is not None:
                rope_cache[(f, h, w)] = (cos, sin)
        e, e0 = self.time_embed(t)
        ctx = self.embed_context(context)
        for block in self.blocks:
            x = block(x, e0, ('fast', cos, sin), ctx, exact)
        x = self.head(x, e)
        return self.unpatchify(x, f, h, w)

    def forward_official(self, x, t, context, seq_len, y=None):
        """The official signature: lists of [C, F, H, W] latents and [L, text_dim] contexts."""
        if y is not None:
            x = [torch.cat([u, v], dim=0) for u, v in zip(x, y)]
        x = [self.patch_embedding(u.unsqueeze(0)) for u in x]
        grid_sizes = torch.stack([torch.tensor(u.shape[2:], dtype=torch.long) for u in x])
        x = [u.flatten(2).transpose(1, 2) for u in x]
        seq_lens = torch.tensor([u.size(1) for u in x], dtype=torch.long)
        assert seq_lens.max() <= seq_len
        assert seq_lens.min() == seq_len, "no token padding in this port"
        x = torch.cat(x)
        e, e0 = self.time_embed(t)
        context = self.text_embedding(torch.stack([torch.cat([u, u.new_zeros(self.text_len - u.size(0), u.size(1))])
                                                   for u in context]))
        for block in self.blocks:
            x = block(x, e0, ('official', grid_sizes, self.freqs), context, exact=True)
        x = self.head(x, e)
        out = []
        for i, (f, h, w) in enumerate(grid_sizes.tolist()):
            out.append(self.unpatchify(x[i:i + 1, :f * h * w], f, h, w)[0].float())
        return out


# ----------------------------------------------------------------------------------------------
# WanVAE_
# ----------------------------------------------------------------------------------------------

class CausalConv3d(nn.Conv3d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._padding = (self.padding[2], self.padding[2], self.padding[1], self.padding[1], 2 * self.padding[0], 0)
        self.padding = (0, 0, 0)

    def forward(self, x, cache_x=None):
        padding = list(self._padding)
        if cache_x is not None and self._padding[4] > 0:
            x = torch.cat([cache_x, x], dim=2)
            padding[4] -= cache_x.shape[2]
        if padding[4] == 0 and padding[0] == 1 and self.kernel_size == (3, 3, 3) and self.stride == (1, 1, 1):
            # same result, spatial zero padding done inside the conv
            return F.conv3d(x, self.weight, self.bias, 1, (0, 1, 1))
        if padding[0] == 1 and self.kernel_size == (3, 3, 3) and self.stride == (1, 1, 1):
            x = F.pad(x, (0, 0, 0, 0, padding[4], 0))
            return F.conv3d(x, self.weight, self.bias, 1, (0, 1, 1))
        x = F.pad(x, padding)
        return super().forward(x)


class RMS_norm(nn.Module):
    def __init__(self, dim, channel_first=True, images=True, bias=False):
        super().__init__()
        broadcastable_dims = (1, 1, 1) if not images else (1, 1)
        shape = (dim, *broadcastable_dims) if channel_first else (dim,)
        self.channel_first = channel_first
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape)) if bias else 0.

    def forward(self, x):
        return F.normalize(x, dim=(1 if self.channel_first else -1)) * self.scale * self.gamma + self.bias


class Upsample(nn.Upsample):
    def forward(self, x):
        return super().forward(x.float()).type_as(x)


class Resample(nn.Module):
    def __init__(self, dim, mode):
        assert mode in ('none', 'upsample2d', 'upsample3d', 'downsample2d', 'downsample3d')
        super().__init__()
        self.dim = dim
        self.mode = mode
        if mode == 'upsample2d':
            self.resample = nn.Sequential(Upsample(scale_factor=(2., 2.), mode='nearest-exact'),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
        elif mode == 'upsample3d':
            self.resample = nn.Sequential(Upsample(scale_factor=(2., 2.), mode='nearest-exact'),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == 'downsample2d':
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
        elif mode == 'downsample3d':
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=(0, 0, 0))
        else:
            self.resample = nn.Identity()

    def _spatial(self, x):
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.resample(x)
        return x.reshape(b, t, x.shape[1], x.shape[2], x.shape[3]).transpose(1, 2)

    @staticmethod
    def _interleave(x, c):
        b, _, t, h, w = x.shape
        x = x.reshape(b, 2, c, t, h, w)
        x = torch.stack((x[:, 0], x[:, 1]), 3)
        return x.reshape(b, c, t * 2, h, w)

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        """The official chunked forward (feat_cache given), or, with feat_cache None, the whole-sequence
        forward that equals running the official code chunk by chunk (forward_seq)."""
        if feat_cache is None:
            return self.forward_seq(x)
        b, c, t, h, w = x.size()
        if self.mode == 'upsample3d':
            idx = feat_idx[0]
            if feat_cache[idx] is None:
                feat_cache[idx] = 'Rep'
                feat_idx[0] += 1
            else:
                cache_x = x[:, :, -CACHE_T:, :, :].clone()
                if cache_x.shape[2] < 2 and feat_cache[idx] is not None and feat_cache[idx] != 'Rep':
                    cache_x = torch.cat([feat_cache[idx][:, :, -1].unsqueeze(2), cache_x], dim=2)
                if cache_x.shape[2] < 2 and feat_cache[idx] is not None and feat_cache[idx] == 'Rep':
                    cache_x = torch.cat([torch.zeros_like(cache_x), cache_x], dim=2)
                if feat_cache[idx] == 'Rep':
                    x = self.time_conv(x)
                else:
                    x = self.time_conv(x, feat_cache[idx])
                feat_cache[idx] = cache_x
                feat_idx[0] += 1
                x = self._interleave(x, c)
        x = self._spatial(x)
        if self.mode == 'downsample3d':
            idx = feat_idx[0]
            if feat_cache[idx] is None:
                feat_cache[idx] = x.clone()
                feat_idx[0] += 1
            else:
                cache_x = x[:, :, -1:, :, :].clone()
                x = self.time_conv(torch.cat([feat_cache[idx][:, :, -1:, :, :], x], 2))
                feat_cache[idx] = cache_x
                feat_idx[0] += 1
        return x

    def forward_seq(self, x):
        """All frames at once. upsample3d: frame 0 passes (1 frame), frames 1.. go through time_conv as a
        fresh causal sequence (zero padded) and each becomes 2 frames. downsample3d: frame 0 passes,
        then time_conv (stride 2, no padding) over the whole sequence, frame 0 included."""
        b, c, t, h, w = x.size()
        if self.mode == 'upsample3d' and t > 1:
            rest = self._interleave(self.time_conv(x[:, :, 1:]), c)
            x = torch.cat([x[:, :, :1], rest], dim=2)
        x = self._spatial(x)
        if self.mode == 'downsample3d' and x.shape[2] > 1:
            x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, in_dim, out_dim, dropout=0.0):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.residual = nn.Sequential(
            RMS_norm(in_dim, images=False), nn.SiLU(),
            CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMS_norm(out_dim, images=False), nn.SiLU(), nn.Dropout(dropout),
            CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        h = self.shortcut(x)
        for layer in self.residual:
            if isinstance(layer, CausalConv3d) and feat_cache is not None:
                idx = feat_idx[0]
                cache_x = x[:, :, -CACHE_T:, :, :].clone()
                if cache_x.shape[2] < 2 and feat_cache[idx] is not None:
                    cache_x = torch.cat([feat_cache[idx][:, :, -1].unsqueeze(2), cache_x], dim=2)
                x = layer(x, feat_cache[idx])
                feat_cache[idx] = cache_x
                feat_idx[0] += 1
            else:
                x = layer(x)
        return x + h


class AttentionBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.norm = RMS_norm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x):
        identity = x
        b, c, t, h, w = x.size()
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.norm(x)
        q, k, v = self.to_qkv(x).reshape(b * t, 1, c * 3, -1).permute(0, 1, 3, 2).contiguous().chunk(3, dim=-1)
        a = (q @ k.transpose(-1, -2)) * (c ** -0.5)
        x = a.softmax(dim=-1) @ v
        x = x.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w)
        x = self.proj(x)
        x = x.reshape(b, t, c, h, w).transpose(1, 2)
        return x + identity


def _cached_conv(conv, x, feat_cache, feat_idx):
    if feat_cache is None:
        return conv(x)
    idx = feat_idx[0]
    cache_x = x[:, :, -CACHE_T:, :, :].clone()
    if cache_x.shape[2] < 2 and feat_cache[idx] is not None:
        cache_x = torch.cat([feat_cache[idx][:, :, -1].unsqueeze(2), cache_x], dim=2)
    x = conv(x, feat_cache[idx])
    feat_cache[idx] = cache_x
    feat_idx[0] += 1
    return x


class Encoder3d(nn.Module):
    def __init__(self, dim=128, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_downsample=[True, True, False], dropout=0.0):
        super().__init__()
        self.dim = dim
        self.z_dim = z_dim
        dims = [dim * u for u in [1] + list(dim_mult)]
        scale = 1.0
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        downsamples = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(num_res_blocks):
                downsamples.append(ResidualBlock(in_dim, out_dim, dropout))
                if scale in attn_scales:
                    downsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                mode = 'downsample3d' if temperal_downsample[i] else 'downsample2d'
                downsamples.append(Resample(out_dim, mode=mode))
                scale /= 2.0
        self.downsamples = nn.Sequential(*downsamples)
        self.middle = nn.Sequential(ResidualBlock(out_dim, out_dim, dropout), AttentionBlock(out_dim),
                                    ResidualBlock(out_dim, out_dim, dropout))
        self.head = nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, z_dim, 3, padding=1))

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        x = _cached_conv(self.conv1, x, feat_cache, feat_idx)
        for layer in self.downsamples:
            x = layer(x, feat_cache, feat_idx) if feat_cache is not None else layer(x)
        for layer in self.middle:
            x = layer(x, feat_cache, feat_idx) if (isinstance(layer, ResidualBlock) and feat_cache is not None) else layer(x)
        for layer in self.head:
            x = _cached_conv(layer, x, feat_cache, feat_idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class Decoder3d(nn.Module):
    def __init__(self, dim=128, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_upsample=[False, True, True], dropout=0.0):
        super().__init__()
        self.dim = dim
        self.z_dim = z_dim
        dims = [dim * u for u in [dim_mult[-1]] + list(dim_mult)[::-1]]
        scale = 1.0 / 2 ** (len(dim_mult) - 2)
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0], dropout), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0], dropout))
        upsamples = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i == 1 or i == 2 or i == 3:
                in_dim = in_dim // 2
            for _ in range(num_res_blocks + 1):
                upsamples.append(ResidualBlock(in_dim, out_dim, dropout))
                if scale in attn_scales:
                    upsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                mode = 'upsample3d' if temperal_upsample[i] else 'upsample2d'
                upsamples.append(Resample(out_dim, mode=mode))
                scale *= 2.0
        self.upsamples = nn.Sequential(*upsamples)
        self.head = nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, 3, 3, padding=1))

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        x = _cached_conv(self.conv1, x, feat_cache, feat_idx)
        for layer in self.middle:
            x = layer(x, feat_cache, feat_idx) if (isinstance(layer, ResidualBlock) and feat_cache is not None) else layer(x)
        for layer in self.upsamples:
            x = layer(x, feat_cache, feat_idx) if feat_cache is not None else layer(x)
        for layer in self.head:
            x = _cached_conv(layer, x, feat_cache, feat_idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x


def count_conv3d(model):
    return sum(isinstance(m, CausalConv3d) for m in model.modules())


class WanVAE_(nn.Module):
    def __init__(self, dim=128, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_downsample=[True, True, False], dropout=0.0):
        super().__init__()
        self.dim = dim
        self.z_dim = z_dim
        self.dim_mult = dim_mult
        self.num_res_blocks = num_res_blocks
        self.attn_scales = attn_scales
        self.temperal_downsample = temperal_downsample
        self.temperal_upsample = list(temperal_downsample)[::-1]
        self.encoder = Encoder3d(dim, z_dim * 2, dim_mult, num_res_blocks, attn_scales, self.temperal_downsample, dropout)
        self.conv1 = CausalConv3d(z_dim * 2, z_dim * 2, 1)
        self.conv2 = CausalConv3d(z_dim, z_dim, 1)
        self.decoder = Decoder3d(dim, z_dim, dim_mult, num_res_blocks, attn_scales, self.temperal_upsample, dropout)

    # --- official chunked paths -------------------------------------------------------------
    def clear_cache(self):
        self._conv_num = count_conv3d(self.decoder)
        self._conv_idx = [0]
        self._feat_map = [None] * self._conv_num
        self._enc_conv_num = count_conv3d(self.encoder)
        self._enc_conv_idx = [0]
        self._enc_feat_map = [None] * self._enc_conv_num

    def encode(self, x, scale):
        """Official: chunks of 1, 4, 4, ... frames; returns the normalized mu."""
        self.clear_cache()
        t = x.shape[2]
        iter_ = 1 + (t - 1) // 4
        for i in range(iter_):
            self._enc_conv_idx = [0]
            if i == 0:
                out = self.encoder(x[:, :, :1], feat_cache=self._enc_feat_map, feat_idx=self._enc_conv_idx)
            else:
                out_ = self.encoder(x[:, :, 1 + 4 * (i - 1):1 + 4 * i], feat_cache=self._enc_feat_map,
                                    feat_idx=self._enc_conv_idx)
                out = torch.cat([out, out_], 2)
        mu, log_var = self.conv1(out).chunk(2, dim=1)
        mu = self._normalize(mu, scale)
        self.clear_cache()
        return mu

    def decode(self, z, scale):
        """Official: one latent frame at a time with the feature cache (not clamped)."""
        self.clear_cache()
        z = self._denormalize(z, scale)
        iter_ = z.shape[2]
        x = self.conv2(z)
        for i in range(iter_):
            self._conv_idx = [0]
            out_ = self.decoder(x[:, :, i:i + 1], feat_cache=self._feat_map, feat_idx=self._conv_idx)
            out = out_ if i == 0 else torch.cat([out, out_], 2)
        self.clear_cache()
        return out

    def _normalize(self, mu, scale):
        if isinstance(scale[0], torch.Tensor):
            return (mu - scale[0].view(1, self.z_dim, 1, 1, 1)) * scale[1].view(1, self.z_dim, 1, 1, 1)
        return (mu - scale[0]) * scale[1]

    def _denormalize(self, z, scale):
        if isinstance(scale[0], torch.Tensor):
            return z / scale[1].view(1, self.z_dim, 1, 1, 1) + scale[0].view(1, self.z_dim, 1, 1, 1)
        return z / scale[1] + scale[0]

    # --- whole-sequence paths (same results, used for training) -----------------------------
    def encode_seq(self, x):
        """-> (mu, log_var), unnormalized. x [B, 3, 1+4k, H, W]."""
        out = self.encoder(x)
        return self.conv1(out).chunk(2, dim=1)

    def decode_seq(self, z):
        """z unnormalized [B, z_dim, T', h, w] -> [B, 3, 1+4(T'-1), 8h, 8w] (not clamped)."""
        return self.decoder(self.conv2(z))
