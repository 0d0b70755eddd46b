"""sfa's CUDA kernels through torch: accuracy against a float64 reference with the 2x rule,
torch.compile(fullgraph=True), CUDA-graph capture, strided inputs without copies, streams.

The 2x rule (DESIGN.md): sfa's ||out - ref|| / ||ref|| against the float64 reference is at most
twice that of torch's own scaled_dot_product_attention in the same dtype, plus a small slack for
cases where torch is nearly exact. Softcap has no torch counterpart: those cases use the fixed
bounds (5e-4 fp16, 4e-3 bf16, 3e-6 fp32)."""

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: GPU tests skipped")

import sfa  # noqa: E402
import sfa_reference as ref  # noqa: E402
from sfa import _sfa  # noqa: E402

if not torch.cuda.is_available():
    pytest.skip("no CUDA device: GPU tests skipped", allow_module_level=True)
if not sfa.built_with_cuda():
    pytest.skip("sfa was built without CUDA: GPU tests skipped", allow_module_level=True)

import torch.nn.functional as F  # noqa: E402

DEVICE = "cuda"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
SLACK = {torch.float16: 5e-5, torch.bfloat16: 4e-4, torch.float32: 1e-6}
FIXED = {torch.float16: 5e-4, torch.bfloat16: 4e-3, torch.float32: 3e-6}
PREFILL_KERNELS = [k for k in ("fa2_mma", "fa2", "fa1", "standard") if k in sfa.kernels()]
DECODE_KERNELS = [k for k in ("decode_fast", "decode") if k in sfa.kernels()]


def _gen():
    seed = ref.fresh_seed()
    return torch.Generator(device=DEVICE).manual_seed(seed), seed


def _rand(gen, *shape, dtype):
    return torch.randn(*shape, generator=gen, device=DEVICE, dtype=torch.float32).to(dtype)


def _mask(seqlen_q, seqlen_k, causal, window):
    return torch.from_numpy(ref.visible(seqlen_q, seqlen_k, causal, *window)).to(DEVICE)


def reference(q, k, v, mask, scale, softcap):
    """float64 out [B, Sq, H, D] and lse [B, H, Sq] of the documented semantics."""
    q, k, v = (x.double() for x in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - torch.where(torch.isfinite(lse), lse, 0.0)[..., None])
    p = torch.nan_to_num(p, nan=0.0)
    return torch.einsum("bhqk,bkhd->bqhd", p, v), lse


def torch_sdpa(q, k, v, mask, scale):
    """torch's attention in the inputs' dtype (BSHD in and out); rows without keys give 0."""
    group = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                         scale=scale)
    return torch.nan_to_num(out.transpose(1, 2), nan=0.0)


def rel(a, b):
    a, b = a.double(), b.double()
    if torch.isnan(a).any():
        return float("inf")
    denom = b.norm().item()
    return (a - b).norm().item() / denom if denom > 0 else (a - b).norm().item()


def assert_2x_rule(got, want, baseline, dtype, what):
    err = rel(got, want)
    bound = FIXED[dtype] if baseline is None else 2 * rel(baseline, want) + SLACK[dtype]
    assert err <= bound, f"{what}: error {err:.3g} > bound {bound:.3g}"
    return err


# (batch, seqlen_q, seqlen_k, heads, heads_kv, head_dim, causal, window, softcap)
PREFILL_CASES = [
    (2, 128, 128, 8, 8, 64, False, (-1, -1), 0.0),
    (1, 97, 177, 8, 2, 128, True, (-1, -1), 0.0),
    (2, 177, 97, 4, 4, 128, True, (-1, -1), 0.0),
    (1, 1, 1025, 8, 1, 128, False, (-1, -1), 0.0),
    (1, 256, 256, 4, 4, 256, True, (-1, -1), 0.0),
    (3, 17, 33, 4, 1, 96, False, (16, 0), 0.0),
    (1, 200, 300, 4, 2, 64, False, (-1, -1), 30.0),
    (1, 64, 64, 2, 2, 32, True, (8, -1), 0.0),
]


def _pid(case):
    b, sq, sk, h, hkv, d, causal, window, softcap = case
    return f"b{b}-q{sq}-k{sk}-h{h}/{hkv}-d{d}" + ("-causal" if causal else "") + (
        f"-w{window[0]},{window[1]}" if window != (-1, -1) else "") + (f"-cap{softcap:g}" if softcap else "")


def _supported(select, **kw):
    try:
        select(**kw)
    except NotImplementedError as e:
        pytest.skip(f"not served by this kernel: {e}")


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("kernel", PREFILL_KERNELS + ["auto"])
@pytest.mark.parametrize("case", PREFILL_CASES, ids=_pid)
def test_prefill_2x_rule(case, kernel, dtype):
    b, sq, sk, h, hkv, d, causal, window, softcap = case
    dtype = DTYPES[dtype]
    gen, seed = _gen()
    q = _rand(gen, b, sq, h, d, dtype=dtype)
    k, v = _rand(gen, b, sk, hkv, d, dtype=dtype), _rand(gen, b, sk, hkv, d, dtype=dtype)
    _supported(lambda **kw: sfa.select_kernel(q, k, v, **kw), causal=causal, window=window, softcap=softcap,
               kernel=kernel)
    out, lse = sfa.attention(q, k, v, causal=causal, window=window, softcap=softcap, return_lse=True, kernel=kernel)
    torch.cuda.synchronize()
    scale = d ** -0.5
    mask = _mask(sq, sk, causal, window)
    want, want_lse = reference(q, k, v, mask, scale, softcap)
    baseline = None if softcap else torch_sdpa(q, k, v, mask, scale)
    assert_2x_rule(out, want, baseline, dtype, f"{kernel} seed {seed}")
    finite = torch.isfinite(want_lse)
    assert torch.equal(torch.isneginf(lse), ~finite), f"lse -inf rows differ, seed {seed}"
    if finite.any():
        assert (lse.double()[finite] - want_lse[finite]).abs().max().item() <= 1e-3, f"lse, seed {seed}"


@pytest.mark.parametrize("kernel", PREFILL_KERNELS + ["auto"])
def test_varlen_2x_rule(kernel):
    gen, seed = _gen()
    dtype, heads, heads_kv, d = torch.bfloat16, 8, 2, 128
    lengths_q, lengths_k = [37, 0, 128, 5], [64, 17, 128, 0]
    cu_q = torch.tensor(ref.cu_seqlens(lengths_q), device=DEVICE)
    cu_k = torch.tensor(ref.cu_seqlens(lengths_k), device=DEVICE)
    q = _rand(gen, int(cu_q[-1]), heads, d, dtype=dtype)
    k, v = (_rand(gen, int(cu_k[-1]), heads_kv, d, dtype=dtype) for _ in range(2))
    kw = dict(cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, max_seqlen_q=128, max_seqlen_k=128, causal=True, kernel=kernel)
    _supported(lambda **a: sfa.select_kernel(q, k, v, **a), **kw)
    out = sfa.attention_varlen(q, k, v, cu_q, cu_k, 128, 128, causal=True, kernel=kernel)
    wants, baselines, gots = [], [], []
    for b in range(len(lengths_q)):
        q0, q1, k0, k1 = int(cu_q[b]), int(cu_q[b + 1]), int(cu_k[b]), int(cu_k[b + 1])
        if q1 == q0:
            continue
        mask = _mask(q1 - q0, k1 - k0, True, (-1, -1))
        qs, ks, vs = q[None, q0:q1], k[None, k0:k1], v[None, k0:k1]
        wants.append(reference(qs, ks, vs, mask, d ** -0.5, 0.0)[0][0])
        baselines.append(torch_sdpa(qs, ks, vs, mask, d ** -0.5)[0] if k1 > k0 else torch.zeros_like(qs[0]))
        gots.append(out[q0:q1])
    assert_2x_rule(torch.cat(gots), torch.cat(wants), torch.cat(baselines), dtype, f"{kernel} varlen seed {seed}")


# (batch, seqlen_q, heads, heads_kv, head_dim, kv_len, page_size, num_splits, window_left)
DECODE_CASES = [
    (1, 1, 32, 8, 128, 1, 0, 0, -1),
    (4, 1, 32, 8, 128, 4097, 0, 0, -1),
    (3, 1, 16, 16, 64, 255, 16, 2, -1),
    (2, 2, 8, 1, 128, 1000, 1, 0, -1),
    (2, 1, 64, 8, 128, 2048, 256, 7, 100),
    (2, 4, 8, 2, 256, 777, 0, 1, -1),
]


def _did(case):
    b, sq, h, hkv, d, n, page, splits, wl = case
    return f"b{b}-q{sq}-h{h}/{hkv}-d{d}-kv{n}" + (f"-page{page}" if page else "") + f"-splits{splits}" + (
        f"-wl{wl}" if wl >= 0 else "")


def _decode_inputs(gen, case, dtype):
    b, sq, h, hkv, d, n, page_size, splits, wl = case
    q = _rand(gen, b, sq, h, d, dtype=dtype)
    lengths = torch.randint(sq, n + 1, (b,), generator=gen, device=DEVICE, dtype=torch.int32)
    lengths[0] = n
    if page_size:
        per_seq = -(-n // page_size)
        pages = b * per_seq + 2
        table = torch.randperm(pages, generator=gen, device=DEVICE)[: b * per_seq].view(b, per_seq).int()
        kc, vc = (_rand(gen, pages, page_size, hkv, d, dtype=dtype) for _ in range(2))
    else:
        table = None
        kc, vc = (_rand(gen, b, n, hkv, d, dtype=dtype) for _ in range(2))
    return q, kc, vc, lengths, table


def _gather(cache, table, b, n):
    if table is None:
        return cache[b, :n]
    page_size = cache.shape[1]
    rows = torch.arange(n, device=DEVICE)
    return cache[table[b, rows // page_size].long(), rows % page_size]


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.parametrize("kernel", DECODE_KERNELS + ["auto"])
@pytest.mark.parametrize("case", DECODE_CASES, ids=_did)
def test_decode_2x_rule(case, kernel, dtype):
    dtype = DTYPES[dtype]
    gen, seed = _gen()
    q, kc, vc, lengths, table = _decode_inputs(gen, case, dtype)
    splits, wl = case[7], case[8]
    _supported(lambda **kw: sfa.select_decode_kernel(q, kc, vc, lengths, **kw), block_table=table,
               num_splits=splits, window_left=wl, kernel=kernel)
    out, lse = sfa.decode(q, kc, vc, lengths, block_table=table, num_splits=splits, window_left=wl,
                          return_lse=True, kernel=kernel)
    torch.cuda.synchronize()
    wants, baselines = [], []
    for b in range(q.shape[0]):
        n = int(lengths[b])
        ks, vs = _gather(kc, table, b, n)[None], _gather(vc, table, b, n)[None]
        mask = _mask(q.shape[1], n, True, (wl, 0))
        scale = q.shape[-1] ** -0.5
        wants.append(reference(q[b : b + 1], ks, vs, mask, scale, 0.0)[0])
        baselines.append(torch_sdpa(q[b : b + 1], ks, vs, mask, scale))
    assert_2x_rule(out, torch.cat(wants), torch.cat(baselines), dtype, f"{kernel} seed {seed}")
    assert not torch.isnan(lse).any()


def test_strided_bhsd_input_equals_contiguous_without_copy():
    gen, seed = _gen()
    dtype = torch.bfloat16
    bhsd = [_rand(gen, 2, 8, 300, 128, dtype=dtype) for _ in range(3)]
    q, k, v = (x.transpose(1, 2) for x in bhsd)
    assert not q.is_contiguous()
    pointer, _, strides, _, device = _sfa.describe(q)
    assert pointer == q.data_ptr() and tuple(strides) == q.stride() and device == "cuda:0"
    contiguous = [x.contiguous() for x in (q, k, v)]

    def allocations(*args):
        torch.cuda.synchronize()
        before = torch.cuda.memory_stats()["allocation.all.allocated"]
        result = sfa.attention(*args, causal=True)
        return result, torch.cuda.memory_stats()["allocation.all.allocated"] - before

    want, contiguous_allocations = allocations(*contiguous)
    got, strided_allocations = allocations(q, k, v)
    assert strided_allocations == contiguous_allocations, (
        f"{strided_allocations} allocations for strided inputs, {contiguous_allocations} for contiguous ones: "
        "an input was copied")
    assert torch.equal(got, want), f"seed {seed}"


def test_current_stream_is_honoured():
    """sfa must queue on torch's current stream: the input is written on a side stream after a
    long sleep, so a launch on any other stream reads the old (zero) input."""
    gen, seed = _gen()
    q = torch.zeros(1, 256, 8, 128, device=DEVICE, dtype=torch.float16)
    fresh = _rand(gen, 1, 256, 8, 128, dtype=torch.float16)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU clock cycles
        q.copy_(fresh)
        out = sfa.attention(q, q, q)
        dec = sfa.decode(q[:, :1], q, q, num_splits=4)
    side.synchronize()
    assert torch.equal(out, sfa.attention(fresh, fresh, fresh)), f"seed {seed}"
    assert torch.equal(dec, sfa.decode(fresh[:, :1], fresh, fresh, num_splits=4)), f"seed {seed}"


def test_cuda_graph_capture_and_replay():
    gen, seed = _gen()
    dtype = torch.bfloat16
    q = _rand(gen, 2, 128, 8, 128, dtype=dtype)
    k, v = _rand(gen, 2, 128, 2, 128, dtype=dtype), _rand(gen, 2, 128, 2, 128, dtype=dtype)
    qd = _rand(gen, 4, 1, 32, 128, dtype=dtype)
    kc, vc = _rand(gen, 4, 2048, 8, 128, dtype=dtype), _rand(gen, 4, 2048, 8, 128, dtype=dtype)
    lengths = torch.tensor([2048, 1, 700, 0], device=DEVICE, dtype=torch.int32)

    def step():
        return sfa.attention(q, k, v, causal=True), sfa.decode(qd, kc, vc, lengths, num_splits=8)

    warm = torch.cuda.Stream()
    warm.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warm):
        step()
    torch.cuda.current_stream().wait_stream(warm)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # the decode workspace comes from the graph's memory pool
        out, dec = step()
    for tensor in (q, k, v, qd, kc, vc):
        tensor.copy_(_rand(gen, *tensor.shape, dtype=dtype))
    lengths.copy_(torch.tensor([3, 2048, 1, 999], dtype=torch.int32))
    graph.replay()
    torch.cuda.synchronize()
    want_out, want_dec = step()
    assert torch.equal(out, want_out), f"seed {seed}"
    assert torch.equal(dec, want_dec), f"seed {seed}"


def test_compile_fullgraph():
    gen, seed = _gen()
    dtype = torch.float16
    q = _rand(gen, 2, 64, 8, 64, dtype=dtype)
    kc, vc = _rand(gen, 2, 512, 2, 64, dtype=dtype), _rand(gen, 2, 512, 2, 64, dtype=dtype)
    lengths = torch.tensor([512, 77], device=DEVICE, dtype=torch.int32)

    def step(q, kc, vc, lengths):
        out = sfa.attention(q, q, q, causal=True)
        dec, lse = sfa.decode(out[:, -1:], kc, vc, lengths, return_lse=True)
        return out * 2, dec + 1, lse

    compiled = torch.compile(step, fullgraph=True)
    for got, want in zip(compiled(q, kc, vc, lengths), step(q, kc, vc, lengths)):
        assert torch.allclose(got, want, rtol=0, atol=1e-3), f"seed {seed}"


def test_gpu_errors():
    q = torch.randn(1, 8, 4, 64, device=DEVICE, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"k: expected device cuda:0 \(the device of q\), got cpu"):
        sfa.attention(q, q.cpu(), q)
    flat = torch.randn(1 + 8 * 4 * 64, device=DEVICE, dtype=torch.float16)
    misaligned = flat[1:].view(1, 8, 4, 64)
    with pytest.raises(ValueError, match=r"q: expected a 16-byte aligned data pointer on CUDA"):
        sfa.attention(misaligned, q, q)
    if "fa2_mma" in sfa.kernels():
        with pytest.raises(NotImplementedError, match=r"kernel 'fa2_mma': needs float16 or bfloat16, got float32"):
            sfa.attention(q.float(), q.float(), q.float(), kernel="fa2_mma")
    with pytest.raises(NotImplementedError, match=r"runs on CPU tensors"):
        sfa.attention(q, q, q, kernel="cpu-flash")
