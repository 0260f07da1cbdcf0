"""Where a conversion's weights came from, said the same way everywhere: the verdict line, ``parity.json``, the
model card, the push gate and the suggested repo name.

Four origins: a pretrained tag, a local checkpoint (named by its file name and sha256 only: a path on the machine
that converted it says nothing to the reader and may say too much about that machine), a Hub repo at a revision,
or random weights with their seed. Random weights are not a trained model; a push of them must be asked for
explicitly (``PushRequest(allow_random_weights=True)``, ``--allow-random-weights``).

A folder converted before hubui recorded the origin has none in its ``parity.json``: :func:`read_weights_origin`
then answers ``None``, which every reader shows as :data:`UNKNOWN_ORIGIN_TEXT`, never as a guess.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from hubui.errors import CheckpointError, InvalidInputError

if TYPE_CHECKING:
    from hubui.spec import LoadedModel, ModelSpec

OriginKind = Literal["pretrained", "checkpoint", "hub", "random"]
ORIGIN_KINDS: tuple[str, ...] = ("pretrained", "checkpoint", "hub", "random")
ORIGIN_KEY = "weights_origin"
"""The ``parity.json`` key holding :meth:`WeightsOrigin.to_dict` (``"weights"`` is the saved-weights check)."""
UNKNOWN_ORIGIN_TEXT = "weights origin not recorded (converted before hubui recorded it)"
_CHUNK = 1 << 20  # hash a checkpoint 1 MiB at a time: a 10 GB file must not be read into memory at once


@dataclass(frozen=True)
class WeightsOrigin:
    """Where the weights of a conversion came from.

    Args:
        kind: ``"pretrained"``, ``"checkpoint"``, ``"hub"`` or ``"random"``.
        tag: The pretrained tag (``"a1_in1k"``), for ``pretrained``.
        checkpoint_name: The checkpoint's file name, never its path, for ``checkpoint``.
        checkpoint_sha256: The checkpoint file's sha256 (hex), for ``checkpoint``.
        repo_id: The Hub repo (``"timm/resnet18.a1_in1k"``), for ``hub``.
        revision: The revision asked for (``"main"`` when none was), for ``hub``.
        seed: The seed of the random weights, for ``random``; with a new classifier, the seed of that head.
        new_classifier: The size of a new, randomly initialised classifier put on pretrained weights
            (``num_classes`` differing from the weights' head), else ``None``.
    """

    kind: OriginKind
    tag: str | None = None
    checkpoint_name: str | None = None
    checkpoint_sha256: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    seed: int | None = None
    new_classifier: int | None = None

    @property
    def is_random(self) -> bool:
        """Whether the weights are random (not a trained model)."""
        return self.kind == "random"

    def describe(self) -> str:
        """One line for people, e.g. ``"random weights (seed 0) — not a trained model"``,
        ``"pretrained tag a1_in1k"``, ``"checkpoint my.safetensors (sha256 ab12cd34ef56…)"``."""
        if self.kind == "random":
            return f"random weights (seed {self.seed}) — not a trained model"
        if self.kind == "pretrained":
            text = f"pretrained tag {self.tag}"
        elif self.kind == "checkpoint":
            text = f"checkpoint {self.checkpoint_name} (sha256 {(self.checkpoint_sha256 or '?')[:12]}…)"
        else:
            text = f"Hub repo {self.repo_id} at {self.revision or 'main'}"
        if self.new_classifier is not None:
            text += f", with a new random {self.new_classifier}-class classifier (seed {self.seed})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The ``parity.json`` form: ``kind``, the fields that kind has, and ``description`` (:meth:`describe`)."""
        keys = {
            "pretrained": ("tag",),
            "checkpoint": ("checkpoint_name", "checkpoint_sha256"),
            "hub": ("repo_id", "revision"),
            "random": ("seed",),
        }[self.kind]
        out: dict[str, Any] = {"kind": self.kind, **{k: getattr(self, k) for k in keys}}
        if self.new_classifier is not None:
            out.update(new_classifier=self.new_classifier, seed=self.seed)
        out["description"] = self.describe()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsOrigin:
        """Read :meth:`to_dict` output back (``description`` is recomputed, not trusted).

        Raises:
            InvalidInputError: Not a mapping, or an unknown ``kind``.
        """
        kind = data.get("kind") if isinstance(data, Mapping) else None
        if kind not in ORIGIN_KINDS:
            raise InvalidInputError(
                f"Not a weights origin: kind {kind!r} is none of {', '.join(ORIGIN_KINDS)}.",
                "Convert the model again with this hubui to record where its weights came from.",
            )

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            kind=cast(OriginKind, kind),
            tag=text("tag"),
            checkpoint_name=text("checkpoint_name"),
            checkpoint_sha256=text("checkpoint_sha256"),
            repo_id=text("repo_id"),
            revision=text("revision"),
            seed=number("seed"),
            new_classifier=number("new_classifier"),
        )


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks.

    Raises:
        CheckpointError: The file cannot be read (the message names the file, not its folder).
    """
    file = Path(path).expanduser()
    digest = hashlib.sha256()
    try:
        with file.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise CheckpointError(
            f"Cannot read checkpoint {file.name!r} to hash it: {exc.strerror or exc}",
            "Check that the file exists and is readable.",
        ) from exc
    return digest.hexdigest()


def _hub_parts(hf_hub_id: str) -> tuple[str, str]:
    hub = hf_hub_id.strip().removeprefix("hf-hub:")
    repo, _, revision = hub.partition("@")
    return repo, revision or "main"


def weights_origin(spec: ModelSpec, loaded: LoadedModel | None = None) -> WeightsOrigin:
    """Where a spec's weights come from; a checkpoint is hashed (streaming).

    Args:
        spec: The model asked for.
        loaded: The model as loaded, when it is: a new classifier on pretrained weights
            (``extra["classifier_reset"]``) is recorded from it.

    Returns:
        The origin.

    Raises:
        CheckpointError: The checkpoint cannot be read.
    """
    reset = (loaded.extra.get("classifier_reset") if loaded is not None else None) or {}
    new_head = reset.get("to") if isinstance(reset, Mapping) and isinstance(reset.get("to"), int) else None
    head_seed = spec.seed if new_head is not None else None
    if spec.checkpoint is not None:
        path = Path(str(spec.checkpoint))
        return WeightsOrigin("checkpoint", checkpoint_name=path.name, checkpoint_sha256=file_sha256(path))
    if spec.hf_hub_id is not None:
        repo, revision = _hub_parts(spec.hf_hub_id)
        return WeightsOrigin("hub", repo_id=repo, revision=revision, seed=head_seed, new_classifier=new_head)
    if spec.pretrained is not None:
        return WeightsOrigin("pretrained", tag=spec.pretrained, seed=head_seed, new_classifier=new_head)
    return WeightsOrigin("random", seed=spec.seed)


def origin_of_report(parity: Mapping[str, Any] | None) -> WeightsOrigin | None:
    """The origin a ``parity.json`` (as a dict) records, or ``None`` when it records none (an older hubui)."""
    if not isinstance(parity, Mapping) or not parity.get(ORIGIN_KEY):
        return None
    try:
        return WeightsOrigin.from_dict(parity[ORIGIN_KEY])
    except InvalidInputError:
        return None  # a kind this hubui does not know is as good as none: shown as unknown, never guessed


def read_weights_origin(folder: str | Path) -> WeightsOrigin | None:
    """The origin recorded in ``folder/parity.json``.

    Returns:
        The origin, or ``None`` when the folder has no readable ``parity.json`` or it records no origin
        (converted before hubui recorded it).
    """
    path = Path(folder) / "parity.json"
    if path.is_symlink():  # read before the push refuses links: a link could point at any file on the machine
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return origin_of_report(data)


def describe_origin(origin: WeightsOrigin | None) -> str:
    """:meth:`WeightsOrigin.describe`, or :data:`UNKNOWN_ORIGIN_TEXT` for ``None``."""
    return origin.describe() if origin is not None else UNKNOWN_ORIGIN_TEXT


def _valid_name(text: str) -> str:
    """``text`` made into a name the Hub accepts (see :func:`hubui.push_names.validate_repo_id`)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    name = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", name))[:96]
    name = name.lstrip("-._").rstrip("-.")
    while name.lower().endswith(".git"):
        name = name[:-4].rstrip("-.")
    return name


def suggested_repo_name(spec: ModelSpec) -> str:
    """A repo name that follows the weights, always one the Hub accepts.

    Args:
        spec: The model.

    Returns:
        ``resnet18.a1_in1k`` for a pretrained tag, ``resnet18-random-seed0`` for random weights, the checkpoint's
        stem (``my-model`` for ``my model.safetensors``) for a checkpoint, the repo's own name for a Hub repo;
        ``model`` when nothing usable is left.
    """
    arch = _valid_name(spec.architecture or "") or "model"
    if spec.checkpoint is not None:
        name = _valid_name(Path(str(spec.checkpoint)).stem)
    elif spec.hf_hub_id is not None:
        name = _valid_name(_hub_parts(spec.hf_hub_id)[0].rsplit("/", 1)[-1])
    elif spec.pretrained is not None:
        name = _valid_name(f"{spec.architecture}.{spec.pretrained}")
    else:
        suffix = f"-random-seed{spec.seed}"  # the seed is never cut off: the architecture is
        name = _valid_name(arch[: 96 - len(suffix)] + suffix)
    return name or arch


__all__ = [
    "ORIGIN_KEY",
    "ORIGIN_KINDS",
    "UNKNOWN_ORIGIN_TEXT",
    "OriginKind",
    "WeightsOrigin",
    "describe_origin",
    "file_sha256",
    "origin_of_report",
    "read_weights_origin",
    "suggested_repo_name",
    "weights_origin",
]
