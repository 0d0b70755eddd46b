"""sfa's CPU backend through the Python package with NumPy arrays: every machine runs these."""

import numpy as np
import pytest

import sfa
import sfa_reference as ref
from sfa import _sfa

CPU_ATTENTION_KERNELS = ["auto", "cpu-flash", "cpu-reference"]
CPU_DECODE_KERNELS = ["auto", "cpu-decode", "cpu-reference"]

# (batch, seqlen_q, seqlen_k, heads, heads_kv, head_dim, causal, window, softcap)
ATTENTION_CASES = [
    (1, 1, 1, 1, 1, 8, False, (-1, -1), 0.0),
    (2, 3, 17, 4, 1, 32, False, (-1, -1), 0.0),
    (1, 17, 3, 2, 2, 40, True, (-1, -1), 0.0),  # causal with seqlen_q > seqlen_k: empty rows
    (2, 97, 97, 4, 4, 64, True, (-1, -1), 0.0),
    (1, 128, 177, 8, 2, 80, True, (-1, -1), 0.0),
    (1, 177, 128, 4, 1, 96, False, (16, 8), 0.0),
    (2, 33, 65, 8, 8, 128, False, (-1, -1), 30.0),
    (1, 65, 65, 2, 2, 256, True, (7, -1), 5.0),
    (1, 1025, 31, 1, 1, 16, False, (-1, -1), 0.0),
]


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _case_id(case):
    b, sq, sk, h, hkv, d, causal, window, softcap = case
    return f"b{b}-q{sq}-k{sk}-h{h}/{hkv}-d{d}" + ("-causal" if causal else "") + (
        f"-w{window[0]},{window[1]}" if window != (-1, -1) else "") + (f"-cap{softcap:g}" if softcap else "")


@pytest.mark.parametrize("kernel", CPU_ATTENTION_KERNELS)
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=_case_id)
def test_attention_matches_reference(case, kernel):
    b, sq, sk, h, hkv, d, causal, window, softcap = case
    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    q, k, v = _rand(rng, (b, sq, h, d), np.float32), _rand(rng, (b, sk, hkv, d), np.float32), \
        _rand(rng, (b, sk, hkv, d), np.float32)
    out, lse = sfa.attention(q, k, v, causal=causal, window=window, softcap=softcap, return_lse=True, kernel=kernel)
    assert isinstance(out, np.ndarray) and out.shape == q.shape and out.dtype == np.float32
    assert lse.shape == (b, h, sq) and lse.dtype == np.float32
    want, want_lse = ref.attention(q, k, v, causal=causal, window=window, softcap=softcap)
    err = ref.rel_error(out, want)
    assert err <= ref.TOLERANCE["float32"], f"error {err:.3g}, seed {seed}"
    assert ref.lse_error(lse, want_lse) <= 1e-5, f"seed {seed}"


def test_attention_float16_and_scale():
    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    q, k, v = (_rand(rng, (2, 45, 4, 64), np.float16) for _ in range(3))
    out = sfa.attention(q, k, v, scale=0.3, causal=True)
    assert out.dtype == np.float16
    want, _ = ref.attention(q, k, v, scale=0.3, causal=True)
    assert ref.rel_error(out, want) <= ref.TOLERANCE["float16"], f"seed {seed}"


def test_strided_bhsd_view_without_copy():
    """q.transpose(1, 2) of a [batch, heads, seqlen, head_dim] array reaches sfa as the same memory."""
    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    bhsd = [_rand(rng, (2, 4, 37, 32), np.float32) for _ in range(3)]
    q, k, v = (x.transpose(0, 2, 1, 3) for x in bhsd)
    assert not q.flags.c_contiguous
    pointer, shape, strides, dtype, device = _sfa.describe(q)
    assert pointer == q.ctypes.data
    assert tuple(shape) == q.shape
    assert tuple(strides) == tuple(s // q.itemsize for s in q.strides)
    assert (dtype, device) == ("float32", "cpu")
    strided = sfa.attention(q, k, v, causal=True)
    contiguous = sfa.attention(*(np.ascontiguousarray(x) for x in (q, k, v)), causal=True)
    np.testing.assert_array_equal(strided, contiguous)


def test_out_argument_is_written_and_returned():
    rng = np.random.default_rng(ref.fresh_seed())
    q, k, v = (_rand(rng, (1, 9, 2, 16), np.float32) for _ in range(3))
    out = np.full(q.shape, np.nan, dtype=np.float32)
    result = sfa.attention(q, k, v, out=out)
    assert result is out
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, ref.attention(q, k, v)[0], rtol=1e-5, atol=1e-5)


def test_empty_batch_and_empty_keys():
    q = np.ones((0, 4, 2, 16), dtype=np.float32)
    assert sfa.attention(q, q, q).shape == q.shape
    rng = np.random.default_rng(ref.fresh_seed())
    q = _rand(rng, (1, 3, 2, 16), np.float32)
    kv = np.ones((1, 0, 2, 16), dtype=np.float32)
    out, lse = sfa.attention(q, kv, kv, return_lse=True)
    assert (out == 0).all() and np.isneginf(lse).all()


@pytest.mark.parametrize("kernel", CPU_ATTENTION_KERNELS)
@pytest.mark.parametrize("causal", [False, True])
def test_attention_varlen(kernel, causal):
    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    batch, heads, heads_kv, d = 4, 4, 2, 32
    lq = ref.random_lengths(rng, batch, 23)
    lk = ref.random_lengths(rng, batch, 41)
    lk[1] = 0  # a query sequence with no keys: out 0, lse -inf
    cu_q, cu_k = ref.cu_seqlens(lq), ref.cu_seqlens(lk)
    q = _rand(rng, (cu_q[-1], heads, d), np.float32)
    k, v = (_rand(rng, (cu_k[-1], heads_kv, d), np.float32) for _ in range(2))
    out, lse = sfa.attention_varlen(q, k, v, cu_q, cu_k, int(lq.max()), int(lk.max()), causal=causal,
                                    return_lse=True, kernel=kernel)
    assert lse.shape == (heads, cu_q[-1])
    want, want_lse = ref.attention_varlen(q, k, v, cu_q, cu_k, causal=causal)
    assert ref.rel_error(out, want) <= ref.TOLERANCE["float32"], f"seed {seed}"
    assert ref.lse_error(lse, want_lse) <= 1e-5, f"seed {seed}"


# (batch, seqlen_q, heads, heads_kv, head_dim, capacity, page_size, ragged, num_splits, window_left, softcap)
DECODE_CASES = [
    (1, 1, 8, 8, 64, 1, 0, False, 0, -1, 0.0),
    (3, 1, 8, 2, 128, 255, 0, True, 0, -1, 0.0),
    (2, 1, 4, 1, 64, 256, 16, True, 2, -1, 0.0),
    (2, 4, 8, 2, 32, 97, 1, True, 0, -1, 0.0),
    (4, 2, 4, 4, 128, 513, 256, True, 7, 33, 0.0),
    (2, 1, 16, 2, 64, 1025, 0, False, 256, -1, 20.0),
]


def _decode_id(case):
    b, sq, h, hkv, d, cap, page, ragged, splits, wl, cap_ = case
    return f"b{b}-q{sq}-h{h}/{hkv}-d{d}-kv{cap}" + (f"-page{page}" if page else "") + ("-ragged" if ragged else "") + \
        f"-splits{splits}" + (f"-wl{wl}" if wl >= 0 else "") + (f"-cap{cap_:g}" if cap_ else "")


def make_decode_inputs(rng, case, dtype=np.float32):
    b, sq, h, hkv, d, capacity, page_size, ragged, splits, wl, softcap = case
    q = _rand(rng, (b, sq, h, d), dtype)
    lengths = ref.random_lengths(rng, b, capacity) if ragged else np.full(b, capacity)
    cache_seqlens = lengths.astype(np.int32)
    if page_size:
        pages_per_seq = -(-capacity // page_size)
        num_pages = b * pages_per_seq + 3
        table = rng.permutation(num_pages)[: b * pages_per_seq].reshape(b, pages_per_seq).astype(np.int32)
        k = _rand(rng, (num_pages, page_size, hkv, d), dtype)
        v = _rand(rng, (num_pages, page_size, hkv, d), dtype)
        # positions past a sequence's capacity (pages_per_seq * page_size > capacity) stay in range
        cache_seqlens = np.minimum(cache_seqlens, pages_per_seq * page_size).astype(np.int32)
    else:
        table = None
        k = _rand(rng, (b, capacity, hkv, d), dtype)
        v = _rand(rng, (b, capacity, hkv, d), dtype)
    return q, k, v, cache_seqlens, table


@pytest.mark.parametrize("kernel", CPU_DECODE_KERNELS)
@pytest.mark.parametrize("case", DECODE_CASES, ids=_decode_id)
def test_decode_matches_reference(case, kernel):
    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    q, k, v, lengths, table = make_decode_inputs(rng, case)
    splits, wl, softcap = case[8], case[9], case[10]
    out, lse = sfa.decode(q, k, v, lengths, block_table=table, num_splits=splits, window_left=wl, softcap=softcap,
                          return_lse=True, kernel=kernel)
    assert out.shape == q.shape and lse.shape == (q.shape[0], q.shape[2], q.shape[1])
    want, want_lse = ref.decode(q, k, v, lengths, table, window_left=wl, softcap=softcap)
    err = ref.rel_error(out, want)
    assert err <= ref.TOLERANCE["float32"], f"error {err:.3g}, seed {seed}"
    assert ref.lse_error(lse, want_lse) <= 1e-5, f"seed {seed}"


def test_decode_full_cache_without_lengths():
    rng = np.random.default_rng(ref.fresh_seed())
    q = _rand(rng, (2, 1, 4, 64), np.float32)
    k, v = (_rand(rng, (2, 300, 2, 64), np.float32) for _ in range(2))
    out = sfa.decode(q, k, v)
    np.testing.assert_allclose(out, ref.decode(q, k, v)[0], rtol=2e-5, atol=2e-6)


def test_kernel_listing_and_selection():
    names = sfa.kernels()
    assert names[:3] == ["cpu-reference", "cpu-flash", "cpu-decode"]
    assert isinstance(sfa.built_with_cuda(), bool)
    assert sfa.cuda_device_count() >= 0
    q = np.zeros((1, 4, 2, 32), dtype=np.float32)
    assert sfa.select_kernel(q, q, q) == "cpu-flash"
    assert sfa.select_kernel(q, q, q, kernel="cpu-reference") == "cpu-reference"
    assert sfa.select_decode_kernel(q, q, q) == "cpu-decode"


def test_flash_attn_names():
    from sfa.flash_attn import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache

    seed = ref.fresh_seed()
    rng = np.random.default_rng(seed)
    q, k, v = (_rand(rng, (2, 11, 4, 32), np.float32) for _ in range(3))
    out, lse, probs = flash_attn_func(q, k, v, softmax_scale=0.2, causal=True, window_size=(3, 0),
                                      return_attn_probs=True)
    want, want_lse = ref.attention(q, k, v, scale=0.2, causal=True, window=(3, 0))
    assert probs is None and ref.rel_error(out, want) <= 3e-6 and ref.lse_error(lse, want_lse) <= 1e-5
    cu = ref.cu_seqlens(np.array([11, 11]))
    flat = [x.reshape(22, 4, 32) for x in (q, k, v)]
    np.testing.assert_array_equal(flash_attn_varlen_func(*flat, cu, cu, 11, 11, causal=True),
                                  sfa.attention_varlen(*flat, cu, cu, 11, 11, causal=True))
    out = flash_attn_with_kvcache(q[:, :1], k, v, cache_seqlens=7, num_splits=2)
    assert ref.rel_error(out, ref.decode(q[:, :1], k, v, np.array([7, 7]))[0]) <= 3e-6
    with pytest.raises(NotImplementedError, match="dropout_p"):
        flash_attn_func(q, k, v, dropout_p=0.1)
    with pytest.raises(NotImplementedError, match="causal=False with more than one query"):
        flash_attn_with_kvcache(q, k, v)
