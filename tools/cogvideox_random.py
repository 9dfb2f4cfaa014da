#!/usr/bin/python3
"""Full-size CogVideoX-2B and CogVideoX-5B checkpoints with random weights, in the diffusers layout
the released models come in (names, shapes, dtypes, configs), for benchmarks without the real
files:

  OUT/CogVideoX-2b/   model_index.json (CogVideoXPipeline)
                      transformer/  config.json, diffusion_pytorch_model.safetensors  (bf16, 1.69 B)
                      text_encoder/ config.json (google/t5-v1_1-xxl), model.safetensors.index.json and
                                    2 shards (bf16, 4.76 B: 9.5 GB)
                      vae/          config.json (scaling 1.15258426), diffusion_pytorch_model.safetensors (f32)
                      scheduler/    scheduler_config.json (CogVideoXDDIMScheduler, snr_shift_scale 3.0)
                      tokenizer/    spiece.model (see below)
  OUT/CogVideoX-5b/   the same with the 5B transformer (bf16, 5.57 B: 11.1 GB), the VAE with scaling
                      0.7 and snr_shift_scale 1.0; its text encoder shards are hard links to the 2B's

Values are random with a 1/sqrt(fan_in) scale (norm weights 1, biases 0), so activations stay
finite; the output is noise. Each tensor is drawn and written on its own, so memory stays at the
largest tensor. The tokenizer is ../shared's tiny spiece.model (300 pieces of T5's kind; the real
32000-piece one is not here): ids stay below the embedding's 32128 rows, and the text encoder costs
the same, since the pipeline always runs it on 226 positions.

usage: /usr/bin/python3 tools/cogvideox_random.py OUT [--models 2b,5b]
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
SPIECE = os.path.join(ROOT, "..", "shared", "fixtures", "cogvideox-tiny", "tokenizer", "spiece.model")

COMMIT = "diffusers scripts/convert_cogvideox_to_diffusers.py defaults, random weights (tools/cogvideox_random.py)"


def transformer_config(variant):
    big = variant == "5b"
    return {
        "_class_name": "CogVideoXTransformer3DModel", "_diffusers_version": "0.30.0",
        "num_attention_heads": 48 if big else 30, "attention_head_dim": 64, "in_channels": 16, "out_channels": 16,
        "flip_sin_to_cos": True, "freq_shift": 0, "time_embed_dim": 512, "ofs_embed_dim": None, "text_embed_dim": 4096,
        "num_layers": 42 if big else 30, "dropout": 0.0, "attention_bias": True, "sample_width": 90, "sample_height": 60,
        "sample_frames": 49, "patch_size": 2, "patch_size_t": None, "temporal_compression_ratio": 4,
        "max_text_seq_length": 226, "activation_fn": "gelu-approximate", "timestep_activation_fn": "silu",
        "norm_elementwise_affine": True, "norm_eps": 1e-5, "spatial_interpolation_scale": 1.875,
        "temporal_interpolation_scale": 1.0, "use_rotary_positional_embeddings": big,
        "use_learned_positional_embeddings": False, "patch_bias": True,
    }


def transformer_shapes(c):
    d, t = c["num_attention_heads"] * c["attention_head_dim"], c["time_embed_dim"]
    p = c["patch_size"]
    s = {"patch_embed.proj.weight": [d, c["in_channels"], p, p], "patch_embed.proj.bias": [d],
         "patch_embed.text_proj.weight": [d, c["text_embed_dim"]], "patch_embed.text_proj.bias": [d],
         "time_embedding.linear_1.weight": [t, d], "time_embedding.linear_1.bias": [t],
         "time_embedding.linear_2.weight": [t, t], "time_embedding.linear_2.bias": [t]}
    for i in range(c["num_layers"]):
        b = "transformer_blocks.%d." % i
        for n in ("norm1", "norm2"):
            s.update({b + n + ".linear.weight": [6 * d, t], b + n + ".linear.bias": [6 * d],
                      b + n + ".norm.weight": [d], b + n + ".norm.bias": [d]})
        for n in ("to_q", "to_k", "to_v", "to_out.0"):
            s.update({b + "attn1." + n + ".weight": [d, d], b + "attn1." + n + ".bias": [d]})
        for n in ("norm_q", "norm_k"):
            s.update({b + "attn1." + n + ".weight": [c["attention_head_dim"]], b + "attn1." + n + ".bias": [c["attention_head_dim"]]})
        s.update({b + "ff.net.0.proj.weight": [4 * d, d], b + "ff.net.0.proj.bias": [4 * d],
                  b + "ff.net.2.weight": [d, 4 * d], b + "ff.net.2.bias": [d]})
    s.update({"norm_final.weight": [d], "norm_final.bias": [d], "norm_out.linear.weight": [2 * d, t],
              "norm_out.linear.bias": [2 * d], "norm_out.norm.weight": [d], "norm_out.norm.bias": [d],
              "proj_out.weight": [p * p * c["out_channels"], d], "proj_out.bias": [p * p * c["out_channels"]]})
    return s


T5 = {"_name_or_path": "google/t5-v1_1-xxl", "architectures": ["T5EncoderModel"], "d_ff": 10240, "d_kv": 64,
      "d_model": 4096, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1,
      "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
      "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": 24,
      "num_heads": 64, "num_layers": 24, "output_past": True, "pad_token_id": 0,
      "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
      "torch_dtype": "bfloat16", "vocab_size": 32128}


def t5_shapes(c):
    d, f, inner = c["d_model"], c["d_ff"], c["num_heads"] * c["d_kv"]
    s = {"shared.weight": [c["vocab_size"], d]}
    for i in range(c["num_layers"]):
        a, b = "encoder.block.%d.layer.0." % i, "encoder.block.%d.layer.1." % i
        s.update({a + "layer_norm.weight": [d], a + "SelfAttention.q.weight": [inner, d], a + "SelfAttention.k.weight": [inner, d],
                  a + "SelfAttention.v.weight": [inner, d], a + "SelfAttention.o.weight": [d, inner],
                  b + "layer_norm.weight": [d], b + "DenseReluDense.wi_0.weight": [f, d],
                  b + "DenseReluDense.wi_1.weight": [f, d], b + "DenseReluDense.wo.weight": [d, f]})
        if i == 0:
            s[a + "SelfAttention.relative_attention_bias.weight"] = [c["relative_attention_num_buckets"], c["num_heads"]]
    s["encoder.final_layer_norm.weight"] = [d]
    return s


def vae_config(scaling):
    return {"_class_name": "AutoencoderKLCogVideoX", "_diffusers_version": "0.30.0", "act_fn": "silu",
            "block_out_channels": [128, 256, 256, 512], "down_block_types": ["CogVideoXDownBlock3D"] * 4,
            "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
            "layers_per_block": 3, "norm_eps": 1e-06, "norm_num_groups": 32, "out_channels": 3, "sample_height": 480,
            "sample_width": 720, "scaling_factor": scaling, "shift_factor": None, "temporal_compression_ratio": 4,
            "up_block_types": ["CogVideoXUpBlock3D"] * 4, "use_post_quant_conv": False, "use_quant_conv": False,
            "invert_scale_latents": False}


def vae_shapes(c):
    ch, layers, z = c["block_out_channels"], c["layers_per_block"], c["latent_channels"]
    s = {}

    def conv(name, co, ci, k=3, causal=True):
        key = name + (".conv" if causal else "")
        s[key + ".weight"] = [co, ci] + [k] * 3
        s[key + ".bias"] = [co]

    def gn(name, n):
        s[name + ".weight"], s[name + ".bias"] = [n], [n]

    def resnet(pre, ci, co, spatial):
        for n, width in (("norm1", ci), ("norm2", co)):
            if spatial:
                gn(pre + n + ".norm_layer", width)
                conv(pre + n + ".conv_y", width, z, 1)
                conv(pre + n + ".conv_b", width, z, 1)
            else:
                gn(pre + n, width)
        conv(pre + "conv1", co, ci)
        conv(pre + "conv2", co, co)
        if ci != co:
            conv(pre + "conv_shortcut", co, ci, 1, causal=False)
    conv("encoder.conv_in", ch[0], c["in_channels"])
    prev = ch[0]
    for i, co in enumerate(ch):
        for r in range(layers):
            resnet("encoder.down_blocks.%d.resnets.%d." % (i, r), prev if r == 0 else co, co, False)
        prev = co
        if i < len(ch) - 1:
            s["encoder.down_blocks.%d.downsamplers.0.conv.weight" % i] = [co, co, 3, 3]
            s["encoder.down_blocks.%d.downsamplers.0.conv.bias" % i] = [co]
    for r in range(2):
        resnet("encoder.mid_block.resnets.%d." % r, ch[-1], ch[-1], False)
    gn("encoder.norm_out", ch[-1])
    conv("encoder.conv_out", 2 * z, ch[-1])
    rev = list(reversed(ch))
    conv("decoder.conv_in", rev[0], z)
    for r in range(2):
        resnet("decoder.mid_block.resnets.%d." % r, rev[0], rev[0], True)
    prev = rev[0]
    for i, co in enumerate(rev):
        for r in range(layers + 1):
            resnet("decoder.up_blocks.%d.resnets.%d." % (i, r), prev if r == 0 else co, co, True)
        prev = co
        if i < len(rev) - 1:
            s["decoder.up_blocks.%d.upsamplers.0.conv.weight" % i] = [co, co, 3, 3]
            s["decoder.up_blocks.%d.upsamplers.0.conv.bias" % i] = [co]
    gn("decoder.norm_out.norm_layer", rev[-1])
    conv("decoder.norm_out.conv_y", rev[-1], z, 1)
    conv("decoder.norm_out.conv_b", rev[-1], z, 1)
    conv("decoder.conv_out", c["out_channels"], rev[-1])
    return s


def scheduler_config(shift):
    return {"_class_name": "CogVideoXDDIMScheduler", "_diffusers_version": "0.30.0", "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "clip_sample_range": 1.0,
            "num_train_timesteps": 1000, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True,
            "sample_max_value": 1.0, "set_alpha_to_one": True, "snr_shift_scale": shift, "steps_offset": 0,
            "timestep_spacing": "trailing", "trained_betas": None}


def value(name, shape, gen, dtype):
    """1/sqrt(fan_in) random weights; norms 1, biases 0."""
    leaf = name.rsplit(".", 1)[-1]
    norm = "norm" in name and len(shape) == 1
    if leaf == "bias":
        return torch.zeros(shape, dtype=dtype)
    if norm:
        return torch.ones(shape, dtype=dtype)
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    if "relative_attention_bias" in name:
        fan_in = 16
    if name == "shared.weight":
        fan_in = 1
    return (torch.randn(shape, generator=gen) * (1.0 / math.sqrt(fan_in))).to(dtype)


DT = {torch.bfloat16: ("BF16", 2), torch.float32: ("F32", 4)}


def write(path, shapes, dtype, seed):
    """A safetensors file written one tensor at a time (memory: the largest tensor)."""
    name_dt, size = DT[dtype]
    header, off = {"__metadata__": {"format": "pt", "source": COMMIT}}, 0
    for name in sorted(shapes):
        n = math.prod(shapes[name]) * size
        header[name] = {"dtype": name_dt, "shape": shapes[name], "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    gen = torch.Generator().manual_seed(seed)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in sorted(shapes):
            t = value(name, shapes[name], gen, dtype).contiguous()
            raw = t.view(torch.int16) if dtype == torch.bfloat16 else t
            f.write(raw.numpy().tobytes())
    os.replace(tmp, path)
    return off


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def text_encoder(dir_, seed):
    os.makedirs(dir_, exist_ok=True)
    write_json(os.path.join(dir_, "config.json"), T5)
    shapes = t5_shapes(T5)
    # two shards as the release has them: the embedding and blocks 0-11, then the rest
    first = {k: v for k, v in shapes.items() if k == "shared.weight" or
             (k.startswith("encoder.block.") and int(k.split(".")[2]) < 12)}
    second = {k: v for k, v in shapes.items() if k not in first}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    total = 0
    weight_map = {}
    for i, (shard, part) in enumerate(zip(names, (first, second))):
        total += write(os.path.join(dir_, shard), part, torch.bfloat16, seed + i)
        weight_map.update({k: shard for k in part})
    write_json(os.path.join(dir_, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})


def model(out, variant, t5_from=None):
    dir_ = os.path.join(out, "CogVideoX-" + variant)
    for sub in ("transformer", "text_encoder", "vae", "scheduler", "tokenizer"):
        os.makedirs(os.path.join(dir_, sub), exist_ok=True)
    write_json(os.path.join(dir_, "model_index.json"), {
        "_class_name": "CogVideoXPipeline", "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", "CogVideoXDDIMScheduler"], "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"], "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"]})
    tc = transformer_config(variant)
    write_json(os.path.join(dir_, "transformer", "config.json"), tc)
    print("writing", dir_, "transformer", flush=True)
    write(os.path.join(dir_, "transformer", "diffusion_pytorch_model.safetensors"), transformer_shapes(tc),
          torch.bfloat16, 1 if variant == "2b" else 2)
    vc = vae_config(1.15258426 if variant == "2b" else 0.7)
    write_json(os.path.join(dir_, "vae", "config.json"), vc)
    print("writing", dir_, "vae", flush=True)
    write(os.path.join(dir_, "vae", "diffusion_pytorch_model.safetensors"), vae_shapes(vc), torch.float32, 3)
    write_json(os.path.join(dir_, "scheduler", "scheduler_config.json"), scheduler_config(3.0 if variant == "2b" else 1.0))
    shutil.copyfile(SPIECE, os.path.join(dir_, "tokenizer", "spiece.model"))
    write_json(os.path.join(dir_, "tokenizer", "tokenizer_config.json"),
               {"tokenizer_class": "T5Tokenizer", "model_max_length": 226, "extra_ids": 0})
    te = os.path.join(dir_, "text_encoder")
    if t5_from:  # the same encoder: hard links, not another 9.5 GB
        for f in os.listdir(t5_from):
            dst = os.path.join(te, f)
            if os.path.exists(dst):
                os.remove(dst)
            os.link(os.path.join(t5_from, f), dst)
    else:
        print("writing", dir_, "text encoder", flush=True)
        text_encoder(te, 4)
    return te


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", default="2b,5b")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t5 = None
    for v in a.models.split(","):
        t5 = model(a.out, v, t5)
    print("done", a.out)


if __name__ == "__main__":
    sys.exit(main())
