"""The names open_clip's loaders look for and the values its preprocessing accepts.

Every part of the open_clip library (:mod:`hubui.libraries.open_clip` and its ``open_clip_*`` modules) reads
these; this module imports nothing, so each part may import it.
"""

from __future__ import annotations

# What open_clip's image_transform accepts (the reference push script's choices).
OPEN_CLIP_INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "random")
OPEN_CLIP_RESIZE_MODES: tuple[str, ...] = ("shortest", "longest", "squash")

OPEN_CLIP_CONFIG_NAME = "open_clip_config.json"
OPEN_CLIP_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
OPEN_CLIP_PICKLE_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
_OPEN_CLIP_CONFIG = OPEN_CLIP_CONFIG_NAME

TOKENIZER_ATTR = "hubui_tokenizer"
"""open_clip models rebuilt by hubui carry the tokenizer rebuilt with them under this attribute."""

_OPEN_CLIP_FILES_HINT = (
    "The repo needs open_clip_model.safetensors (or open_clip_pytorch_model.bin) and open_clip_config.json "
    "as open_clip saves them."
)

__all__ = [
    "OPEN_CLIP_CONFIG_NAME",
    "OPEN_CLIP_INTERPOLATIONS",
    "OPEN_CLIP_PICKLE_WEIGHTS_NAME",
    "OPEN_CLIP_RESIZE_MODES",
    "OPEN_CLIP_SAFE_WEIGHTS_NAME",
    "TOKENIZER_ATTR",
]
