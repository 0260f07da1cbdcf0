"""``hubui batch``: convert, check, push and verify a whole zoo from one manifest, locally or on Ray.

Modules: :mod:`~hubui.batch.manifest` (read and check), :mod:`~hubui.batch.plan` (skip or push, the journal),
:mod:`~hubui.batch.ratelimit` (the shared commit budget), :mod:`~hubui.batch.memory` (memory needs),
:mod:`~hubui.batch.worker` (one entry's flow), :mod:`~hubui.batch.runner_local` and
:mod:`~hubui.batch.runner_ray` (the two runners), :mod:`~hubui.batch.report` (results and live lines).

``hubui.batch(...)`` is :func:`batch`: the package is callable, so ``hubui.batch`` works whether Python
resolved it to this package or to the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hubui.batch.api import batch
from hubui.batch.manifest import BatchEntry, Manifest, ManifestError, load_manifest, parse_manifest
from hubui.batch.ratelimit import CommitBudget
from hubui.batch.report import BatchReport, EntryResult

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


class _CallablePackage(types.ModuleType):
    # Importing hubui.batch.<module> binds the package, not the function, to hubui.batch: keep it callable.
    def __call__(self, *args: Any, **kwargs: Any) -> BatchReport:
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
