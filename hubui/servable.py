"""Which pretrained tags of a model the configured Hub can serve, and which weights to pick by default.

A pretrained tag is downloaded from one Hub repo (timm's ``resnet18.a1_in1k`` from ``timm/resnet18.a1_in1k``).
An offline Hub, such as the demo's local Hub, has none of them, so a default tag fails on the first Run. So before
the app proposes a tag it asks the Hub which of the model's repos it has: one ``GET /api/models?author=ORG&search=
PREFIX`` per org the tags download from (timm's tags: one org, so one request), with a short timeout and no
retries, cached per (endpoint, library, architecture). A Hub that does not answer in time gives an honest
"unknown", never a wait: the UI shows the tags unchecked and says why.

A tag the Hub lacks (or could not be asked about) whose weights are in this machine's Hugging Face cache is
"cached": huggingface_hub loads a cached file when the Hub says the repo is missing or does not answer, so the tag
loads, from the cache. The cache is looked at on disk (a snapshot with a weights file), never downloaded to.

Which repo each tag downloads from is the library's answer (``pretrained_repos`` of a library in
:mod:`hubui.libraries`); a library without it has every tag ``unknown``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hubui.catalog_names import resolve_name
from hubui.errors import first_line
from hubui.libraries import get_source

AVAILABLE = "available"
"""The Hub has the repo the tag downloads from."""
NOT_SERVED = "not served"
"""The Hub answered and has no such repo (or the tag is not downloaded from a Hub at all)."""
UNKNOWN = "unknown"
"""The Hub could not be asked (no answer in time, unreachable, offline mode): the tag may or may not load."""
CACHED = "cached"
"""The Hub does not serve it (or could not be asked), but this machine's Hugging Face cache holds its weights."""

DEFAULT_TIMEOUT = 3.0
ANSWER_TTL = 600.0  # a Hub's repos change rarely; a pushed tag shows within 10 minutes (or with refresh=True)
FAILURE_TTL = 30.0  # a Hub that did not answer is asked again soon, not on every keystroke
_LIST_LIMIT = 1000  # the Hub's largest page: one request

_LABELS = {
    AVAILABLE: "{tag} (on this Hub)",
    NOT_SERVED: "{tag} (not on this Hub)",
    UNKNOWN: "{tag}",
    CACHED: "{tag} (in your Hugging Face cache)",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass(frozen=True)
class TagStatus:
    """One pretrained tag and whether the Hub can serve it.

    Args:
        tag: The tag as the library spells it (``"a1_in1k"``).
        repo_id: The Hub repo its weights download from; None when the library downloads it from elsewhere
            (a URL), which no Hub can serve.
        status: :data:`AVAILABLE`, :data:`NOT_SERVED`, :data:`UNKNOWN` or :data:`CACHED`.
    """

    tag: str
    repo_id: str | None
    status: str


@dataclass(frozen=True)
class ServableTags:
    """The pretrained tags of one architecture, each with what the Hub at ``endpoint`` said about it.

    Args:
        library: The source library.
        architecture: The architecture.
        endpoint: The Hub asked (``HF_ENDPOINT``).
        tags: Every pretrained tag, in the library's order (its default first, where it has one).
        answered: Whether every request got an answer; False: some tags are :data:`UNKNOWN`.
        message: One line for people: how many tags the Hub has, or why it could not be asked.
    """

    library: str
    architecture: str
    endpoint: str
    tags: tuple[TagStatus, ...]
    answered: bool
    message: str

    def status(self, tag: str | None) -> str:
        """The status of ``tag`` (:data:`UNKNOWN` for a tag not in :attr:`tags`)."""
        return next((t.status for t in self.tags if t.tag == tag), UNKNOWN)

    def label(self, tag: str) -> str:
        """How a tag dropdown shows ``tag``: ``"a1_in1k (on this Hub)"``, ``"a1_in1k (not on this Hub)"``, or
        the bare tag when unknown."""
        return _LABELS[self.status(tag)].format(tag=tag)

    def servable(self) -> tuple[str, ...]:
        """The tags the Hub has, in the library's order."""
        return tuple(t.tag for t in self.tags if t.status == AVAILABLE)

    def choices(self) -> list[tuple[str, str]]:
        """``(label, tag)`` pairs for a dropdown, in the library's order (no random-weights entry)."""
        return [(self.label(t.tag), t.tag) for t in self.tags]


@dataclass(frozen=True)
class DefaultWeights:
    """The weights a form should start with.

    Args:
        tag: The pretrained tag to select; None: random weights.
        note: What to tell the user about the choice ("" when the library's default tag is on the Hub).
    """

    tag: str | None
    note: str


# --- asking the Hub ---------------------------------------------------------------------------------------------
_cache: dict[tuple[str, str, str], tuple[float, ServableTags]] = {}
_cache_lock = threading.Lock()


def clear_servable_cache() -> None:
    """Forget every answer (e.g. after seeding a Hub with new repos)."""
    with _cache_lock:
        _cache.clear()


def servable_tags(
    library: str,
    architecture: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    refresh: bool = False,
) -> ServableTags:
    """Ask the Hub which pretrained tags of ``architecture`` it can serve.

    Args:
        library: A registered source library.
        architecture: The architecture (a name with a tag counts as its architecture).
        endpoint: The Hub to ask; None: ``HF_ENDPOINT`` (where the libraries download from).
        token: The token to ask with (a private repo counts); None: the logged-in one, if any.
        timeout: Seconds to wait for each request before the answer is :data:`UNKNOWN`.
        refresh: Ask again even if an answer is cached.

    Returns:
        The :class:`ServableTags`; Hub trouble never raises, it gives :data:`UNKNOWN` tags and says why.

    Raises:
        InvalidInputError: Unknown library, or an empty name.
        ModelNotFoundError: No such architecture.
    """
    from huggingface_hub import constants

    source = get_source(library)
    arch = resolve_name(source, architecture).architecture
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    key = (endpoint, library, arch)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] > now and not refresh:
        return cached[1]
    known = source.index().tags.get(arch, ())
    repos_of: Callable[[str], dict[str, str | None]] | None = getattr(source, "pretrained_repos", None)
    repos = repos_of(arch) if repos_of is not None else {}
    ordered = [t for t in repos if t in known] + [t for t in known if t not in repos]
    result = _ask(library, arch, endpoint, token, timeout, ordered, repos, constants.HF_HUB_OFFLINE)
    with _cache_lock:
        _cache[key] = (time.monotonic() + (ANSWER_TTL if result.answered else FAILURE_TTL), result)
    return result


def _ask(
    library: str,
    arch: str,
    endpoint: str,
    token: str | None,
    timeout: float,
    tags: list[str],
    repos: dict[str, str | None],
    offline: bool,
) -> ServableTags:
    orgs: dict[str, list[str]] = {}
    for tag in tags:
        repo = repos.get(tag)
        if repo and repo.count("/") == 1:
            orgs.setdefault(repo.split("/")[0], []).append(repo.split("/")[1])
    found: set[str] = set()
    failures: list[str] = []
    asked: set[str] = set()
    if offline and orgs:
        failures.append("HF_HUB_OFFLINE is set, so the Hub was not asked; a tag loads only from the local cache")
    elif orgs:
        for org, names in orgs.items():
            try:
                found |= {i.lower() for i in _list_repos(endpoint, token, timeout, org, _common_prefix(names))}
                asked.add(org)
            except Exception as exc:  # any trouble is an honest "unknown", never an error in the form
                failures.append(_reason(exc, timeout))
                break  # the same Hub would fail the next org's request too: one timeout, not one per org
    statuses = []
    for tag in tags:
        repo = repos.get(tag) if tag in repos else ""
        if repo == "":  # the library did not say where the tag downloads from
            statuses.append(TagStatus(tag, None, UNKNOWN))
        elif repo is None or repo.count("/") != 1:
            statuses.append(TagStatus(tag, None, NOT_SERVED))
        elif repo.split("/")[0] in asked:
            statuses.append(TagStatus(tag, repo, AVAILABLE if repo.lower() in found else NOT_SERVED))
        else:
            statuses.append(TagStatus(tag, repo, UNKNOWN))
    answered = not failures and all(s.status != UNKNOWN for s in statuses)
    statuses = [_with_cache(s) for s in statuses]
    return ServableTags(
        library, arch, endpoint, tuple(statuses), answered, _message(arch, endpoint, statuses, failures)
    )


def _with_cache(status: TagStatus) -> TagStatus:
    """A tag the Hub cannot serve (or was not asked about) is :data:`CACHED` when the cache holds its weights."""
    if status.status in (NOT_SERVED, UNKNOWN) and status.repo_id is not None and in_local_cache(status.repo_id):
        return replace(status, status=CACHED)
    return status


def in_local_cache(repo_id: str) -> bool:
    """Whether this machine's Hugging Face cache holds weights of the model repo ``repo_id``.

    Args:
        repo_id: A model repo id (``timm/resnet18.a1_in1k``).

    Returns:
        True when a snapshot of it in ``HF_HUB_CACHE`` has a weights file (``.safetensors``, ``.bin``, ``.pth``,
        ``.pt``) whose content is there (a link to a removed blob does not count); looked at on disk only.
    """
    from huggingface_hub import constants

    snapshots = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    try:
        return any(f.name.endswith(_WEIGHT_SUFFIXES) and f.is_file() for f in snapshots.glob("*/*"))
    except OSError:  # an unreadable cache is no cache
        return False


def _list_repos(endpoint: str, token: str | None, timeout: float, org: str, prefix: str) -> list[str]:
    """The ids of ``org``'s models whose name contains ``prefix``: one request, no retries, ``timeout`` seconds."""
    from huggingface_hub import get_session
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

    params: dict[str, Any] = {"author": org, "limit": _LIST_LIMIT}
    if len(prefix) >= 3:
        params["search"] = prefix
    response = get_session().get(
        f"{endpoint}/api/models", params=params, headers=build_hf_headers(token=token), timeout=timeout
    )
    hf_raise_for_status(response)
    items = response.json()
    if not isinstance(items, list):
        raise ValueError("the Hub's model list is not a list")
    return [str(i.get("id") or i.get("modelId")) for i in items if isinstance(i, dict)]


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _reason(exc: BaseException, timeout: float) -> str:
    import httpx2  # huggingface_hub's HTTP client

    if isinstance(exc, httpx2.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx2.ConnectError):
        return "it could not be reached"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"it answered HTTP {status}"
    return f"{type(exc).__name__}: {first_line(exc)}"


def _message(arch: str, endpoint: str, statuses: list[TagStatus], failures: list[str]) -> str:
    if not statuses:
        return f"{arch} has no pretrained tags."
    cached = sum(s.status == CACHED for s in statuses)
    if failures:
        return (
            f"Could not ask the Hub at {endpoint} which tags of {arch} it has ({'; '.join(dict.fromkeys(failures))}): "
            "the tags are not checked."
            + (f" {cached} {'is' if cached == 1 else 'are'} in your Hugging Face cache." if cached else "")
        )
    served = sum(s.status == AVAILABLE for s in statuses)
    unknown = sum(s.status == UNKNOWN for s in statuses)
    text = f"{served} of {len(statuses)} pretrained tags of {arch} are on this Hub ({endpoint})."
    text += f" {cached} more {'is' if cached == 1 else 'are'} in your Hugging Face cache." if cached else ""
    return text + (f" {unknown} could not be checked." if unknown else "")


# --- the default ------------------------------------------------------------------------------------------------
def default_weights(servable: ServableTags, preferred: str | None) -> DefaultWeights:
    """The weights to start a form with: the preferred tag if the Hub has it, else the first tag it has, else
    random weights, with a note that says why.

    Args:
        servable: What :func:`servable_tags` said.
        preferred: The library's default tag (``ModelFacts.tag``), or None.

    Returns:
        The :class:`DefaultWeights`. When the Hub could not be asked, the preferred tag is kept (it may well
        load) and the note says it was not checked.
    """
    where = f"this Hub ({servable.endpoint})"
    status = servable.status(preferred) if preferred else UNKNOWN
    if preferred and status == AVAILABLE:
        return DefaultWeights(preferred, "")
    if preferred and status == UNKNOWN and not servable.answered:
        return DefaultWeights(preferred, f"{servable.message} {preferred} may fail to download.")
    first = next(iter(servable.servable()), None)
    if first is not None:
        if preferred:
            return DefaultWeights(first, f"{preferred} is not on {where}; {first} is, so it is selected.")
        return DefaultWeights(first, "")
    # Nothing the Hub serves: a tag whose weights this machine already has loads from the cache.
    cached = [t.tag for t in servable.tags if t.status == CACHED]
    if cached:
        tag = preferred if preferred in cached else cached[0]
        return DefaultWeights(
            tag,
            f"{tag} is not on {where}, but its weights are in your Hugging Face cache, so it is selected: it loads "
            "from the cache.",
        )
    if not servable.tags:
        return DefaultWeights(None, "")
    return DefaultWeights(
        None,
        f"No pretrained weights of {servable.architecture} are on {where}, so random weights are selected: the "
        "conversion works, but the model is not trained. To convert real weights, set HF_ENDPOINT to a Hub that "
        "has them (e.g. https://huggingface.co) or upload a checkpoint.",
    )


__all__ = [
    "AVAILABLE",
    "CACHED",
    "NOT_SERVED",
    "UNKNOWN",
    "DefaultWeights",
    "ServableTags",
    "TagStatus",
    "clear_servable_cache",
    "default_weights",
    "in_local_cache",
    "servable_tags",
]
