"""Give back the pages of a memory-mapped checkpoint once the loader has copied them into the model.

A library loader reads a safetensors file through a memory map (``safetensors.torch.load_file``) and copies each
tensor into the model it built (``load_state_dict``). Until the loader drops its state dict, every page it copied
stays mapped into the process, so the rebuild's resident memory peaks at the model *plus* the whole file: two
copies of the weights. :func:`drop_file_pages` is called after each copy (see :mod:`hubui._noinit`) and unmaps the
source tensor's pages from this process with ``madvise(MADV_DONTNEED)``; the peak becomes one model plus one
tensor. The data is not lost: the page cache still holds the file, and a later read of the tensor faults it back
in from there.

Only pages that the kernel reports as file-backed (``/proc/self/pagemap`` bit 61) and present are dropped. A page
the loader wrote to (a private mapping's copy-on-write page is anonymous memory) or any heap page is never
touched, so dropping can never change what the tensor reads. Elsewhere than Linux, or when pagemap cannot be read,
nothing is dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
import threading
from typing import Any

_PAGE = mmap.PAGESIZE
_MADV_DONTNEED = 4
_PRESENT = 1 << 63
_FILE_OR_SHARED = 1 << 61
_MIN_BYTES = 1 << 20  # smaller tensors are not worth two system calls

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _setup() -> tuple[int, Any] | None:
    """The pagemap file descriptor and libc's madvise, opened once; None where this cannot work."""
    with _lock:
        if "ready" in _state:
            return _state["ready"]
        ready = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
                madvise = ctypes.CDLL(None, use_errno=True).madvise
                madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                madvise.restype = ctypes.c_int
                ready = (fd, madvise)
        _state["ready"] = ready
        return ready


def _file_page_runs(fd: int, first: int, count: int) -> list[tuple[int, int]]:
    """(first page, pages) runs among ``count`` pages from page number ``first`` that are present file pages."""
    import numpy as np

    data = os.pread(fd, count * 8, first * 8)
    entries = np.frombuffer(data, dtype=np.uint64)
    keep = (entries & np.uint64(_PRESENT | _FILE_OR_SHARED)) == np.uint64(_PRESENT | _FILE_OR_SHARED)
    if not keep.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.view(np.int8), [0]))))
    return [(first + int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def drop_file_pages(tensor: Any) -> int:
    """Unmap the whole pages of ``tensor`` that are file-backed (a memory-mapped checkpoint's) from this process.

    Args:
        tensor: A tensor the loader has just copied from; anything else (a CUDA tensor, a small or
            non-contiguous tensor, a heap tensor) is left alone.

    Returns:
        The bytes unmapped (0 when nothing was).
    """
    import torch

    if not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu" or not tensor.is_contiguous():
        return 0
    size = tensor.numel() * tensor.element_size()
    if size < _MIN_BYTES:
        return 0
    ready = _setup()
    if ready is None:
        return 0
    fd, madvise = ready
    start = tensor.data_ptr()
    first = -(-start // _PAGE)  # whole pages only: a partial page is shared with the neighbouring tensor
    last = (start + size) // _PAGE
    if last <= first:
        return 0
    try:
        runs = _file_page_runs(fd, first, last - first)
    except OSError:
        return 0
    dropped = 0
    for page, pages in runs:
        if madvise(page * _PAGE, pages * _PAGE, _MADV_DONTNEED) == 0:
            dropped += pages * _PAGE
    return dropped


__all__ = ["drop_file_pages"]
