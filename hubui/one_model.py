"""The steps of a conversion that keep one model in memory at a time, and their time estimate.

:func:`hubui.pipeline.iter_convert` writes the folder and computes the original's reference outputs at the same
time (:func:`iter_export_and_reference`): writing is disk-bound, the forward passes are CPU-bound. The folder
is written in a worker thread; the forward passes run in the caller's thread, which also yields the progress.
Once both are done and the written weights are checked against the original, the original is released and
only then is the model rebuilt from the folder (see :mod:`hubui.parity.kept`).

:class:`Eta` turns what was measured so far into an estimate of the time left (None until a rate is known).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hubui.parity.kept import KeptReference, iter_reference

if TYPE_CHECKING:
    import torch

    from hubui.libraries.base import ExportOptions, Format
    from hubui.parity.inputs import ParityInputs
    from hubui.parity.pairs import Pair
    from hubui.spec import ExportResult, LoadedModel


class Eta:
    """An estimate of the seconds left, from measured rates only.

    The reference stage's seconds per batch are measured as it runs; the parity stage runs the same inputs in the
    same batches through a model of the same size, so it is estimated at that rate until its own is measured. The
    writing rate comes from the exporter's progress; the weights check and the rebuild read the bytes the export
    wrote, so each is estimated at the export's duration until measured. Unknown rates give None.
    """

    def __init__(self) -> None:
        self.export_s: float | None = None  # measured duration of the export
        self.export_started: float | None = None
        self.export_fraction = 0.0
        self.ref_batch_s: float | None = None
        self.ref_left = 0
        self.weights_s: float | None = None
        self.rebuild_s: float | None = None
        self.parity_batch_s: float | None = None
        self.parity_left: int | None = None  # None: the parity stage has not started

    def _export_left(self) -> float | None:
        if self.export_s is not None:
            return 0.0
        if self.export_started is None or self.export_fraction <= 0:
            return None
        spent = time.perf_counter() - self.export_started
        return spent * (1 - self.export_fraction) / self.export_fraction

    def _export_estimate(self) -> float | None:
        if self.export_s is not None:
            return self.export_s
        left = self._export_left()
        return None if left is None else time.perf_counter() - (self.export_started or 0.0) + left

    def seconds_left(self, batches: int) -> float | None:
        """The estimate now.

        Args:
            batches: The parity batches of the whole run (the same for the reference and the parity stage).
        """
        batch_s = self.parity_batch_s or self.ref_batch_s
        export_left, export_whole = self._export_left(), self._export_estimate()
        if batch_s is None or export_left is None or export_whole is None:
            return None
        overlap = max(self.ref_left * (self.ref_batch_s or batch_s), export_left)  # the two run at once
        weights = 0.0 if self.weights_s is not None else export_whole
        rebuild = self.rebuild_s if self.rebuild_s is not None else export_whole
        rebuild_left = 0.0 if self.parity_left is not None else rebuild
        parity = (batches if self.parity_left is None else self.parity_left) * batch_s
        return overlap + weights + rebuild_left + parity


@dataclass
class Step:
    """One progress step of :func:`iter_export_and_reference`.

    Args:
        stage: ``"export"`` or ``"reference"``.
        message: A line for people.
        stage_fraction: Progress within the stage.
        export: The written folder, on the last step.
        kept: The reference outputs, complete on the last step.
    """

    stage: str
    message: str
    stage_fraction: float
    export: ExportResult | None = None
    kept: KeptReference | None = None


def iter_export_and_reference(
    fmt: Format,
    loaded: LoadedModel,
    out_dir: Path,
    options: ExportOptions,
    pair: Pair,
    inputs: ParityInputs,
    batch_size: int,
    device: torch.device,
    eta: Eta,
    cancel: threading.Event | None = None,
) -> Iterator[Step]:
    """Write the folder in a worker thread while the original's reference outputs are computed here.

    Yields a ``reference`` step per batch (saying how far the writing is), then ``export`` steps while the writing
    finishes, then the last step, carrying the export and the kept outputs.

    Raises:
        Whatever the format's export raises (after the forward passes stop), and the forward passes' errors (after
        the writing has finished, so no half-written staging folder is left behind).
    """
    updates: queue.Queue[tuple[str, float] | None] = queue.Queue()
    written: dict[str, ExportResult | BaseException] = {}
    last: list[tuple[str, float]] = [("writing", 0.0)]  # the writer's latest progress

    def progress(message: str, fraction: float) -> None:
        eta.export_fraction = fraction
        updates.put((message, fraction))

    def write() -> None:
        try:
            written["export"] = fmt.export(loaded, out_dir, replace(options, progress=progress))
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            written["error"] = exc
        finally:
            updates.put(None)

    eta.export_started = time.perf_counter()
    worker = threading.Thread(target=write, name="hubui-export", daemon=True)
    worker.start()
    finished = False

    def drain() -> None:
        nonlocal finished
        while True:
            try:
                item = updates.get_nowait()
            except queue.Empty:
                return
            if item is None:
                finished = True
                return
            last[0] = item

    kept: KeptReference | None = None
    try:
        started = time.perf_counter()
        total = -(-len(inputs) // batch_size)
        eta.ref_left = total
        for done, latest in enumerate(iter_reference(loaded, pair, inputs, batch_size, device, cancel), start=1):
            kept = latest
            eta.ref_batch_s = (time.perf_counter() - started) / done
            eta.ref_left = total - done
            drain()
            writing = "folder written" if finished else f"writing the folder: {last[0][1]:.0%}"
            yield Step("reference", f"reference outputs batch {done}/{total} ({writing})", done / total)
    except BaseException:
        worker.join()  # a failed forward pass (or a closed generator) still waits for the writer to finish
        raise
    while not finished:
        item = updates.get()  # the writer always ends with None, error or not
        if item is None:
            finished = True
        else:
            last[0] = item
            yield Step("export", item[0], item[1])
    worker.join()
    eta.export_s = time.perf_counter() - eta.export_started
    error = written.get("error")
    if isinstance(error, BaseException):
        raise error
    export = written["export"]
    if isinstance(export, BaseException):  # the writer stores errors under "error": a broken invariant
        raise export
    if kept is None:  # cancelled before the first batch
        kept = KeptReference(loaded.spec.library, loaded.spec.architecture, inputs.pixels, batch_size)
    yield Step("export", f"wrote {export.folder}", 1.0, export=export, kept=kept)


__all__ = ["Eta", "Step", "iter_export_and_reference"]
