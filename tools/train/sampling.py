"""Flow-matching samplers, as Wan2.1 drives them.

Convention (Wan): x_t = (1 - sigma) * x0 + sigma * noise; the model predicts v = noise - x0 and
is given the timestep t = sigma * 1000.

  euler_sigmas(steps, shift)  sigma_i = shift*s/(1+(shift-1)*s), s = linspace(1, 0, steps+1)
                              (Wan's get_sampling_sigmas plus the final 0); t_i = sigma_i*1000 as a
                              float (not truncated).
  euler_sample                x <- x + (sigma_{i+1} - sigma_i) * v(x, t_i)
  wan_sigmas / unipc_sample   Wan's FlowUniPCMultistepScheduler (solver_order 2, bh2, predict_x0,
                              lower_order_final, final sigma 0): sigma = shifted
                              linspace(0.999, 0, steps+1)[:-1], then 0; the model gets the integer
                              timestep int64(sigma*1000) (truncated).
"""
import math

import numpy as np
import torch


def euler_sigmas(steps, shift):
    s = np.linspace(1.0, 0.0, steps + 1)
    sig = shift * s / (1 + (shift - 1) * s)
    return [float(v) for v in sig]


def euler_sample(model_fn, noise, steps, shift, callback=None):
    """model_fn(x, t_float) -> v. Returns the list of latents after each step."""
    sig = euler_sigmas(steps, shift)
    x = noise
    out = []
    for i in range(steps):
        v = model_fn(x, sig[i] * 1000.0)
        x = x + (sig[i + 1] - sig[i]) * v
        out.append(x)
        if callback:
            callback(i, x)
    return out


def wan_sigmas(steps, shift, num_train_timesteps=1000):
    """(sigmas [steps+1] as float32 values, integer timesteps [steps])."""
    alphas = np.linspace(1, 1 / num_train_timesteps, num_train_timesteps)[::-1].copy()
    table = 1.0 - alphas
    sigma_max, sigma_min = float(np.float32(table[0])), float(np.float32(table[-1]))
    sig = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    sig = shift * sig / (1 + (shift - 1) * sig)
    ts = (sig * num_train_timesteps).astype(np.int64)
    sig = np.concatenate([sig, [0.0]]).astype(np.float32)
    return [float(v) for v in sig], [int(v) for v in ts]


def _lam(s):
    if s <= 0:
        return math.inf
    return math.log(1 - s) - math.log(s)


def unipc_sample(model_fn, noise, steps, shift, timesteps=None, sigmas=None, callback=None):
    """Wan's FlowUniPCMultistepScheduler (order 2, bh2, predict_x0), step by step as Wan's
    text2video.py calls it. model_fn(x, t) -> v, t the integer timestep (as a float).
    Scalar coefficients in float64; tensors keep their dtype. Returns the latents after each step."""
    if sigmas is None:
        sigmas, timesteps = wan_sigmas(steps, shift)
    order_max = 2
    x = noise
    m_list = []          # x0 predictions, oldest first
    last_sample = None
    this_order = 1
    lower_order_nums = 0
    out = []
    for i in range(steps):
        v = model_fn(x, float(timesteps[i]))
        m_t = x - sigmas[i] * v                      # convert_model_output: x0 = x - sigma * v
        if i > 0 and last_sample is not None:        # corrector (UniC) on the previous step
            x = _uni_c(m_t, m_list, last_sample, x, this_order, sigmas, i)
        m_list = (m_list + [m_t])[-order_max:]
        this_order = min(order_max, steps - i)      # lower_order_final
        this_order = min(this_order, lower_order_nums + 1)
        last_sample = x
        x = _uni_p(m_list, x, this_order, sigmas, i)
        lower_order_nums = min(lower_order_nums + 1, order_max)
        out.append(x)
        if callback:
            callback(i, x)
    return out


def _coeffs(h, order, rks):
    hh = -h
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = math.expm1(hh)   # bh2
    factorial_i = 1
    R, b = [], []
    for idx in range(1, order + 1):
        R.append([r ** (idx - 1) for r in rks])
        b.append(h_phi_k * factorial_i / b_h)
        factorial_i *= idx + 1
        h_phi_k = h_phi_k / hh - 1 / factorial_i
    return h_phi_1, b_h, np.array(R), np.array(b)


def _uni_p(m_list, x, order, sig, i):
    m0 = m_list[-1]
    s_t, s_s0 = sig[i + 1], sig[i]
    a_t = 1 - s_t
    h = _lam(s_t) - _lam(s_s0)
    rks, d1s = [], []
    for idx in range(1, order):
        mi = m_list[-(idx + 1)]
        rk = (_lam(sig[i - idx]) - _lam(s_s0)) / h
        rks.append(rk)
        d1s.append((mi - m0) / rk)
    rks.append(1.0)
    if math.isinf(h):       # last step to sigma 0: x_t = m0 exactly
        return m0.clone()
    h_phi_1, b_h, R, b = _coeffs(h, order, rks)
    x_t = (s_t / s_s0) * x - a_t * h_phi_1 * m0
    if d1s:
        rho = 0.5 if order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
        x_t = x_t - a_t * b_h * (rho * d1s[0] if order == 2 else sum(r * d for r, d in zip(rho, d1s)))
    return x_t


def _uni_c(model_t, m_list, last_sample, this_sample, order, sig, i):
    m0 = m_list[-1]
    s_t, s_s0 = sig[i], sig[i - 1]
    a_t = 1 - s_t
    h = _lam(s_t) - _lam(s_s0)
    rks, d1s = [], []
    for idx in range(1, order):
        mi = m_list[-(idx + 1)]
        rk = (_lam(sig[i - (idx + 1)]) - _lam(s_s0)) / h
        rks.append(rk)
        d1s.append((mi - m0) / rk)
    rks.append(1.0)
    h_phi_1, b_h, R, b = _coeffs(h, order, rks)
    rhos = [0.5] if order == 1 else list(np.linalg.solve(R, b))
    x_t = (s_t / s_s0) * last_sample - a_t * h_phi_1 * m0
    corr = 0
    for r, d in zip(rhos[:-1], d1s):
        corr = corr + r * d
    return x_t - a_t * b_h * (corr + rhos[-1] * (model_t - m0))


def toy_check(toy):
    """Relative errors of unipc on the toy fixture (v = 0.5 x + (t/1000) c)."""
    res = []
    for key in [k[:-len(".latents")] for k in toy if k.endswith(".latents") and k.startswith("unipc")]:
        _, steps, shift = key.split("_")
        steps, shift = int(steps), float(shift)
        c = toy["toy_c"].double()
        lat = unipc_sample(lambda x, t: 0.5 * x + (t / 1000.0) * c, toy["noise"].double(), steps, shift)
        ref = toy[key + ".latents"].double()
        e = ((torch.stack(lat) - ref).norm() / ref.norm()).item()
        res.append((key, e))
    return res
