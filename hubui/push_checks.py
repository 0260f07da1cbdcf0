"""The checks a push makes on its target just before it acts: owner, branch, tag, and visibility (twice).

``check_target`` runs while the push is prepared (also for a dry run): a private push onto a public repo, a
PR onto someone else's repo that does not exist (or onto a branch they lack, which the proposer cannot
create), a tag that already exists. ``check_visibility_again`` runs after the repo was created and right
before the commit: between hubui's first look and its ``create_repo(exist_ok=True)``, someone may have
created the repo public, and ``create_repo`` does not say so. ``check_random_weights`` runs first, before any
request: a folder of random weights (its ``parity.json`` says so, see :mod:`hubui.provenance`) is pushed only when
that was asked for explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hubui.errors import NamespaceForbiddenError, PushError, RandomWeightsError
from hubui.provenance import WeightsOrigin, read_weights_origin
from hubui.push_tags import check_tag_free

if TYPE_CHECKING:
    from hubui.push_session import _Session
    from hubui.push_types import PushRequest


def check_random_weights(folder: Path, allow_random_weights: bool) -> WeightsOrigin | None:
    """Refuse to push random weights (not a trained model) unless that was asked for explicitly.

    Args:
        folder: The export folder; its ``parity.json`` records where the weights came from.
        allow_random_weights: ``PushRequest.allow_random_weights`` (``--allow-random-weights``, the app's
            confirmation).

    Returns:
        The origin recorded, or ``None`` when the folder records none (converted before hubui recorded it,
        or no ``parity.json``): such a push goes ahead, and the card says the origin is not recorded.

    Raises:
        RandomWeightsError: The weights are random and ``allow_random_weights`` is false; nothing was uploaded.
    """
    origin = read_weights_origin(folder)
    if origin is not None and origin.is_random and not allow_random_weights:
        # No folder path in the message: in the app it is a server path that means nothing to the user.
        raise RandomWeightsError(
            f"This export holds random weights (seed {origin.seed}), not a trained model; nothing was pushed."
        )
    return origin


def check_visibility_again(session: _Session, request: PushRequest, say: Callable[[str], None]) -> None:
    """Read the visibility again right before the commit: the repo may have been created (or made public) by
    someone else since it was first checked, and ``create_repo(exist_ok=True)`` does not say so.

    Args:
        session: The push's session (client, identity).
        request: The push request.
        say: Receives a note when a public push finds the repo private (nothing leaks: the push goes ahead).

    Raises:
        PushError: A private push finds the repo public (or invisible); nothing was uploaded.
    """
    repo = request.repo_id
    now = session.repo_private(repo)
    if request.private and not now:
        state = "public" if now is False else "not visible to this token"
        raise PushError(
            f"{repo} is {state} now, but a private push was asked for: it was created or made public by someone "
            "else while this push was being prepared; nothing was uploaded.",
            "Make the repo private on the Hub (its settings), then push again; or push without --private.",
        )
    if not request.private and now:
        # Asked for public, found private: nothing leaks, so the push goes ahead; the user should know.
        say(f"note: {repo} is private (it was created private by someone else meanwhile); pushing into it")


def check_target(session: _Session, request: PushRequest, private: bool | None) -> None:
    """Refuse, before any upload, a target whose visibility, owner, branch or tag does not fit the request.

    Args:
        session: The push's session; ``session.foreign`` is set when the user may only open a PR there.
        request: The push request.
        private: The repo's visibility as first read, ``None`` when it does not exist (or is invisible).

    Raises:
        PushError: A private push onto a public repo; a PR onto a branch the proposer cannot create.
        NamespaceForbiddenError: A PR onto someone else's repo that does not exist.
        InvalidInputError: The requested tag exists already.
    """
    repo, user = request.repo_id, session.identity.name
    if private is not None and request.private and not private:
        raise PushError(
            f"{repo} already exists and is public, but a private push was asked for.",
            "Make the repo private on the Hub first, or push without --private.",
        )
    if session.foreign is not None:
        if private is None:
            raise NamespaceForbiddenError(
                f"{user!r} cannot create {repo} (namespace {session.namespace!r} is neither the user nor one of "
                f"their orgs), and a pull request needs an existing repo: {repo} does not exist or is private.",
                f"Check the repo id, or push to your own namespace ({', '.join(session.identity.namespaces)}).",
            )
        if request.branch is not None and session.head(repo, request.branch) is None:
            raise PushError(
                f"{repo} has no branch {request.branch!r}, and {user!r} cannot create one there; nothing was uploaded.",
                "Propose against an existing branch (or main), or ask the repo's owner to create the branch.",
            )
    if request.tag is not None and private is not None:
        session.retrying(lambda: check_tag_free(session.api, repo, str(request.tag)), "reading the tags")


__all__ = ["check_random_weights", "check_target", "check_visibility_again"]
