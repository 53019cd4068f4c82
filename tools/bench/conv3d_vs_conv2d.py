#!/usr/bin/env python3
"""Times ATen's CPU conv3d against the sum of per-tap conv2d that
engine/nn/conv.cpp uses instead on the CPU (temporal stride 1), for 3x3x3
causal convs of the Wan 2.1 VAE decoder at the tiny (base width 8) and full
(base width 96) sizes, 704x384 output.

    LA_TORCH=~/.cache/gst-liveavatar/torch-<version>  # the pinned wheel (scripts/torch-version)
    OMP_NUM_THREADS=1 $LA_TORCH/bin/python tools/bench/conv3d_vs_conv2d.py

Prints the median ms of each and the ratio; the two results are checked equal
to fp32 rounding.
"""
import statistics
import time

import torch
import torch.nn.functional as F

# The streaming decoder runs each latent frame through the decoder on its own
# (docs/vae.md): 1 frame at the latent resolution, 2 after the first temporal
# upsampling, 4 after the second. (label, channels in = out, height, width,
# output frames); the inputs also carry the 2 cached frames.
SHAPES = [
    ("tiny 48x88", 32, 48, 88, 1),
    ("tiny 96x176", 32, 96, 176, 2),
    ("tiny 192x352", 16, 192, 352, 4),
    ("tiny 384x704", 8, 384, 704, 4),
    ("full 48x88", 384, 48, 88, 1),
    ("full 96x176", 384, 96, 176, 2),
    ("full 192x352", 192, 192, 352, 4),
    ("full 384x704", 96, 384, 704, 4),
]


def conv2d_sum(x, w, b):
    """engine/nn/conv.cpp's conv3d_as_conv2d_sum with padding already applied in time."""
    kt = w.size(2)
    n, c, t, h, wd = x.shape
    t_out = t - kt + 1
    out = None
    for k in range(kt):
        frames = x[:, :, k:k + t_out].transpose(1, 2).reshape(n * t_out, c, h, wd)
        y = F.conv2d(frames, w[:, :, k], b if k == 0 else None, padding=1)
        out = y if out is None else out.add_(y)
    return out.reshape(n, t_out, out.size(1), out.size(2), out.size(3)).transpose(1, 2)


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for label, c, h, w, t_out in SHAPES:
        x = torch.randn(1, c, t_out + 2, h, w)
        weight = torch.randn(c, c, 3, 3, 3) / (c * 27) ** 0.5
        bias = torch.randn(c) * 0.02
        macs = c * c * 27 * h * w * t_out
        repeats = 5 if macs < 2e10 else 3
        with torch.no_grad():
            a = F.conv3d(x, weight, bias, padding=(0, 1, 1))
            b = conv2d_sum(x, weight, bias)
            assert (a - b).abs().max().item() < 1e-3 * max(1.0, a.abs().max().item())
            ms3 = median_ms(lambda: F.conv3d(x, weight, bias, padding=(0, 1, 1)), repeats)
            ms2 = median_ms(lambda: conv2d_sum(x, weight, bias), repeats)
        print(f"{label:22s} C={c:4d} T={t_out:2d}: conv3d {ms3:9.1f} ms, conv2d sum {ms2:9.1f} ms, "
              f"conv3d/conv2d {ms3 / ms2:5.2f}x")


if __name__ == "__main__":
    main()
