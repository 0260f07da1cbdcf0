"""Turn a failed Hub download or load into one hubui error that names the repo and says what to do."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

from hubui.errors import (
    CheckpointError,
    CheckpointMismatchError,
    HubUnreachableError,
    ModelError,
    ModelNotFoundError,
    first_line,
)


def unservable_error(repo_id: str, name: str, endpoint: str) -> ModelNotFoundError:
    """The error for a pretrained tag whose repo the Hub does not have (e.g. an offline local Hub)."""
    return ModelNotFoundError(
        f"This Hub ({endpoint}) cannot serve {repo_id}, the pretrained weights of {name!r}.",
        hint=f"Pick random weights or a tag marked available, or set HF_ENDPOINT to a Hub that has {repo_id}.",
    )


@contextmanager
def hub_errors(
    repo_id: str, what: str, missing_hint: str | None = None, *, pretrained: str | None = None
) -> Iterator[None]:
    """Translate huggingface_hub / network / load failures into hubui errors naming the repo.

    ``missing_hint`` replaces the hint given when the repo lacks the file (timm's file names by default).
    ``pretrained`` is the catalog name of a pretrained tag whose weights ``repo_id`` holds: a Hub without that
    repo gives :func:`unservable_error`, which says how to get weights that load.
    """
    import httpx
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from safetensors import SafetensorError

    endpoint = constants.ENDPOINT
    try:
        yield
    except LocalEntryNotFoundError as exc:
        if constants.HF_HUB_OFFLINE:
            raise HubUnreachableError(
                f"HF_HUB_OFFLINE is set and the {what} from '{repo_id}' cannot be found in the local cache.",
                hint="Unset HF_HUB_OFFLINE to download, or download the repo once while online.",
            ) from exc
        raise HubUnreachableError(
            f"Could not reach the Hub at {endpoint} to download {what} from '{repo_id}'."
        ) from exc
    except GatedRepoError as exc:
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' at {endpoint} is gated: {what} cannot be downloaded without access.",
            hint="Request access on the repo's page and log in with a token that has it.",
        ) from exc
    except RepositoryNotFoundError as exc:
        if pretrained is not None:
            raise unservable_error(repo_id, pretrained, endpoint) from exc
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' not found at {endpoint} (needed for {what}).",
            hint="Check the name and HF_ENDPOINT; log in if the repo is private.",
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(
            f"Revision not found in Hub repo '{repo_id}' at {endpoint} (needed for {what}).",
            hint="Check the revision after '@', or drop it to use main.",
        ) from exc
    except RemoteEntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' at {endpoint} has no file for {what} ({first_line(exc)}).",
            hint=missing_hint
            or "The repo needs model.safetensors (or pytorch_model.bin) and config.json as timm saves them.",
        ) from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise HubUnreachableError(
            f"The Hub at {endpoint} answered {status or 'an error'} while downloading {what} from '{repo_id}'."
        ) from exc
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {what} from '{repo_id}': the pickle references objects other than tensors.",
            hint="Ask the repo owner for a model.safetensors file.",
        ) from exc
    except SafetensorError as exc:
        raise CheckpointError(
            f"The {what} downloaded from '{repo_id}' are corrupt: {first_line(exc)}.",
            hint="Delete the cached copy (hf cache) and try again.",
        ) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise HubUnreachableError(
            f"Could not download {what} from '{repo_id}' at {endpoint}: {type(exc).__name__}: {first_line(exc)}."
        ) from exc
    except RuntimeError as exc:
        if "state_dict" in str(exc):
            raise CheckpointMismatchError(
                f"The {what} from '{repo_id}' do not fit the architecture: {first_line(exc)}."
            ) from exc
        raise ModelError(f"Could not build {what} from '{repo_id}': {first_line(exc)}.") from exc


__all__ = ["hub_errors", "unservable_error"]
