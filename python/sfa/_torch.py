"""PyTorch integration: sfa's entry points as torch.library custom ops.

Each op has a fake (meta) implementation, so torch.compile(fullgraph=True) traces through it
without a graph break, and allocates everything through torch: outputs with torch.empty_like,
the decode scratch with torch.empty(bytes, dtype=uint8) after asking sfa for its size. The work
is queued on torch's current CUDA stream, so the ops can be captured in CUDA graphs.

    torch.ops.sfa.attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                            causal, scale, window_left, window_right, softcap, return_lse, kernel)
        -> (out, lse)                          lse is empty unless return_lse
    torch.ops.sfa.attention_out(q, k, v, out, ...same...) -> lse       writes into out
    torch.ops.sfa.decode(q, k_cache, v_cache, cache_seqlens, block_table, num_splits, scale,
                         window_left, softcap, return_lse, kernel) -> (out, lse)
    torch.ops.sfa.decode_out(q, k_cache, v_cache, out, ...same...) -> lse

The ops are forward-only: backward through them raises NotImplementedError.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _sfa
from ._api import _lse_shape


def _stream(t: Tensor) -> int:
    if t.device.type == "cuda":
        return torch.cuda.current_stream(t.device).cuda_stream
    return 0


def _workspace(t: Tensor):
    device = t.device

    def alloc(nbytes):
        return torch.empty(nbytes, dtype=torch.uint8, device=device)

    return alloc


def _new_lse(q: Tensor, varlen: bool, wanted: bool) -> Tensor:
    shape = _lse_shape(q, varlen) if wanted else None
    return q.new_empty((0,) if shape is None else shape, dtype=torch.float32)


def _view(t: Optional[Tensor]):
    # DLPack refuses tensors that require grad; sfa only reads their memory.
    return None if t is None else t.detach()


def _run_attention(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale,
                   window_left, window_right, softcap, return_lse, kernel):
    _sfa.attention(_view(q), _view(k), _view(v), _view(out), _view(lse) if return_lse and lse.dim() > 1 else None,
                   _view(cu_seqlens_q), _view(cu_seqlens_k), max_seqlen_q, max_seqlen_k, scale, causal, window_left,
                   window_right, softcap, kernel, cu_seqlens_q is not None, _stream(q), _workspace(q))


def _run_decode(q, k_cache, v_cache, out, lse, cache_seqlens, block_table, num_splits, scale, window_left, softcap,
                return_lse, kernel):
    _sfa.decode(_view(q), _view(k_cache), _view(v_cache), _view(out), _view(lse) if return_lse and lse.dim() > 1
                else None, _view(cache_seqlens), _view(block_table), scale, window_left, softcap, num_splits, kernel,
                _stream(q), _workspace(q))


# ---- attention ---------------------------------------------------------------------------------

@torch.library.custom_op("sfa::attention", mutates_args=())
def attention_op(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
                 max_seqlen_q: int, max_seqlen_k: int, causal: bool, scale: float, window_left: int,
                 window_right: int, softcap: float, return_lse: bool, kernel: str) -> Tuple[Tensor, Tensor]:
    out = torch.empty_like(q)
    lse = _new_lse(q, cu_seqlens_q is not None, return_lse)
    _run_attention(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale,
                   window_left, window_right, softcap, return_lse, kernel)
    return out, lse


@attention_op.register_fake
def _attention_fake(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale, window_left,
                    window_right, softcap, return_lse, kernel):
    return torch.empty_like(q), _new_lse(q, cu_seqlens_q is not None, return_lse)


@torch.library.custom_op("sfa::attention_out", mutates_args=("out",))
def attention_out_op(q: Tensor, k: Tensor, v: Tensor, out: Tensor, cu_seqlens_q: Optional[Tensor],
                     cu_seqlens_k: Optional[Tensor], max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                     scale: float, window_left: int, window_right: int, softcap: float, return_lse: bool,
                     kernel: str) -> Tensor:
    lse = _new_lse(q, cu_seqlens_q is not None, return_lse)
    _run_attention(q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale,
                   window_left, window_right, softcap, return_lse, kernel)
    return lse


@attention_out_op.register_fake
def _attention_out_fake(q, k, v, out, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale,
                        window_left, window_right, softcap, return_lse, kernel):
    return _new_lse(q, cu_seqlens_q is not None, return_lse)


# ---- decode ------------------------------------------------------------------------------------

@torch.library.custom_op("sfa::decode", mutates_args=())
def decode_op(q: Tensor, k_cache: Tensor, v_cache: Tensor, cache_seqlens: Optional[Tensor],
              block_table: Optional[Tensor], num_splits: int, scale: float, window_left: int, softcap: float,
              return_lse: bool, kernel: str) -> Tuple[Tensor, Tensor]:
    out = torch.empty_like(q)
    lse = _new_lse(q, False, return_lse)
    _run_decode(q, k_cache, v_cache, out, lse, cache_seqlens, block_table, num_splits, scale, window_left, softcap,
                return_lse, kernel)
    return out, lse


@decode_op.register_fake
def _decode_fake(q, k_cache, v_cache, cache_seqlens, block_table, num_splits, scale, window_left, softcap,
                 return_lse, kernel):
    return torch.empty_like(q), _new_lse(q, False, return_lse)


@torch.library.custom_op("sfa::decode_out", mutates_args=("out",))
def decode_out_op(q: Tensor, k_cache: Tensor, v_cache: Tensor, out: Tensor, cache_seqlens: Optional[Tensor],
                  block_table: Optional[Tensor], num_splits: int, scale: float, window_left: int, softcap: float,
                  return_lse: bool, kernel: str) -> Tensor:
    lse = _new_lse(q, False, return_lse)
    _run_decode(q, k_cache, v_cache, out, lse, cache_seqlens, block_table, num_splits, scale, window_left, softcap,
                return_lse, kernel)
    return lse


@decode_out_op.register_fake
def _decode_out_fake(q, k_cache, v_cache, out, cache_seqlens, block_table, num_splits, scale, window_left, softcap,
                     return_lse, kernel):
    return _new_lse(q, False, return_lse)


# ---- autograd: forward-only, said clearly at backward time --------------------------------------

def _no_backward(name):
    def backward(ctx, *grads):
        raise NotImplementedError(f"sfa.{name} is forward-only: it has no backward pass")

    return backward


torch.library.register_autograd("sfa::attention", _no_backward("attention"))
torch.library.register_autograd("sfa::decode", _no_backward("decode"))


# ---- the functions sfa.attention / attention_varlen / decode call for torch tensors -------------

def _eager(*tensors) -> bool:
    """Whether a call may skip the custom-op dispatcher and run the implementation directly.

    The dispatcher (autograd wrapper, redispatch, the compile-disable wrapper) costs tens of
    microseconds per call in Python: as much as a whole decode step at small batch. Skipping it is
    safe when nothing would observe the op: torch.compile is not tracing, no tensor subclass or
    dispatch mode (fake tensors, make_fx) is in play, and there is no autograd graph to record.
    """
    if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack() > 0:
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is not None and (type(t) is not torch.Tensor or (grad and t.requires_grad)):
            return False
    return True


def attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal, scale, window_left,
              window_right, softcap, return_lse, kernel, out):
    args = (cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, bool(causal), scale, window_left, window_right,
            softcap, bool(return_lse), kernel)
    if _eager(q, k, v, out, cu_seqlens_q, cu_seqlens_k):
        out = torch.empty_like(q) if out is None else out
        lse = _new_lse(q, cu_seqlens_q is not None, return_lse)
        _run_attention(q, k, v, out, lse, *args)
    elif out is None:
        out, lse = attention_op(q, k, v, *args)
    else:
        lse = attention_out_op(q, k, v, out, *args)
    return (out, lse) if return_lse else out


def decode(q, k_cache, v_cache, cache_seqlens, block_table, num_splits, scale, window_left, softcap, return_lse,
           kernel, out):
    args = (cache_seqlens, block_table, num_splits, scale, window_left, softcap, bool(return_lse), kernel)
    if _eager(q, k_cache, v_cache, out, cache_seqlens, block_table):
        out = torch.empty_like(q) if out is None else out
        lse = _new_lse(q, False, return_lse)
        _run_decode(q, k_cache, v_cache, out, lse, *args)
    elif out is None:
        out, lse = decode_op(q, k_cache, v_cache, *args)
    else:
        lse = decode_out_op(q, k_cache, v_cache, out, *args)
    return (out, lse) if return_lse else out
