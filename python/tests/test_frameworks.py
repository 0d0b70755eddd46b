"""DLPack arrays of other frameworks: outputs come back as the caller's arrays.
JAX runs on its default device (CPU or GPU); CuPy needs a GPU and a CUDA build."""

import os

import numpy as np
import pytest

import sfa
import sfa_reference as ref

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to the others


def _inputs(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, 19, 4, 64)).astype(dtype)
    k = rng.standard_normal((2, 23, 2, 64)).astype(dtype)
    v = rng.standard_normal((2, 23, 2, 64)).astype(dtype)
    return q, k, v


def test_jax_arrays():
    jax = pytest.importorskip("jax", reason="jax is not installed: JAX interop skipped")
    if jax.default_backend() == "gpu" and not sfa.built_with_cuda():
        pytest.skip("JAX runs on the GPU but sfa was built without CUDA")
    results = []
    seeds = [ref.fresh_seed(), ref.fresh_seed()]
    for seed in seeds:  # two calls: each result lives in its own buffer
        q, k, v = (jax.numpy.asarray(x) for x in _inputs(seed, np.float16))
        results.append(sfa.attention(q, k, v, causal=True, return_lse=True))
    for seed, (out, lse) in zip(seeds, results):
        assert isinstance(out, jax.Array) and out.dtype == jax.numpy.float16 and lse.dtype == jax.numpy.float32
        q, k, v = _inputs(seed, np.float16)
        want, want_lse = ref.attention(q, k, v, causal=True)
        assert ref.rel_error(np.asarray(out), want) <= ref.TOLERANCE["float16"], f"seed {seed}"
        assert ref.lse_error(np.asarray(lse), want_lse) <= 1e-3, f"seed {seed}"
    q, k, v = (jax.numpy.asarray(x) for x in _inputs(seeds[0]))
    out = sfa.decode(q[:, :1], k, v, jax.numpy.asarray([5, 23], dtype=jax.numpy.int32), num_splits=3)
    want, _ = ref.decode(*(np.asarray(x) for x in (q[:, :1], k, v)), np.array([5, 23]))
    assert isinstance(out, jax.Array) and ref.rel_error(np.asarray(out), want) <= 1e-5


def test_cupy_arrays():
    cupy = pytest.importorskip("cupy", reason="cupy is not installed: CuPy interop skipped")
    if not sfa.built_with_cuda() or sfa.cuda_device_count() == 0:
        pytest.skip("no CUDA device or sfa built without CUDA: CuPy interop skipped")
    seed = ref.fresh_seed()
    q, k, v = _inputs(seed, np.float16)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:  # sfa queues on CuPy's current stream
        out, lse = sfa.attention(*(cupy.asarray(x) for x in (q, k, v)), window=(8, 8), return_lse=True)
        got = cupy.asnumpy(out, stream=stream)
        stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float16
    want, _ = ref.attention(q, k, v, window=(8, 8))
    assert ref.rel_error(got, want) <= ref.TOLERANCE["float16"], f"seed {seed}"
    qd, kc = cupy.asarray(q[:, :1]), cupy.asarray(k)
    out = sfa.decode(qd, kc, kc, cupy.asarray(np.array([7, 23], np.int32)), num_splits=2)
    want, _ = ref.decode(q[:, :1], k, k, np.array([7, 23]))
    assert ref.rel_error(cupy.asnumpy(out), want) <= ref.TOLERANCE["float16"], f"seed {seed}"
