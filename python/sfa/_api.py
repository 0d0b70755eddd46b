"""The public functions: argument handling shared by every framework, then the call.

torch tensors go through custom ops (sfa._torch) so that torch.compile and CUDA graphs see one
opaque operator; every other array goes straight to the binding with outputs allocated by its
own framework (sfa._arrays).
"""

from . import _arrays, _sfa

__all__ = [
    "attention",
    "attention_varlen",
    "decode",
    "select_kernel",
    "select_decode_kernel",
    "kernels",
    "built_with_cuda",
    "cuda_device_count",
]


def _scale(scale):
    # sfa reads 0 as "1/sqrt(head_dim)", flash-attn's default for softmax_scale=None.
    return 0.0 if scale is None else float(scale)


def _window(window):
    if window is None:
        return -1, -1
    try:
        left, right = window
    except (TypeError, ValueError):
        raise ValueError(f"window: expected a pair (left, right) with -1 for unbounded, got {window!r}") from None
    return int(left), int(right)


def _lse_shape(q, varlen):
    """[batch, heads, seqlen_q] (dense) or [heads, total_q] (varlen); None when q's rank is wrong
    (the library then names the problem)."""
    shape = tuple(q.shape)
    if varlen:
        return (shape[1], shape[0]) if len(shape) == 3 else None
    return (shape[0], shape[2], shape[1]) if len(shape) == 4 else None


def _torch():
    from . import _torch as module

    return module


def _generic_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale,
                       window, softcap, return_lse, kernel, out, varlen):
    fw = _arrays.framework(q)
    fw.prepare([q, k, v, cu_seqlens_q, cu_seqlens_k])
    if out is None:
        out = fw.empty(q, tuple(q.shape))
    lse = None
    lse_shape = _lse_shape(q, varlen)
    if return_lse and lse_shape is not None:
        lse = fw.empty(q, lse_shape, fw.float32(q))
    stream = fw.stream(q)
    left, right = window
    _sfa.attention(q, k, v, fw.output(out), None if lse is None else fw.output(lse), cu_seqlens_q,
                   cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale, causal, left, right, softcap, kernel,
                   varlen, stream, fw.workspace(q))
    fw.finish(q, stream)
    return (out, lse) if return_lse else out


def attention(q, k, v, *, causal=False, scale=None, window=(-1, -1), softcap=0.0, return_lse=False,
              kernel="auto", out=None):
    """Exact attention softmax(scale * q k^T) v, flash-attn conventions.

    q: [batch, seqlen_q, heads, head_dim]; k, v: [batch, seqlen_k, heads_kv, head_dim] with heads a
    multiple of heads_kv (MHA, GQA, MQA). float32, float16 or bfloat16; any strides with the last
    dimension contiguous (a q.transpose(1, 2) of a [batch, heads, seqlen, head_dim] tensor works
    without a copy). causal aligns bottom-right when seqlen_q != seqlen_k; window = (left, right)
    bounds the keys each query sees (-1: unbounded); softcap > 0 caps scores with
    softcap * tanh(s / softcap); scale defaults to 1/sqrt(head_dim).

    Returns out (like q, from the inputs' framework), or (out, lse) with lse float32
    [batch, heads, seqlen_q] (natural log) when return_lse. out= writes into a given array.
    kernel names one of sfa.kernels() or "auto".
    """
    wl, wr = _window(window)
    if _arrays.is_torch(q):
        return _torch().attention(q, k, v, None, None, 0, 0, causal, _scale(scale), wl, wr, float(softcap),
                                  return_lse, kernel, out)
    return _generic_attention(q, k, v, None, None, 0, 0, bool(causal), _scale(scale), (wl, wr), float(softcap),
                              return_lse, kernel, out, False)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, causal=False,
                     scale=None, window=(-1, -1), softcap=0.0, return_lse=False, kernel="auto", out=None):
    """Attention over packed sequences of different lengths (flash_attn_varlen_func).

    q: [total_q, heads, head_dim]; k, v: [total_k, heads_kv, head_dim]; cu_seqlens_q/_k: int32
    [batch + 1] prefix sums of the lengths, on the tensors' device; max_seqlen_q/_k: the longest
    sequence. lse, when returned, is float32 [heads, total_q]. Other arguments as attention().
    """
    wl, wr = _window(window)
    if _arrays.is_torch(q):
        return _torch().attention(q, k, v, cu_seqlens_q, cu_seqlens_k, int(max_seqlen_q), int(max_seqlen_k),
                                  causal, _scale(scale), wl, wr, float(softcap), return_lse, kernel, out)
    return _generic_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, int(max_seqlen_q), int(max_seqlen_k),
                              bool(causal), _scale(scale), (wl, wr), float(softcap), return_lse, kernel, out, True)


def decode(q, k_cache, v_cache, cache_seqlens=None, *, block_table=None, num_splits=0, scale=None,
           window_left=-1, softcap=0.0, return_lse=False, kernel="auto", out=None):
    """New tokens against a KV cache, split-KV (flash_attn_with_kvcache without the cache update).

    q: [batch, seqlen_q, heads, head_dim], the newest seqlen_q tokens of each sequence (already in
    the cache). Contiguous cache: k_cache, v_cache [batch, capacity, heads_kv, head_dim]; paged:
    [num_pages, page_size, heads_kv, head_dim] with block_table int32 [batch, max_pages_per_seq].
    cache_seqlens: int32 [batch] (None: every sequence fills the cache). num_splits: 0 picks the
    split count; the scratch memory is allocated by the inputs' framework. Query i of sequence b
    sees cache positions j <= cache_seqlens[b] - seqlen_q + i (and, with window_left >= 0, not
    further back than window_left). Returns out, or (out, lse) with lse [batch, heads, seqlen_q].
    """
    if _arrays.is_torch(q):
        return _torch().decode(q, k_cache, v_cache, cache_seqlens, block_table, int(num_splits), _scale(scale),
                               int(window_left), float(softcap), return_lse, kernel, out)
    fw = _arrays.framework(q)
    fw.prepare([q, k_cache, v_cache, cache_seqlens, block_table])
    if out is None:
        out = fw.empty(q, tuple(q.shape))
    lse = None
    lse_shape = _lse_shape(q, False)
    if return_lse and lse_shape is not None:
        lse = fw.empty(q, lse_shape, fw.float32(q))
    stream = fw.stream(q)
    _sfa.decode(q, k_cache, v_cache, fw.output(out), None if lse is None else fw.output(lse), cache_seqlens,
                block_table, _scale(scale), int(window_left), float(softcap), int(num_splits), kernel, stream,
                fw.workspace(q))
    fw.finish(q, stream)
    return (out, lse) if return_lse else out


def select_kernel(q, k, v, *, causal=False, scale=None, window=(-1, -1), softcap=0.0, kernel="auto",
                  cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0):
    """The kernel attention() (or attention_varlen(), when cu_seqlens are given) would run for these
    arguments, by name. Raises the error the call would raise."""
    wl, wr = _window(window)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    name, _ = _sfa.attention_plan(q, k, v, q, None, cu_seqlens_q, cu_seqlens_k, int(max_seqlen_q),
                                  int(max_seqlen_k), _scale(scale), bool(causal), wl, wr, float(softcap), kernel,
                                  varlen)
    return name


def select_decode_kernel(q, k_cache, v_cache, cache_seqlens=None, *, block_table=None, num_splits=0,
                         scale=None, window_left=-1, softcap=0.0, kernel="auto"):
    """The kernel decode() would run for these arguments, by name."""
    name, _ = _sfa.decode_plan(q, k_cache, v_cache, q, None, cache_seqlens, block_table, _scale(scale),
                               int(window_left), float(softcap), int(num_splits), kernel)
    return name


def kernels():
    """Names of the kernels this build holds (CPU backend first, then the CUDA kernels)."""
    return list(_sfa.kernels())


def built_with_cuda():
    """Whether the CUDA backend was compiled in."""
    return bool(_sfa.built_with_cuda())


def cuda_device_count():
    """CUDA devices sfa sees (0 without CUDA)."""
    return int(_sfa.cuda_device_count())
