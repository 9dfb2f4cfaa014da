"""Prove tools/train/wan.py against the official Wan2.1 fixtures (random-weight tiny configs made
with the official code): loads weights.safetensors + config.json of umt5/, dit/, vae/ and prints
the relative error ||out - ref|| / ||ref|| of each output (must be <= 1e-4).

    /usr/bin/python3 tools/train/check_fixtures.py [../shared/fixtures/wan2.1-tiny]
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from wan import T5Encoder, WanModel, WanVAE_  # noqa: E402

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "wan2.1-tiny")
TOL = 1e-4


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def load(model, d):
    sd = st.load(os.path.join(ROOT, d, "weights.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=True)
    own = model.state_dict()
    for k, v in sd.items():
        assert tuple(own[k].shape) == tuple(v.shape), k
    return model


results = []


def report(name, out, ref):
    e = rel(out, ref)
    ok = e <= TOL
    results.append(ok)
    print(f"{name:28s} rel err {e:.3e}  {'ok' if ok else 'FAIL'}")


with torch.no_grad():
    # umT5
    cfg = json.load(open(os.path.join(ROOT, "umt5/config.json")))
    t5 = load(T5Encoder(**cfg, shared_pos=False, dropout=0.0).eval(), "umt5")
    io = st.load(os.path.join(ROOT, "umt5/io.safetensors"))
    out = t5(io["ids"], io["mask"])
    report("umt5 out (all rows)", out, io["out"])
    n = int(io["mask"].sum())
    report("umt5 out (real rows)", out[:, :n], io["out"][:, :n])
    # real rows computed alone (no padding) give the same values
    out2 = t5(io["ids"][:, :n], io["mask"][:, :n])
    report("umt5 real tokens only", out2, io["out"][:, :n])

    # DiT
    cfg = json.load(open(os.path.join(ROOT, "dit/config.json")))
    dit = load(WanModel(**cfg).eval(), "dit")
    io = st.load(os.path.join(ROOT, "dit/io.safetensors"))
    x, t, ctx = io["x"], io["t"], io["context"]
    seq_len = x.shape[1] * x.shape[2] // 2 * x.shape[3] // 2
    out = dit.forward_official([x], t, [ctx], seq_len=seq_len)[0]
    report("dit out (official path)", out, io["out"])
    out = dit(x[None], t, ctx[None])[0]
    report("dit out (fast path)", out, io["out"])

    # sampling fixture: the same DiT, cfg 5, UniPC 6 steps shift 5 -> check our UniPC/Euler code
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sampling import unipc_sample, wan_sigmas, toy_check  # noqa: E402
    smp = st.load(os.path.join(ROOT, "sampling/dit_sampling.safetensors"))
    meta = st.metadata(os.path.join(ROOT, "sampling/dit_sampling.safetensors"))
    steps, shift, g = int(meta["steps"]), float(meta["shift"]), float(meta["guide_scale"])
    sig, ts = wan_sigmas(steps, shift)
    report("unipc sigmas", torch.tensor(sig), smp["sigmas"])
    report("unipc timesteps", torch.tensor(ts, dtype=torch.float64), smp["timesteps"].double())

    def model_fn(xx, tt):
        c = dit(xx[None], torch.tensor([tt], dtype=torch.float32), smp["context"][None])[0]
        u = dit(xx[None], torch.tensor([tt], dtype=torch.float32), smp["context_null"][None])[0]
        return u + g * (c - u)
    lat = unipc_sample(model_fn, smp["noise"].clone(), steps, shift)
    report("dit unipc cfg (last)", lat[-1], smp["latents"][-1])
    report("dit unipc cfg (all steps)", torch.stack(lat), smp["latents"])
    toy = st.load(os.path.join(ROOT, "sampling/toy_sampling.safetensors"))
    for name, e in toy_check(toy):
        results.append(e <= TOL)
        print(f"{'toy ' + name:28s} rel err {e:.3e}  {'ok' if e <= TOL else 'FAIL'}")

    # VAE
    cfg = json.load(open(os.path.join(ROOT, "vae/config.json")))
    vae = load(WanVAE_(**cfg).eval(), "vae")
    io = st.load(os.path.join(ROOT, "vae/io.safetensors"))
    scale = [io["latent_mean"], 1.0 / io["latent_std"]]
    dec = vae.decode(io["z"], scale)
    report("vae decoded (chunked)", dec, io["decoded"])
    z = io["z"] / scale[1].view(1, -1, 1, 1, 1) + scale[0].view(1, -1, 1, 1, 1)
    report("vae decoded (whole seq)", vae.decode_seq(z), io["decoded"])
    enc = vae.encode(io["video"], scale)
    report("vae encoded_mu (chunked)", enc, io["encoded_mu"])
    mu, _ = vae.encode_seq(io["video"])
    report("vae encoded_mu (whole seq)", vae._normalize(mu, scale), io["encoded_mu"])

print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
