"""Array frameworks: who allocates outputs and scratch, and on which stream sfa runs.

sfa reads every array through DLPack without copying it; the outputs come from the framework
the inputs came from, so a NumPy caller gets NumPy arrays, a CuPy caller CuPy arrays, and so on.
torch tensors take another road (sfa._torch: custom ops that torch.compile and CUDA graphs see).
"""

import sys

_WORKSPACE_ALIGNMENT = 256  # bytes; sfa needs 16, the frameworks' allocators give at least this


class _Framework:
    """Allocation and stream policy for one array library."""

    name = "array"

    def prepare(self, arrays):
        """Makes the inputs' contents visible to sfa's stream."""

    def empty(self, like, shape, dtype=None):
        raise NotImplementedError

    def float32(self, like):
        raise NotImplementedError

    def workspace(self, like):
        raise NotImplementedError

    def stream(self, like):
        return 0

    def output(self, array):
        """What the binding receives for an output array (the array itself by default)."""
        return array

    def finish(self, like, stream):
        """Runs after sfa queued its work on `stream`."""


class _NumPy(_Framework):
    name = "numpy"

    def __init__(self):
        import numpy

        self.np = numpy

    def empty(self, like, shape, dtype=None):
        return self.np.empty(shape, dtype=like.dtype if dtype is None else dtype)

    def float32(self, like):
        return self.np.float32

    def workspace(self, like):
        np = self.np

        def alloc(nbytes):
            raw = np.empty(nbytes + _WORKSPACE_ALIGNMENT, dtype=np.uint8)
            skip = (-raw.ctypes.data) % _WORKSPACE_ALIGNMENT
            return raw[skip : skip + nbytes]

        return alloc


class _CuPy(_Framework):
    name = "cupy"

    def __init__(self):
        import cupy

        self.cp = cupy

    def empty(self, like, shape, dtype=None):
        with self.cp.cuda.Device(like.device.id):
            return self.cp.empty(shape, dtype=like.dtype if dtype is None else dtype)

    def float32(self, like):
        return self.cp.float32

    def workspace(self, like):
        cp = self.cp

        def alloc(nbytes):
            with cp.cuda.Device(like.device.id):
                return cp.empty(nbytes, dtype=cp.uint8)

        return alloc

    def stream(self, like):
        with self.cp.cuda.Device(like.device.id):
            return self.cp.cuda.get_current_stream().ptr


class _Jax(_Framework):
    """JAX arrays are immutable: sfa writes into freshly allocated buffers that nothing else holds
    yet, after the inputs are ready, and waits for its work before handing them back."""

    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.jax = jax
        self.jnp = jnp
        from . import _sfa

        self._sfa = _sfa

    def _device(self, like):
        return next(iter(like.devices()))

    def prepare(self, arrays):
        self.jax.block_until_ready([a for a in arrays if a is not None])

    def empty(self, like, shape, dtype=None):
        out = self.jnp.empty(shape, dtype=like.dtype if dtype is None else dtype, device=self._device(like))
        return out.block_until_ready()

    def float32(self, like):
        return self.jnp.float32

    def workspace(self, like):
        def alloc(nbytes):
            return self.output(self.empty(like, (nbytes,), self.jnp.uint8))

        return alloc

    def output(self, array):
        # The unversioned capsule carries no read-only flag; the buffer is ours alone here.
        return array.__dlpack__()

    def finish(self, like, stream):
        if self._device(like).platform != "cpu":
            self._sfa.synchronize(stream)


_FRAMEWORKS = {"numpy": _NumPy, "cupy": _CuPy, "jax": _Jax, "jaxlib": _Jax}
_instances = {}


def is_torch(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def framework(x, name="q"):
    """The framework that owns array `x`."""
    root = type(x).__module__.split(".")[0]
    cls = _FRAMEWORKS.get(root)
    if cls is None:
        raise TypeError(
            f"{name}: expected a torch tensor or a NumPy, CuPy or JAX array, got {type(x).__module__}."
            f"{type(x).__qualname__}"
        )
    if root not in _instances:
        _instances[root] = cls()
    return _instances[root]
