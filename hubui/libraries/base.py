"""What hubui needs from a model library, in two protocols.

A :class:`Source` is a model zoo and its loader: it searches names, gives a model's facts and loads a model
(a pretrained tag, a checkpoint, a Hub repo or random weights) into a :class:`~hubui.spec.LoadedModel`.

A :class:`Format` is a Hub folder format: it writes a loaded model as a folder, rebuilds the model from that
folder or from the Hub with the library's own loader, turns pixels into the named outputs parity compares, and
gives the card's defaults and usage snippet.

A library module in :mod:`hubui.libraries` supplies one of each or both (timm and open_clip are a source with
its own native format; ``transformers`` is a format that timm models convert to). The core (pipeline, parity,
export, card, publishing, the CLI and the UI) only ever calls these methods, found through the registry in
:mod:`hubui.libraries` by name. The model is huggingface_hub's ``ModelHubMixin``: each library supplies how to
save and load, hubui does the Hub work around it.

This module imports no library and no core job module, so every module may import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from hubui.card import CardFields
    from hubui.facts import CatalogEntry, CatalogIndex, ModelFacts
    from hubui.parity.kept import KeptReference
    from hubui.parity.metrics import Tolerance
    from hubui.parity.pairs import Pair
    from hubui.parity.report import ParityReport
    from hubui.parity.weights import WeightComparison
    from hubui.spec import ExportResult, LoadedModel, ModelSpec

Progress = Callable[[str], None]
"""Receives short status lines (``"loading checkpoint model.pth"``...)."""

ExportProgress = Callable[[str, float], None]
"""Called as ``progress(message, fraction)`` with ``fraction`` in [0, 1]."""


@dataclass(frozen=True)
class FolderFiles:
    """The file names a format's loader looks for.

    Args:
        config: The config file (``config.json``, ``open_clip_config.json``).
        weights: The safetensors weights file.
        pickle: The pickle weights file, written only when asked (``pytorch_model.bin``...).
        index: For a loader that reads sharded safetensors (transformers' ``from_pretrained``): the index file
            written instead of ``weights`` when the weights are over ``ExportOptions.max_shard_size``
            (``model.safetensors.index.json``). None: one weights file, never sharded (timm, open_clip).
    """

    config: str
    weights: str
    pickle: str
    index: str | None = None


@dataclass(frozen=True)
class CardDefaults:
    """What a format's model card says unless the user says otherwise.

    Args:
        library_name: The card's ``library_name`` (the Hub's library tag).
        pipeline_tag: The card's ``pipeline_tag``.
        tags: Extra tags.
    """

    library_name: str
    pipeline_tag: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportOptions:
    """How a format writes its folder (see :func:`hubui.export.export_model` for each option's meaning).

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        include_pytorch_bin: Also write the pickle weights file.
        overwrite: Replace an earlier hubui export at the folder.
        hf_tokenizer_repo: Formats with a Hugging Face tokenizer: the repo the config names as its source.
        progress: Optional ``progress(message, fraction)``.
        max_shard_size: Formats whose ``files.index`` is set: weights over this size (bytes, or ``"5GB"``,
            ``"500MB"``) are written as shards with an index; None: :data:`hubui.preflight.DEFAULT_MAX_SHARD_SIZE`.
            Ignored by one-file formats.
    """

    precision: str = "fp32"
    include_pytorch_bin: bool = False
    overwrite: bool = False
    hf_tokenizer_repo: str | None = None
    progress: ExportProgress | None = None
    max_shard_size: str | int | None = None


@runtime_checkable
class Source(Protocol):
    """A model zoo and its loader.

    Attributes:
        name: The registry name (``ModelSpec.library``), e.g. ``"timm"``.
        separator: Between architecture and pretrained tag in a catalog name (``"."``, ``":"``).
        native_format: The :class:`Format` written by the ``"native"`` target (usually the same name).
        targets: Other formats this source's models convert to (``ConvertOptions.target``).
        interpolations: The resize interpolations ``ModelSpec.interpolation`` may name.
    """

    name: str
    separator: str
    native_format: str
    targets: tuple[str, ...]
    interpolations: tuple[str, ...]

    def index(self) -> CatalogIndex:
        """Every architecture and pretrained name of the zoo (built once per process by the caller's cache)."""
        ...

    def facts(self, entry: CatalogEntry) -> ModelFacts:
        """The facts of one catalog entry, without downloading weights."""
        ...

    def clean_tag(self, tag: str) -> str:
        """The library's own normalisation of a pretrained tag (identity where it has none)."""
        ...

    def check_name(self, name: str) -> None:
        """Refuse a name that is not a catalog name of this library (raises ModelNotFoundError with a hint)."""
        ...

    def check_spec(self, spec: ModelSpec) -> None:
        """Refuse overrides this library does not have (after the generic checks; raises InvalidInputError)."""
        ...

    def load(self, spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
        """Build the model ``spec`` names, with its weights and preprocessing config (eval, fp32, CPU)."""
        ...


@runtime_checkable
class Format(Protocol):
    """A Hub folder format: written from a loaded model, rebuilt with the library's own loader.

    Attributes:
        name: The registry name, e.g. ``"timm"`` or ``"transformers"``.
        files: The file names its loader reads.
        card: The card's defaults.
        versions: The distributions whose versions a parity report records (``"timm"``...).
        loader_label: How the rebuild is described to people ("timm's own loader").
        parity_batch_size: The parity batch size when none is given; None: :func:`hubui.parity.auto_batch_size`.
        description: One line saying what this format is, for a list of conversion targets.
        install_hint: How to install what this format needs when :meth:`available` is false.
    """

    name: str
    files: FolderFiles
    card: CardDefaults
    versions: tuple[str, ...]
    loader_label: str
    parity_batch_size: int | None
    description: str
    install_hint: str

    def available(self) -> bool:
        """Whether what this format needs is installed (an optional library may be missing)."""
        ...

    def check_source(self, spec: ModelSpec) -> None:
        """Refuse, before anything is loaded, a model this format cannot be written from (NotConvertibleError)."""
        ...

    def owns(self, folder: Path, config: dict[str, Any] | None) -> bool:
        """Whether ``folder`` is in this format; ``config`` is its parsed ``files.config`` when that exists."""
        ...

    def export(self, loaded: LoadedModel, out_dir: Path, options: ExportOptions) -> ExportResult:
        """Write ``loaded`` as a folder at ``out_dir`` (staged, so a failure leaves no folder)."""
        ...

    def rebuild_from_folder(self, folder: Path) -> torch.nn.Module:
        """The model rebuilt from an export folder with the library's own loader (eval, fp32)."""
        ...

    def rebuild_from_hub(
        self, repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None
    ) -> torch.nn.Module:
        """The model rebuilt from a Hub repo with the library's own ``hf-hub:`` loader (eval, fp32)."""
        ...

    def transform(self, data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
        """The eval preprocessing: a PIL image to a pixel tensor."""
        ...

    def pair(self, original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
        """Both sides of a parity run: the named outputs and probes (see :mod:`hubui.parity.pairs`).

        One side at a time, so that only one model is in memory: with ``rebuilt`` None only ``ref`` is called
        (the original's outputs, computed before the rebuild); with ``original.model`` released
        (:func:`hubui.released.is_released`: spec, preprocessing and labels kept) only ``test`` is called, and
        the probes are taken from a new pair once the original is reloaded.
        """
        ...

    def weights_check(
        self, original: LoadedModel, folder: Path, precision: str, cancel: threading.Event | None = None
    ) -> WeightComparison:
        """The written weights file against the original, tensor by tensor (streamed), before it is released."""
        ...

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
        """Stream parity of ``rebuilt`` (from a folder in this format) against ``original``, or against the
        original's kept outputs ``reference`` with the ``weights`` check made before it was released and
        ``reload`` to get it back for a failure's module search (see :func:`hubui.parity.run.iter_parity`)."""
        ...

    def reference_from_folder(self, folder: Path, config: dict[str, Any]) -> LoadedModel:
        """An export folder, rebuilt, as the reference for verifying a push made from it."""
        ...

    def architecture(self, config: dict[str, Any]) -> str | None:
        """The architecture an export's config names, or None."""
        ...

    def card_fields(self, fields: CardFields, config: dict[str, Any]) -> CardFields:
        """The user's card fields with what this format adds (a converted model's ``base_model``...)."""
        ...

    def card_source(self, config: dict[str, Any], architecture: str) -> str:
        """Where the weights came from, for the card (``"timm:resnet50"``)."""
        ...

    def usage_snippet(self, repo_id: str) -> str:
        """Python that loads the pushed repo with the library and runs it."""
        ...

    def hub_config_override(self, folder: Path, repo_id: str, hf_tokenizer_self: bool) -> dict[str, bytes]:
        """Config files to upload with other content than the folder's, for a push to ``repo_id``."""
        ...


__all__ = ["CardDefaults", "ExportOptions", "ExportProgress", "FolderFiles", "Format", "Progress", "Source"]
