"""Every error hubui raises on purpose.

Each error carries a one-line ``hint`` that tells the user what to do next. The CLI prints
``message`` then ``hint``; the Gradio layer maps them to ``gr.Error`` in one place. Third-party
exceptions are translated at the boundary with ``raise ... from exc`` so the cause stays in the
traceback for developers while the user sees a sentence they can act on.

Messages never contain a token: they name the bad *value* only when that value is not a secret.
"""

from __future__ import annotations


class HubUIError(Exception):
    """Base class for all hubui errors.

    Args:
        message: What went wrong, naming the bad value where it is not a secret.
        hint: What to do next.
    """

    default_hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


# --- auth -------------------------------------------------------------------------------------------
class AuthError(HubUIError):
    """A problem with the token or the identity behind it."""


class NotLoggedInError(AuthError):
    default_hint = "Pass a token, set HF_TOKEN, or run `hf auth login`."


class InvalidTokenError(AuthError):
    default_hint = "Check the token (it may be mistyped or revoked) and log in again."


class ReadOnlyTokenError(AuthError):
    default_hint = "Create a token with the 'write' role and log in with it."


class NamespaceForbiddenError(AuthError):
    default_hint = "Push to your own namespace or to an organization you belong to."


class HubUnreachableError(HubUIError):
    default_hint = "Check HF_ENDPOINT and your network connection, then try again."


# --- input validation -------------------------------------------------------------------------------
class InvalidInputError(HubUIError, ValueError):
    """A value given by the user is malformed."""


class InvalidRepoIdError(InvalidInputError):
    default_hint = "Use the form 'namespace/name' with letters, digits, '-', '_' and '.' only."


class InvalidRevisionError(InvalidInputError):
    default_hint = "Use a branch name without spaces, '..', '~', '^', ':' or a leading '/'."


# --- models -----------------------------------------------------------------------------------------
class ModelError(HubUIError):
    """A problem finding, loading or converting a model."""


class ModelNotFoundError(ModelError):
    default_hint = "Search the catalog (`hubui models timm PATTERN`) for the exact name."


class CheckpointError(ModelError):
    """A checkpoint file cannot be read safely."""

    default_hint = "Provide a .safetensors file, or a .pth/.pt/.bin/.ckpt that holds only tensors."


class CheckpointMismatchError(ModelError):
    """A checkpoint does not fit the chosen architecture."""

    default_hint = "Pick the architecture the checkpoint was trained with, or fix num_classes."


class ExportError(ModelError):
    default_hint = "Check that the output folder is writable and has enough free space."


class NotConvertibleError(ModelError):
    """The model's topology has no counterpart in the conversion target (e.g. a ResNeXt for transformers)."""

    default_hint = "Use the native target for this model."


# --- parity -----------------------------------------------------------------------------------------
class ParityFailedError(HubUIError):
    default_hint = "Inspect the parity report; push anyway only with an explicit override."


# --- card and publish -------------------------------------------------------------------------------
class InvalidCardError(InvalidInputError):
    default_hint = "Fix the named card field and try again."


class PushError(HubUIError):
    default_hint = "Nothing was committed; fix the cause and push again."


class RandomWeightsError(PushError):
    """A push of random weights (not a trained model) that was not explicitly allowed."""

    default_hint = (
        "Pass --allow-random-weights (CLI) / tick the confirmation (app), or PushRequest(allow_random_weights=True), "
        "to push them anyway: the card says they are random. Or convert with a pretrained tag or a checkpoint."
    )


# --- local hub --------------------------------------------------------------------------------------
class LocalHubConfigError(InvalidInputError):
    default_hint = "Users look like 'name:TOKEN:write' or 'name:TOKEN:read'; orgs like 'org:user1,user2'."


class LocalHubRootInUseError(LocalHubConfigError):
    """Another local Hub (another process, or another Store in this one) holds the storage root."""

    default_hint = "Stop the local Hub that uses this root, or start this one with another --root."


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first.

    huggingface_hub, timm and open_clip wrap the error that matters (an HTTP status, a refused connection) in their
    own; hubui's translations look for it anywhere in the chain.

    Args:
        exc: The exception caught.

    Returns:
        ``exc``, its ``__cause__`` (or ``__context__``), and so on; a cycle or a chain of more than 20 stops it.
    """
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in out) and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message without its final period (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


__all__ = [
    "AuthError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ExportError",
    "HubUIError",
    "HubUnreachableError",
    "InvalidCardError",
    "InvalidInputError",
    "InvalidRepoIdError",
    "InvalidRevisionError",
    "InvalidTokenError",
    "LocalHubConfigError",
    "ModelError",
    "ModelNotFoundError",
    "NamespaceForbiddenError",
    "NotConvertibleError",
    "NotLoggedInError",
    "ParityFailedError",
    "PushError",
    "RandomWeightsError",
    "ReadOnlyTokenError",
    "exception_chain",
    "first_line",
]
