"""The torch integration on CPU tensors: custom ops, fake implementations, torch.compile, errors.
Runs wherever torch is importable (no GPU needed); the CUDA side is in test_gpu.py."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: torch integration tests skipped")

import sfa  # noqa: E402
import sfa_reference as ref  # noqa: E402
from sfa import _sfa  # noqa: E402


def _rand(gen, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=gen).to(dtype)


def _gen():
    seed = ref.fresh_seed()
    return torch.Generator().manual_seed(seed), seed


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 3e-6), (torch.bfloat16, 4e-3), (torch.float16, 5e-4)])
def test_attention_returns_torch_and_matches_reference(dtype, tol):
    gen, seed = _gen()
    q = _rand(gen, 2, 37, 8, 64, dtype=dtype)
    k, v = _rand(gen, 2, 53, 2, 64, dtype=dtype), _rand(gen, 2, 53, 2, 64, dtype=dtype)
    out, lse = sfa.attention(q, k, v, causal=True, softcap=20.0, return_lse=True)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == q.shape
    assert lse.dtype == torch.float32 and lse.shape == (2, 8, 37)
    want, want_lse = ref.attention(q.float().numpy(), k.float().numpy(), v.float().numpy(), causal=True, softcap=20.0)
    assert ref.rel_error(out.float().numpy(), want) <= tol, f"seed {seed}"
    assert ref.lse_error(lse.numpy(), want_lse) <= 1e-4, f"seed {seed}"


def test_strided_input_reaches_sfa_without_copy():
    gen, _ = _gen()
    bhsd = [_rand(gen, 2, 4, 33, 32) for _ in range(3)]
    q, k, v = (x.transpose(1, 2) for x in bhsd)
    assert not q.is_contiguous()
    pointer, shape, strides, dtype, device = _sfa.describe(q)
    assert pointer == q.data_ptr() and tuple(shape) == tuple(q.shape) and tuple(strides) == q.stride()
    out = sfa.attention(q, k, v, causal=True)
    contiguous = sfa.attention(q.contiguous(), k.contiguous(), v.contiguous(), causal=True)
    assert torch.equal(out, contiguous)


def test_out_argument_and_requires_grad():
    gen, _ = _gen()
    q = _rand(gen, 1, 9, 2, 16).requires_grad_()
    k, v = _rand(gen, 1, 9, 2, 16), _rand(gen, 1, 9, 2, 16)
    out = torch.full((1, 9, 2, 16), float("nan"))
    assert sfa.attention(q, k, v, out=out) is out
    assert not out.isnan().any()
    result = sfa.attention(q, k, v)
    assert torch.equal(result.detach(), out)
    with pytest.raises(NotImplementedError, match="forward-only"):
        result.sum().backward()


def test_varlen_and_decode():
    gen, seed = _gen()
    lengths = np.array([5, 0, 17], dtype=np.int64)
    cu = torch.tensor(ref.cu_seqlens(lengths))
    q = _rand(gen, int(cu[-1]), 4, 32)
    out, lse = sfa.attention_varlen(q, q, q, cu, cu, 17, 17, causal=True, return_lse=True)
    want, want_lse = ref.attention_varlen(q.numpy(), q.numpy(), q.numpy(), cu.numpy(), cu.numpy(), causal=True)
    assert ref.rel_error(out.numpy(), want) <= 3e-6 and lse.shape == (4, int(cu[-1])), f"seed {seed}"

    qd = _rand(gen, 3, 2, 8, 64)
    kc, vc = _rand(gen, 6, 16, 2, 64), _rand(gen, 6, 16, 2, 64)
    table = torch.tensor([[5, 0], [1, 2], [3, 4]], dtype=torch.int32)
    seqlens = torch.tensor([20, 2, 32], dtype=torch.int32)
    out = sfa.decode(qd, kc, vc, seqlens, block_table=table, num_splits=2)
    want, _ = ref.decode(qd.numpy(), kc.numpy(), vc.numpy(), seqlens.numpy(), table.numpy())
    assert ref.rel_error(out.numpy(), want) <= 3e-6, f"seed {seed}"


def test_errors_keep_their_type_and_message():
    q = torch.randn(1, 8, 4, 32)
    with pytest.raises(ValueError, match=r"k: expected heads_kv .* dividing heads = 4, got 3"):
        sfa.attention(q, torch.randn(1, 8, 3, 32), torch.randn(1, 8, 3, 32))
    with pytest.raises(TypeError, match=r"q: expected dtype float32, float16 or bfloat16, got float64"):
        sfa.attention(q.double(), q.double(), q.double())
    with pytest.raises(NotImplementedError, match=r"kernel 'fa2_mma': runs on CUDA tensors"):
        sfa.attention(q, q, q, kernel="fa2_mma")
    with pytest.raises(TypeError, match=r"cache_seqlens: expected dtype int32, got int64"):
        sfa.decode(q[:, :1], q, q, torch.tensor([3]))


def test_opcheck_custom_ops():
    """torch.library.opcheck: schema, fake-tensor and AOT-dispatch consistency of every op."""
    gen, _ = _gen()
    q = _rand(gen, 2, 7, 4, 32)
    k = _rand(gen, 2, 11, 2, 32)
    ops = torch.ops.sfa
    torch.library.opcheck(ops.attention.default, (q, k, k, None, None, 0, 0, True, 0.0, -1, -1, 0.0, True, "auto"))
    torch.library.opcheck(ops.attention_out.default,
                          (q, k, k, torch.empty_like(q), None, None, 0, 0, False, 0.5, 3, -1, 0.0, False, "auto"))
    cu = torch.tensor([0, 3, 7], dtype=torch.int32)
    qv = _rand(gen, 7, 4, 32)
    torch.library.opcheck(ops.attention.default, (qv, qv, qv, cu, cu, 4, 4, False, 0.0, -1, -1, 0.0, True, "auto"))
    qd = _rand(gen, 2, 1, 4, 32)
    seqlens = torch.tensor([3, 11], dtype=torch.int32)
    torch.library.opcheck(ops.decode.default, (qd, k, k, seqlens, None, 2, 0.0, -1, 0.0, True, "auto"))
    torch.library.opcheck(ops.decode_out.default,
                          (qd, k, k, torch.empty_like(qd), seqlens, None, 0, 0.0, -1, 0.0, False, "auto"))


def test_compile_fullgraph_cpu():
    gen, _ = _gen()
    q = _rand(gen, 2, 16, 4, 32)
    k = _rand(gen, 2, 16, 2, 32)
    qd = _rand(gen, 2, 1, 4, 32)
    seqlens = torch.tensor([9, 16], dtype=torch.int32)

    def step(q, k, v, qd, seqlens):
        out = sfa.attention(q, k, v, causal=True) * 2
        dec, lse = sfa.decode(qd, k, v, seqlens, num_splits=2, return_lse=True)
        return out, dec + 1, lse

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(q, k, k, qd, seqlens), step(q, k, k, qd, seqlens)):
        assert torch.equal(got, want)
