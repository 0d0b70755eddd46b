"""Bad arguments raise the right Python exception with the library's message (NumPy, CPU)."""

import numpy as np
import pytest

import sfa


def _x(*shape, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


Q = _x(1, 8, 4, 32)
KV = _x(1, 8, 2, 32)
I32 = np.array([0, 8], dtype=np.int32)

CASES = [
    ("q rank", lambda: sfa.attention(Q[0], KV, KV), ValueError,
     r"q: expected rank 4 \[batch, seqlen_q, heads, head_dim\], got rank 3"),
    ("float64 q", lambda: sfa.attention(Q.astype(np.float64), KV, KV), TypeError,
     r"q: expected dtype float32, float16 or bfloat16, got float64"),
    ("k dtype differs", lambda: sfa.attention(Q, KV.astype(np.float16), KV), TypeError,
     r"k: expected dtype float32 \(the dtype of q\), got float16"),
    ("head_dim", lambda: sfa.attention(_x(1, 8, 4, 12), _x(1, 8, 4, 12), _x(1, 8, 4, 12)), ValueError,
     r"head_dim .*multiple of 8 in \[8, 256\], got 12"),
    ("heads_kv", lambda: sfa.attention(Q, _x(1, 8, 3, 32), _x(1, 8, 3, 32)), ValueError,
     r"k: expected heads_kv .* dividing heads = 4, got 3"),
    ("v seqlen", lambda: sfa.attention(Q, KV, _x(1, 9, 2, 32)), ValueError, r"v: expected shape\[1\] \(seqlen_k\)"),
    ("last dim strided", lambda: sfa.attention(_x(1, 8, 4, 64)[..., ::2], KV, KV), ValueError,
     r"q: expected a contiguous last dimension"),
    ("softcap", lambda: sfa.attention(Q, KV, KV, softcap=-1.0), ValueError, r"softcap: expected a finite value >= 0"),
    ("window", lambda: sfa.attention(Q, KV, KV, window=(-2, 0)), ValueError, r"window_left: expected -1"),
    ("window pair", lambda: sfa.attention(Q, KV, KV, window=3), ValueError, r"window: expected a pair"),
    ("causal + window_right", lambda: sfa.attention(Q, KV, KV, causal=True, window=(-1, 4)), ValueError,
     r"window_right: expected -1 or 0 with causal"),
    ("unknown kernel", lambda: sfa.attention(Q, KV, KV, kernel="fa9"), ValueError,
     r"kernel: expected one of auto, .*; got 'fa9'"),
    ("CUDA kernel on CPU", lambda: sfa.attention(Q, KV, KV, kernel="fa2"), NotImplementedError,
     r"kernel 'fa2': runs on CUDA tensors; q is on the CPU"),
    ("decode kernel for prefill", lambda: sfa.attention(Q, KV, KV, kernel="cpu-decode"), NotImplementedError,
     r"kernel 'cpu-decode': is a decode kernel"),
    ("not an array", lambda: sfa.attention([[1.0]], KV, KV), TypeError, r"q: expected a torch tensor or a NumPy"),
    ("out shape", lambda: sfa.attention(Q, KV, KV, out=_x(1, 8, 4, 16)), ValueError, r"out: expected shape\[3\]"),
    ("varlen int64 offsets", lambda: sfa.attention_varlen(Q[0], KV[0], KV[0], I32.astype(np.int64), I32, 8, 8),
     TypeError, r"cu_seqlens_q: expected dtype int32, got int64"),
    ("varlen float offsets", lambda: sfa.attention_varlen(Q[0], KV[0], KV[0], I32, I32.astype(np.float32), 8, 8),
     TypeError, r"cu_seqlens_k: expected dtype int32 \(sequence offsets\), got float32"),
    ("varlen decreasing", lambda: sfa.attention_varlen(Q[0], KV[0], KV[0], np.array([0, 5, 3], np.int32),
                                                       np.array([0, 4, 8], np.int32), 8, 8), ValueError,
     r"cu_seqlens_q: expected non-decreasing values"),
    ("varlen max_seqlen", lambda: sfa.attention_varlen(Q[0], KV[0], KV[0], I32, I32, 4, 8), ValueError,
     r"max_seqlen_q: expected at least every sequence's length"),
    ("varlen past rows", lambda: sfa.attention_varlen(Q[0], KV[0], KV[0], np.array([0, 9], np.int32), I32, 9, 8),
     ValueError, r"cu_seqlens_q: expected the last element <= 8"),
    ("decode lengths", lambda: sfa.decode(_x(2, 1, 4, 32), _x(2, 16, 2, 32), _x(2, 16, 2, 32),
                                          np.array([3, 17], np.int32)), ValueError,
     r"cache_seqlens: expected values in \[0, 16\] \(the cache capacity\), got 17 at index 1"),
    ("decode page index", lambda: sfa.decode(_x(1, 1, 4, 32), _x(4, 8, 2, 32), _x(4, 8, 2, 32),
                                             np.array([16], np.int32), block_table=np.array([[0, 4]], np.int32)),
     ValueError, r"block_table: expected page indices in \[0, 4\), got 4 at \[0, 1\]"),
    ("decode splits", lambda: sfa.decode(_x(1, 1, 4, 32), _x(1, 16, 2, 32), _x(1, 16, 2, 32), num_splits=257),
     ValueError, r"num_splits: expected a value in \[0, 256\]"),
    ("decode prefill kernel", lambda: sfa.decode(_x(1, 1, 4, 32), _x(1, 16, 2, 32), _x(1, 16, 2, 32),
                                                 kernel="cpu-flash"), NotImplementedError,
     r"kernel 'cpu-flash': is a prefill kernel"),
    ("decode lse-less table dtype", lambda: sfa.decode(_x(1, 1, 4, 32), _x(4, 8, 2, 32), _x(4, 8, 2, 32),
                                                       block_table=np.array([[0, 1]], np.int64)), TypeError,
     r"block_table: expected dtype int32, got int64"),
]


@pytest.mark.parametrize("name,call,exc,message", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_raise(name, call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_nothing_written_on_error():
    out = np.full(Q.shape, 7.0, dtype=np.float32)
    with pytest.raises(ValueError):
        sfa.attention(Q, KV, KV, softcap=float("nan"), out=out)
    assert (out == 7.0).all()


def test_cuda_tensor_errors_need_no_gpu():
    """Without CUDA in the build, a CUDA kernel request is NotImplementedError, not a crash."""
    if sfa.built_with_cuda():
        pytest.skip("CUDA is built in: covered by the GPU tests")
    with pytest.raises(NotImplementedError, match="runs on CUDA tensors"):
        sfa.decode(_x(1, 1, 4, 32), _x(1, 16, 2, 32), _x(1, 16, 2, 32), kernel="decode_fast")
