"""Seed the demo's local Hub with one small model of random weights, honestly labelled, under the demo org.

``hubui demo`` runs offline: its local Hub has none of the repos that pretrained tags download from, so nothing
there can be loaded *from a Hub repo* until something is pushed. :func:`seed_demo_hub` puts one tiny model there
(the default library's ``test_resnet``, random weights with seed 0, written by hubui's own export) so that the
Hub-repo path (Quick mode, ``hf-hub:`` loading) can be tried at once. Its card says in its first line that the
weights are random, and its tags say so too. It is never put under a real org's name (``timm/``...), where it
would pose as released weights.

Idempotent (a repo that already has its README is left alone) and quick: one small model, one commit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

DEMO_ORG = "demo-org"
DEMO_REPO = f"{DEMO_ORG}/tiny-resnet-random-weights"
"""The repo :func:`seed_demo_hub` creates on the demo's local Hub."""
DEMO_ARCHITECTURE = "test_resnet"  # the default library's smallest test model: ~0.5 M parameters, 2 MB
DEMO_SEED = 0
DEMO_TAGS = ("random-weights", "demo", "not-for-inference")

_CARD = """---
license: apache-2.0
library_name: {library}
pipeline_tag: {pipeline_tag}
tags:
{tags}
---

# {name}

**Random weights: this model was never trained.** Its outputs mean nothing; do not use it for anything but
trying hubui.

It is {library}'s `{architecture}` architecture ({params:,} parameters) with weights drawn at random
(seed {seed}), written by hubui's own export. `hubui demo` puts it on its offline local Hub so that loading a
model from a Hub repo (Quick mode, the `hf-hub:` loader) can be tried without the internet. No pretrained tag
of any library is on that Hub: a real org's repos are never imitated there.

## How to load it

```python
{snippet}
```
"""


def demo_card(library: str, pipeline_tag: str, architecture: str, params: int, seed: int, snippet: str) -> str:
    """The seeded model's README: random weights, said first, in the text and in the tags.

    Args:
        library: The library's card name (``library_name``).
        pipeline_tag: The card's pipeline tag.
        architecture: The architecture.
        params: Its parameter count.
        seed: The seed of its random weights.
        snippet: Python that loads it.

    Returns:
        The README text with its YAML metadata block.
    """
    tags = "\n".join(f"- {t}" for t in DEMO_TAGS)
    name = DEMO_REPO.split("/")[1]
    return _CARD.format(
        library=library,
        pipeline_tag=pipeline_tag,
        tags=tags,
        name=name,
        architecture=architecture,
        params=params,
        seed=seed,
        snippet=snippet,
    )


def seed_demo_hub(endpoint: str, token: str, repo_id: str = DEMO_REPO) -> bool:
    """Create ``repo_id`` with a tiny random-weights model on the Hub at ``endpoint``, unless it is there.

    Args:
        endpoint: The demo's local Hub.
        token: A write token of a member of the repo's org.
        repo_id: Where to put it (tests seed another namespace).

    Returns:
        True when it was created now; False when an earlier start had seeded it.

    Raises:
        HubUIError or huggingface_hub's errors: The model could not be built or pushed (the caller reports it;
            the demo runs without it).
    """
    from huggingface_hub import HfApi

    from hubui.export import export_model
    from hubui.libraries import DEFAULT_SOURCE, get_format
    from hubui.loading import load_model
    from hubui.spec import ModelSpec

    api = HfApi(endpoint=endpoint, token=token)
    if api.repo_exists(repo_id) and api.file_exists(repo_id, "README.md"):
        return False
    loaded = load_model(ModelSpec(DEFAULT_SOURCE, DEMO_ARCHITECTURE, seed=DEMO_SEED))
    fmt = get_format(DEFAULT_SOURCE)
    params = sum(p.numel() for p in loaded.model.parameters())
    card = demo_card(
        fmt.card.library_name, fmt.card.pipeline_tag, DEMO_ARCHITECTURE, params, DEMO_SEED, fmt.usage_snippet(repo_id)
    )
    with tempfile.TemporaryDirectory(prefix="hubui-demo-seed-") as tmp:
        folder = Path(tmp) / "model"
        export_model(loaded, folder)
        (folder / "README.md").write_text(card, encoding="utf-8")
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=f"Random weights (seed {DEMO_SEED}) for the demo: not a trained model",
        )
    return True


def seed_for_demo(endpoint: str, token: str) -> str:
    """:func:`seed_demo_hub` for ``hubui demo``: one line saying what the demo Hub holds, or why not.

    Never raises: the demo runs without the seeded model.
    """
    try:
        created = seed_demo_hub(endpoint, token)
    except Exception as exc:  # the app is still useful without it; say why, once
        return f"demo model: not seeded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return f"demo model: {DEMO_REPO} (random weights, seed {DEMO_SEED}{'' if created else '; seeded earlier'})"


__all__ = ["DEMO_REPO", "demo_card", "seed_demo_hub", "seed_for_demo"]
