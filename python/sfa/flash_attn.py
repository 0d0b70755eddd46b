"""flash-attn's function names over sfa, so that a forward-only user switches with one import:

    from sfa.flash_attn import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache

Same arguments and return values as flash-attn 2 for what sfa computes; what it does not
(dropout, ALiBi, appending new keys to the cache, rotary embeddings) raises NotImplementedError
instead of being ignored.
"""

from . import _api

__all__ = ["flash_attn_func", "flash_attn_varlen_func", "flash_attn_with_kvcache"]


def _refuse(**features):
    for name, used in features.items():
        if used:
            raise NotImplementedError(f"{name}: not supported by sfa (forward attention without it only)")


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                    alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """out, or (out, softmax_lse, None) with return_attn_probs (sfa does not return the probabilities)."""
    _refuse(dropout_p=dropout_p > 0, alibi_slopes=alibi_slopes is not None)
    result = _api.attention(q, k, v, causal=causal, scale=softmax_scale, window=window_size, softcap=softcap,
                            return_lse=return_attn_probs)
    return (*result, None) if return_attn_probs else result


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                           deterministic=False, return_attn_probs=False, block_table=None):
    _refuse(dropout_p=dropout_p > 0, alibi_slopes=alibi_slopes is not None, block_table=block_table is not None)
    result = _api.attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=causal,
                                   scale=softmax_scale, window=window_size, softcap=softcap,
                                   return_lse=return_attn_probs)
    return (*result, None) if return_attn_probs else result


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                            cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None, block_table=None,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    """Attention of q against the cache as it is (the new tokens already written into it).

    sfa's decode lets query i see cache positions up to cache_seqlens - seqlen_q + i, which is
    flash-attn's causal=True; with one query token per sequence causal makes no difference."""
    _refuse(k=k is not None, v=v is not None, rotary_cos=rotary_cos is not None, cache_batch_idx=cache_batch_idx
            is not None, cache_leftpad=cache_leftpad is not None, alibi_slopes=alibi_slopes is not None)
    left, right = window_size
    if not causal and q.shape[1] > 1:
        raise NotImplementedError("causal=False with more than one query token per sequence: sfa's decode "
                                  "always applies the causal bound (pass causal=True)")
    if right not in (-1, 0):
        raise NotImplementedError(f"window_size[1] = {right}: sfa's decode sees no key past the query")
    if isinstance(cache_seqlens, int):
        cache_seqlens = _full_lengths(q, cache_seqlens)
    return _api.decode(q, k_cache, v_cache, cache_seqlens, block_table=block_table, num_splits=num_splits,
                       scale=softmax_scale, window_left=left, softcap=softcap, return_lse=return_softmax_lse)


def _full_lengths(q, n):
    """flash-attn accepts one int for every sequence; sfa takes an int32 array of q's framework."""
    if _api._arrays.is_torch(q):
        import torch

        return torch.full((q.shape[0],), n, dtype=torch.int32, device=q.device)
    xp = q.__array_namespace__()  # NumPy >= 2, CuPy, JAX: the array API
    return xp.full((q.shape[0],), n, dtype=xp.int32, device=q.device)
