"""The deterministic parity inputs: shipped photographs, seeded synthetic images and user images."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hubui.errors import InvalidInputError
from hubui.libraries import DEFAULT_SOURCE, get_format

if TYPE_CHECKING:
    from PIL import Image


REAL_IMAGES_DIR = Path(__file__).parents[1] / "data" / "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


# --- inputs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityInputs:
    """Preprocessed parity inputs.

    Args:
        pixels: ``(N, C, H, W)`` float32, preprocessed with the model's data config.
        names: One name per sample (file name, or ``synthetic-noise-0``...).
        kinds: One of ``"real"``, ``"synthetic"``, ``"user"`` per sample.
    """

    pixels: torch.Tensor
    names: tuple[str, ...]
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def describe(self) -> dict[str, Any]:
        """``{"count", "real", "synthetic", "user"}`` (counts), plus ``names`` and ``input_size``."""
        return {
            "count": len(self.names),
            "real": self.kinds.count("real"),
            "synthetic": self.kinds.count("synthetic"),
            "user": self.kinds.count("user"),
            "names": list(self.names),
            "input_size": list(self.pixels.shape[1:]),
        }


def real_image_paths() -> list[Path]:
    """The photographs shipped with hubui (see ``hubui/data/images/NOTICE.md``), sorted by name."""
    return sorted(p for p in REAL_IMAGES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def synthetic_images(count: int = 4, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """Deterministic synthetic RGB images: alternating uniform noise and colour gradients.

    Sizes differ (square and not) so the resize and crop of the transform are exercised too.

    Args:
        count: How many.
        seed: Seed for the noise.

    Returns:
        ``(name, image)`` pairs.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = ((256, 256), (320, 240), (224, 300), (288, 288))
    out: list[tuple[str, Image.Image]] = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        if i % 2 == 0:
            arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            out.append((f"synthetic-noise-{i // 2}", Image.fromarray(arr, "RGB")))
        else:
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            phase = rng.uniform(0, 2 * np.pi, size=3)
            arr = np.stack(
                [
                    x / max(w - 1, 1),
                    y / max(h - 1, 1),
                    0.5 + 0.5 * np.sin((x + y) / (w + h) * 4 * np.pi + phase[2]),
                ],
                axis=-1,
            )
            arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
            out.append((f"synthetic-gradient-{i // 2}", Image.fromarray(arr, "RGB")))
    return out


def load_image(item: Any) -> tuple[str, Image.Image]:
    """Open a user image, as RGB.

    Args:
        item: A path, or a PIL image.

    Returns:
        ``(name, image)``: the file name, or ``user-image`` for a PIL image.

    Raises:
        InvalidInputError: The path does not exist or is not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return "user-image", item.convert("RGB")
    if not isinstance(item, (str, os.PathLike)):
        raise InvalidInputError(
            f"Parity images must be file paths or PIL images, not {type(item).__name__}",
            hint="Pass image file paths.",
        )
    path = Path(item)
    if not path.is_file():
        raise InvalidInputError(f"Image file not found: {str(path)!r}", hint="Check the path.")
    try:
        with Image.open(path) as img:
            img.load()
            return path.name, img.convert("RGB")
    except Image.DecompressionBombError as exc:
        # PIL refuses images so large that decoding them could exhaust memory (a "decompression bomb").
        raise InvalidInputError(
            f"{str(path)!r} is too large to use as a parity image: {exc}",
            hint="Pass an image of at most a few thousand pixels per side.",
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL raises SyntaxError for some malformed headers; UnidentifiedImageError when no format matches.
        why = "not in an image format PIL knows" if isinstance(exc, UnidentifiedImageError) else "corrupt or truncated"
        raise InvalidInputError(
            f"{str(path)!r} is not an image that can be read: the file is {why}",
            hint="Pass PNG, JPEG or WebP files.",
        ) from exc


def build_parity_inputs(
    data_config: dict[str, Any],
    images: Iterable[Any] = (),
    *,
    include_real: bool = True,
    synthetic: int = 4,
    seed: int = 0,
    library: str = DEFAULT_SOURCE,
) -> ParityInputs:
    """Load and preprocess the parity inputs with the model's own eval transform.

    Args:
        data_config: The model's data config (``LoadedModel.data_config``).
        images: Extra user images (paths or PIL images).
        include_real: Include the photographs shipped with hubui.
        synthetic: How many synthetic images.
        seed: Seed for the synthetic images.
        library: Selects the preprocessing.

    Returns:
        The inputs, in the order real, synthetic, user.

    Raises:
        InvalidInputError: A user image can't be read, no inputs are left, or the library is unknown.
    """
    fmt = get_format(library)
    named: list[tuple[str, str, Image.Image]] = []
    # Open user images first: a bad path should fail before any other work.
    user = [load_image(item) for item in images]
    if include_real:
        named += [("real", *load_image(p)) for p in real_image_paths()]
    named += [("synthetic", name, img) for name, img in synthetic_images(synthetic, seed)]
    named += [("user", name, img) for name, img in user]
    if not named:
        raise InvalidInputError("No parity inputs", hint="Include the real or synthetic images, or pass images.")
    transform = fmt.transform(data_config)
    pixels = torch.stack([transform(img) for _, _, img in named]).float()
    return ParityInputs(pixels=pixels, names=tuple(n for _, n, _ in named), kinds=tuple(k for k, _, _ in named))
