"""Per-rank executor: an IREE context with the Python `rhino` module over a Communicator.

Why a Python VM module: IREE's CPU drivers implement no collective, so
`rhino-lower-collectives{mode=import}` turns each one into a call to an imported
function `rhino.<name>`; this module exports one Python function per imported name
(the parameters are decoded from the name, `imports.py`) and runs it on the
communicator. Inputs are the *mapped* HAL buffers and results are written straight into
freshly allocated host-visible HAL buffers, so MPI moves device memory of the CPU driver
with no staging copy (FACTS.md: a copy through numpy costs ~13 ms per 16 MiB).
Drivers whose buffers cannot be mapped (CUDA device-local) fall back to a copy.

Rank processes import this module: it must never import jax or rhino_mlir.ir.
"""
from __future__ import annotations

import contextlib
import gc
import os
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import RhinoError
from .comm import Communicator
from ...collective_imports import MODULE, Collective, decode


def _rt():
    import iree.runtime as rt   # lazy: importing the launcher must stay cheap
    return rt


class RhinoModule:
    """The `rhino` VM module of one rank: import name -> Python implementation."""

    def __init__(self, comm: Communicator, device, names: Sequence[str], device_index: int | None = None):
        rt = _rt()
        self.rt, self.comm, self.device = rt, comm, device
        self.me = comm.rank if device_index is None else device_index
        self.calls = 0
        iface = rt.PyModuleInterface(MODULE, lambda _iface: self)
        for name in sorted(set(names)):
            c = decode(name)
            fn = self._make(c)
            iface.export(name.split(".", 1)[1] if name.startswith(MODULE + ".") else name,
                         c.signature(), fn)
        self.iface = iface
        self.vm_module = iface.create()

    def close(self) -> None:
        # iface -> exported closures -> self is a cycle through nanobind objects that
        # the garbage collector cannot see; cut it by hand
        self.vm_module = None
        self.iface = None

    # ------------------------------------------------------------------ buffers

    def _host(self, ref):
        """(numpy view of the argument, its HalBufferView); maps, copies only if it must."""
        rt = self.rt
        bv = ref.deref(rt.HalBufferView)
        dtype = np.dtype(rt.HalElementType.map_to_dtype(bv.element_type))
        shape = tuple(bv.shape)
        try:
            return bv.map().asarray(shape, dtype), bv
        except Exception:  # device-local memory: copy through the driver
            return rt.DeviceArray(self.device, bv, implicit_host_transfer=True).to_host(), bv

    def _alloc(self, shape, element_type, dtype):
        """A host-visible result buffer and a numpy view of it (MPI writes in place)."""
        rt = self.rt
        nbytes = max(1, math.prod(shape) * dtype.itemsize)
        buf = self.device.allocator.allocate_buffer(
            memory_type=rt.MemoryType.DEVICE_LOCAL | rt.MemoryType.HOST_VISIBLE,
            allowed_usage=rt.BufferUsage.DEFAULT | rt.BufferUsage.MAPPING,
            allocation_size=nbytes)
        view = buf.map().asarray(tuple(shape), dtype)
        return rt.HalBufferView(buf, list(shape), element_type), view

    def _group(self, c: Collective) -> tuple[int, ...]:
        return c.group_of(self.me) if c.groups else tuple(range(self.comm.size))

    # ------------------------------------------------------------------ exports

    def _make(self, c: Collective):
        impl = {"partition_id": self._partition_id, "all_reduce": self._all_reduce,
                "all_gather": self._all_gather, "reduce_scatter": self._reduce_scatter,
                "all_to_all": self._all_to_all,
                "collective_permute": self._permute}[c.kind]
        if c.kind == "partition_id":
            return lambda _self: impl()
        return lambda _self, ref: impl(c, ref)

    def _partition_id(self):
        self.calls += 1
        bv, view = self._alloc((), self.rt.HalElementType.UINT_32, np.dtype(np.uint32))
        view[...] = self.me
        return bv.ref

    def _all_reduce(self, c: Collective, ref):
        self.calls += 1
        x, bv = self._host(ref)
        out_bv, out = self._alloc(x.shape, bv.element_type, x.dtype)
        self.comm.all_reduce(x, out, c.reduce, self._group(c))
        return out_bv.ref

    def _all_gather(self, c: Collective, ref):
        # comm gathers along axis 0; for dim d > 0 the blocks land in (g, *x.shape)
        # and move to position d: out (pre, g*n, post) = (pre, g, n, post)
        self.calls += 1
        x, bv = self._host(ref)
        g, d = len(self._group(c)), c.dim
        shape = list(x.shape)
        oshape = shape[:d] + [shape[d] * g] + shape[d + 1:]
        out_bv, out = self._alloc(oshape, bv.element_type, x.dtype)
        if math.prod(shape[:d]) == 1:
            self.comm.all_gather(x, out, self._group(c))
        else:
            tmp = np.empty([g] + shape, x.dtype)
            self.comm.all_gather(x, tmp, self._group(c))
            np.copyto(out.reshape(shape[:d] + [g] + shape[d:]), np.moveaxis(tmp, 0, d))
        return out_bv.ref

    def _blocks_first(self, x: np.ndarray, d: int, g: int) -> np.ndarray:
        """x with dim d split into g blocks, the block index moved to axis 0 (contiguous)."""
        shape = list(x.shape)
        if math.prod(shape[:d]) == 1:
            return x
        split = x.reshape(shape[:d] + [g, shape[d] // g] + shape[d + 1:])
        return np.ascontiguousarray(np.moveaxis(split, d, 0))

    def _reduce_scatter(self, c: Collective, ref):
        self.calls += 1
        x, bv = self._host(ref)
        group = self._group(c)
        g, d = len(group), c.dim
        oshape = list(x.shape)
        if oshape[d] % g:
            raise RhinoError(f"rhino.reduce_scatter: dim {d} of size {oshape[d]} does not "
                             f"split into {g} blocks")
        oshape[d] //= g
        out_bv, out = self._alloc(oshape, bv.element_type, x.dtype)
        self.comm.reduce_scatter(self._blocks_first(x, d, g), out, c.reduce, group)
        return out_bv.ref

    def _all_to_all(self, c: Collective, ref):
        # send: split dim s into g blocks (block j -> member j); receive g blocks of
        # shape bs and concatenate them along dim c: out (pre, g*bs[c], post)
        self.calls += 1
        x, bv = self._host(ref)
        group = self._group(c)
        g, s, cd = len(group), c.split_dim, c.concat_dim
        bs = list(x.shape)
        if bs[s] % g:
            raise RhinoError(f"rhino.all_to_all: dim {s} of size {bs[s]} does not split "
                             f"into {g} blocks")
        bs[s] //= g
        oshape = list(bs)
        oshape[cd] *= g
        out_bv, out = self._alloc(oshape, bv.element_type, x.dtype)
        send = self._blocks_first(x, s, g)
        if math.prod(bs[:cd]) == 1:
            self.comm.all_to_all(send, out, group)
        else:
            tmp = np.empty([g] + bs, x.dtype)
            self.comm.all_to_all(send, tmp, group)
            np.copyto(out.reshape(bs[:cd] + [g] + bs[cd:]), np.moveaxis(tmp, 0, cd))
        return out_bv.ref

    def _permute(self, c: Collective, ref):
        self.calls += 1
        x, bv = self._host(ref)
        out_bv, out = self._alloc(x.shape, bv.element_type, x.dtype)
        send_to = next((t for s, t in c.pairs if s == self.me), None)
        recv_from = next((s for s, t in c.pairs if t == self.me), None)
        self.comm.permute(x, out, send_to, recv_from)
        return out_bv.ref


class Executor:
    """Load one .vmfb on one rank; call it with numpy arrays, get numpy arrays back.

    `close()` (or the context manager) drops the IREE context before interpreter exit;
    otherwise nanobind prints "leaked function" warnings."""

    def __init__(self, vmfb: bytes | str | Path, comm: Communicator, driver: str = "local-task",
                 entry: str = "main", imports: Sequence[str] | None = None,
                 device_index: int | None = None):
        try:
            self._open(vmfb, comm, driver, entry, imports, device_index)
        except BaseException:
            self.close()            # a half-built context must not leak either
            raise

    def _open(self, vmfb, comm, driver, entry, imports, device_index) -> None:
        rt = _rt()
        data = Path(vmfb).read_bytes() if isinstance(vmfb, (str, Path)) else vmfb
        with _no_mpi_env():
            self.config = rt.Config(driver)
        inst = self.config.vm_instance
        self.device = self.config.device
        self.module = rt.VmModule.copy_buffer(inst, data)
        names = list(imports) if imports is not None else _imports_in(data)
        self.rhino = RhinoModule(comm, self.device, names, device_index)
        hal = rt.create_hal_module(inst, self.device)
        self.context = rt.VmContext(inst, [hal, self.rhino.vm_module, self.module])
        fn = self.module.lookup_function(entry)
        if fn is None:
            raise RhinoError(f"executable has no function '{entry}' "
                             f"(functions: {', '.join(self.module.function_names)})")
        self.invoker = rt.FunctionInvoker(self.context, self.device, fn)

    def __call__(self, *args: np.ndarray) -> list[np.ndarray]:
        res = self.invoker(*args)
        if not isinstance(res, (tuple, list)):
            res = [res]
        # copy out: results may be mapped views of buffers that die with the context
        return [np.array(r.to_host() if hasattr(r, "to_host") else r) for r in res]

    def close(self) -> None:
        for attr in ("invoker", "context", "rhino", "module", "device", "config"):
            if attr == "rhino" and hasattr(self, attr):
                self.rhino.close()
            if hasattr(self, attr):
                delattr(self, attr)
        gc.collect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _no_mpi_env():
    """Hide the MPI launcher's variables while IREE creates the device.

    Under mpiexec IREE sees PMI_SIZE / OMPI_COMM_WORLD_SIZE and tries to install its own
    MPI channel provider (dlopen libmpi.so), failing the device creation when that
    library is not on the loader path. Collectives go through the `rhino` module, so the
    provider is not wanted here (IREE's native channels are future work, FACTS.md)."""
    keys = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK")
    saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _imports_in(vmfb: bytes) -> list[str]:
    """Names of `rhino.*` imports, read from the flatbuffer's string table.

    The Python API lists only exports, so scan the bytes for the grammar of imports.py
    (an artifact's manifest lists them too; this keeps a bare .vmfb runnable)."""
    import re
    pat = re.compile(rb"rhino\.(?:partition_id|(?:all_reduce|all_gather|reduce_scatter|"
                     rb"all_to_all|collective_permute)(?:\.[a-z0-9_]+)+)")
    return sorted({m.group(0).decode() for m in pat.finditer(vmfb)})
