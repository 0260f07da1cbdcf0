"""What every library's own, single-file format does the same way: the pieces timm's and open_clip's formats share.

A native format is written by the library that loads it (no key map), into one weights file its loader reads, by a
library hubui depends on. Its weights check is by name against the original's state dict, its parity is the
generic run, and its card takes the user's fields as they are. A format class inherits these and supplies the
rest of :class:`~hubui.libraries.base.Format` itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from hubui.card import CardFields
    from hubui.libraries.base import FolderFiles
    from hubui.parity.kept import KeptReference
    from hubui.parity.metrics import Tolerance
    from hubui.parity.report import ParityReport
    from hubui.parity.weights import WeightComparison
    from hubui.spec import LoadedModel


class NativeFormat:
    """The shared half of a library's own single-file format (see the module docstring)."""

    name: str
    files: FolderFiles

    def available(self) -> bool:
        """Always: the library is one of hubui's own dependencies."""
        return True

    def weights_check(
        self, original: LoadedModel, folder: Path, precision: str, cancel: threading.Event | None = None
    ) -> WeightComparison:
        """The folder's weights file against the original's state dict, tensor by tensor, by name."""
        from hubui.parity.weights import compare_weights

        return compare_weights(original.model, Path(folder) / self.files.weights, precision, cancel)

    def iter_parity(
        self,
        original: LoadedModel,
        rebuilt: torch.nn.Module,
        precision: str,
        tolerance: Tolerance | None = None,
        images: Sequence[Any] = (),
        batch_size: int | None = None,
        cancel: threading.Event | None = None,
        folder: str | Path | None = None,
        *,
        reference: KeptReference | None = None,
        weights: WeightComparison | None = None,
        reload: Callable[[], LoadedModel] | None = None,
    ) -> Iterator[ParityReport]:
        """The generic parity run (:func:`hubui.parity.run.iter_parity`) over the format's ``pair``."""
        from hubui.parity.run import iter_parity

        return iter_parity(
            original,
            rebuilt,
            precision,
            tolerance,
            images,
            batch_size,
            cancel,
            folder,
            reference=reference,
            weights=weights,
            reload=reload,
        )

    def card_fields(self, fields: CardFields, config: dict[str, Any]) -> CardFields:
        """The user's fields as they are: the library's own format adds nothing to them."""
        return fields

    def card_source(self, config: dict[str, Any], architecture: str) -> str:
        """``"<library>:<architecture>"``."""
        return f"{self.name}:{architecture}"


__all__ = ["NativeFormat"]
