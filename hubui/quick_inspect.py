"""Quick mode's first step: read a Hub repo and say what its files and card lack, before anything is loaded.

Which library a repo is in is the registry's answer (:func:`hubui.libraries.folder_format` on its config files);
the file names come from that format (``Format.files``), the card's expected metadata from its ``Format.card``.
The weights file is read once the safe way (:func:`hubui.checkpoints.read_checkpoint`: safetensors, or a pickle
of tensors only with ``weights_only=True`` and the size limits of :mod:`hubui.checkpoint_limits`) before any
library's loader sees it. See :mod:`hubui.quick`.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubui import auth
from hubui.card_yaml import load_card_metadata
from hubui.checkpoints import read_checkpoint
from hubui.errors import CheckpointError, InvalidInputError, InvalidRevisionError, ModelNotFoundError
from hubui.hub_errors import hub_errors
from hubui.libraries import folder_format, format_names, get_format, get_source, read_json_object, source_names
from hubui.push_names import validate_repo_id
from hubui.push_session import fetch_readme

README = "README.md"
CARD_KEYS: tuple[str, ...] = ("library_name", "pipeline_tag")
"""The card metadata a fixed repo has: without them the Hub shows no library and no widget for the model."""
_PRECISION_OF = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}
MAX_PRS_LOOKED_AT = 10  # open PRs checked for one that already fixes the repo, newest first


@dataclass(frozen=True)
class RepoFacts:
    """What quick mode read of a repo.

    Args:
        repo_id: ``namespace/name``.
        branch: The branch read (and the PR's base): ``main`` unless asked otherwise.
        commit: The commit read.
        format_name: The registered folder format of its files.
        library: The registered source library that loads that format.
        architecture: The architecture its config names (else the repo's name).
        files: Every file at ``commit``.
        problems: What is missing or wrong, for people; empty when there is nothing to fix.
    """

    repo_id: str
    branch: str
    commit: str
    format_name: str
    library: str
    architecture: str
    files: tuple[str, ...]
    problems: tuple[str, ...]


def parse_repo_id(text: str, revision: str | None = None) -> tuple[str, str | None]:
    """``owner/name``, ``hf-hub:owner/name`` or either with ``@branch``, as ``(repo_id, branch or None)``.

    Raises:
        InvalidRepoIdError: Not a repo id (the message names it).
        InvalidInputError: A revision both after ``@`` and in ``revision``, and they differ.
    """
    raw = str(text).strip().removeprefix("hf-hub:") if isinstance(text, str) else text
    repo, _, at = raw.partition("@") if isinstance(raw, str) else (raw, "", "")
    if at and revision is not None and at != revision:
        raise InvalidInputError(
            f"Two revisions given: {at!r} after '@' in {text!r} and {revision!r}.", "Give the revision once."
        )
    validate_repo_id(repo)
    return repo, (revision or at or None)


def check_branch(api: Any, repo_id: str, branch: str | None) -> str:
    """The branch to read and to open the PR against; only an existing branch is accepted.

    Raises:
        InvalidRevisionError: ``branch`` is not a branch of the repo (a tag, a commit or a typo).
    """
    if branch is None or branch == "main":
        return "main"
    with hub_errors(repo_id, "its branches"):
        branches = {b.name for b in api.list_repo_refs(repo_id).branches}
    if branch not in branches:
        raise InvalidRevisionError(
            f"{branch!r} is not a branch of {repo_id} (branches: {', '.join(sorted(branches)) or 'none'}).",
            "Quick mode proposes its fix as a PR against a branch: give a branch name, or none for main.",
        )
    return branch


def read_repo(api: Any, repo_id: str, branch: str, token: str | None, say: Callable[[str], None]) -> RepoFacts:
    """Read the repo's files, config and card at the head of ``branch``; the weights are not read yet.

    Raises:
        ModelNotFoundError: No such repo (or not visible with this token); no weights file.
        InvalidInputError: A private repo; no config of any registered format; a format no library loads.
        InvalidCardError: The README is too large or its metadata cannot be parsed.
    """
    say(f"reading {repo_id}@{branch}")
    with hub_errors(repo_id, "its file list"):
        info = api.model_info(repo_id, revision=branch)
    if info.private:
        raise InvalidInputError(
            f"{repo_id} is private: quick mode works on public repos, whose weights the library's own loader "
            "can download.",
            "Download its weights and convert them with `hubui push --checkpoint ... --create-pr` instead.",
        )
    commit = str(info.sha)
    files = tuple(sorted(s.rfilename for s in info.siblings or ()))
    fmt, config = _format_of(api, repo_id, commit, files)
    library = _library_of(repo_id, fmt.name)
    architecture = fmt.architecture(config) or repo_id.rsplit("/", 1)[-1]
    problems = repo_problems(repo_id, fmt.name, files, token, commit)
    return RepoFacts(repo_id, branch, commit, fmt.name, library, architecture, files, problems)


def repo_problems(
    repo_id: str, format_name: str, files: tuple[str, ...], token: str | None, revision: str
) -> tuple[str, ...]:
    """What a repo in ``format_name`` lacks at ``revision``: safetensors weights, a card, the card's metadata.

    Raises:
        ModelNotFoundError: Neither weights file is there.
        InvalidCardError: The README is too large or its metadata cannot be parsed.
    """
    fmt = get_format(format_name)
    problems: list[str] = []
    names = set(files)
    safe = fmt.files.weights in names or (fmt.files.index is not None and fmt.files.index in names)
    if not safe:
        if fmt.files.pickle not in names:
            raise ModelNotFoundError(
                f"{repo_id} has no weights file: neither {fmt.files.weights} nor {fmt.files.pickle}.",
                f"Quick mode fixes a repo whose weights are there; upload {fmt.files.weights} first.",
            )
        problems.append(f"weights only as the pickle {fmt.files.pickle}, no {fmt.files.weights}")
    if README not in names:
        return (*problems, "no model card (README.md)")
    text = fetch_readme(repo_id, token, revision=revision) or ""
    metadata = load_card_metadata(text, f"{repo_id}'s README")
    missing = [k for k in CARD_KEYS if not metadata.get(k)]
    if missing:
        problems.append(f"the model card has no {' and '.join(missing)} metadata")
    named = metadata.get("library_name")
    if named and named != fmt.card.library_name:
        problems.append(f"the model card says library_name {named!r}; its files are {fmt.card.library_name}'s")
    return tuple(problems)


def open_fix_pr(api: Any, facts: RepoFacts, token: str | None) -> tuple[int, str] | None:
    """An open PR against the facts' branch whose head has nothing left to fix: ``(number, its revision)``."""
    with hub_errors(facts.repo_id, "its pull requests"):
        prs = [
            d
            for d in api.get_repo_discussions(facts.repo_id, discussion_type="pull_request", discussion_status="open")
            if d.is_pull_request and d.status == "open"
        ]
    for pr in sorted(prs, key=lambda d: d.num, reverse=True)[:MAX_PRS_LOOKED_AT]:
        revision = f"refs/pr/{pr.num}"
        details = api.get_discussion_details(facts.repo_id, pr.num)
        if (details.target_branch or "refs/heads/main").removeprefix("refs/heads/") != facts.branch:
            continue
        files = tuple(api.list_repo_files(facts.repo_id, revision=revision))
        try:
            if not repo_problems(facts.repo_id, facts.format_name, files, token, revision):
                return pr.num, revision
        except (ModelNotFoundError, InvalidInputError):
            continue  # a PR that removes the weights or breaks the card fixes nothing
    return None


def check_weights(api: Any, facts: RepoFacts, token: str | None, say: Callable[[str], None]) -> str:
    """Read the repo's weights file the safe way, and return its precision.

    The file lands in the Hugging Face cache, where the library's own loader finds it next.

    Raises:
        CheckpointError: The file is not a safe checkpoint (a pickle that references anything but tensors, a zip
            bomb, a corrupt file); the message names the repo and the file.
    """
    from huggingface_hub import hf_hub_download

    fmt = get_format(facts.format_name)
    name = fmt.files.weights if fmt.files.weights in facts.files else fmt.files.pickle
    if name not in facts.files:
        return "fp32"  # sharded safetensors: the library's loader reads them, nothing here unpickles
    say(f"downloading {name} and reading it the safe way")
    with hub_errors(facts.repo_id, name):
        path = hf_hub_download(facts.repo_id, name, revision=facts.commit, token=token, endpoint=auth.endpoint())
    try:
        state = read_checkpoint(path).state_dict
    except CheckpointError as exc:
        message = exc.message.replace(str(Path(path).resolve()), name).replace(str(path), name)
        raise CheckpointError(f"{facts.repo_id}/{name}: {message}", exc.hint) from exc
    dtypes = {str(t.dtype).removeprefix("torch.") for t in state.values() if t.is_floating_point()}
    del state
    gc.collect()  # the library's loader reads the file again: one copy of the weights at a time
    # One half-precision dtype throughout is kept as it is; anything else (fp32, a mix) is written in fp32.
    return _PRECISION_OF.get(dtypes.pop(), "fp32") if len(dtypes) == 1 else "fp32"


def _format_of(api: Any, repo_id: str, commit: str, files: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """The repo's format, asked of the registry on its config files alone, and its parsed config."""
    configs = [c for c in dict.fromkeys(get_format(n).files.config for n in format_names()) if c in files]
    with tempfile.TemporaryDirectory(prefix="hubui-quick-") as tmp:
        for name in configs:
            _download(api, repo_id, commit, name, Path(tmp))
        try:
            fmt = folder_format(tmp)
            return fmt, read_json_object(Path(tmp) / fmt.files.config) or {}
        except InvalidInputError as exc:
            wanted = " or ".join(dict.fromkeys(get_format(n).files.config for n in format_names()))
            raise InvalidInputError(
                f"{repo_id} has no {wanted}: no library hubui knows can load it.",
                "Quick mode fixes repos saved by a library's own save function (its config file beside the weights).",
            ) from exc


def _library_of(repo_id: str, format_name: str) -> str:
    sources = [s for s in source_names() if get_source(s).native_format == format_name]
    if not sources:
        raise InvalidInputError(
            f"{repo_id} holds a {format_name} model, which quick mode cannot load.",
            f"Quick mode fixes repos of {', '.join(source_names())}.",
        )
    return sources[0]


def _download(api: Any, repo_id: str, commit: str, name: str, folder: Path) -> Path:
    with hub_errors(repo_id, name):
        return Path(api.hf_hub_download(repo_id, name, revision=commit, local_dir=str(folder)))


__all__ = [
    "CARD_KEYS",
    "RepoFacts",
    "check_branch",
    "check_weights",
    "open_fix_pr",
    "parse_repo_id",
    "read_repo",
    "repo_problems",
]
