"""Pushing an exported folder: targets, README handling, the parity gate, dry runs, and bad input
that must leave the Hub untouched. All against the real local Hub over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from hubui.card import CardFields
from hubui.errors import (
    InvalidCardError,
    InvalidInputError,
    InvalidRepoIdError,
    InvalidRevisionError,
    NamespaceForbiddenError,
    ParityFailedError,
    PushError,
    ReadOnlyTokenError,
)
from hubui.pipeline import ConvertOptions, convert, dry_run, publish
from hubui.publishing import PushRequest, push
from hubui.spec import ModelSpec


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One fp32 test_resnet export with a passing parity.json, shared by the tests here."""
    out = tmp_path_factory.mktemp("export") / "test_resnet"
    result = convert(ModelSpec("timm", "test_resnet", seed=3), ConvertOptions(out))
    assert result.passed
    return out


@pytest.fixture
def api(localhub) -> HfApi:
    return HfApi(endpoint=localhub.url, token=localhub.users.alice)


def _failed_copy(exported: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "failed"
    folder.mkdir()
    for f in exported.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    parity = json.loads((folder / "parity.json").read_text())
    parity["verdict"] = "fail"
    (folder / "parity.json").write_text(json.dumps(parity))
    return folder


def test_push_to_main_then_verify(localhub, api, exported, repo_name):
    request = PushRequest(
        exported,
        f"alice/{repo_name}",
        commit_message="First upload",
        commit_description="why",
        allow_random_weights=True,
    )
    result = publish(request, token=localhub.users.alice)
    assert result.push.revision == "main" and result.push.pr_url is None
    assert result.push.commit_url == f"{localhub.url}/alice/{repo_name}/commit/{result.push.commit_oid}"
    assert result.verification is not None and result.verification.status == "passed"
    files = set(api.list_repo_files(f"alice/{repo_name}"))
    assert {"config.json", "model.safetensors", "parity.json", "README.md"} <= files
    commit = api.list_repo_commits(f"alice/{repo_name}")[0]
    assert commit.title == "First upload" and "why" in commit.message and commit.authors == ["alice"]
    card = ModelCard.load(f"alice/{repo_name}", token=localhub.users.alice)
    assert card.data.library_name == "timm"
    assert "Conversion and parity" in card.text and "fp32" in card.text


def test_pr_push_lands_on_refs_pr_and_main_is_untouched(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    main_before = api.model_info(repo).sha
    result = publish(PushRequest(exported, repo, create_pr=True, allow_random_weights=True), token=localhub.users.alice)
    assert result.push.revision == "refs/pr/1"
    assert result.push.pr_url == f"{localhub.url}/{repo}/discussions/1"
    assert api.model_info(repo).sha == main_before
    assert api.list_repo_files(repo) == [".gitattributes"]
    assert "model.safetensors" in api.list_repo_files(repo, revision="refs/pr/1")
    assert result.verification.status == "passed"


def test_branch_push_lands_on_the_branch(localhub, api, exported, repo_name):
    repo = f"team/{repo_name}"
    result = publish(
        PushRequest(exported, repo, branch="dev", allow_random_weights=True), token=localhub.users.alice, verify=False
    )
    assert result.push.revision == "dev" and result.verification is None
    assert "model.safetensors" in api.list_repo_files(repo, revision="dev")
    assert api.list_repo_files(repo) == [".gitattributes"]


def test_existing_readme_survives_by_default(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    own = "---\nlicense: mit\n---\n# My own words\n\nKeep me.\n"
    api.upload_file(path_or_fileobj=own.encode(), path_in_repo="README.md", repo_id=repo)
    result = push(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice)
    assert "README.md" not in {f.path for f in result.files}
    assert ModelCard.load(repo).content.strip() == own.strip()


def test_readme_merge_keeps_text_and_updates_metadata(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    own = "---\nlicense: mit\ntags:\n- mine\n---\n# My own words\n\nKeep me.\n"
    api.upload_file(path_or_fileobj=own.encode(), path_in_repo="README.md", repo_id=repo)
    fields = CardFields(license="apache-2.0", tags=["image-classification"])
    publish(
        PushRequest(exported, repo, readme_mode="merge", allow_random_weights=True),
        fields,
        token=localhub.users.alice,
        verify=False,
    )
    card = ModelCard.load(repo)
    assert "Keep me." in card.text and "Conversion and parity" in card.text
    assert card.data.license == "apache-2.0" and card.data.library_name == "timm"


def test_readme_replace_uses_the_new_card(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"# old\n", path_in_repo="README.md", repo_id=repo)
    publish(
        PushRequest(exported, repo, readme_mode="replace", allow_random_weights=True),
        token=localhub.users.alice,
        verify=False,
    )
    assert "# old" not in ModelCard.load(repo).text


def test_dry_run_lists_files_and_uploads_nothing(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    plan = dry_run(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice)
    sizes = {f.path: f.size for f in plan.files}
    assert sizes["model.safetensors"] == (exported / "model.safetensors").stat().st_size
    assert set(sizes) == {"config.json", "model.safetensors", "parity.json", "README.md"}
    assert plan.readme_action == "new" and plan.repo_exists is False and plan.user == "alice"
    assert plan.readme_diff.startswith("--- /dev/null")
    assert api.repo_exists(repo) is False


def test_dry_run_shows_the_card_diff_against_the_existing_readme(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"# old card\n", path_in_repo="README.md", repo_id=repo)
    head = api.model_info(repo).sha
    plan = dry_run(
        PushRequest(exported, repo, readme_mode="replace", allow_random_weights=True), token=localhub.users.alice
    )
    assert "-# old card" in plan.readme_diff and "+library_name: timm" in plan.readme_diff
    assert api.model_info(repo).sha == head


def test_failed_parity_blocks_the_push(localhub, api, exported, tmp_path, repo_name):
    folder = _failed_copy(exported, tmp_path)
    with pytest.raises(ParityFailedError, match="'fail'"):
        publish(PushRequest(folder, f"alice/{repo_name}", allow_random_weights=True), token=localhub.users.alice)
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_override_is_recorded_in_the_card(localhub, api, exported, tmp_path, repo_name):
    folder = _failed_copy(exported, tmp_path)
    repo = f"alice/{repo_name}"
    publish(
        PushRequest(folder, repo, allow_failed_parity=True, allow_random_weights=True),
        token=localhub.users.alice,
        verify=False,
    )
    text = ModelCard.load(repo).text
    assert "Parity override" in text and "'fail'" in text


def test_private_push_and_visibility_is_never_changed(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    publish(
        PushRequest(exported, repo, private=True, allow_random_weights=True), token=localhub.users.alice, verify=False
    )
    assert api.model_info(repo).private is True
    assert HfApi(endpoint=localhub.url, token=localhub.users.bob).repo_exists(repo) is False
    public = f"alice/{repo_name}-public"
    api.create_repo(public)
    with pytest.raises(PushError, match="public"):
        push(PushRequest(exported, public, private=True, allow_random_weights=True), token=localhub.users.alice)
    assert api.list_repo_files(public) == [".gitattributes"]


def test_unchanged_push_makes_no_commit(localhub, api, exported, repo_name):
    repo = f"alice/{repo_name}"
    first = push(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice)
    again = push(PushRequest(exported, repo, create_pr=True, allow_random_weights=True), token=localhub.users.alice)
    assert first.changed is True and again.changed is False
    assert again.pr_url is None and again.commit_oid == first.commit_oid
    assert len(api.list_repo_commits(repo)) == 2


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        ({"repo_id": "alice/has space"}, InvalidRepoIdError, "has space"),
        ({"repo_id": "alice/../etc"}, InvalidRepoIdError, "../etc"),
        ({"repo_id": "alice/" + "x" * 97}, InvalidRepoIdError, "xxxx"),
        ({"repo_id": "alice/bad$chars"}, InvalidRepoIdError, "bad$chars"),
        ({"repo_id": "no-namespace"}, InvalidRepoIdError, "no-namespace"),
        ({"branch": "a..b"}, InvalidRevisionError, "a..b"),
        ({"branch": "has space"}, InvalidRevisionError, "has space"),
        ({"readme_mode": "overwrite"}, InvalidInputError, "overwrite"),
    ],
)
def test_bad_requests_upload_nothing(localhub, api, exported, repo_name, change, error, named):
    request = PushRequest(**{"folder": exported, "repo_id": f"alice/{repo_name}", **change}, allow_random_weights=True)
    with pytest.raises(error) as exc:
        push(request, token=localhub.users.alice)
    assert named in str(exc.value)
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_read_only_token_uploads_nothing(localhub, api, exported, repo_name):
    with pytest.raises(ReadOnlyTokenError):
        publish(PushRequest(exported, f"reader/{repo_name}", allow_random_weights=True), token=localhub.users.reader)
    with pytest.raises(ReadOnlyTokenError):
        publish(PushRequest(exported, f"alice/{repo_name}", allow_random_weights=True), token=localhub.users.reader)
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_org_the_user_is_not_in_uploads_nothing(localhub, api, exported, repo_name):
    with pytest.raises(NamespaceForbiddenError, match="'team'"):
        publish(PushRequest(exported, f"team/{repo_name}", allow_random_weights=True), token=localhub.users.bob)
    assert api.repo_exists(f"team/{repo_name}") is False


def test_invalid_card_field_uploads_nothing(localhub, api, exported, repo_name):
    with pytest.raises(InvalidCardError, match="not-a-license"):
        publish(
            PushRequest(exported, f"alice/{repo_name}", allow_random_weights=True),
            CardFields(license="not-a-license"),
            token=localhub.users.alice,
        )
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_folder_that_is_not_an_export_uploads_nothing(localhub, api, tmp_path, repo_name):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)
    with pytest.raises(InvalidInputError, match="not an exported model folder"):
        push(PushRequest(tmp_path, f"alice/{repo_name}", allow_random_weights=True), token=localhub.users.alice)
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_invalid_token_uploads_nothing(localhub, api, exported, repo_name):
    from hubui.errors import InvalidTokenError

    bogus = "revoked-or-never-issued-token"
    with pytest.raises(InvalidTokenError) as exc:
        publish(PushRequest(exported, f"alice/{repo_name}", allow_random_weights=True), token=bogus)
    assert bogus not in str(exc.value)
    assert api.repo_exists(f"alice/{repo_name}") is False


def test_pushed_weights_equal_the_export_bit_for_bit(localhub, exported, repo_name, fresh_cache):
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    repo = f"alice/{repo_name}"
    push(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice)
    remote = load_file(hf_hub_download(repo, "model.safetensors", cache_dir=fresh_cache))
    local = load_file(exported / "model.safetensors")
    assert remote.keys() == local.keys()
    assert all(torch.equal(remote[k], local[k]) for k in local)


def test_no_local_path_is_published(localhub, exported, repo_name, fresh_cache):
    from huggingface_hub import snapshot_download

    repo = f"alice/{repo_name}"
    publish(PushRequest(exported, repo, allow_random_weights=True), token=localhub.users.alice, verify=False)
    local = Path(snapshot_download(repo, cache_dir=fresh_cache))
    for name in ("README.md", "parity.json", "config.json"):
        text = (local / name).read_text()
        assert str(exported) not in text and "/tmp/" not in text, name


def test_fetch_readme(localhub, api, repo_name):
    from hubui.publishing import fetch_readme

    repo = f"alice/{repo_name}"
    assert fetch_readme(repo, token=localhub.users.alice) is None
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"# hello\n", path_in_repo="README.md", repo_id=repo)
    assert fetch_readme(repo, token=localhub.users.alice) == "# hello\n"
    assert fetch_readme(repo, token=localhub.users.bob) is None
