"""hubui: put timm and open_clip models (and any library registered in :mod:`hubui.libraries`) on the
Hugging Face Hub correctly.

Public names are imported lazily, so ``hubui localhub`` starts without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# A public name a library module defines (the transformers target's): found through the registry by name.
_A_LIBRARY = "hubui.libraries:find_attribute"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "HubUIError": "hubui.errors",
    "AuthError": "hubui.errors",
    "NotLoggedInError": "hubui.errors",
    "InvalidTokenError": "hubui.errors",
    "ReadOnlyTokenError": "hubui.errors",
    "NamespaceForbiddenError": "hubui.errors",
    "HubUnreachableError": "hubui.errors",
    "InvalidInputError": "hubui.errors",
    "InvalidRepoIdError": "hubui.errors",
    "InvalidRevisionError": "hubui.errors",
    "ModelError": "hubui.errors",
    "ModelNotFoundError": "hubui.errors",
    "ModelReleasedError": "hubui.released",
    "CheckpointError": "hubui.errors",
    "CheckpointMismatchError": "hubui.errors",
    "ExportError": "hubui.errors",
    "ParityFailedError": "hubui.errors",
    "InvalidCardError": "hubui.errors",
    "PushError": "hubui.errors",
    "RandomWeightsError": "hubui.errors",
    "LocalHubConfigError": "hubui.errors",
    "LocalHubRootInUseError": "hubui.errors",
    "NotConvertibleError": "hubui.errors",
    # the library registry (one module per library under hubui/libraries/)
    "Source": "hubui.libraries.base",
    "Format": "hubui.libraries.base",
    "FolderFiles": "hubui.libraries.base",
    "CardDefaults": "hubui.libraries.base",
    "ExportOptions": "hubui.libraries.base",
    "get_source": "hubui.libraries",
    "get_format": "hubui.libraries",
    "source_names": "hubui.libraries",
    "format_names": "hubui.libraries",
    "target_names": "hubui.libraries",
    "target_format": "hubui.libraries",
    "folder_format": "hubui.libraries",
    # catalog and loading
    "CatalogEntry": "hubui.facts",
    "ModelFacts": "hubui.facts",
    "search_models": "hubui.catalog",
    "model_facts": "hubui.catalog",
    "resolve_model_name": "hubui.catalog",
    "pretrained_name": "hubui.catalog",
    # which pretrained tags the configured Hub can serve, and the default weights that load
    "ServableTags": "hubui.servable",
    "TagStatus": "hubui.servable",
    "DefaultWeights": "hubui.servable",
    "servable_tags": "hubui.servable",
    "default_weights": "hubui.servable",
    "load_model": "hubui.loading",
    "read_checkpoint": "hubui.checkpoints",
    "check_checkpoint_size": "hubui.checkpoint_limits",
    "Checkpoint": "hubui.checkpoints",
    "ModelSpec": "hubui.spec",
    "LoadedModel": "hubui.spec",
    # where the weights came from: the verdict, parity.json, the card, the push gate and the repo name say it
    "WeightsOrigin": "hubui.provenance",
    "weights_origin": "hubui.provenance",
    "read_weights_origin": "hubui.provenance",
    "suggested_repo_name": "hubui.provenance",
    "check_random_weights": "hubui.push_checks",
    # export and parity
    "ExportResult": "hubui.spec",
    "export_model": "hubui.export",
    "check_out_dir": "hubui.outdir",
    "is_hubui_export": "hubui.outdir",
    "rebuild_from_folder": "hubui.export",
    "rebuild_from_hub": "hubui.export",
    "ParityReport": "hubui.parity",
    "ParityInputs": "hubui.parity",
    "OutputMetrics": "hubui.parity",
    "WeightComparison": "hubui.parity",
    "Tolerance": "hubui.parity",
    "tolerance_preset": "hubui.parity",
    "build_parity_inputs": "hubui.parity",
    "iter_parity": "hubui.parity",
    "run_parity": "hubui.parity",
    "verify_export": "hubui.parity",
    "write_parity_json": "hubui.parity",
    "read_parity_json": "hubui.parity",
    # before writing: disk, memory and the Hub's file limit
    "check_room": "hubui.preflight",
    "room_needed": "hubui.preflight",
    # pipeline and publish
    "ConvertOptions": "hubui.pipeline",
    "ConvertEvent": "hubui.pipeline",
    "ConvertResult": "hubui.pipeline",
    "PublishResult": "hubui.pipeline",
    "convert": "hubui.pipeline",
    "iter_convert": "hubui.pipeline",
    "make_card": "hubui.pipeline",
    "dry_run": "hubui.pipeline",
    "publish": "hubui.pipeline",
    "reference_from_folder": "hubui.pipeline",
    # quick mode: a Hub repo's verified safetensors / card fix, proposed as a PR to it
    "QuickEvent": "hubui.quick",
    "QuickRequest": "hubui.quick",
    "QuickResult": "hubui.quick",
    "iter_quick": "hubui.quick",
    "run_quick": "hubui.quick",
    # a running conversion's stages, their progress and the time left, for live display
    "StageStatus": "hubui.progress",
    "StageTracker": "hubui.progress",
    "PushRequest": "hubui.publishing",
    "PushPlan": "hubui.publishing",
    "PushResult": "hubui.publishing",
    "PlannedFile": "hubui.publishing",
    "Verification": "hubui.publishing",
    "RetryPolicy": "hubui.publishing",
    "plan_push": "hubui.publishing",
    "push": "hubui.publishing",
    "verify_push": "hubui.publishing",
    "validate_repo_id": "hubui.publishing",
    "validate_branch": "hubui.publishing",
    "check_parity_gate": "hubui.publishing",
    "fetch_readme": "hubui.publishing",
    "validate_tag": "hubui.publishing",
    "folder_files": "hubui.push_files",
    "OpenPullRequest": "hubui.pr_reuse",
    "find_identical_open_pr": "hubui.pr_reuse",
    # the transformers target
    "TARGETS": _A_LIBRARY,
    "TransformersPlan": _A_LIBRARY,
    "available_targets": "hubui.libraries",
    "plan_transformers": _A_LIBRARY,
    "export_transformers": _A_LIBRARY,
    "load_transformers": _A_LIBRARY,
    "check_preprocessing": _A_LIBRARY,
    "iter_transformers_parity": _A_LIBRARY,
    # space
    "deploy_space": "hubui.space",
    "SpaceDeployResult": "hubui.space",
    # plots
    "plot_parity": "hubui.plots",
    # auth
    "Identity": "hubui.auth",
    "resolve_token": "hubui.auth",
    "whoami": "hubui.auth",
    "require_write": "hubui.auth",
    # card
    "CardFields": "hubui.card",
    "CardEvalResult": "hubui.card",
    "build_card": "hubui.card",
    "validate_fields": "hubui.card",
    "CardProblem": "hubui.card_rules",
    "check_card_text": "hubui.card_rules",
    "check_metadata": "hubui.card_rules",
    "load_card_file": "hubui.card",
    "merge_card": "hubui.card",
    "card_diff": "hubui.card",
    "load_card_metadata": "hubui.card_yaml",
    "card_defaults": "hubui.card_prefill",
    "card_defaults_for": "hubui.card_prefill",
    "LoadedCard": "hubui.card_parse",
    "fields_from_readme": "hubui.card_parse",
    "card_warnings": "hubui.card_lint",
    "CARD_SECTIONS": "hubui.card_sections",
    "EVAL_PROMPT": "hubui.card_sections",
    "SECTION_HEADINGS": "hubui.card_sections",
    "SECTION_PROMPTS": "hubui.card_sections",
    # local hub
    "LocalHub": "hubui.localhub",
    "build_directory": "hubui.localhub",
    # batch: a whole zoo from one manifest
    "batch": "hubui.batching",
    "BatchEntry": "hubui.batching",
    "BatchReport": "hubui.batching",
    "CommitBudget": "hubui.batching",
    "EntryResult": "hubui.batching",
    "Manifest": "hubui.batching",
    "ManifestError": "hubui.batching",
    "load_manifest": "hubui.batching",
    # shutdown
    "Terminated": "hubui.shutdown",
    "interrupt_on_sigterm": "hubui.shutdown",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hubui' has no attribute {name!r}")
    if module == _A_LIBRARY:
        from hubui.libraries import find_attribute

        value = find_attribute(name)
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
