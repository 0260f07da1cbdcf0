"""How much memory an entry needs, from its model's facts (no weights downloaded), and what a machine has.

An entry holds, at its peak, the original model, the model rebuilt from the export or from the Hub, the
weights file mapped while it is read, and one parity batch: hubui's measured peak is about 3x the fp32
weights above the process (bench/results.json: 2.3-3.1x). ``WEIGHTS_FACTOR`` adds a margin over that, and
``PROCESS_BYTES`` is a worker's own footprint (Python, torch, timm, open_clip imported: about 0.5 GB).
"""

from __future__ import annotations

import os
from pathlib import Path

from hubui.batching.manifest import BatchEntry

WEIGHTS_FACTOR = 4.0
PROCESS_BYTES = 600 * 2**20
USABLE_FRACTION = 0.8  # of the memory available when the batch starts


def weights_bytes(entry: BatchEntry, token: str | None = None) -> int:
    """The entry's fp32 weights size: from the catalog's facts, or for a Hub repo not in the catalog from the
    sizes the Hub lists for its weight files. 0 when unknown (the entry then fails early on its own)."""
    from hubui.catalog import model_facts
    from hubui.errors import HubUIError

    try:
        return int(model_facts(entry.library, entry.model).size_fp32_bytes)
    except (HubUIError, ValueError, RuntimeError):
        pass
    if entry.hf_hub_id:
        return _hub_weights_bytes(entry.hf_hub_id, token)
    if entry.checkpoint:
        try:
            return Path(entry.checkpoint).stat().st_size
        except OSError:
            return 0
    return 0


def _hub_weights_bytes(repo_id: str, token: str | None) -> int:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hubui import auth

    try:
        files = list(HfApi(endpoint=auth.endpoint(), token=token).list_repo_tree(repo_id))
    except (HfHubHTTPError, OSError, ValueError):
        return 0
    sizes: dict[str, int] = {}
    for f in files:
        for ext in (".safetensors", ".bin", ".pth"):
            if f.path.endswith(ext):
                sizes[ext] = sizes.get(ext, 0) + int(getattr(f, "size", 0) or 0)
    return max(sizes.values(), default=0)  # one format is loaded, not all of them


def entry_need(weights: int) -> int:
    """Bytes an entry needs beside the others: its share of the peak, plus a worker process."""
    return int(WEIGHTS_FACTOR * weights) + PROCESS_BYTES


def available_bytes() -> int:
    """The memory this machine can give the batch now: ``MemAvailable`` times ``USABLE_FRACTION``."""
    from hubui.preflight import mem_available_bytes

    return int(mem_available_bytes() * USABLE_FRACTION)


def default_workers(needs: list[int], budget: int, cores: int | None = None) -> int:
    """What memory and cores allow: one worker per core, no more than entries, and as many of the largest
    entries as fit in ``budget`` at once (at least 1)."""
    cores = cores or os.cpu_count() or 1
    biggest = max(needs, default=PROCESS_BYTES)
    return max(1, min(cores, len(needs) or 1, budget // max(biggest, 1)))
