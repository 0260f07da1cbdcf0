"""``hubui batch``: convert, check, push and verify a whole zoo from one manifest, locally or on Ray.

Modules: :mod:`~hubui.batching.manifest` (read and check), :mod:`~hubui.batching.plan` (skip or push, the journal),
:mod:`~hubui.batching.ratelimit` (the shared commit budget), :mod:`~hubui.batching.memory` (memory needs),
:mod:`~hubui.batching.worker` (one entry's flow), :mod:`~hubui.batching.runner_local` and
:mod:`~hubui.batching.runner_ray` (the two runners), :mod:`~hubui.batching.report` (results and live lines).

``hubui.batch(...)`` is :func:`batch` (the package is named ``batching`` so that ``import hubui.batching.x``
never rebinds ``hubui.batch``).
"""

from __future__ import annotations

from hubui.batching.api import batch
from hubui.batching.manifest import BatchEntry, Manifest, ManifestError, load_manifest, parse_manifest
from hubui.batching.ratelimit import CommitBudget
from hubui.batching.report import BatchReport, EntryResult

__all__ = [
    "BatchEntry",
    "BatchReport",
    "CommitBudget",
    "EntryResult",
    "Manifest",
    "ManifestError",
    "batch",
    "load_manifest",
    "parse_manifest",
]
