#!/usr/bin/python3
"""Full-size LTX-Video 2B checkpoints with random weights, laid out as the releases are
(names, shapes; bf16 as the single files are), for benchmarks without the real files:

  OUT/diffusers/   model_index.json (LTXPipeline), transformer/ (1.92 B parameters, 3.8 GB),
                   vae/ (the chosen release's layout), text_encoder/ (T5 v1.1 XXL encoder,
                   4.76 B parameters, 9.5 GB, transformers' names), tokenizer/tokenizer.json,
                   scheduler/scheduler_config.json (the released dynamic-shift config)
  OUT/single/      ltx-video-2b-v<version>.safetensors (transformer under model.diffusion_model.,
                   VAE under vae., the same tensors), text_encoder/ and tokenizer/ as links

Values are random with a 1/sqrt(fan_in) scale, norm gains 1, latent std 1 (activations stay
finite; the output is noise). The single file is written from the diffusers files' bytes, with
the names the official files use (checked against ../shared/fixtures/ltx-tiny's
single_file_keys.json when that folder is there). The tokenizer is any T5-style tokenizer.json
(--tokenizer; its ids must be below 32128).

Usage: /usr/bin/python3 tools/ltx_random.py OUT [--version 0.9.1] [--parts transformer,vae,text_encoder,single]
Memory: the VAE is built in float32 first (0.9.1: 3.7 GB); everything else streams.
"""
import argparse
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ltx_mirror  # noqa: E402

TRANSFORMER = {"_class_name": "LTXVideoTransformer3DModel", "in_channels": 128, "out_channels": 128, "patch_size": 1,
               "patch_size_t": 1, "num_attention_heads": 32, "attention_head_dim": 64, "cross_attention_dim": 2048,
               "num_layers": 28, "activation_fn": "gelu-approximate", "qk_norm": "rms_norm_across_heads",
               "norm_elementwise_affine": False, "norm_eps": 1e-06, "caption_channels": 4096, "attention_bias": True,
               "attention_out_bias": True}

OLD_DOWN = ["LTXVideoDownBlock3D"] * 4
VAE_COMMON = {"_class_name": "AutoencoderKLLTXVideo", "in_channels": 3, "out_channels": 3, "latent_channels": 128,
              "patch_size": 4, "patch_size_t": 1, "resnet_norm_eps": 1e-06, "scaling_factor": 1.0,
              "encoder_causal": True, "decoder_causal": False}
# diffusers' scripts/convert_ltx_to_diffusers.py, get_vae_config
VAE = {
    "0.9.0": dict(VAE_COMMON, block_out_channels=[128, 256, 512, 512], down_block_types=OLD_DOWN,
                  decoder_block_out_channels=[128, 256, 512, 512], layers_per_block=[4, 3, 3, 3, 4],
                  decoder_layers_per_block=[4, 3, 3, 3, 4], spatio_temporal_scaling=[True, True, True, False],
                  decoder_spatio_temporal_scaling=[True, True, True, False], decoder_inject_noise=[False] * 5,
                  downsample_type=["conv"] * 4, upsample_residual=[False] * 4, upsample_factor=[1] * 4,
                  timestep_conditioning=False),
    "0.9.1": dict(VAE_COMMON, block_out_channels=[128, 256, 512, 512], down_block_types=OLD_DOWN,
                  decoder_block_out_channels=[256, 512, 1024], layers_per_block=[4, 3, 3, 3, 4],
                  decoder_layers_per_block=[5, 6, 7, 8], spatio_temporal_scaling=[True, True, True, False],
                  decoder_spatio_temporal_scaling=[True, True, True], decoder_inject_noise=[True, True, True, False],
                  downsample_type=["conv"] * 4, upsample_residual=[True] * 3, upsample_factor=[2] * 3,
                  timestep_conditioning=True),
    "0.9.5": dict(VAE_COMMON, block_out_channels=[128, 256, 512, 1024, 2048],
                  down_block_types=["LTXVideo095DownBlock3D"] * 4, decoder_block_out_channels=[256, 512, 1024],
                  layers_per_block=[4, 6, 6, 2, 2], decoder_layers_per_block=[5, 5, 5, 5],
                  spatio_temporal_scaling=[True] * 4, decoder_spatio_temporal_scaling=[True] * 3,
                  decoder_inject_noise=[False] * 4,
                  downsample_type=["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
                  upsample_residual=[True] * 3, upsample_factor=[2] * 3, timestep_conditioning=True),
}
T5 = {"architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": 4096, "d_kv": 64, "d_ff": 10240,
      "num_layers": 24, "num_heads": 64, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
      "vocab_size": 32128, "layer_norm_epsilon": 1e-06, "feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu_new",
      "is_gated_act": True, "tie_word_embeddings": False}
SCHEDULER = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 1.0,
             "use_dynamic_shifting": True, "base_shift": 0.95, "max_shift": 2.05, "base_image_seq_len": 1024,
             "max_image_seq_len": 4096, "shift_terminal": 0.1, "invert_sigmas": False}


def transformer_shapes(c):
    d, cap = c["num_attention_heads"] * c["attention_head_dim"], c["caption_channels"]
    s = {"proj_in.weight": [d, c["in_channels"]], "proj_in.bias": [d],
         "time_embed.emb.timestep_embedder.linear_1.weight": [d, 256],
         "time_embed.emb.timestep_embedder.linear_1.bias": [d],
         "time_embed.emb.timestep_embedder.linear_2.weight": [d, d],
         "time_embed.emb.timestep_embedder.linear_2.bias": [d],
         "time_embed.linear.weight": [6 * d, d], "time_embed.linear.bias": [6 * d],
         "caption_projection.linear_1.weight": [d, cap], "caption_projection.linear_1.bias": [d],
         "caption_projection.linear_2.weight": [d, d], "caption_projection.linear_2.bias": [d],
         "scale_shift_table": [2, d], "proj_out.weight": [c["out_channels"], d], "proj_out.bias": [c["out_channels"]]}
    for i in range(c["num_layers"]):
        b = f"transformer_blocks.{i}."
        s[b + "scale_shift_table"] = [6, d]
        for a in ("attn1", "attn2"):
            s[f"{b}{a}.norm_q.weight"], s[f"{b}{a}.norm_k.weight"] = [d], [d]
            for p in ("to_q", "to_k", "to_v", "to_out.0"):
                s[f"{b}{a}.{p}.weight"], s[f"{b}{a}.{p}.bias"] = [d, d], [d]
        s[b + "ff.net.0.proj.weight"], s[b + "ff.net.0.proj.bias"] = [4 * d, d], [4 * d]
        s[b + "ff.net.2.weight"], s[b + "ff.net.2.bias"] = [d, 4 * d], [d]
    return s


def t5_shapes(c):
    d, f = c["d_model"], c["d_ff"]
    s = {"shared.weight": [c["vocab_size"], d], "encoder.final_layer_norm.weight": [d]}
    for i in range(c["num_layers"]):
        a, m = f"encoder.block.{i}.layer.0.", f"encoder.block.{i}.layer.1."
        s[a + "layer_norm.weight"], s[m + "layer_norm.weight"] = [d], [d]
        for p in "qkvo":
            s[f"{a}SelfAttention.{p}.weight"] = [d, d]
        s[m + "DenseReluDense.wi_0.weight"], s[m + "DenseReluDense.wi_1.weight"] = [f, d], [f, d]
        s[m + "DenseReluDense.wo.weight"] = [d, f]
    s["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = [c["relative_attention_num_buckets"],
                                                                                  c["num_heads"]]
    return s


def value(name, shape, gen):
    if len(shape) == 1 and ("norm" in name or name.endswith("latents_std")):
        return torch.ones(shape)
    if name.endswith("latents_mean"):
        return torch.zeros(shape)
    if name.endswith("timestep_scale_multiplier"):
        return torch.tensor(1000.0)
    fan_in = 1
    for v in shape[1:]:
        fan_in *= v
    scale = 1.0 if name == "shared.weight" else (0.02 if len(shape) <= 1 else fan_in ** -0.5)
    return torch.randn(shape, generator=gen) * scale


def write_streaming(path, shapes, gen, metadata=None):
    """bf16 safetensors: the header first (offsets from shapes), then each tensor as it is made."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, shape in shapes.items():
        n = 2
        for v in shape:
            n *= v
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape in shapes.items():
            t = value(name, shape, gen).to(torch.bfloat16).contiguous()
            f.write(t.view(torch.int16).numpy().tobytes())
    os.replace(path + ".tmp", path)


# ---- the official single file's names (as diffusers' converter maps them, per release) ----

ENC_OLD = ["down_blocks.0", "down_blocks.0.downsamplers.0", "down_blocks.0.conv_out", "down_blocks.1",
           "down_blocks.1.downsamplers.0", "down_blocks.1.conv_out", "down_blocks.2", "down_blocks.2.downsamplers.0",
           "down_blocks.3", "mid_block"]
ENC_095 = ["down_blocks.0", "down_blocks.0.downsamplers.0", "down_blocks.1", "down_blocks.1.downsamplers.0",
           "down_blocks.2", "down_blocks.2.downsamplers.0", "down_blocks.3", "down_blocks.3.downsamplers.0", "mid_block"]
DEC_090 = ["mid_block", "up_blocks.0", "up_blocks.1.upsamplers.0", "up_blocks.1", "up_blocks.2.conv_in",
           "up_blocks.2.upsamplers.0", "up_blocks.2", "up_blocks.3.conv_in", "up_blocks.3.upsamplers.0", "up_blocks.3"]
DEC_091 = ["mid_block", "up_blocks.0.upsamplers.0", "up_blocks.0", "up_blocks.1.upsamplers.0", "up_blocks.1",
           "up_blocks.2.upsamplers.0", "up_blocks.2", "up_blocks.3.upsamplers.0", "up_blocks.3"]
TABLES = {"0.9.0": (ENC_OLD, DEC_090), "0.9.1": (ENC_OLD, DEC_091), "0.9.5": (ENC_095, DEC_091)}


def vae_version(c):
    if c["down_block_types"][-1] == "LTXVideo095DownBlock3D":
        return "0.9.5"
    return "0.9.1" if any(c["decoder_inject_noise"]) or c["timestep_conditioning"] else "0.9.0"


def single_name_fn(vae_cfg):
    prefixes = []
    enc, dec = TABLES[vae_version(vae_cfg)]
    for side, flat, lst in (("encoder", "down_blocks", enc), ("decoder", "up_blocks", dec)):
        for i, d in enumerate(lst):
            o = f"vae.{side}.{flat}.{i}."
            if any(x in d for x in ("conv_in", "conv_out", "samplers")):
                prefixes.append((f"{side}.{d}.", o))
            else:
                prefixes.append((f"{side}.{d}.resnets.", o + "res_blocks."))
                prefixes.append((f"{side}.{d}.time_embedder.", o + "time_embedder."))
    prefixes.append(("decoder.time_embedder.", "vae.decoder.last_time_embedder."))
    prefixes.sort(key=lambda p: -len(p[0]))
    fixed = {"latents_mean": "vae.per_channel_statistics.mean-of-means",
             "latents_std": "vae.per_channel_statistics.std-of-means",
             "decoder.scale_shift_table": "vae.decoder.last_scale_shift_table"}

    def vae_name(n):
        if n in fixed:
            return fixed[n]
        out = next((o + n[len(p):] for p, o in prefixes if n.startswith(p)), "vae." + n)
        return out.replace(".norm3.", ".norm3.norm.").replace(".conv_shortcut.conv.", ".conv_shortcut.")
    return vae_name


def transformer_name(n):
    for a, b in ((".norm_q.", ".q_norm."), (".norm_k.", ".k_norm.")):
        n = n.replace(a, b)
    if n.startswith("proj_in."):
        n = "patchify_proj." + n[len("proj_in."):]
    if n.startswith("time_embed."):
        n = "adaln_single." + n[len("time_embed."):]
    return "model.diffusion_model." + n


def check_names():
    root = os.path.join(HERE, "..", "..", "shared", "fixtures", "ltx-tiny")
    if not os.path.isdir(root):
        return
    for part in ("transformer", "vae_090", "vae_091", "vae_095"):
        m = json.load(open(os.path.join(root, part, "single_file_keys.json")))
        m = next(v for v in m.values() if isinstance(v, dict))
        fn = transformer_name if part == "transformer" else single_name_fn(
            json.load(open(os.path.join(root, part, "config.json"))))
        for a, b in m.items():
            assert fn(a) == b, (part, a, fn(a), b)


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def write_single(path, sources, metadata):
    """One file from the tensors of several safetensors files, renamed, bytes copied."""
    entries, off = [], 0
    for src, rename in sources:
        h, base = read_header(src)
        for name, e in h.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            entries.append((rename(name), e, src, base + a, b - a))
    header = {"__metadata__": metadata}
    for new, e, _, _, n in entries:
        header[new] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path + ".tmp", "wb") as out:
        out.write(struct.pack("<Q", len(hj)))
        out.write(hj)
        for _, _, src, start, n in entries:
            with open(src, "rb") as f:
                f.seek(start)
                while n > 0:
                    chunk = f.read(min(n, 1 << 26))
                    out.write(chunk)
                    n -= len(chunk)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--version", default="0.9.1", choices=sorted(VAE))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "models", "zoe-tiny", "tokenizer.json"))
    ap.add_argument("--parts", default="transformer,vae,text_encoder,single")
    a = ap.parse_args()
    torch.set_num_threads(2)
    check_names()
    parts = a.parts.split(",")
    d = os.path.join(a.out, "diffusers")
    for sub in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    vcfg = VAE[a.version]

    def dump(obj, *p):
        with open(os.path.join(d, *p), "w") as f:
            json.dump(obj, f, indent=1)
    dump({"_class_name": "LTXPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
          "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
          "transformer": ["diffusers", "LTXVideoTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLLTXVideo"]},
         "model_index.json")
    dump(TRANSFORMER, "transformer", "config.json")
    dump(vcfg, "vae", "config.json")
    dump(T5, "text_encoder", "config.json")
    dump(SCHEDULER, "scheduler", "scheduler_config.json")
    with open(a.tokenizer, "rb") as src, open(os.path.join(d, "tokenizer", "tokenizer.json"), "wb") as dst:
        dst.write(src.read())
    gen = torch.Generator().manual_seed(0)
    tpath = os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors")
    vpath = os.path.join(d, "vae", "diffusion_pytorch_model.safetensors")
    if "transformer" in parts:
        write_streaming(tpath, transformer_shapes(TRANSFORMER), gen)
        print("transformer written", flush=True)
    if "vae" in parts:
        with torch.no_grad():
            shapes = {k: list(v.shape) for k, v in ltx_mirror.VAE(vcfg).state_dict().items()}
        write_streaming(vpath, shapes, gen)
        print("vae written", flush=True)
    if "text_encoder" in parts:
        write_streaming(os.path.join(d, "text_encoder", "model.safetensors"), t5_shapes(T5), gen)
        print("text encoder written", flush=True)
    if "single" in parts:
        s = os.path.join(a.out, "single")
        os.makedirs(s, exist_ok=True)
        for sub in ("text_encoder", "tokenizer"):
            if not os.path.exists(os.path.join(s, sub)):
                os.symlink(os.path.join("..", "diffusers", sub), os.path.join(s, sub))
        meta = {"config": json.dumps({"transformer": {"num_attention_heads": 32, "attention_head_dim": 64}})}
        write_single(os.path.join(s, f"ltx-video-2b-v{a.version}.safetensors"),
                     [(tpath, transformer_name), (vpath, single_name_fn(vcfg))], meta)
        print("single file written", flush=True)


if __name__ == "__main__":
    main()
