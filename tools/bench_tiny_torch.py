#!/usr/bin/python3
"""The PyTorch side of bench/bench_tiny.sh: one guided denoise step of zoe-tiny (cond and uncond
as one batch of two) with the PyTorch mirror of the model (tools/train/zoe_tiny.py, the code that
trained it), in f32 and in bf16 autocast, on the given thread count. Prints the best of REPS and
the peak RSS, in the form bench_tiny.sh reads.

usage: /usr/bin/python3 tools/bench_tiny_torch.py MODEL_DIR THREADS [REPS]
"""
import os
import resource
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "train"))
from zoe_tiny import ZoeTiny  # noqa: E402


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    torch.set_num_threads(threads)
    m = ZoeTiny(path)
    s = m.cfg["sampling"]
    with torch.no_grad():
        ctx, _, _ = m.encode_text(["a red circle moving right and a green triangle moving up on a white background", ""])
        fn = m.denoiser(ctx[0], ctx[1])
        x = torch.randn(m.latent_shape(), generator=torch.Generator().manual_seed(1))
        for name, autocast in (("f32", False), ("bf16 autocast", True)):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                fn(x, 500.0)
                best, total = float("inf"), 0.0
                for _ in range(reps):
                    t0 = time.perf_counter()
                    fn(x, 500.0)
                    dt = time.perf_counter() - t0
                    best, total = min(best, dt), total + dt
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"torch {torch.__version__} denoise step {s['width']}x{s['height']}x{s['frames']} (batch 2), {name}: "
                  f"best {best * 1e3:.2f} ms, mean {total / reps * 1e3:.2f} ms over {reps}; peak RSS {peak:.0f} MB")
            print(f"RESULT torch_{name.split()[0]} {best:.6f} {peak:.0f}")


if __name__ == "__main__":
    main()
