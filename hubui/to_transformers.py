"""The ``transformers`` conversion target's old home, kept for one release.

Everything here moved to :mod:`hubui.libraries.transformers` (the format, the export, the rebuild, the card) and
its parts :mod:`hubui.libraries.transformers_map`, :mod:`hubui.libraries.transformers_plan` and
:mod:`hubui.libraries.transformers_parity`. This module only re-exports the old public names; import them from
:mod:`hubui.libraries.transformers` (or the :mod:`hubui` package) instead. It will be removed in the next release.
"""

from __future__ import annotations

from hubui.libraries.transformers import (
    INSTALL_HINT,
    PREPROCESSOR_NAME,
    TARGETS,
    TransformersLogits,
    TransformersPlan,
    available_targets,
    check_convertible_name,
    check_preprocessing,
    check_target,
    export_transformers,
    is_transformers_folder,
    iter_transformers_parity,
    load_transformers,
    mapped_state_dict,
    plan_transformers,
    preprocessor_config,
    reference_from_transformers_folder,
    transformers_available,
    transformers_card_fields,
    transformers_tolerance,
)

__all__ = [
    "INSTALL_HINT",
    "PREPROCESSOR_NAME",
    "TARGETS",
    "TransformersLogits",
    "TransformersPlan",
    "available_targets",
    "check_convertible_name",
    "check_preprocessing",
    "check_target",
    "export_transformers",
    "is_transformers_folder",
    "iter_transformers_parity",
    "load_transformers",
    "mapped_state_dict",
    "plan_transformers",
    "preprocessor_config",
    "reference_from_transformers_folder",
    "transformers_available",
    "transformers_card_fields",
    "transformers_tolerance",
]
