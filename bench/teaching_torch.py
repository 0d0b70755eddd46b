"""PyTorch's plain attention (matmul, softmax, matmul in float32) at the shapes of
bench/teaching_timing.cpp, timed the same way: median of CUDA-event timings after warm-up, L2
flushed before every run (triton.testing.do_bench). TF32 is off, as in the sfa kernels.

Usage: python3 bench/teaching_torch.py   (prints a markdown table)
"""
import math

import torch
import triton.testing

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def plain_attention(q, k, v):
    # q [b, h, sq, d], k/v [b, h, sk, d]: what a framework does without a fused kernel.
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def bench(b, h, sq, sk, d, decode):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.rand(b, h, sq, d, device="cuda", generator=g) * 2 - 1
    k = torch.rand(b, h, sk, d, device="cuda", generator=g) * 2 - 1
    v = torch.rand(b, h, sk, d, device="cuda", generator=g) * 2 - 1
    ms = triton.testing.do_bench(lambda: plain_attention(q, k, v), warmup=25, rep=200, return_mode="median")
    out = plain_attention(q, k, v)
    diff2 = ref2 = 0.0
    for i in range(b):  # the float64 reference one sequence at a time (4k prefill: 26 GB per S)
        ref = plain_attention(q[i].double(), k[i].double(), v[i].double())
        diff2 += (out[i].double() - ref).square().sum().item()
        ref2 += ref.square().sum().item()
    err = math.sqrt(diff2 / ref2)
    if decode:
        shape = f"decode b={b} h={h}/{h} kv={sk} d={d}"
        rate = f"{2 * b * h * sk * d * 4 / (ms * 1e-3) / 1e9:.1f} GB/s"
    else:
        shape = f"prefill b={b} h={h} s={sq} d={d}"
        rate = f"{4 * b * h * sq * sk * d / (ms * 1e-3) / 1e12:.1f} TFLOP/s"
    print(f"| {shape} | torch plain | {ms:.4f} | {rate} | {err:.2e} | float64 torch |", flush=True)
    del q, k, v, out, ref
    torch.cuda.empty_cache()


def main():
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}; float32, TF32 off\n")
    print("| shape | kernel | ms | rate | error | against |\n|---|---|---|---|---|---|")
    for s in (64, 1024, 4096):
        bench(16, 12, s, s, 64, decode=False)
    bench(8, 8, 1, 512, 64, decode=True)
    for kv in (4096, 16384, 65536):
        bench(8, 32, 1, kv, 128, decode=True)


if __name__ == "__main__":
    main()
