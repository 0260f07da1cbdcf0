"""timm, the whole of it: its zoo and loader (a :class:`~hubui.libraries.base.Source`) and its Hub folder format
(a :class:`~hubui.libraries.base.Format`), registered as ``"timm"``. ``SOURCE`` and ``FORMAT`` are one object.

Names: an architecture (``"resnet18"``) or ``"arch.tag"`` for pretrained weights (``"resnet18.a1_in1k"``), as timm
itself writes them. timm's models also convert to the ``"transformers"`` target (:mod:`hubui.libraries.transformers`).

The folder is what ``timm.create_model("hf-hub:...")`` expects: ``config.json`` (written by timm's own
``save_config_for_hf``) and ``model.safetensors`` (plus ``pytorch_model.bin`` only when asked). Which precision
the weights were saved in is recorded in config.json under a top-level ``"hubui"`` key::

    {"architecture": ..., "pretrained_cfg": {...}, "hubui": {"precision": "fp16", "version": "0.1.0"}}

It sits at the top level on purpose: timm turns ``pretrained_cfg`` into a ``PretrainedCfg`` dataclass, which
rejects unknown keys, while ``_parse_model_cfg`` ignores unknown top-level keys.

Sharding: timm 1.0.31 never reads ``model.safetensors.index.json``. ``load_state_dict_from_hf``
downloads exactly one ``model.safetensors`` (or ``pytorch_model.bin``), and ``load_state_dict_from_path``
(``local-dir:``) picks one preferred file or the first ``*.safetensors`` by name, which for shards would
be a partial state dict. So hubui never shards timm weights: one file, whatever the size.

The folder is rebuilt with timm's own loader: ``timm.create_model("local-dir:<folder>", pretrained=True)`` or
``"hf-hub:<repo>@<revision>"``. Parity compares one output, ``logits``, of the original and the rebuilt model on
pixels preprocessed with ``timm.data.create_transform``.

Loading (:mod:`hubui.libraries.timm_load`) and the folder (:mod:`hubui.libraries.timm_folder`) are parts of this
module; timm itself is imported only inside functions, so the registry imports this module cheaply.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hubui.errors import InvalidInputError
from hubui.facts import CatalogEntry, CatalogIndex, ModelFacts, paper_ids, tensor_sizes
from hubui.libraries.base import CardDefaults, ExportOptions, FolderFiles
from hubui.libraries.native import NativeFormat
from hubui.libraries.timm_folder import FILES
from hubui.libraries.timm_load import INTERPOLATIONS
from hubui.spec import LoadedModel, ModelSpec

if TYPE_CHECKING:
    import torch

    from hubui.libraries.base import Progress
    from hubui.parity.pairs import Pair
    from hubui.spec import ExportResult

NAME = "timm"
CONFIG_NAME = FILES.config
SAFE_WEIGHTS_NAME = FILES.weights
PICKLE_WEIGHTS_NAME = FILES.pickle


# --- catalog ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _timm_index() -> CatalogIndex:
    import timm

    architectures = tuple(CatalogEntry(name=a, architecture=a, tag=None, library=NAME) for a in timm.list_models())
    tags: dict[str, list[str]] = {e.architecture: [] for e in architectures}
    pretrained = []
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        if arch not in tags or not tag:
            continue
        tags[arch].append(tag)
        pretrained.append(CatalogEntry(name=full, architecture=arch, tag=tag, library=NAME))
    return CatalogIndex(
        architectures=architectures,
        pretrained=tuple(pretrained),
        tags={arch: tuple(sorted(t)) for arch, t in tags.items()},
    )


def _timm_build_without_weights(name: str) -> Any:
    import timm
    import torch

    try:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)
    # Some architectures compute values at construction (``.item()``, numpy) that meta tensors do not
    # support; whatever the reason, building on the CPU is the fallback, and it raises the real error.
    except Exception:
        return timm.create_model(name, pretrained=False)


def _timm_facts(entry: CatalogEntry) -> ModelFacts:
    model = _timm_build_without_weights(entry.name)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    num_params = sum(p.numel() for p in model.parameters())
    fp32, fp16 = tensor_sizes(model.state_dict().values())
    has_weights = bool(cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("file"))
    return ModelFacts(
        library=entry.library,
        name=entry.name,
        architecture=entry.architecture,
        tag=(cfg.get("tag") or entry.tag) if has_weights else entry.tag,
        num_params=num_params,
        input_size=tuple(int(v) for v in cfg.get("input_size", (3, 224, 224))),
        mean=tuple(float(v) for v in cfg.get("mean", ())),
        std=tuple(float(v) for v in cfg.get("std", ())),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        crop_mode=str(cfg.get("crop_mode", "center")),
        num_classes=int(getattr(model, "num_classes", cfg.get("num_classes", 0)) or 0),
        license=cfg.get("license"),
        paper_name=cfg.get("paper_name"),
        paper_ids=paper_ids(cfg.get("paper_ids")),
        origin_url=cfg.get("origin_url"),
        hf_hub_id=cfg.get("hf_hub_id") or None,
        pretrained_tags=_timm_index().tags.get(entry.architecture, ()),
        size_fp32_bytes=fp32,
        size_fp16_bytes=fp16,
    )


# --- parity -------------------------------------------------------------------------------------------
_TIMM_TRANSFORM_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def timm_transform(data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    """timm's eval transform for a data config (``timm.data.create_transform(..., is_training=False)``).

    Args:
        data_config: ``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode`` (any missing).

    Returns:
        A function from a PIL image to a pixel tensor.
    """
    import timm.data

    kwargs = {k: data_config[k] for k in _TIMM_TRANSFORM_KEYS if data_config.get(k) is not None}
    return timm.data.create_transform(**kwargs, is_training=False)  # type: ignore[no-any-return]


def _timm_forward(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": model(pixels)}


def timm_pair(original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
    """Both sides of a timm parity run: one output, ``logits``, ranked, probed by calling the model.

    Also the transformers target's pair: its rebuilt model takes timm-preprocessed pixels and returns logits.

    Args:
        original: The model as loaded (its module may be released: then only ``test`` is called).
        rebuilt: The model rebuilt from the export (None: only ``ref`` is called).

    Returns:
        The :class:`~hubui.parity.pairs.Pair`.
    """
    from hubui.parity.pairs import Pair, Probe, SideFn, pixels_sample

    def side(model: torch.nn.Module | None) -> SideFn:
        return lambda pixels, _first: _timm_forward(cast("torch.nn.Module", model), pixels)

    return Pair(
        ref=side(original.model),
        test=side(rebuilt),
        probes={"logits": Probe(lambda m, x: m(x), pixels_sample)},
        per_image=frozenset({"logits"}),
        ranked=frozenset({"logits"}),
    )


# --- card ---------------------------------------------------------------------------------------------
def _timm_snippet(repo_id: str) -> str:
    ref = json.dumps(f"hf-hub:{repo_id}")
    return f"""import timm
import torch
from PIL import Image

model = timm.create_model({ref}, pretrained=True)
model = model.eval()

# The preprocessing stored with the model (input size, mean, std, interpolation, crop).
data_config = timm.data.resolve_model_data_config(model)
transforms = timm.data.create_transform(**data_config, is_training=False)

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = Image.new("RGB", (256, 256), (128, 128, 128))
with torch.inference_mode():
    output = model(transforms(image).unsqueeze(0))  # a batch of one image

probabilities = output.softmax(dim=-1)
top5_probabilities, top5_class_indices = torch.topk(probabilities, k=min(5, probabilities.shape[-1]))
print(top5_class_indices.tolist(), top5_probabilities.tolist())"""


# --- the library --------------------------------------------------------------------------------------
class TimmLibrary(NativeFormat):
    """timm as a :class:`~hubui.libraries.base.Source` and a :class:`~hubui.libraries.base.Format`."""

    name: str = NAME
    separator: str = "."
    native_format: str = NAME
    targets: tuple[str, ...] = ("transformers",)
    interpolations: tuple[str, ...] = INTERPOLATIONS
    files: FolderFiles = FILES
    card: CardDefaults = CardDefaults(NAME, "image-classification", ())
    versions: tuple[str, ...] = ("timm",)
    loader_label: str = "timm's own loader"
    parity_batch_size: int | None = None  # auto_batch_size
    description: str = "timm's own format: config.json + model.safetensors, for timm.create_model('hf-hub:...')"
    install_hint: str = ""

    # --- Source -------------------------------------------------------------------------------------
    def index(self) -> CatalogIndex:
        """Every timm architecture (``timm.list_models()``) and pretrained name (``timm.list_pretrained()``).

        Built once per process.
        """
        return _timm_index()

    def facts(self, entry: CatalogEntry) -> ModelFacts:
        """The facts of an architecture or ``arch.tag``, from the model built on the meta device (CPU fallback).

        Args:
            entry: A resolved catalog entry.

        Returns:
            Parameter count, preprocessing, license and origin from the tag's (or default tag's) pretrained cfg.

        Raises:
            Exception: Whatever timm raises for an architecture it cannot build.
        """
        return _timm_facts(entry)

    def clean_tag(self, tag: str) -> str:
        """timm tags are used as written."""
        return tag

    def check_name(self, name: str) -> None:
        """Every name is looked up in the index; none is refused outright."""
        return None

    def pretrained_repos(self, architecture: str) -> dict[str, str | None]:
        """Each pretrained tag of ``architecture`` and the Hub repo timm downloads its weights from.

        Args:
            architecture: A timm architecture.

        Returns:
            ``{tag: repo_id}`` in timm's order (its default tag first); the repo is None for a tag whose weights
            come from a URL (no Hub can serve it). Empty for an unknown architecture. Used by
            :func:`hubui.servable.servable_tags`.
        """
        from timm.models import get_arch_pretrained_cfgs

        out: dict[str, str | None] = {}
        for name, cfg in get_arch_pretrained_cfgs(architecture).items():
            tag = name.partition(".")[2]
            if tag and cfg.has_weights:
                out[tag] = (cfg.hf_hub_id or "").split("@", 1)[0] or None
        return out

    def check_spec(self, spec: ModelSpec) -> None:
        """Refuse ``resize_mode`` (open_clip's; timm crops by ``crop_pct``).

        Raises:
            InvalidInputError: ``spec.resize_mode`` is set.
        """
        from hubui.libraries.timm_load import check_spec

        check_spec(spec)

    def load(self, spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
        """Build the model from a pretrained tag, a Hub repo, a checkpoint, or random weights.

        Args:
            spec: What to load and what to override (checked already).
            progress: Receives status lines.
            checkpoint_key: The nesting key of a checkpoint's tensors, or None.

        Returns:
            The model (eval, fp32, CPU), its ``pretrained_cfg`` with the overrides and its ``data_config``.

        Raises:
            InvalidInputError: A name with a tag as architecture, label names that don't fit, a Hub repo of
                another architecture.
            ModelNotFoundError: Unknown architecture or tag, or the Hub has no such repo or weights.
            HubUnreachableError: The Hub could not be reached.
            CheckpointError: The checkpoint cannot be read safely.
            CheckpointMismatchError: The weights do not fit the architecture.
        """
        from hubui.libraries.timm_load import load_timm

        return load_timm(self, spec, progress, checkpoint_key)

    # --- Format -------------------------------------------------------------------------------------
    def check_source(self, spec: ModelSpec) -> None:
        """Every timm model can be written in timm's format."""
        return None

    def owns(self, folder: Path, config: dict[str, Any] | None) -> bool:
        """Whether ``folder`` is a timm export: it has a config.json that is not a transformers config.

        timm's config.json names an ``"architecture"``; a transformers config names a ``"model_type"`` and no
        ``"architecture"``. A config.json that is neither (unreadable, empty) is timm's, as it always was, so
        timm's loader reports what is wrong with it.

        Args:
            folder: The folder.
            config: Its parsed config.json, or None when missing or not a JSON object.

        Returns:
            True for a timm folder.
        """
        if not (Path(folder) / FILES.config).is_file():
            return False
        return not (isinstance(config, dict) and "model_type" in config and "architecture" not in config)

    def export(self, loaded: LoadedModel, out_dir: Path, options: ExportOptions) -> ExportResult:
        """Write ``loaded`` as config.json and model.safetensors (and pytorch_model.bin when asked).

        Args:
            loaded: A timm model (its module is not modified).
            out_dir: The folder to create (see :func:`hubui.outdir.check_out_dir`).
            options: Precision (checked already), pickle, overwrite, progress; ``hf_tokenizer_repo`` is refused.

        Returns:
            The :class:`~hubui.spec.ExportResult`.

        Raises:
            InvalidInputError: ``hf_tokenizer_repo`` is set, or label names don't fit the classifier.
            ExportError: ``out_dir`` may not be written, timm cannot describe the model, or a write failed.
        """
        from hubui.libraries.timm_folder import export_timm

        return export_timm(loaded, out_dir, options)

    def rebuild_from_folder(self, folder: Path) -> torch.nn.Module:
        """``timm.create_model("local-dir:<folder>", pretrained=True)``, eval and fp32.

        Raises:
            InvalidInputError: No config.json in the folder.
            CheckpointMismatchError: The weights don't fit the architecture in the config.
            ModelError: timm could not build the model for another reason.
        """
        from hubui.libraries.timm_folder import rebuild_folder

        return rebuild_folder(folder)

    def rebuild_from_hub(
        self, repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None
    ) -> torch.nn.Module:
        """``timm.create_model("hf-hub:<repo>@<revision>", pretrained=True)``, eval and fp32.

        Args:
            repo_id: ``"owner/name"`` (checked for ``@`` by the caller).
            revision: A branch, tag or commit; None for the default branch.
            cache_dir: Hugging Face cache folder; None for the default.
            token: Unused: timm's loader reads the token from the environment (``HF_TOKEN``, the login cache).

        Raises:
            ModelNotFoundError: The repo, revision, config or weights file does not exist.
            HubUnreachableError: The Hub could not be reached.
            CheckpointMismatchError: The weights don't fit the architecture in the config.
            ModelError: timm could not build the model for another reason.
        """
        from hubui.libraries.timm_folder import rebuild_hub

        return rebuild_hub(repo_id, revision, cache_dir)

    def transform(self, data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
        """timm's eval transform (:func:`timm_transform`)."""
        return timm_transform(data_config)

    def pair(self, original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
        """The ``logits`` of both models (:func:`timm_pair`)."""
        return timm_pair(original, rebuilt)

    def reference_from_folder(self, folder: Path, config: dict[str, Any]) -> LoadedModel:
        """The export folder rebuilt with timm's loader, with timm's data config, as a push's reference.

        Args:
            folder: A timm export folder.
            config: Its config.json.

        Returns:
            A :class:`~hubui.spec.LoadedModel` whose source is ``"local folder <folder>"``.

        Raises:
            InvalidInputError: No config.json in the folder.
            CheckpointMismatchError, ModelError: timm could not rebuild it.
        """
        model = self.rebuild_from_folder(folder)
        spec = ModelSpec(NAME, self.architecture(config) or "unknown")
        source = f"local folder {folder}"
        import timm.data

        data_config = timm.data.resolve_data_config({}, model=model)
        pretrained_cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or {})
        return LoadedModel(spec, model, pretrained_cfg, data_config, source=source)

    def architecture(self, config: dict[str, Any]) -> str | None:
        """The config's ``"architecture"`` (timm writes it), else the one in hubui's record, else None."""
        value = config.get("architecture") or (config.get("hubui") or {}).get("architecture")
        return str(value) if value else None

    def usage_snippet(self, repo_id: str) -> str:
        """Python that loads ``repo_id`` with ``timm.create_model("hf-hub:...")`` and classifies one image."""
        return _timm_snippet(repo_id)

    def hub_config_override(self, folder: Path, repo_id: str, hf_tokenizer_self: bool) -> dict[str, bytes]:
        """Nothing: a timm folder goes up as it is.

        Raises:
            InvalidInputError: ``hf_tokenizer_self`` is set (timm models have no tokenizer).
        """
        if hf_tokenizer_self:
            raise InvalidInputError("hf_tokenizer_self applies to open_clip models only", hint="Leave it off.")
        return {}


SOURCE = FORMAT = TimmLibrary()
"""timm's :class:`~hubui.libraries.base.Source` and :class:`~hubui.libraries.base.Format` (one object)."""

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "INTERPOLATIONS",
    "PICKLE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_NAME",
    "SOURCE",
    "TimmLibrary",
    "timm_pair",
    "timm_transform",
]
