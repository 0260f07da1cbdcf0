"""The verified flow for one model, as the CLI, the app and the notebooks run it.

``iter_convert`` loads the model, writes the Hub folder, rebuilds the model from that folder with
the library's own loader and streams the parity report batch by batch, then writes ``parity.json``.
``publish`` builds the card, pushes the folder as one commit and re-downloads it to verify.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

from huggingface_hub import ModelCard

from hubui.card import CardFields, build_card, default_fields
from hubui.card_prefill import fields_for_folder
from hubui.catalog import pretrained_name
from hubui.errors import ExportError, InvalidInputError
from hubui.export import read_export_config, read_export_precision
from hubui.export_folder import check_precision
from hubui.libraries import NATIVE, folder_format, format_names, get_format, target_format
from hubui.libraries.base import ExportOptions
from hubui.loading import load_model
from hubui.one_model import Eta, iter_export_and_reference
from hubui.outdir import check_out_dir, export_files
from hubui.parity import (
    ParityReport,
    Tolerance,
    auto_batch_size,
    build_parity_inputs,
    library_versions,
    tolerance_preset,
    write_parity_json,
)
from hubui.parity.kept import cancelled_report, read_kept, write_kept
from hubui.parity.run import _device_of
from hubui.preflight import check_room
from hubui.provenance import weights_origin
from hubui.publishing import PushPlan, PushRequest, PushResult, Verification, plan_push, push, verify_push
from hubui.push_files import folder_files
from hubui.push_tags import tag_after_push
from hubui.released import give_memory_back, is_released, released
from hubui.spec import ExportResult, LoadedModel, ModelSpec

Stage = Literal["load", "export", "reference", "rebuild", "parity", "done"]
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert.

    Args:
        out_dir: The folder to write (must not exist or be empty unless ``overwrite``).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; never changed behind your back.
        tolerance: Overrides the precision's tolerance preset.
        images: Extra parity images of the user's own (paths).
        include_pytorch_bin: Also write ``pytorch_model.bin``.
        overwrite: Replace an earlier hubui export in ``out_dir`` (a folder holding anything else, the current
            directory, a folder above it and home are refused: see :mod:`hubui.outdir`).
        batch_size: Parity batch size; ``None`` (the default) picks it from the model's size and input size so
            the forward passes add at most about a fifth of the weights' memory (see
            :func:`hubui.parity.auto_batch_size`, leaving at least 4 batches: 1 for resnet50, 2 for ViT-B-32).
        hf_tokenizer_repo: A model with a Hugging Face tokenizer: the repo the written config names as the
            tokenizer's source (see :func:`hubui.export.export_model`). Usually left unset and decided at push
            time with ``PushRequest(hf_tokenizer_self=True)``.
        target: ``"native"`` (the library's own format) or another format the library's models convert to
            (:func:`hubui.libraries.target_names`; e.g. ``"transformers"``, see :mod:`hubui.libraries.transformers`).
        max_shard_size: A target whose loader reads shards (transformers): weights over this size (bytes, or
            ``"5GB"``, ``"500MB"``) are written as shards with an index; None: ``"5GB"``, as transformers does.
            One-file formats (timm, open_clip) never shard.
        allow_unpushable_size: Write a weights file over the Hub's 50 GB limit per file anyway (the folder is
            for local use: the push refuses it); otherwise the conversion refuses before writing and names the
            precision that fits (see :mod:`hubui.preflight`).
        keep_original: Keep the original model in memory and hand it back in ``ConvertResult.loaded``. By
            default it is released once its outputs on the parity inputs are computed and the written weights are
            checked against it, before the model is rebuilt from the folder, so that only one model is in memory
            at a time (``ConvertResult.loaded`` then keeps the spec, preprocessing and labels, and any use of its
            ``model`` raises :class:`~hubui.released.ModelReleasedError`). A model passed as ``loaded=`` stays in
            memory while its caller holds a reference to it.
        memory_check: Refuse before writing when the memory available is short of the rebuild's need; turn it
            off when you know more is free than ``MemAvailable`` says.
    """

    out_dir: Path
    precision: str = "fp32"
    tolerance: Tolerance | None = None
    images: tuple[str | Path, ...] = ()
    include_pytorch_bin: bool = False
    overwrite: bool = False
    batch_size: int | None = None
    hf_tokenizer_repo: str | None = None
    target: str = NATIVE
    max_shard_size: str | int | None = None
    allow_unpushable_size: bool = False
    memory_check: bool = True
    keep_original: bool = False


@dataclass(frozen=True, eq=False)
class ConvertResult:
    """A finished conversion: the model as loaded, the folder written, and its parity report.

    ``loaded.model`` is released unless ``ConvertOptions(keep_original=True)`` (see there).
    """

    loaded: LoadedModel
    export: ExportResult
    report: ParityReport

    @property
    def passed(self) -> bool:
        return self.report.verdict == "pass"


@dataclass(frozen=True, eq=False)
class ConvertEvent:
    """One step of a running conversion, for live display.

    Args:
        stage: ``load``, ``export`` (writing the folder), ``reference`` (the original's outputs on the parity
            inputs, one per batch, while the folder is written; then the weights check), ``rebuild``, ``parity``
            (the rebuilt model's outputs against the kept ones, one per batch; every ``parity`` event has a
            report) or ``done`` (last). ``export`` and ``reference`` run at the same time, so their events
            interleave.
        message: A line for people.
        fraction: Progress of the whole conversion, 0 to 1.
        report: The parity report so far (``parity`` and ``done``).
        result: Only on ``done``.
        stage_fraction: Progress within the stage, 0 to 1; None when the stage cannot tell.
        eta_s: Estimated seconds left for the whole conversion, from the rates measured so far
            (:class:`hubui.one_model.Eta`); None until a rate is known.
    """

    stage: Stage
    message: str
    fraction: float
    report: ParityReport | None = None
    result: ConvertResult | None = None
    stage_fraction: float | None = None
    eta_s: float | None = None


def iter_convert(
    spec: ModelSpec,
    options: ConvertOptions,
    cancel: threading.Event | None = None,
    loaded: LoadedModel | None = None,
) -> Iterator[ConvertEvent]:
    """Run the conversion step by step, yielding an event after each step and each parity batch.

    Args:
        spec: Which model.
        options: How to convert.
        cancel: Set it (from another thread) to stop parity between batches; the folder is then
            written with a ``cancelled`` verdict, which the push gate refuses.
        loaded: An already-loaded model for ``spec`` (skips loading).

    Yields:
        :class:`ConvertEvent`; the last has ``stage == "done"`` and the :class:`ConvertResult`.

    Raises:
        Every error of loading, export and parity, as :class:`~hubui.errors.HubUIError` subclasses,
        before or while the folder is written; an export that failed leaves no folder.
    """
    name = f"{spec.library} {pretrained_name(spec.library, spec.architecture, spec.pretrained)}"
    fmt = target_format(spec.library, options.target)
    fmt.check_source(spec)  # a model the format cannot express is refused before anything is loaded
    check_out_dir(options.out_dir, options.overwrite)  # a folder in the way costs no model load
    if loaded is None:
        yield ConvertEvent("load", f"loading {name}", 0.0, stage_fraction=0.0)
        loaded = load_model(spec)
        yield ConvertEvent("load", f"loaded {name}", 0.15, stage_fraction=1.0)
    check_precision(options.precision)
    origin = weights_origin(spec, loaded)  # a checkpoint is hashed before anything is written
    export_options = ExportOptions(
        options.precision,
        options.include_pytorch_bin,
        options.overwrite,
        options.hf_tokenizer_repo,
        max_shard_size=options.max_shard_size,
    )
    check_room(  # disk, memory and the Hub's file limit, before anything is written
        loaded,
        options.out_dir,
        options.precision,
        fmt.files,
        include_pickle=options.include_pytorch_bin,
        max_shard_size=options.max_shard_size,
        allow_unpushable_size=options.allow_unpushable_size,
        memory_check=options.memory_check,
    )
    # The reference side: the original's own format names the outputs (timm's logits for the transformers target).
    ref_pair = get_format(spec.library).pair(loaded, None)
    inputs = build_parity_inputs(loaded.data_config, tuple(options.images), library=loaded.spec.library)
    batch_size = options.batch_size or fmt.parity_batch_size
    if batch_size is None:
        batch_size = auto_batch_size(loaded.model, tuple(inputs.pixels.shape[1:]))
    batches = -(-len(inputs) // batch_size)
    eta = Eta()
    yield ConvertEvent(
        "export", f"writing the {options.precision} Hub folder to {options.out_dir}", 0.2, stage_fraction=0.0
    )
    yield ConvertEvent("reference", "computing the original's outputs on the parity inputs", 0.2, stage_fraction=0.0)
    last_step, overall = None, 0.2
    for step in iter_export_and_reference(
        fmt,
        loaded,
        Path(options.out_dir),
        export_options,
        ref_pair,
        inputs,
        batch_size,
        _device_of(loaded.model),
        eta,
        cancel,
    ):
        last_step = step
        overall = max(overall, 0.2 + 0.2 * step.stage_fraction)  # the two stages interleave: never step back
        yield ConvertEvent(
            cast(Stage, step.stage),
            step.message,
            overall,
            stage_fraction=step.stage_fraction,
            eta_s=eta.seconds_left(batches),
        )
    if last_step is None or last_step.export is None or last_step.kept is None:  # a broken invariant, not input
        raise ExportError("The export ended without a folder or reference outputs", "Report this as a hubui bug.")
    export, kept = last_step.export, last_step.kept
    del last_step, step, ref_pair
    yield ConvertEvent(
        "reference",
        f"checking {export.folder.name}'s weights against the original",
        0.4,
        stage_fraction=0.99,
        eta_s=eta.seconds_left(batches),
    )
    started = time.perf_counter()
    weights = fmt.weights_check(loaded, export.folder, options.precision, cancel)
    eta.weights_s = time.perf_counter() - started
    yield ConvertEvent("reference", "reference outputs kept", 0.45, stage_fraction=1.0, eta_s=eta.seconds_left(batches))
    kept_original = loaded if options.keep_original else None
    held = weakref.ref(loaded.model)  # a caller that kept its own reference keeps the model alive: reuse it then
    original = released(loaded)
    del loaded
    give_memory_back()  # the original's memory goes back before the rebuild allocates its own

    def reload() -> LoadedModel:
        alive = held() if kept_original is None else kept_original.model
        return replace(original, model=alive) if alive is not None else load_model(spec)

    report: ParityReport | None = None
    if cancel is not None and cancel.is_set():  # cancelled before the rebuild: there is nothing to compare
        report = cancelled_report(kept, options.precision, options.tolerance, weights)
    else:
        yield ConvertEvent(
            "rebuild",
            f"rebuilding from {export.folder} with {fmt.loader_label}",
            0.5,
            stage_fraction=0.0,
            eta_s=eta.seconds_left(batches),
        )
        started = time.perf_counter()
        rebuilt = fmt.rebuild_from_folder(export.folder)
        eta.rebuild_s = time.perf_counter() - started
        eta.parity_left = batches  # the rebuild ends with the first parity event (each of which has a report)
        started = time.perf_counter()
        for report in fmt.iter_parity(
            original,
            rebuilt,
            options.precision,
            tolerance=options.tolerance,
            images=tuple(options.images),
            cancel=cancel,
            reference=kept,
            weights=weights,
            reload=reload,
        ):
            done = report.batches_done / max(report.batches_total, 1)
            message = f"parity batch {report.batches_done}/{report.batches_total}"
            if report.status == "running" and report.batches_done == report.batches_total:
                message = "parity failed: reloading the original to find the diverging module"
            elif report.batches_done:
                eta.parity_batch_s = (time.perf_counter() - started) / report.batches_done
                eta.parity_left = report.batches_total - report.batches_done
            yield ConvertEvent(
                "parity", message, 0.55 + 0.4 * done, report, stage_fraction=done, eta_s=eta.seconds_left(batches)
            )
        del rebuilt
    if report is None:  # iter_parity always yields a final report; this guards a broken invariant
        raise ExportError("Parity produced no report", "Report this as a hubui bug.")
    report = replace(report, weights_origin=origin)
    write_parity_json(report, export.folder)
    if report.verdict != "cancelled" and len(kept.batches) == kept.total:
        write_kept(kept, export.folder)  # so that a later push verifies against the original's outputs
    loaded_back = kept_original if kept_original is not None else original
    result = ConvertResult(loaded_back, replace(export, files=_list_files(export.folder)), report)
    yield ConvertEvent("done", f"parity {report.verdict}", 1.0, report, result, stage_fraction=1.0, eta_s=0.0)


def convert(
    spec: ModelSpec,
    options: ConvertOptions,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    loaded: LoadedModel | None = None,
) -> ConvertResult:
    """Run :func:`iter_convert` to the end.

    Args:
        spec: Which model.
        options: How to convert.
        progress: Receives each event's message.
        cancel: See :func:`iter_convert`.
        loaded: An already-loaded model for ``spec`` (skips loading).

    Returns:
        The :class:`ConvertResult` (check ``.passed``; a failed parity is a result, not an error).
    """
    for event in iter_convert(spec, options, cancel=cancel, loaded=loaded):
        if progress is not None:
            progress(event.message)
        if event.result is not None:
            return event.result
    raise ExportError("The conversion ended without a result", "Report this as a hubui bug.")


def _list_files(folder: Path) -> tuple[tuple[str, int], ...]:
    return export_files(folder)


def _folder_facts(folder: Path) -> dict[str, Any]:
    """Format, architecture, precision, the config and the parity report of an exported folder."""
    path = folder / "parity.json"
    try:
        parity = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{str(path)!r} is not valid JSON: {exc}", "Convert the model again.") from exc
    try:
        fmt = folder_format(folder)
        config = read_export_config(folder)
    except InvalidInputError as exc:
        names = " or ".join(dict.fromkeys(get_format(n).files.config for n in format_names()))
        raise InvalidInputError(
            f"{str(folder)!r} has no readable {names}", "Pass the folder that `hubui convert` wrote."
        ) from exc
    architecture = fmt.architecture(config)
    return {
        "format": fmt,
        "library": fmt.name,
        "architecture": architecture or (parity or {}).get("architecture") or "",
        "precision": read_export_precision(folder) or (parity or {}).get("precision") or "fp32",
        "parity": parity,
        "config": config,
    }


def _fields_for(library: str, fields: CardFields | None) -> CardFields:
    return default_fields(library) if fields is None else fields_for_folder(fields, library)


def make_card(
    folder: str | Path,
    repo_id: str,
    fields: CardFields | None = None,
    *,
    source: str | None = None,
    override: bool = False,
) -> ModelCard:
    """The model card for an exported folder, with its parity section.

    Args:
        folder: The exported folder (reads ``config.json`` and ``parity.json``).
        repo_id: The target repo; the usage snippet loads it.
        fields: The user's card fields; when ``None``, the defaults of the folder's format
            (:func:`hubui.card.default_fields`, from ``Format.card``). Given fields are written as they are (a
            pipeline tag the user chose is kept); only fields still naming ``CardFields()``'s library get the
            format's library, and its pipeline tag if still the default (:func:`hubui.card_prefill.fields_for_folder`).
        source: Where the weights came from; defaults to the format's ``card_source`` (``library:architecture``).
        override: The push overrides a failed parity; the card says so.

    Raises:
        InvalidCardError: A card field is invalid.
        InvalidInputError: The folder is not an export.
    """
    facts = _folder_facts(Path(folder))
    parity = facts["parity"]
    note = None
    if override and (parity is None or parity.get("verdict") != "pass"):
        verdict = "missing" if parity is None else parity.get("verdict")
        note = f"The parity verdict of this export was '{verdict}'; it was pushed with an explicit override."
    versions = (parity or {}).get("versions") or library_versions(facts["library"])
    fmt = facts["format"]
    card_fields = fmt.card_fields(_fields_for(fmt.name, fields), facts["config"])
    return build_card(
        card_fields,
        repo_id=repo_id,
        parity=parity,
        precision=facts["precision"],
        library_versions=versions,
        source=source or fmt.card_source(facts["config"], facts["architecture"]),
        override_note=note,
    )


@dataclass(frozen=True)
class PublishResult:
    """A finished push, the verification after it, and the tag made on the commit (``PushRequest.tag``)."""

    push: PushResult
    verification: Verification | None
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.push.to_dict(),
            "verification": self.verification.to_dict() if self.verification else None,
            "tag": self.tag,
        }


def reference_from_folder(folder: str | Path) -> LoadedModel:
    """The exported folder, rebuilt, as a reference model for verifying a push made from it.

    Raises:
        InvalidInputError: The folder is not an export.
        CheckpointMismatchError, ModelError: The library could not rebuild it.
    """
    facts = _folder_facts(Path(folder))
    return facts["format"].reference_from_folder(Path(folder), facts["config"])


def dry_run(
    request: PushRequest, fields: CardFields | None = None, token: str | None = None, source: str | None = None
) -> PushPlan:
    """What :func:`publish` would commit, and the card's diff against the repo's README. Uploads nothing."""
    folder_files(request.folder)  # links and special files are refused before the card reads the folder
    card = make_card(request.folder, request.repo_id, fields, source=source, override=request.allow_failed_parity)
    return plan_push(request, card, token=token)


def publish(
    request: PushRequest,
    fields: CardFields | None = None,
    *,
    token: str | None = None,
    original: LoadedModel | None = None,
    source: str | None = None,
    verify: bool = True,
    progress: ProgressFn | None = None,
    on_report: Callable[[ParityReport], None] | None = None,
) -> PublishResult:
    """Build the card, push the folder, and verify what landed.

    Args:
        request: Where and how to push.
        fields: Card fields (defaults when ``None``).
        token: An explicit token; otherwise ``HF_TOKEN`` or the login cache.
        original: The model as originally loaded, if still in memory (``ConvertOptions(keep_original=True)``):
            verification compares the Hub copy with it (at the export's precision preset). Without it (or when
            it was released), with the original's outputs the conversion kept in the folder
            (``.hubui-reference.safetensors``, same preset) and the weights with the folder's; a folder without
            them (converted by an older hubui) is rebuilt and must match exactly.
        source: Where the weights came from, for the card.
        verify: Re-download and check after the push.
        progress: Receives status lines.
        on_report: Receives the verification's partial parity reports.

    Returns:
        The push, the verification (``None`` when ``verify`` is false) and the tag: ``request.tag`` is created
        on the pushed commit once the verification passed (right after the push when ``verify`` is false), and
        not at all when it did not pass.

    Raises:
        Everything :func:`hubui.publishing.push` raises; nothing is uploaded when a check fails.
        PushError: The push landed but the Hub refused the tag.
    """
    say = progress or (lambda _m: None)
    folder_files(request.folder)  # links and special files are refused before the card reads the folder
    card = make_card(request.folder, request.repo_id, fields, source=source, override=request.allow_failed_parity)
    result = push(request, card, token=token, progress=say)
    if not verify:
        return PublishResult(result, None, tag_after_push(request, result, None, token, say))
    say(f"verifying {result.repo_id}@{result.commit_oid[:10]}: re-download and parity")
    precision = _folder_facts(Path(request.folder))["precision"]
    tolerance: Tolerance | None = None
    kept = None
    if original is not None and not is_released(original):
        reference = original
    elif (kept := read_kept(request.folder)) is not None:
        reference = kept.as_loaded()  # the original's outputs, kept by the conversion: no model is loaded
    else:
        # A folder converted before the outputs were kept: the folder rebuilt is the reference. Same weights on
        # both sides, so the outputs must match exactly (the fp32 preset) whatever the export precision; the
        # weights file is still checked against that precision's dtype.
        reference, tolerance = reference_from_folder(request.folder), tolerance_preset("fp32")
    verification = verify_push(
        result,
        reference,
        precision,
        token=token,
        tolerance=tolerance,
        on_report=on_report,
        kept=kept,
        folder=request.folder,
    )
    say(f"verification {verification.status}")
    return PublishResult(result, verification, tag_after_push(request, result, verification, token, say))


__all__ = [
    "ConvertEvent",
    "ConvertOptions",
    "ConvertResult",
    "PublishResult",
    "convert",
    "dry_run",
    "iter_convert",
    "make_card",
    "publish",
    "reference_from_folder",
]
