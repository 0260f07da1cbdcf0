"""Eight sessions for four users convert and push at the same time, through the core API and through the app.

(a) The core API in eight threads: ``hubui.convert`` then ``hubui.publish`` with each session's own token.
(b) The Gradio app, launched for real: eight ``gradio_client`` clients (one client is one browser session)
    log in with their user's token, pick a model, convert and push through the app's queue.

Checked afterwards, on the Hub: every repo exists with the exported files and the card, its parity verdict
is ``pass``, the weights are the session's own (distinct models and seeds make a mix-up visible), and every
commit's author is the session's own user. No session's outputs show another user's name or any token.
How responsive the app stays meanwhile is measured by ``bench/responsiveness.py``, not asserted here.
"""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, hf_hub_download

import hubui

USERS = ("alice", "bob", "carol", "dave")
# Eight distinct tiny timm models: a session that got another's model shows up as a wrong architecture.
ARCHS = (
    "test_resnet", "test_vit", "test_efficientnet", "test_convnext",
    "test_byobnet", "test_vit2", "test_nfnet", "test_convnext2",
)  # fmt: skip
SESSIONS = 8
EXPECTED_FILES = {"config.json", "model.safetensors", "parity.json", "README.md"}
NO_EVALS = {
    "headers": ["task_type", "dataset_type", "dataset_name", "metric_type", "metric_value"],
    "data": [],
    "metadata": None,
}


@dataclass(frozen=True)
class Plan:
    """One session: whose it is, what it converts, where it pushes."""

    index: int
    user: str
    arch: str
    repo_id: str


def plans(tag: str) -> list[Plan]:
    """Two sessions per user, each with its own model and repo."""
    run = uuid.uuid4().hex[:6]
    return [
        Plan(i, USERS[i % len(USERS)], ARCHS[i], f"{USERS[i % len(USERS)]}/load-{tag}-{run}-{i}")
        for i in range(SESSIONS)
    ]


# --- (b) one app session, as a browser would drive it -----------------------------------------------------
def drive_app_session(base_url: str, token: str, plan: Plan) -> dict[str, Any]:
    """Log in, pick the model, convert and push through the app's named endpoints, in one gradio session.

    Also used by ``bench/responsiveness.py``.

    Returns:
        Every output the session received, by step.
    """
    from gradio_client import Client

    client = Client(base_url, verbose=False)
    seen: dict[str, Any] = {"login": client.predict(token, api_name="/log_in")}
    client.predict("timm", plan.arch, api_name="/search")
    seen["model"] = client.predict("timm", plan.arch, api_name="/select_model")
    name = plan.repo_id.split("/", 1)[1]
    job = client.submit(
        "timm", plan.arch, "(random weights)", None, "fp32", "preset for the precision", [], name, False,
        api_name="/run_convert",
    )  # fmt: skip
    job.result()
    seen["convert"] = job.outputs()
    seen["push"] = client.predict(
        plan.user, name, False, "", False, f"session {plan.index}", "keep", False,
        "mit", "", "", "", "", "image-classification", "", "", "", NO_EVALS,
        True, "", "", "", "", "", "",  # random weights confirmed; sections, licence name and link empty
        api_name="/push",
    )  # fmt: skip
    client.close()
    return seen


# --- (a) one core session ---------------------------------------------------------------------------------
def run_core_session(token: str, plan: Plan, out: Path) -> tuple[hubui.ConvertResult, hubui.PublishResult]:
    spec = hubui.ModelSpec("timm", plan.arch, seed=1000 + plan.index)
    result = hubui.convert(spec, hubui.ConvertOptions(out / f"session-{plan.index}", keep_original=True))
    published = hubui.publish(
        hubui.PushRequest(
            result.export.folder, plan.repo_id, commit_message=f"session {plan.index}", allow_random_weights=True
        ),
        token=token,
        original=result.loaded,
    )
    return result, published


# --- checks on the Hub ------------------------------------------------------------------------------------
def check_on_hub(api: HfApi, plan: Plan, cache: Path) -> dict[str, torch.Tensor]:
    """The repo has the files, a passing parity.json, the session's architecture, and only its user's commits.

    Returns:
        The weights as they are on the Hub.
    """
    files = set(api.list_repo_files(plan.repo_id))
    assert files >= EXPECTED_FILES, (plan, sorted(files))
    parity = json.loads(Path(hf_hub_download(plan.repo_id, "parity.json", cache_dir=cache)).read_text())
    assert parity["verdict"] == "pass", (plan, parity["verdict"])
    config = json.loads(Path(hf_hub_download(plan.repo_id, "config.json", cache_dir=cache)).read_text())
    assert config["architecture"] == plan.arch, (plan, config["architecture"])
    commits = api.list_repo_commits(plan.repo_id)
    authors = {author for commit in commits for author in commit.authors}
    assert authors == {plan.user}, (plan, authors)
    assert any(c.title == f"session {plan.index}" for c in commits), (plan, [c.title for c in commits])
    return safetensors.torch.load_file(hf_hub_download(plan.repo_id, "model.safetensors", cache_dir=cache))


class _Token(str):
    """A token whose repr hides it: pytest prints a failing test's arguments."""

    def __repr__(self) -> str:
        return "<token>"


@pytest.fixture(scope="module")
def tokens(localhub) -> dict[str, str]:
    return {user: _Token(getattr(localhub.users, user)) for user in USERS}


def test_eight_core_sessions_for_four_users_push_under_their_own_names(localhub, tokens, tmp_path):
    todo = plans("core")
    with ThreadPoolExecutor(SESSIONS) as pool:
        done = list(pool.map(lambda p: run_core_session(tokens[p.user], p, tmp_path), todo))

    api = HfApi(endpoint=localhub.url, token=tokens["alice"])
    for plan, (result, published) in zip(todo, done, strict=True):
        assert result.passed, (plan, result.report.verdict)
        assert published.push.repo_id == plan.repo_id
        assert published.verification is not None and published.verification.status == "passed", plan
        on_hub = check_on_hub(api, plan, tmp_path / "dl")
        # The Hub holds this session's own weights (seeded per session), bit for bit.
        own = result.loaded.model.state_dict()
        assert set(on_hub) <= set(own), plan
        for key, tensor in on_hub.items():
            assert torch.equal(tensor, own[key].to(tensor.dtype)), (plan, key)
        latest = api.list_repo_commits(plan.repo_id)[0]
        assert latest.commit_id == published.push.commit_oid, plan


@pytest.fixture(scope="module")
def app_url(localhub):
    from hubui.ui import build_app

    app = build_app(localhub.url, oauth=False)
    app.launch(prevent_thread_lock=True, quiet=True, show_error=True)
    try:
        yield app.local_url
    finally:
        app.close()


def test_eight_app_sessions_through_the_queue_push_under_their_own_names(localhub, tokens, app_url, tmp_path):
    todo = plans("app")
    with ThreadPoolExecutor(SESSIONS) as pool:
        seen = list(pool.map(lambda p: drive_app_session(app_url, tokens[p.user], p), todo))

    api = HfApi(endpoint=localhub.url, token=tokens["alice"])
    for plan, outputs in zip(todo, seen, strict=True):
        assert f"Logged in as **{plan.user}**" in outputs["login"][0], (plan, outputs["login"][0])
        verdict = outputs["convert"][-1][3]
        assert verdict.startswith("## PASS"), (plan, verdict)
        result, verification = outputs["push"]
        assert f"`{plan.repo_id}`" in result and "Verification: **passed**" in verification, (plan, result)
        oid = re.search(r"/commit/([0-9a-f]{40})", result)
        assert oid is not None and api.list_repo_commits(plan.repo_id)[0].commit_id == oid.group(1), plan
        on_hub = check_on_hub(api, plan, tmp_path / "dl")
        # The weights are those of the session's own architecture, tensor by tensor.
        reference = timm.create_model(plan.arch).state_dict()
        assert on_hub and set(on_hub) <= set(reference), plan
        assert all(v.shape == reference[k].shape for k, v in on_hub.items()), plan

        # Nothing of another session: no other user's name as a login or a namespace, no token at all.
        text = json.dumps(outputs, default=str)
        for other in USERS:
            if other != plan.user:
                assert f"**{other}**" not in text and f"{other}/" not in text, (plan, other)
        leaked = [user for user, token in tokens.items() if token in text or token[:12] in text]
        assert not leaked, f"session {plan.index} got the token of {leaked}"  # names, never the token
