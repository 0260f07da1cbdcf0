"""Issue 20 item 4: which pretrained tags the configured Hub can serve, the default that works offline, and the
error for a tag the Hub cannot serve.

The Hubs are real local Hubs over HTTP: a private one per module (so that repos under ``timm/`` and ``laion/`` seeded
here cannot change what other tests see on the session's Hub), the session's one for loading errors, and two that
cannot answer (a closed port, and a socket that accepts but never replies).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import timm
import torch
from _hubextra import Tokens, start_hub_with
from huggingface_hub import HfApi, constants

from hubui.errors import ModelNotFoundError
from hubui.loading import load_model
from hubui.servable import (
    AVAILABLE,
    CACHED,
    NOT_SERVED,
    UNKNOWN,
    clear_servable_cache,
    default_weights,
    servable_tags,
)
from hubui.spec import ModelSpec


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[tuple[str, HfApi]]:
    """A private local Hub where alice is in the orgs ``timm`` and ``laion``, holding two of resnet18's tags, one
    open_clip tag, and decoys: another architecture's tag, and resnet18's default tag under another org."""
    tokens = Tokens()
    proc = start_hub_with(tmp_path_factory.mktemp("servable-hub"), tokens.users(), ["timm:alice", "laion:alice"])
    api = HfApi(endpoint=proc.url, token=tokens.alice)
    for repo in (
        "timm/resnet18.tv_in1k",
        "timm/resnet18.gluon_in1k",
        "timm/resnet18d.ra2_in1k",  # resnet18d, not resnet18
        "alice/resnet18.a1_in1k",  # the default tag's name, but not where timm downloads it from
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    ):
        api.create_repo(repo)
    try:
        yield proc.url, api
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_servable_cache()
    yield
    clear_servable_cache()


def test_the_tags_the_hub_has_are_available_and_the_others_not_served(hub):
    url, _ = hub
    tags = servable_tags("timm", "resnet18", endpoint=url)
    assert tags.answered and tags.endpoint == url
    assert tags.servable() == ("tv_in1k", "gluon_in1k")  # in timm's order
    assert tags.status("tv_in1k") == AVAILABLE and tags.status("gluon_in1k") == AVAILABLE
    assert tags.status("a1_in1k") == NOT_SERVED  # alice/resnet18.a1_in1k is not timm/resnet18.a1_in1k
    assert tags.tags[0].tag == "a1_in1k"  # timm's order: its default tag first
    assert {t.repo_id for t in tags.tags} >= {"timm/resnet18.a1_in1k", "timm/resnet18.tv_in1k"}
    assert tags.label("tv_in1k") == "tv_in1k (on this Hub)"
    assert tags.label("a1_in1k") == "a1_in1k (not on this Hub)"
    assert ("tv_in1k (on this Hub)", "tv_in1k") in tags.choices()
    assert len(tags.choices()) == len(tags.tags) > 2
    assert tags.message == f"2 of {len(tags.tags)} pretrained tags of resnet18 are on this Hub ({url})."


def test_the_default_is_the_first_tag_the_hub_has_else_random_weights_with_a_note(hub):
    url, _ = hub
    picked = default_weights(servable_tags("timm", "resnet18", endpoint=url), "a1_in1k")
    assert picked.tag == "tv_in1k"  # the first tag the Hub has, in timm's order
    assert picked.note == f"a1_in1k is not on this Hub ({url}); tv_in1k is, so it is selected."
    assert default_weights(servable_tags("timm", "resnet18", endpoint=url), "tv_in1k").tag == "tv_in1k"
    assert default_weights(servable_tags("timm", "resnet18", endpoint=url), "tv_in1k").note == ""

    none = default_weights(servable_tags("timm", "resnet50", endpoint=url), "a1_in1k")  # no resnet50 repo at all
    assert none.tag is None
    assert "No pretrained weights of resnet50 are on this Hub" in none.note
    assert "random weights are selected" in none.note and "not trained" in none.note
    assert "HF_ENDPOINT" in none.note


def test_answers_are_cached_per_endpoint_and_model_until_refreshed(hub):
    url, api = hub
    assert servable_tags("timm", "resnet34", endpoint=url).status("a1_in1k") == NOT_SERVED
    api.create_repo("timm/resnet34.a1_in1k")
    # The cached answer stands (no request per call); refresh asks again and sees the new repo.
    assert servable_tags("timm", "resnet34", endpoint=url).status("a1_in1k") == NOT_SERVED
    assert servable_tags("timm", "resnet34", endpoint=url, refresh=True).status("a1_in1k") == AVAILABLE
    assert servable_tags("timm", "resnet34", endpoint=url).status("a1_in1k") == AVAILABLE


def test_open_clip_tags_are_checked_in_every_org_they_download_from(hub):
    url, _ = hub
    tags = servable_tags("open_clip", "ViT-B-32", endpoint=url)
    assert tags.answered
    assert tags.status("laion2b_s34b_b79k") == AVAILABLE  # laion/CLIP-ViT-B-32-laion2B-s34B-b79K
    assert tags.status("openai") == NOT_SERVED  # timm/vit_base_patch32_clip_224.openai: not seeded
    assert tags.servable() == ("laion2b_s34b_b79k",)


def test_a_hub_that_cannot_be_reached_gives_unknown_tags_and_keeps_the_default(hub):
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    tags = servable_tags("timm", "resnet18", endpoint=url, timeout=5)
    assert not tags.answered
    assert {t.status for t in tags.tags} == {UNKNOWN}
    assert tags.message.startswith(f"Could not ask the Hub at {url} which tags of resnet18 it has")
    assert "could not be reached" in tags.message
    assert tags.label("a1_in1k") == "a1_in1k"
    picked = default_weights(tags, "a1_in1k")
    assert picked.tag == "a1_in1k"  # it may well load: an unreachable Hub is not proof it lacks the weights
    assert "the tags are not checked" in picked.note and "a1_in1k may fail to download" in picked.note


def test_a_hub_that_never_answers_is_unknown_once_the_timeout_passes():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never sends a byte
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tags = servable_tags("timm", "resnet18", endpoint=url, timeout=0.5)
    assert not tags.answered and tags.status("a1_in1k") == UNKNOWN
    assert "no answer within 0.5 s" in tags.message


def test_offline_mode_asks_nothing_and_says_so(hub, monkeypatch):
    url, _ = hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    tags = servable_tags("timm", "resnet18", endpoint=url)
    assert not tags.answered and tags.status("tv_in1k") == UNKNOWN
    assert "HF_HUB_OFFLINE is set" in tags.message


def test_an_unknown_architecture_is_refused_like_everywhere_else(hub):
    url, _ = hub
    with pytest.raises(ModelNotFoundError, match="resnet18x"):
        servable_tags("timm", "resnet18x", endpoint=url)


# --- running a tag the Hub cannot serve (the session's Hub, where no timm/ repo of these is seeded) ---------------
def test_running_an_unservable_timm_tag_names_the_fix(localhub):
    with pytest.raises(ModelNotFoundError) as info:
        load_model(ModelSpec("timm", "test_efficientnet_evos", pretrained="r160_in1k"))
    assert str(info.value.message) == (
        f"This Hub ({localhub.url}) cannot serve timm/test_efficientnet_evos.r160_in1k, the pretrained weights of "
        "'test_efficientnet_evos.r160_in1k'."
    )
    assert info.value.hint == (
        "Pick random weights or a tag marked available, or set HF_ENDPOINT to a Hub that has "
        "timm/test_efficientnet_evos.r160_in1k."
    )


def test_running_an_unservable_open_clip_tag_names_the_fix(localhub):
    with pytest.raises(ModelNotFoundError) as info:
        load_model(ModelSpec("open_clip", "ViT-B-32", pretrained="laion2b_e16"))
    assert "cannot serve timm/vit_base_patch32_clip_224.laion2b_e16" in info.value.message
    assert info.value.hint.startswith("Pick random weights or a tag marked available, or set HF_ENDPOINT")


# --- a tag the Hub lacks whose weights this machine's cache holds --------------------------------------------------
def test_a_tag_the_hub_lost_but_the_cache_holds_is_marked_selected_and_loads_from_the_cache(
    localhub, tmp_path, monkeypatch
):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    repo, spec = "timm/test_vit3.r160_in1k", ModelSpec("timm", "test_vit3", pretrained="r160_in1k")
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    timm.models.push_to_hf_hub(
        timm.create_model("test_vit3", pretrained=False), repo, token=localhub.users.alice, safe_serialization=True
    )
    first = load_model(spec).model.state_dict()  # a user loaded it once: the cache holds it
    api.delete_repo(repo)  # then the Hub lost it (or the user moved to an offline Hub)

    tags = servable_tags("timm", "test_vit3", endpoint=localhub.url)
    assert tags.answered and tags.status("r160_in1k") == CACHED
    assert tags.label("r160_in1k") == "r160_in1k (in your Hugging Face cache)"
    assert tags.message.endswith("are on this Hub (" + localhub.url + "). 1 more is in your Hugging Face cache.")
    picked = default_weights(tags, "r160_in1k")
    assert picked.tag == "r160_in1k" and "in your Hugging Face cache, so it is selected" in picked.note
    again = load_model(spec).model.state_dict()  # huggingface_hub takes the cached file when the Hub says 404
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)

    # Another machine (an empty cache): the tag is not served, and the default is random weights.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    tags = servable_tags("timm", "test_vit3", endpoint=localhub.url, refresh=True)
    assert tags.status("r160_in1k") == NOT_SERVED and default_weights(tags, "r160_in1k").tag is None
