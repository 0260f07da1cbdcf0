"""A loaded model whose module was released, so that only one model is in memory at a time.

A conversion computes everything parity needs from the original before it rebuilds the model from the folder,
then drops the original (see :func:`hubui.pipeline.iter_convert`). The :class:`~hubui.spec.LoadedModel` it hands
back keeps the spec, the preprocessing and the labels; its ``model`` is a :class:`ReleasedModel`, which refuses
every use with a hubui error that says what to do instead of failing later with an ``AttributeError``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn, cast

from hubui.errors import ModelError
from hubui.spec import LoadedModel

_HINT = (
    "Load the model again (hubui.load_model(result.loaded.spec)), or convert with "
    "ConvertOptions(keep_original=True) to keep it in memory."
)


class ModelReleasedError(ModelError):
    """The original model was released after its reference outputs were computed."""

    default_hint = _HINT


class ReleasedModel:
    """Stands where a released module was; any use raises :class:`ModelReleasedError`.

    Args:
        architecture: The architecture the module was, for the message.
    """

    def __init__(self, architecture: str) -> None:
        object.__setattr__(self, "_architecture", architecture)

    def _refuse(self, what: str) -> NoReturn:
        raise ModelReleasedError(
            f"The original {self._architecture} model was released after its reference outputs were computed "
            f"(one model in memory at a time); it has no {what!s}"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and friends probe dunders: not a use of the model
        self._refuse(f"{name!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("forward pass")

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        self._refuse(f"{name!r} to set")

    def __repr__(self) -> str:
        return f"ReleasedModel({self._architecture!r})"


def is_released(loaded: LoadedModel) -> bool:
    """Whether ``loaded.model`` was released (see :func:`released`)."""
    return isinstance(loaded.model, ReleasedModel)


def released(loaded: LoadedModel) -> LoadedModel:
    """A copy of ``loaded`` that keeps everything but the module, so the module can be freed.

    Args:
        loaded: The model as loaded.

    Returns:
        A new :class:`~hubui.spec.LoadedModel`; ``loaded`` itself is left as it is (its owner may still use it).
    """
    return replace(loaded, model=cast(Any, ReleasedModel(loaded.spec.architecture)))


def give_memory_back() -> None:
    """Collect what the released model left and hand the freed heap back to the operating system.

    glibc keeps freed memory in its arenas (large tensors freed after its mmap threshold has grown land there), so
    without ``malloc_trim`` the released original would still count in the process's RSS while the rebuild
    allocates its own model. Elsewhere than glibc this is just a collection.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing more to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


__all__ = ["ModelReleasedError", "ReleasedModel", "give_memory_back", "is_released", "released"]
