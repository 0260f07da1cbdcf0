"""The parity report, its JSON form (``parity.json``) and the library versions it records."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hubui.errors import ExportError, InvalidInputError, ParityFailedError
from hubui.libraries import DEFAULT_SOURCE, get_format
from hubui.parity.metrics import OutputMetrics, Tolerance
from hubui.parity.weights import WeightComparison
from hubui.provenance import ORIGIN_KEY, WeightsOrigin, describe_origin, origin_of_report

PARITY_FILENAME = "parity.json"
SCHEMA_VERSION = 1
SAMPLE_LIMIT = 2048  # values per output kept for plots


# --- report -----------------------------------------------------------------------------------------
def library_versions(library: str = DEFAULT_SOURCE) -> dict[str, str]:
    """Versions that parity results depend on: python, torch, the library, safetensors, hubui."""
    from importlib.metadata import PackageNotFoundError, version

    from hubui import __version__

    out = {"python": platform.python_version(), "torch": torch.__version__, "hubui": __version__}
    for dist in (*get_format(library).versions, "safetensors"):
        try:
            out[dist] = version(dist.replace("_", "-"))
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class ParityReport:
    """The state of a parity run: partial while ``status == "running"``, final otherwise.

    Args:
        verdict: ``"pending"`` (running), ``"pass"``, ``"fail"`` or ``"cancelled"``.
        status: ``"running"``, ``"done"`` or ``"cancelled"``.
        precision: The export precision under test.
        tolerance: The thresholds applied.
        outputs: One OutputMetrics per compared output.
        weights: The saved-weights comparison, when a folder was given.
        inputs: ``{"count", "real", "synthetic", "user", "names", "input_size"}``.
        batches_done: Batches compared so far.
        batches_total: Batches in the run.
        diverging_module: On failure, the first module whose output diverged.
        versions: Library versions (see :func:`library_versions`).
        elapsed_s: Seconds since the run started.
        library: The format the outputs came from (:func:`hubui.libraries.format_names`).
        architecture: The model's architecture name.
        reasons: Why it failed (empty when it passed).
        device: Where the forward passes ran.
        samples: For plots: per floating output, ``{"original": [...], "converted": [...]}``, a deterministic
            subsample (at most ``SAMPLE_LIMIT`` values) growing batch by batch. Not written to ``parity.json``.
        weights_origin: Where the original's weights came from (:class:`hubui.provenance.WeightsOrigin`),
            written as ``"weights_origin"``; ``None`` when not known (a ``parity.json`` of an older hubui).
            :func:`hubui.pipeline.iter_convert` sets it on the final report.
    """

    verdict: str
    status: str
    precision: str
    tolerance: Tolerance
    outputs: tuple[OutputMetrics, ...]
    weights: WeightComparison | None
    inputs: dict[str, Any]
    batches_done: int
    batches_total: int
    diverging_module: str | None
    versions: dict[str, str]
    elapsed_s: float
    library: str = DEFAULT_SOURCE
    architecture: str = ""
    reasons: tuple[str, ...] = ()
    device: str = "cpu"
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict, repr=False, compare=False)
    weights_origin: WeightsOrigin | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def summary(self) -> str:
        """The verdict line people read: the verdict and where the weights came from, e.g.
        ``"PASS — random weights (seed 0) — not a trained model"`` or ``"FAIL — pretrained tag a1_in1k"``."""
        return f"{self.verdict.upper()} — {describe_origin(self.weights_origin)}"

    @property
    def done(self) -> bool:
        return self.status != "running"

    def raise_for_verdict(self) -> None:
        """Raise ParityFailedError unless the verdict is ``"pass"``.

        Raises:
            ParityFailedError: Listing the reasons and the diverging module.
        """
        if self.passed:
            return
        detail = "; ".join(self.reasons) or self.verdict
        where = f" (first diverging module: {self.diverging_module})" if self.diverging_module else ""
        raise ParityFailedError(f"Parity {self.verdict} for {self.precision} export: {detail}{where}")

    def to_dict(self) -> dict[str, Any]:
        """The ``parity.json`` schema (``schema_version`` 1; ``weights_origin`` is an added key that older
        readers ignore, and that is ``null`` when the origin is not known)."""
        return {
            "verdict": self.verdict,
            "status": self.status,
            "precision": self.precision,
            "tolerance": self.tolerance.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "weights": self.weights.to_dict() if self.weights is not None else None,
            "inputs": dict(self.inputs),
            "diverging_module": self.diverging_module,
            "versions": dict(self.versions),
            "batches_done": self.batches_done,
            "batches_total": self.batches_total,
            "elapsed_s": round(self.elapsed_s, 3),
            "library": self.library,
            "architecture": self.architecture,
            "reasons": list(self.reasons),
            "device": self.device,
            ORIGIN_KEY: self.weights_origin.to_dict() if self.weights_origin is not None else None,
            "schema_version": SCHEMA_VERSION,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        """Read a report back from :meth:`to_dict` output (e.g. a ``parity.json``).

        Raises:
            InvalidInputError: A required key is missing.
        """
        try:
            return cls(
                verdict=str(data["verdict"]),
                status=str(data["status"]),
                precision=str(data["precision"]),
                tolerance=Tolerance.from_dict(data.get("tolerance") or {}),
                outputs=tuple(OutputMetrics.from_dict(o) for o in data.get("outputs") or ()),
                weights=WeightComparison.from_dict(data["weights"]) if data.get("weights") else None,
                inputs=dict(data.get("inputs") or {}),
                batches_done=int(data.get("batches_done", 0)),
                batches_total=int(data.get("batches_total", 0)),
                diverging_module=data.get("diverging_module"),
                versions=dict(data.get("versions") or {}),
                elapsed_s=float(data.get("elapsed_s", 0.0)),
                library=str(data.get("library", DEFAULT_SOURCE)),
                architecture=str(data.get("architecture", "")),
                reasons=tuple(data.get("reasons") or ()),
                device=str(data.get("device", "cpu")),
                weights_origin=origin_of_report(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Not a parity report: {exc}", hint="Pass the parity.json hubui wrote.") from exc

    @classmethod
    def from_json(cls, text: str) -> ParityReport:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"Not a parity report: {exc}", hint="Pass the parity.json hubui wrote.") from exc
        return cls.from_dict(data)


def write_parity_json(report: ParityReport, folder: str | Path) -> Path:
    """Write ``parity.json`` into ``folder`` atomically.

    Args:
        report: A final report.
        folder: The export folder.

    Returns:
        The file written.

    Raises:
        ExportError: The file can't be written.
    """
    folder = Path(folder)
    path = folder / PARITY_FILENAME
    text = report.to_json()
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".parity-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ExportError(f"Could not write {str(path)!r}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def read_parity_json(folder: str | Path) -> ParityReport:
    """Read ``parity.json`` from an export folder.

    Raises:
        InvalidInputError: Missing or malformed.
    """
    path = Path(folder) / PARITY_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}", hint="Run parity first.") from exc
    return ParityReport.from_json(text)
