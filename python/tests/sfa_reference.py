"""Float64 NumPy reference of sfa's semantics (include/sfa/sfa.h), written independently of the
library, plus the input generators and error measure the tests share."""

import os
import secrets

import numpy as np

# ||out - ref|| / ||ref|| bounds without a framework baseline (DESIGN.md).
TOLERANCE = {"float32": 3e-6, "float16": 5e-4, "bfloat16": 4e-3}


def fresh_seed():
    """SFA_TEST_SEED when set (to replay a failure), else a new random seed."""
    env = os.environ.get("SFA_TEST_SEED")
    return int(env) if env else secrets.randbits(32)


def rel_error(out, ref):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if np.isnan(out).any():
        return float("inf")
    denom = np.linalg.norm(ref)
    diff = np.linalg.norm(out - ref)
    return float(diff / denom) if denom > 0 else float(diff)


def lse_error(lse, ref):
    """Largest |lse - ref| where ref is finite; inf where -inf rows disagree."""
    lse = np.asarray(lse, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    finite = np.isfinite(ref)
    if not np.array_equal(np.isneginf(lse), ~finite):
        return float("inf")
    return float(np.abs(lse[finite] - ref[finite]).max()) if finite.any() else 0.0


def visible(seqlen_q, seqlen_k, causal, window_left, window_right):
    """[seqlen_q, seqlen_k] mask: query i sees key j (bottom-right aligned)."""
    if causal:
        window_right = 0
    i = np.arange(seqlen_q)[:, None]
    j = np.arange(seqlen_k)[None, :]
    off = seqlen_k - seqlen_q
    mask = np.ones((seqlen_q, seqlen_k), dtype=bool)
    if window_right >= 0:
        mask &= j <= i + off + window_right
    if window_left >= 0:
        mask &= j >= i + off - window_left
    return mask


def attention(q, k, v, causal=False, scale=None, window=(-1, -1), softcap=0.0):
    """q [B, Sq, H, D], k/v [B, Sk, Hkv, D] -> out [B, Sq, H, D], lse [B, H, Sq] (float64)."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    batch, seqlen_q, heads, head_dim = q.shape
    seqlen_k, heads_kv = k.shape[1], k.shape[2]
    scale = 1.0 / np.sqrt(head_dim) if not scale else scale
    group = heads // heads_kv
    k = np.repeat(k, group, axis=2)
    v = np.repeat(v, group, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if softcap > 0:
        s = softcap * np.tanh(s / softcap)
    mask = visible(seqlen_q, seqlen_k, causal, window[0], window[1])
    s = np.where(mask, s, -np.inf)
    m = s.max(axis=-1, keepdims=True) if seqlen_k > 0 else np.full(s.shape[:-1] + (1,), -np.inf)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m_safe)
    denom = p.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, np.einsum("bhqk,bkhd->bhqd", p, v) / np.where(denom > 0, denom, 1.0), 0.0)
        lse = np.where(denom[..., 0] > 0, np.log(np.where(denom[..., 0] > 0, denom[..., 0], 1.0)) + m_safe[..., 0],
                       -np.inf)
    return out.transpose(0, 2, 1, 3), lse


def attention_varlen(q, k, v, cu_q, cu_k, **kw):
    """Packed q [Tq, H, D], k/v [Tk, Hkv, D] -> out [Tq, H, D] (rows of no sequence: untouched = 0),
    lse [H, Tq]."""
    out = np.zeros(q.shape, dtype=np.float64)
    lse = np.full((q.shape[1], q.shape[0]), -np.inf)
    for b in range(len(cu_q) - 1):
        q0, q1, k0, k1 = cu_q[b], cu_q[b + 1], cu_k[b], cu_k[b + 1]
        if q1 == q0:
            continue
        o, l = attention(q[None, q0:q1], k[None, k0:k1], v[None, k0:k1], **kw)
        out[q0:q1] = o[0]
        lse[:, q0:q1] = l[0]
    return out, lse


def decode(q, k_cache, v_cache, cache_seqlens=None, block_table=None, scale=None, window_left=-1, softcap=0.0):
    """q [B, Sq, H, D] against a contiguous or paged cache; query i of sequence b sees positions
    j <= len_b - Sq + i (and j >= that - window_left)."""
    batch = q.shape[0]
    outs, lses = [], []
    for b in range(batch):
        if block_table is None:
            capacity = k_cache.shape[1]
            n = capacity if cache_seqlens is None else int(cache_seqlens[b])
            kb, vb = k_cache[b, :n], v_cache[b, :n]
        else:
            page_size = k_cache.shape[1]
            capacity = block_table.shape[1] * page_size
            n = capacity if cache_seqlens is None else int(cache_seqlens[b])
            rows = [block_table[b, j // page_size] * page_size + j % page_size for j in range(n)]
            flat_k = k_cache.reshape(-1, *k_cache.shape[2:])
            flat_v = v_cache.reshape(-1, *v_cache.shape[2:])
            kb, vb = flat_k[rows], flat_v[rows]
        o, l = attention(q[b : b + 1], kb[None], vb[None], causal=True, scale=scale, window=(window_left, 0),
                         softcap=softcap)
        outs.append(o)
        lses.append(l)
    return np.concatenate(outs), np.concatenate(lses)


def random_lengths(rng, batch, max_len):
    """Lengths in [0, max_len] with one sequence at max_len and (batch > 1) one empty."""
    lengths = rng.integers(0, max_len + 1, size=batch)
    lengths[0] = max_len
    if batch > 1:
        lengths[-1] = 0
    return lengths


def cu_seqlens(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
