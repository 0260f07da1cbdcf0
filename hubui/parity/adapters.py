"""What differs per library: preprocessing, the outputs compared and the weights file read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from hubui.errors import InvalidInputError
from hubui.export import SAFE_WEIGHTS_NAME


# --- library adapters -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Adapter:
    make_transform: Callable[[dict[str, Any]], Callable[[Any], torch.Tensor]]
    forward: Callable[[torch.nn.Module, torch.Tensor], dict[str, torch.Tensor]]
    weights_file: str
    version_modules: tuple[str, ...]


_TIMM_TRANSFORM_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def _timm_transform(data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    import timm.data

    kwargs = {k: data_config[k] for k in _TIMM_TRANSFORM_KEYS if data_config.get(k) is not None}
    return timm.data.create_transform(**kwargs, is_training=False)


def _timm_forward(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": model(pixels)}


_ADAPTERS: dict[str, _Adapter] = {
    "timm": _Adapter(_timm_transform, _timm_forward, SAFE_WEIGHTS_NAME, ("timm",)),
}


def _adapter(library: str) -> _Adapter:
    adapter = _ADAPTERS.get(library)
    if adapter is None:
        raise InvalidInputError(
            f"Parity for library {library!r} is not supported yet",
            hint=f"Supported: {', '.join(sorted(_ADAPTERS))}.",
        )
    return adapter
