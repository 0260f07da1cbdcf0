"""Read a checkpoint file into a flat state dict without running any code in it, and check that it fits a model.

Every source library (:mod:`hubui.libraries`) reads a user's checkpoint through :func:`read_checkpoint`, so the
safety rules (safetensors, or a pickle with tensors only and ``weights_only=True``; the size limits of
:mod:`hubui.checkpoint_limits`) are one piece of code.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.checkpoint_limits import ExpectedBytes, check_checkpoint_size
from hubui.errors import CheckpointError, CheckpointMismatchError, first_line
from hubui.spec import ModelSpec

if TYPE_CHECKING:
    import torch

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
CHECKPOINT_KEYS: tuple[str, ...] = ("state_dict", "model", "state_dict_ema")
PREFIX = "module."
"""The prefix DataParallel / DistributedDataParallel put on every key; stripped when every key has it."""
_SHOWN = 5  # keys named per category in a mismatch message


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read into a flat state dict.

    Args:
        path: The file, resolved.
        state_dict: Parameter name -> tensor, on the CPU, prefix stripped.
        key: The nesting key the tensors came from (``"state_dict"``...), or None when flat.
        stripped_prefix: Whether a ``module.`` prefix was removed.
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    key: str | None
    stripped_prefix: bool


def read_checkpoint(
    path: str | Path,
    checkpoint_key: str | None = None,
    *,
    expected_bytes: ExpectedBytes = None,
    architecture: str = "",
) -> Checkpoint:
    """Read a checkpoint file into a flat state dict, without running any code it may contain.

    Before anything is loaded, what the file would take in memory (a zip's declared sizes) is checked against
    hubui's limits (see :mod:`hubui.checkpoint_limits`): a zip bomb is refused without being decompressed.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.bin``, ``.ckpt`` or ``.pth.tar`` file.
        checkpoint_key: The nesting key to take tensors from; by default the first of
            ``state_dict``, ``model``, ``state_dict_ema``, or the top level when it is flat.
        expected_bytes: The architecture's fp32 weight bytes (or a callable giving them), to refuse a file
            many times larger than the model it is for.
        architecture: The architecture's name, for that message.

    Returns:
        The state dict and how it was found.

    Raises:
        CheckpointError: Missing, unsupported, corrupt or truncated file; one that would take more memory to
            load than allowed or available; a pickle that references anything but tensors; no tensor dict (the
            message says what was found instead).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise CheckpointError(f"Checkpoint file not found: '{file}'.", hint="Check the path.")
    name = file.name.lower()
    if not name.endswith(CHECKPOINT_SUFFIXES):
        raise CheckpointError(f"Unsupported checkpoint file type: '{file}'.")
    file = file.resolve()
    if file.stat().st_size == 0:
        raise CheckpointError(
            f"Checkpoint '{file}' is empty (0 bytes).",
            hint="The copy or download did not finish; fetch the file again.",
        )
    check_checkpoint_size(file, expected_bytes, architecture)
    if name.endswith(".safetensors"):
        if checkpoint_key is not None:
            raise CheckpointError(
                f"checkpoint_key={checkpoint_key!r} does not apply to '{file}': safetensors files are flat.",
                hint="Leave checkpoint_key unset for .safetensors files.",
            )
        obj: Any = _read_safetensors(file)
    else:
        obj = _read_pickle(file)
    tensors, key = _unwrap(obj, file, checkpoint_key)
    tensors, stripped = _strip_prefix(tensors, file)
    return Checkpoint(path=file, state_dict=tensors, key=key, stripped_prefix=stripped)


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    import safetensors.torch
    from safetensors import SafetensorError

    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"Cannot read safetensors file '{file}': {first_line(exc)}.",
            hint="The file is corrupt or truncated; copy or export it again.",
        ) from exc


def _read_pickle(file: Path) -> Any:
    import torch

    try:
        # weights_only=True: the unpickler accepts tensors and plain containers only, never code.
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message advises re-running with weights_only=False: never pass that advice on.
        found = re.search(r"GLOBAL (\S+?)(?: was| whose|\s|$)", str(exc)) or None
        name = found.group(1) if found else _pickle_global(file)
        what = f"it references {name}" if name else "it uses pickle instructions"
        raise CheckpointError(
            f"Refused to load '{file}': {what}, which is not a tensor or plain container; "
            "unpickling it could run code, so the safe loader (torch.load with weights_only=True) refused it.",
            hint="If you trust the file, extract its tensors in a separate environment "
            "(e.g. safetensors.torch.save_file(state_dict, 'model.safetensors')) and load that.",
        ) from exc
    # A corrupt pickle or zip surfaces as many unrelated types (KeyError, EOFError, RuntimeError...).
    except Exception as exc:
        raise CheckpointError(
            f"Cannot read checkpoint '{file}': {type(exc).__name__}: {first_line(exc)}.",
            hint="The file is corrupt, truncated or not a PyTorch checkpoint; copy or export it again.",
        ) from exc


# Globals that torch's weights-only unpickler allows; anything else is what a refused pickle references.
_SAFE_GLOBALPREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.bytearray")


def _pickle_global(file: Path) -> str | None:
    """The first global a refused pickle references that is not a tensor type, read without unpickling.

    Only for the error message: ``pickletools.genops`` walks the opcodes and runs nothing.
    """
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(member) if member else b""
        else:
            data = file.read_bytes()
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            name = None
            if op.name == "GLOBAL" and isinstance(arg, str):
                name = arg.replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            if name and not name.startswith(_SAFE_GLOBALPREFIXES):
                return name
    except Exception:  # a malformed pickle: the message then says less, nothing else changes
        return None
    return None


def _unwrap(obj: Any, file: Path, checkpoint_key: str | None) -> tuple[dict[str, torch.Tensor], str | None]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"Checkpoint '{file}' holds {_describe(obj)}, not a dict of tensors.")
    if checkpoint_key is not None:
        if checkpoint_key not in obj:
            raise CheckpointError(
                f"Checkpoint '{file}' has no key {checkpoint_key!r}; it holds {_describe(obj)}.",
                hint="Pick one of the keys listed, or leave checkpoint_key unset.",
            )
        return _tensor_dict(obj[checkpoint_key], file, checkpoint_key), checkpoint_key
    if obj and _only_tensors(obj):
        return _tensor_dict(obj, file, None), None
    for key in CHECKPOINT_KEYS:
        if isinstance(obj.get(key), Mapping):
            return _tensor_dict(obj[key], file, key), key
    raise CheckpointError(
        f"Checkpoint '{file}' holds no tensor dict: found {_describe(obj)}.",
        hint=f"Save a dict of tensors, or nest it under one of: {', '.join(CHECKPOINT_KEYS)}.",
    )


def _tensor_dict(obj: Any, file: Path, key: str | None) -> dict[str, torch.Tensor]:
    import torch

    where = f"'{file}'" if key is None else f"'{file}' [{key!r}]"
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"Checkpoint {where} holds {_describe(obj)}, not a dict of tensors.")
    bad = [(k, v) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in bad[:_SHOWN])
        raise CheckpointError(
            f"Checkpoint {where} holds {len(bad)} entries that are not named tensors: {shown}.",
            hint="Save only model.state_dict(), or pick another checkpoint_key.",
        )
    return dict(obj)


def _strip_prefix(tensors: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, torch.Tensor], bool]:
    if not any(k.startswith(PREFIX) for k in tensors):
        return tensors, False
    out: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        name = k[len(PREFIX) :] if k.startswith(PREFIX) else k
        if name in out:
            raise CheckpointError(
                f"Checkpoint '{file}' holds {name!r} both with and without the {PREFIX!r} prefix.",
                hint="Save one copy of the weights.",
            )
        out[name] = v
    return out, True


def _only_tensors(obj: Mapping[Any, Any]) -> bool:
    import torch

    return all(isinstance(v, torch.Tensor) for v in obj.values())


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        if not obj:
            return "an empty dict"
        items = list(obj.items())
        shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in items[:8])
        more = f" and {len(items) - 8} more" if len(items) > 8 else ""
        return f"a dict with keys {shown}{more}"
    return f"a {type(obj).__name__}"


def check_fits(
    model: torch.nn.Module,
    tensors: Mapping[str, torch.Tensor],
    where: str,
    spec: ModelSpec,
    hint: Callable[[], str | None] | None = None,
) -> None:
    """Raise CheckpointMismatchError naming missing, unexpected and mis-shaped keys, if any.

    Args:
        model: The model built for ``spec``.
        tensors: The checkpoint's state dict.
        where: The checkpoint, for the message.
        spec: What was asked for.
        hint: The library's hint for a mismatch (which ``num_classes`` fits...), asked only on a mismatch.

    Raises:
        CheckpointMismatchError: Keys are missing, unexpected or of another shape.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if not (missing or unexpected or mismatched):
        return

    def listed(keys: list[str], what: str, fmt: Callable[[str], str] = str) -> str:
        shown = ", ".join(fmt(k) for k in keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
        return f"{len(keys)} {what}{'' if len(keys) == 1 else 's'} ({shown})"

    parts = []
    if missing:
        parts.append(listed(missing, "missing key"))
    if unexpected:
        parts.append(listed(unexpected, "unexpected key"))
    if mismatched:
        parts.append(
            listed(
                mismatched,
                "shape mismatch",
                lambda k: f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}",
            )
        )
    raise CheckpointMismatchError(
        f"{where} does not fit {spec.library} architecture {spec.architecture!r}: {'; '.join(parts)}.",
        hint=hint() if hint is not None else None,
    )


def record_checkpoint(ckpt: Checkpoint, extra: dict[str, Any]) -> None:
    """Note where a checkpoint's tensors came from, for the card and the export."""
    extra["checkpoint_key"] = ckpt.key
    extra["stripped_prefix"] = PREFIX if ckpt.stripped_prefix else None
    extra["checkpoint_dtypes"] = sorted({str(t.dtype).removeprefix("torch.") for t in ckpt.state_dict.values()})


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG inside the block and restore the caller's RNG state after it."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_SUFFIXES",
    "PREFIX",
    "Checkpoint",
    "check_fits",
    "read_checkpoint",
    "record_checkpoint",
    "seeded",
]
