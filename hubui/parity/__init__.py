"""Prove that an exported model computes what the original computes.

Parity runs the original model and the model rebuilt by the library's own loader on the same deterministic
inputs (the photographs in ``hubui/data/images``, seeded synthetic images, and any images the user gives),
compares every output, compares the saved weights tensor by tensor, and, when the outputs disagree, names the
first module whose output diverged.

It streams: :func:`iter_parity` yields a partial :class:`ParityReport` after every batch so a UI can show
progress, then a final one with the verdict. :func:`run_parity` returns only the final one.

What "pass" means depends on the precision (see :func:`tolerance_preset`): fp32 exports must reproduce the
original's outputs to float32 rounding, fp16/bf16 exports are measured against the fp32 original and must
stay above a cosine-similarity and top-1 agreement floor.

Library specifics (how to preprocess, which outputs to compare, which weights file to read, where to search
for a diverging module) come from the format of ``loaded.spec.library`` (:mod:`hubui.libraries`): its
``transform`` and its ``pair`` (:mod:`hubui.parity.pairs`), whose module says which outputs it compares.
"""

from hubui.parity.divergence import find_diverging_module
from hubui.parity.inputs import (
    IMAGE_SUFFIXES,
    REAL_IMAGES_DIR,
    ParityInputs,
    build_parity_inputs,
    load_image,
    real_image_paths,
    synthetic_images,
)
from hubui.parity.metrics import (
    OutputMetrics,
    Tolerance,
    check_output,
    tolerance_preset,
)
from hubui.parity.report import (
    PARITY_FILENAME,
    SCHEMA_VERSION,
    ParityReport,
    library_versions,
    read_parity_json,
    write_parity_json,
)
from hubui.parity.run import auto_batch_size, iter_parity, run_parity, verify_export
from hubui.parity.weights import WeightComparison, check_weights, compare_weights

__all__ = [
    "IMAGE_SUFFIXES",
    "PARITY_FILENAME",
    "REAL_IMAGES_DIR",
    "SCHEMA_VERSION",
    "OutputMetrics",
    "ParityInputs",
    "ParityReport",
    "Tolerance",
    "WeightComparison",
    "auto_batch_size",
    "build_parity_inputs",
    "check_output",
    "check_weights",
    "compare_weights",
    "find_diverging_module",
    "iter_parity",
    "library_versions",
    "load_image",
    "read_parity_json",
    "real_image_paths",
    "run_parity",
    "synthetic_images",
    "tolerance_preset",
    "verify_export",
    "write_parity_json",
]
