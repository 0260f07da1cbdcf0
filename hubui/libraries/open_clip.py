"""open_clip, the whole library: its zoo and loader (a :class:`~hubui.libraries.base.Source`) and its Hub folder
format (a :class:`~hubui.libraries.base.Format`), registered as ``"open_clip"``.

One object, :data:`SOURCE` (also :data:`FORMAT`), answers both protocols; each job lives in its own part:

* :mod:`hubui.libraries.open_clip_catalog`: the index of ``arch:tag`` names and a model's facts.
* :mod:`hubui.libraries.open_clip_load`: the spec checks and the loader (tag, checkpoint, Hub repo, random).
* :mod:`hubui.libraries.open_clip_export`: the folder written (``open_clip_config.json``,
  ``open_clip_model.safetensors``, the tokenizer's files) and the config a push sends.
* :mod:`hubui.libraries.open_clip_rebuild`: the folder or Hub repo rebuilt with open_clip's own loaders.
* :mod:`hubui.libraries.open_clip_parity`: the outputs parity compares (embeddings, zero-shot logits, token ids).
* :mod:`hubui.libraries.open_clip_names`: file names and accepted values.

Nothing here imports open_clip or torch at import time: the registry imports this module to list names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import ModelNotFoundError, NotConvertibleError
from hubui.libraries.base import CardDefaults, ExportOptions, Progress
from hubui.libraries.native import NativeFormat
from hubui.libraries.open_clip_catalog import (
    _openclip_clean_tag,
    _openclip_facts,
    _openclip_index,
    open_clip_tokenizer_info,
    split_open_clip_hf_hub,
)
from hubui.libraries.open_clip_export import FILES
from hubui.libraries.open_clip_names import (
    OPEN_CLIP_CONFIG_NAME,
    OPEN_CLIP_INTERPOLATIONS,
    OPEN_CLIP_PICKLE_WEIGHTS_NAME,
    OPEN_CLIP_RESIZE_MODES,
    OPEN_CLIP_SAFE_WEIGHTS_NAME,
    TOKENIZER_ATTR,
)
from hubui.libraries.open_clip_parity import (
    _OPEN_CLIP_VERSIONS,
    DEFAULT_LABELS,
    MAX_PROMPTS,
    PROMPT_TEMPLATE,
    parity_prompts,
)
from hubui.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from hubui.facts import CatalogEntry, CatalogIndex, ModelFacts
    from hubui.libraries.base import Format, Source
    from hubui.parity.pairs import Pair
    from hubui.spec import ExportResult, LoadedModel


def _open_clip_snippet(repo_id: str) -> str:
    ref = json.dumps(f"hf-hub:{repo_id}")
    return f"""import open_clip
import torch
from PIL import Image

model, preprocess = open_clip.create_model_from_pretrained({ref})
tokenizer = open_clip.get_tokenizer({ref})
model = model.eval()

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = preprocess(Image.new("RGB", (256, 256), (128, 128, 128))).unsqueeze(0)
labels = ["a diagram", "a dog", "a cat"]
text = tokenizer(labels)

with torch.inference_mode():
    image_features = model.encode_image(image, normalize=True)
    text_features = model.encode_text(text, normalize=True)
    text_probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)

print(dict(zip(labels, text_probs[0].tolist())))"""


class OpenClip(NativeFormat):
    """open_clip as a source (zoo and loader) and as its own Hub folder format.

    Attributes:
        name: ``"open_clip"``.
        separator: ``":"``, between architecture and tag (``"ViT-B-32:laion2b_s34b_b79k"``).
        native_format: ``"open_clip"``: the folder open_clip's ``hf-hub:`` loaders read.
        targets: None besides the native format.
        interpolations: What open_clip's image transform accepts.
        files: ``open_clip_config.json``, ``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``.
        card: ``library_name`` open_clip, ``pipeline_tag`` zero-shot-image-classification, tag ``clip`` (what
            open_clip's own push script writes).
        versions: open_clip_torch, timm (it builds the timm-based towers) and transformers (Hugging Face
            tokenizers).
        loader_label: ``"open_clip's own loader"``.
    """

    name = "open_clip"
    separator = ":"
    native_format = "open_clip"
    targets: tuple[str, ...] = ()
    interpolations: tuple[str, ...] = OPEN_CLIP_INTERPOLATIONS
    files = FILES
    card = CardDefaults("open_clip", "zero-shot-image-classification", ("clip",))
    versions: tuple[str, ...] = _OPEN_CLIP_VERSIONS
    loader_label = "open_clip's own loader"
    parity_batch_size: int | None = None  # auto_batch_size
    description = "open_clip's own format, for open_clip.create_model_from_pretrained('hf-hub:...')"
    install_hint = ""

    # --- Source ---------------------------------------------------------------------------------------
    def index(self) -> CatalogIndex:
        """Every open_clip architecture and ``arch:tag`` name, cached per content of open_clip's registry."""
        return _openclip_index()

    def facts(self, entry: CatalogEntry) -> ModelFacts:
        """Parameter count, preprocessing, tokenizer and tags of an entry, built on the meta device.

        Raises:
            HubUnreachableError: A Hugging Face text tower's config could not be read from the Hub.
            ModelError: open_clip could not build the architecture.
        """
        return _openclip_facts(entry)

    def clean_tag(self, tag: str) -> str:
        """open_clip's own tag normalisation (lower case, ``-`` read as ``_``)."""
        return _openclip_clean_tag(tag)

    def check_name(self, name: str) -> None:
        """Refuse an ``hf-hub:`` name, which is a Hub repo rather than a catalog name.

        Raises:
            ModelNotFoundError: ``name`` starts with ``hf-hub:`` (the hint says to pass it as ``hf_hub_id``).
        """
        if name.startswith("hf-hub:"):
            raise ModelNotFoundError(
                f"{name!r} is a Hub repo, not a name in open_clip's catalog.",
                hint=f"Load it with hf_hub_id={name.removeprefix('hf-hub:')!r} (and a name for it as architecture).",
            )

    def pretrained_repos(self, architecture: str) -> dict[str, str | None]:
        """Each pretrained tag of ``architecture`` and the Hub repo open_clip downloads its weights from.

        Args:
            architecture: An open_clip architecture.

        Returns:
            ``{tag: repo_id}`` in open_clip's order; the repo is None for a tag published only at a URL (no Hub
            can serve it). Empty for an unknown architecture. Used by :func:`hubui.servable.servable_tags`.
        """
        import open_clip

        return {
            tag: split_open_clip_hf_hub(str(open_clip.get_pretrained_cfg(architecture, tag).get("hf_hub") or ""))[0]
            for tag in open_clip.list_pretrained_tags_by_model(architecture)
        }

    def check_spec(self, spec: ModelSpec) -> None:
        """Refuse ``crop_pct`` and ``num_classes`` (open_clip has neither) and unknown resize modes.

        Raises:
            InvalidInputError: The message names the field and says what open_clip does instead.
        """
        from hubui.libraries.open_clip_load import check_spec

        check_spec(spec)

    def load(self, spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
        """Build the model with its weights, tokenizer and preprocessing (see :mod:`~hubui.libraries.open_clip_load`).

        Raises:
            InvalidInputError, ModelNotFoundError, HubUnreachableError, CheckpointError, CheckpointMismatchError,
            ModelError: As :func:`hubui.loading.load_model` documents.
        """
        from hubui.libraries.open_clip_load import load

        return load(spec, progress, checkpoint_key)

    # --- Format ---------------------------------------------------------------------------------------
    def check_source(self, spec: ModelSpec) -> None:
        """Refuse a model of another library: only open_clip models are written as open_clip folders.

        Raises:
            NotConvertibleError: ``spec.library`` is not ``"open_clip"``.
        """
        if spec.library != self.name:
            raise NotConvertibleError(
                f"{spec.library} models cannot be written as open_clip folders.",
                hint="Convert open_clip models to the open_clip format, or use the target of the model's library.",
            )

    def owns(self, folder: Path, config: dict[str, Any] | None) -> bool:
        """Whether ``folder`` holds an ``open_clip_config.json`` (readable or not: rebuilding says what is wrong)."""
        return (Path(folder) / OPEN_CLIP_CONFIG_NAME).is_file()

    def export(self, loaded: LoadedModel, out_dir: Path, options: ExportOptions) -> ExportResult:
        """Write the folder open_clip's ``hf-hub:`` loaders read (see :func:`~hubui.libraries.open_clip_export.export`).

        Raises:
            InvalidInputError: ``hf_tokenizer_repo`` for a CLIP BPE model, or not a repo id.
            ExportError: The tokenizer cannot be written, the folder is refused, or a write failed.
        """
        from hubui.libraries.open_clip_export import export

        return export(loaded, out_dir, options)

    def rebuild_from_folder(self, folder: Path) -> torch.nn.Module:
        """The model and its tokenizer (``model.hubui_tokenizer``) rebuilt with open_clip's ``local-dir:`` loaders.

        Raises:
            InvalidInputError: No open_clip_config.json in the folder.
            CheckpointMismatchError, ModelError: open_clip could not rebuild it.
        """
        from hubui.libraries.open_clip_rebuild import rebuild_from_folder

        return rebuild_from_folder(folder)

    def rebuild_from_hub(
        self, repo_id: str, revision: str | None, cache_dir: str | Path | None, token: str | None
    ) -> torch.nn.Module:
        """The model and its tokenizer rebuilt with open_clip's ``hf-hub:`` loaders, at ``revision``.

        See :func:`hubui.libraries.open_clip_rebuild.rebuild_from_hub` for how a revision is reached.

        Raises:
            ModelNotFoundError, HubUnreachableError, CheckpointMismatchError, ModelError: As documented there.
        """
        from hubui.libraries.open_clip_rebuild import rebuild_from_hub

        return rebuild_from_hub(repo_id, revision, cache_dir, token)

    def transform(self, data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
        """open_clip's eval transform (``image_transform_v2``) for the data config's size, norm and resize mode."""
        from hubui.libraries.open_clip_parity import _open_clip_transform

        return _open_clip_transform(data_config)

    def pair(self, original: LoadedModel, rebuilt: torch.nn.Module | None) -> Pair:
        """Embeddings, zero-shot logits and token ids of both sides, each side with its own tokenizer.

        Raises:
            InvalidInputError: The original has no tokenizer, or the rebuilt model (another one) carries none.
        """
        from hubui.libraries.open_clip_parity import _open_clip_pair

        return _open_clip_pair(original, rebuilt)

    def reference_from_folder(self, folder: Path, config: dict[str, Any]) -> LoadedModel:
        """The folder rebuilt, with the fields :meth:`load` fills, as the reference for verifying a push.

        Raises:
            InvalidInputError: No open_clip_config.json in the folder.
            CheckpointMismatchError, ModelError: open_clip could not rebuild it.
        """
        from hubui.libraries.open_clip_parity import _open_clip_reference

        model = self.rebuild_from_folder(folder)
        spec = ModelSpec(self.name, self.architecture(config) or "unknown")
        return _open_clip_reference(model, spec, config, f"local folder {folder}")

    def architecture(self, config: dict[str, Any]) -> str | None:
        """The architecture hubui recorded (``config["hubui"]["architecture"]``): open_clip's config has none."""
        value = (config.get("hubui") or {}).get("architecture")
        return value if isinstance(value, str) and value else None

    def usage_snippet(self, repo_id: str) -> str:
        """Python that loads ``hf-hub:<repo_id>`` with open_clip and scores a stand-in image against three labels."""
        return _open_clip_snippet(repo_id)

    def hub_config_override(self, folder: Path, repo_id: str, hf_tokenizer_self: bool) -> dict[str, bytes]:
        """The open_clip_config.json to push instead of the folder's (``hf_tokenizer_self``), or nothing.

        Raises:
            InvalidInputError: ``hf_tokenizer_self`` without a Hugging Face tokenizer, or a tokenizer named by a
                local path (see :func:`hubui.libraries.open_clip_export.hub_config_override`).
        """
        from hubui.libraries.open_clip_export import hub_config_override

        return hub_config_override(folder, repo_id, hf_tokenizer_self)


SOURCE = OpenClip()
FORMAT = SOURCE

if TYPE_CHECKING:  # mypy checks that the one object answers both protocols
    _as_source: Source = SOURCE
    _as_format: Format = FORMAT

__all__ = [
    "DEFAULT_LABELS",
    "FORMAT",
    "MAX_PROMPTS",
    "OPEN_CLIP_CONFIG_NAME",
    "OPEN_CLIP_INTERPOLATIONS",
    "OPEN_CLIP_PICKLE_WEIGHTS_NAME",
    "OPEN_CLIP_RESIZE_MODES",
    "OPEN_CLIP_SAFE_WEIGHTS_NAME",
    "PROMPT_TEMPLATE",
    "SOURCE",
    "TOKENIZER_ATTR",
    "OpenClip",
    "open_clip_tokenizer_info",
    "parity_prompts",
    "split_open_clip_hf_hub",
]
