"""Read and check a batch manifest: ``defaults`` plus a list of ``models``, as YAML or JSON.

A manifest is checked as a whole before any work starts: every problem (unknown key, missing or bad field,
two entries for one repo and revision) is collected, named by entry index and field, and raised together.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from hubui.errors import HubUIError, InvalidInputError
from hubui.libraries import NATIVE, get_source, source_names, target_names
from hubui.spec import PRECISIONS, ModelSpec

# Keys an entry may have; the first three have no default. ``model`` is the library's name (``arch``, or
# ``arch`` and a pretrained tag joined by the library's separator: ``arch.tag``, ``arch:tag``); ``checkpoint``
# (a local file) or ``hf_hub_id`` (a Hub repo) gives the weights instead of a tag; none of the three means
# random weights seeded by ``seed``, which are pushed only with ``allow_random_weights: true`` (not a trained model).
ENTRY_KEYS = (
    "library", "model", "repo_id", "checkpoint", "hf_hub_id", "precision", "target", "card", "revision",
    "create_pr", "private", "seed", "allow_random_weights",
)  # fmt: skip
# What ``defaults`` may set: everything but what names one model.
DEFAULT_KEYS = tuple(k for k in ENTRY_KEYS if k not in ("model", "repo_id", "checkpoint", "hf_hub_id"))
REQUIRED_KEYS = ("library", "model", "repo_id")
TOP_KEYS = ("defaults", "models")


class ManifestError(InvalidInputError):
    """A manifest that cannot be run; ``problems`` lists every problem as ``where: what``."""

    def __init__(self, path: str, problems: list[str]) -> None:
        shown = "\n  ".join(problems)
        super().__init__(
            f"Manifest {path!r} has {len(problems)} problem(s); nothing was run:\n  {shown}",
            "Fix the entries named above (models[i] counts from 0) and run again.",
        )
        self.problems = tuple(problems)


@dataclass(frozen=True)
class BatchEntry:
    """One model of a batch, with the defaults applied and paths made absolute.

    Args:
        index: Position in the manifest's ``models`` list (from 0).
        library: A registered library (:func:`hubui.libraries.source_names`).
        model: ``arch``, or ``arch`` and a pretrained tag joined by the library's separator (``arch.tag``).
        repo_id: The target repo, ``namespace/name``.
        checkpoint: A local checkpoint file (weights for ``model``'s architecture), absolute.
        hf_hub_id: A Hub repo to take the weights (and, for some libraries, the config) from.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        target: ``native`` or another registered target (:func:`hubui.libraries.target_names`).
        card: A card fields file (``.json``/``.yaml``), absolute.
        revision: Target branch; ``None`` for main.
        create_pr: Open a pull request instead of committing to the branch.
        private: Create the repo private.
        seed: Seed of random weights (no tag, checkpoint or repo).
        allow_random_weights: Push random weights (no tag, checkpoint or repo): not a trained model, and the card
            says so. Without it the manifest check refuses such an entry before any work starts.
    """

    index: int
    library: str
    model: str
    repo_id: str
    checkpoint: str | None = None
    hf_hub_id: str | None = None
    precision: str = "fp32"
    target: str = NATIVE
    card: str | None = None
    revision: str | None = None
    create_pr: bool = False
    private: bool = False
    seed: int = 0
    allow_random_weights: bool = False

    @property
    def name(self) -> str:
        """``#index repo_id``, for live lines and reports."""
        return f"#{self.index} {self.repo_id}"

    @property
    def architecture(self) -> str:
        return self.model.partition(_separator(self.library))[0]

    @property
    def tag(self) -> str | None:
        return self.model.partition(_separator(self.library))[2] or None

    def spec(self) -> ModelSpec:
        """The :class:`~hubui.spec.ModelSpec` that loads this entry's model."""
        return ModelSpec(
            self.library,  # type: ignore[arg-type]
            self.architecture,
            pretrained=self.tag,
            checkpoint=self.checkpoint,
            hf_hub_id=self.hf_hub_id,
            seed=self.seed,
        )

    def fingerprint(self) -> str:
        """sha256 of everything that decides what this entry pushes: its fields and its files' contents.

        A resumed run trusts its journal only for an entry whose fingerprint did not change.
        """
        data: dict[str, Any] = {k: v for k, v in asdict(self).items() if k != "index"}
        if not data["allow_random_weights"]:
            del data["allow_random_weights"]  # a journal written before the key existed still matches
        for key in ("checkpoint", "card"):
            if data[key] is not None:
                data[key] = _file_sha256(Path(data[key]))
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: where it was read and its entries, in order."""

    path: Path | None
    entries: tuple[BatchEntry, ...]


def _separator(library: object) -> str:
    """Between architecture and pretrained tag in ``library``'s names; ``"."`` for a library not registered."""
    return get_source(library).separator if isinstance(library, str) and library in source_names() else "."


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest file (``.yaml``, ``.yml`` or ``.json``) and check it as a whole.

    Args:
        path: The manifest. Relative ``checkpoint`` and ``card`` paths are read from its folder.

    Returns:
        The :class:`Manifest`.

    Raises:
        ManifestError: The file cannot be read or parsed, or any entry is invalid (all problems listed).
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), [f"cannot be read: {exc}"]) from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ManifestError(str(path), [f"does not parse: {exc}"]) from exc
    return parse_manifest(data, base_dir=path.parent, source=str(path), path=path)


def parse_manifest(
    data: Any, base_dir: str | Path = ".", source: str = "<manifest>", path: Path | None = None
) -> Manifest:
    """Check a manifest already parsed into Python data (a mapping with ``defaults`` and ``models``).

    Args:
        data: The parsed manifest.
        base_dir: Where relative paths are read from.
        source: The name used in error messages.
        path: The manifest file, when there is one.

    Returns:
        The :class:`Manifest`.

    Raises:
        ManifestError: Every problem found, each naming ``models[i].field``.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ManifestError(source, [f"must be a mapping with 'defaults' and 'models', not {type(data).__name__}"])
    problems += _unknown(data, TOP_KEYS, "manifest")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(f"defaults: must be a mapping, not {type(defaults).__name__}")
        defaults = {}
    problems += _unknown(defaults, DEFAULT_KEYS, "defaults", also=ENTRY_KEYS)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        problems.append("models: must be a non-empty list of entries")
        models = []
    entries: list[BatchEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(models):
        where = f"models[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping, not {type(raw).__name__}")
            continue
        found = _unknown(raw, ENTRY_KEYS, where)
        merged = {**{k: v for k, v in defaults.items() if k in DEFAULT_KEYS}, **raw}
        found += _check_entry(merged, where, Path(base_dir))
        problems += found
        if found:
            continue
        entry = _entry(i, merged, Path(base_dir))
        key = (entry.repo_id, entry.revision or "main")
        if key in seen:
            problems.append(
                f"{where}.repo_id: {entry.repo_id!r} at revision {key[1]!r} is also the target of models[{seen[key]}]"
            )
        else:
            seen[key] = i
        entries.append(entry)
        random = entry.tag is None and entry.checkpoint is None and entry.hf_hub_id is None
        if random and not entry.allow_random_weights:
            problems.append(  # apart from the checks above: the entry still counts as the target of its repo
                f"{where}: no pretrained tag, checkpoint or hf_hub_id: random weights (seed {entry.seed}) are not a "
                "trained model; set allow_random_weights: true to push them anyway"
            )
    if problems:
        raise ManifestError(source, problems)
    return Manifest(path, tuple(entries))


def _unknown(mapping: dict[str, Any], allowed: tuple[str, ...], where: str, also: tuple[str, ...] = ()) -> list[str]:
    out = []
    for key in mapping:
        if key in allowed:
            continue
        if key in also:
            out.append(f"{where}: key {key!r} names one model and cannot be a default; set it in each entry")
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        did = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(f"{where}: unknown key {key!r}{did}; allowed: {', '.join(allowed)}")
    return out


def _check_entry(e: dict[str, Any], where: str, base: Path) -> list[str]:
    from hubui.publishing import validate_branch, validate_repo_id

    out = [f"{where}.{k}: missing (required)" for k in REQUIRED_KEYS if e.get(k) in (None, "")]
    if out:
        return out

    def check(key: str, ok: bool, what: str) -> None:
        if key in e and e[key] is not None and not ok:
            out.append(f"{where}.{key}: {what}, not {e[key]!r}")

    libraries = source_names()
    check("library", e.get("library") in libraries, f"must be one of {', '.join(libraries)}")
    for key in ("model", "repo_id", "checkpoint", "hf_hub_id", "card", "revision"):
        check(key, isinstance(e.get(key), str) and bool(str(e.get(key)).strip()), "must be a non-empty string")
    check("precision", e.get("precision") in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}")
    targets = target_names()
    check("target", e.get("target") in targets, f"must be one of {', '.join(targets)}")
    for key in ("create_pr", "private", "allow_random_weights"):
        check(key, isinstance(e.get(key), bool), "must be true or false")
    check("seed", isinstance(e.get("seed"), int) and not isinstance(e.get("seed"), bool), "must be an integer")
    typed = not out
    if not all(isinstance(e.get(k), str) for k in REQUIRED_KEYS):
        return out
    if e.get("checkpoint") and e.get("hf_hub_id"):
        out.append(f"{where}: give one weights source, checkpoint or hf_hub_id, not both")
    tag = str(e["model"]).partition(_separator(e["library"]))[2]
    if tag and (e.get("checkpoint") or e.get("hf_hub_id")):
        out.append(f"{where}.model: {e['model']!r} names a pretrained tag and another weights source is given")
    for key in ("checkpoint", "card"):
        if isinstance(e.get(key), str) and e[key] and not (base / Path(e[key]).expanduser()).is_file():
            out.append(f"{where}.{key}: file not found: {str(base / Path(e[key]).expanduser())!r}")
    for key, validate in (("repo_id", validate_repo_id), ("revision", validate_branch)):
        if isinstance(e.get(key), str):
            try:
                validate(e[key])
            except HubUIError as exc:
                out.append(f"{where}.{key}: {exc.message}")
    if typed and e.get("card") and not out:
        from hubui.card import load_card_file

        try:
            load_card_file(base / Path(e["card"]).expanduser())
        except HubUIError as exc:
            out.append(f"{where}.card: {exc.message}")
    return out


def _entry(index: int, e: dict[str, Any], base: Path) -> BatchEntry:
    def path(key: str) -> str | None:
        return str((base / Path(e[key]).expanduser()).resolve()) if e.get(key) else None

    return BatchEntry(
        index=index,
        library=e["library"],
        model=str(e["model"]).strip(),
        repo_id=str(e["repo_id"]).strip(),
        checkpoint=path("checkpoint"),
        hf_hub_id=str(e["hf_hub_id"]).strip().removeprefix("hf-hub:") if e.get("hf_hub_id") else None,
        precision=e.get("precision") or "fp32",
        target=e.get("target") or NATIVE,
        card=path("card"),
        revision=e.get("revision"),
        create_pr=bool(e.get("create_pr", False)),
        private=bool(e.get("private", False)),
        seed=int(e.get("seed", 0) or 0),
        allow_random_weights=bool(e.get("allow_random_weights", False)),
    )
