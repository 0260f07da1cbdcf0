"""Quick mode: one Hub model id in, the verified safetensors / card fix proposed as a PR to that repo.

Everything against the session's real local Hub over HTTP, with the real client and the libraries' own loaders:
alice owns a repo that needs the fix (a pickle-only checkpoint, a card without metadata), bob runs quick mode on
it, and the PR's files are then loaded by timm's own ``hf-hub:`` loader at ``refs/pr/N``; main stays as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from huggingface_hub import HfApi, hf_hub_download

from hubui.errors import CheckpointError, HubUIError
from hubui.quick import QuickRequest, QuickResult, iter_quick, run_quick

_CARD_TEXT = "# alice's cat net\n\nTrained on the cats of my street.\n"


def _prs(api: HfApi, repo: str) -> list[Any]:
    return [d for d in api.get_repo_discussions(repo) if d.is_pull_request]


def _timm_repo(api: HfApi, repo: str, folder: Path, *, safe: bool, readme: str | None, seed: int) -> torch.nn.Module:
    """A seeded test_resnet written by timm's own save_for_hf (safetensors or pytorch_model.bin) and uploaded."""
    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False).eval()
    timm.models.save_for_hf(model, str(folder), safe_serialization=safe)
    if readme is not None:
        (folder / "README.md").write_text(readme, encoding="utf-8")
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message="alice's upload")
    return model


def _pixels(model: torch.nn.Module) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.randn((2, *model.pretrained_cfg["input_size"]), generator=generator)


def _logits(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(pixels)


@pytest.fixture
def pickle_repo(alice, repo_name, tmp_path) -> tuple[str, torch.nn.Module]:
    """alice's repo with only pytorch_model.bin + config.json and a README with text but no metadata."""
    repo = f"alice/{repo_name}"
    model = _timm_repo(alice, repo, tmp_path / "alice", safe=False, readme=_CARD_TEXT, seed=3)
    assert "model.safetensors" not in alice.list_repo_files(repo)
    return repo, model


def test_quick_proposes_safetensors_and_card_as_a_pr_that_timm_loads_exactly(
    localhub, alice, pickle_repo, fresh_cache, tmp_path
):
    repo, original = pickle_repo
    main_before = alice.model_info(repo).sha
    stages = []
    result: QuickResult | None = None
    for event in iter_quick(QuickRequest(repo, token=localhub.users.bob, work_dir=tmp_path / "work")):
        stages.append(event.stage)
        result = event.result or result
    assert result is not None and stages[-1] == "done"
    assert {"inspect", "parity", "push", "verify"} <= set(stages), stages

    # What was wrong, what is proposed, and where.
    assert result.proposed and result.library == "timm"
    assert any("pytorch_model.bin" in p for p in result.problems), result.problems
    assert any("metadata" in p for p in result.problems), result.problems
    assert result.parity_verdict == "pass" and result.verification == "passed"
    prs = _prs(alice, repo)
    assert len(prs) == 1 and prs[0].author == "bob" and prs[0].status == "open"
    num = prs[0].num
    assert result.pr_revision == f"refs/pr/{num}"
    assert result.pr_url == f"{localhub.url}/{repo}/discussions/{num}"
    pr_files = set(alice.list_repo_files(repo, revision=f"refs/pr/{num}"))
    assert {"model.safetensors", "README.md", "config.json", "pytorch_model.bin"} <= pr_files
    assert {"model.safetensors", "README.md"} <= set(result.files)

    # The card: alice's words kept, the metadata and the parity section added, the origin named.
    card = Path(hf_hub_download(repo, "README.md", revision=f"refs/pr/{num}", cache_dir=fresh_cache)).read_text()
    assert "Trained on the cats of my street." in card
    assert "library_name: timm" in card and "pipeline_tag: image-classification" in card
    assert "Conversion and parity" in card and repo in card

    # timm's own loader, at the PR's revision, reproduces the original's logits exactly.
    rebuilt = timm.create_model(f"hf-hub:{repo}@refs/pr/{num}", pretrained=True, cache_dir=str(fresh_cache))
    pixels = _pixels(original)
    assert torch.equal(_logits(rebuilt, pixels), _logits(original, pixels))

    # main is untouched: still alice's commit, still no safetensors.
    assert alice.model_info(repo).sha == main_before
    assert "model.safetensors" not in alice.list_repo_files(repo)


def test_a_repo_with_safetensors_but_no_card_gets_a_card(localhub, alice, repo_name, tmp_path, fresh_cache):
    repo = f"alice/{repo_name}"
    original = _timm_repo(alice, repo, tmp_path / "alice", safe=True, readme=None, seed=5)
    result = run_quick(QuickRequest(f"hf-hub:{repo}", token=localhub.users.bob, work_dir=tmp_path / "work"))
    assert result.proposed and result.problems == ("no model card (README.md)",)
    (pr,) = _prs(alice, repo)
    assert result.pr_revision == f"refs/pr/{pr.num}"
    assert "README.md" in alice.list_repo_files(repo, revision=result.pr_revision)
    assert "README.md" not in alice.list_repo_files(repo)
    rebuilt = timm.create_model(f"hf-hub:{repo}@{result.pr_revision}", pretrained=True, cache_dir=str(fresh_cache))
    pixels = _pixels(original)
    assert torch.equal(_logits(rebuilt, pixels), _logits(original, pixels))


def test_a_repo_that_is_already_fine_gets_no_pr_and_a_clear_message(localhub, alice, repo_name, tmp_path):
    repo = f"alice/{repo_name}"
    card = "---\nlibrary_name: timm\npipeline_tag: image-classification\nlicense: mit\n---\n" + _CARD_TEXT
    _timm_repo(alice, repo, tmp_path / "alice", safe=True, readme=card, seed=6)
    before = alice.model_info(repo).sha
    progress: list[str] = []
    result = run_quick(QuickRequest(repo, token=localhub.users.bob), progress=progress.append)
    assert not result.proposed and result.problems == () and result.pr_url is None
    assert "nothing to fix" in result.message and "no PR" in result.message
    assert "model.safetensors" in result.message
    assert _prs(alice, repo) == [] and alice.model_info(repo).sha == before
    assert progress, "quick mode says what it is doing"


def test_an_unsafe_pickle_is_refused_before_anything_is_loaded_or_proposed(localhub, alice, repo_name, tmp_path):
    """A pytorch_model.bin whose pickle would run a command: read the safe way, refused, nothing proposed."""
    repo = f"alice/{repo_name}"
    marker = tmp_path / "pwned"
    folder = tmp_path / "alice"
    _timm_repo(alice, repo, folder, safe=False, readme=None, seed=8)

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    torch.save({"conv1.weight": Evil()}, folder / "pytorch_model.bin")
    alice.upload_file(path_or_fileobj=str(folder / "pytorch_model.bin"), path_in_repo="pytorch_model.bin", repo_id=repo)
    with pytest.raises(CheckpointError) as caught:
        run_quick(QuickRequest(repo, token=localhub.users.bob, work_dir=tmp_path / "work"))
    assert "pytorch_model.bin" in caught.value.message
    assert not marker.exists() and _prs(alice, repo) == []


@pytest.mark.parametrize(
    ("repo_id", "says"),
    [("alice/does-not-exist-quick", "does-not-exist-quick"), ("not a repo id", "not a repo id")],
)
def test_a_bad_repo_id_is_a_clear_error_naming_it(localhub, repo_id, says):
    with pytest.raises(HubUIError) as caught:
        run_quick(QuickRequest(repo_id, token=localhub.users.bob))
    assert says in caught.value.message and caught.value.hint
    assert localhub.users.bob not in caught.value.message + caught.value.hint


def _hubui(*args: str, token: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=400, env=env)


def test_cli_quick_proposes_the_pr_and_prints_its_link(localhub, alice, pickle_repo, fresh_cache):
    repo, original = pickle_repo
    proc = _hubui("quick", repo, token=localhub.users.bob)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and localhub.users.bob not in proc.stdout + proc.stderr
    (pr,) = _prs(alice, repo)
    assert f"{localhub.url}/{repo}/discussions/{pr.num}" in proc.stdout
    assert "pytorch_model.bin" in proc.stdout  # what was wrong
    rebuilt = timm.create_model(f"hf-hub:{repo}@refs/pr/{pr.num}", pretrained=True, cache_dir=str(fresh_cache))
    pixels = _pixels(original)
    assert torch.equal(_logits(rebuilt, pixels), _logits(original, pixels))

    again = _hubui("quick", repo, "--json", token=localhub.users.bob)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["pr_url"] == f"{localhub.url}/{repo}/discussions/{pr.num}" and len(_prs(alice, repo)) == 1
    assert data["existing_pr"] == pr.num and "already proposes" in data["message"]


def test_cli_quick_on_a_fine_repo_says_nothing_to_fix(localhub, alice, repo_name, tmp_path):
    repo = f"alice/{repo_name}"
    card = "---\nlibrary_name: timm\npipeline_tag: image-classification\n---\n" + _CARD_TEXT
    _timm_repo(alice, repo, tmp_path / "alice", safe=True, readme=card, seed=9)
    proc = _hubui("quick", repo, token=localhub.users.bob)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to fix" in proc.stdout and _prs(alice, repo) == []
    bad = _hubui("quick", "alice/no-such-repo-quick", token=localhub.users.bob)
    assert bad.returncode == 2 and "no-such-repo-quick" in bad.stderr and "Traceback" not in bad.stderr


# --- the Quick tab ----------------------------------------------------------------------------------------
def test_quick_tab_builds_inside_blocks_and_shows_the_result_or_one_error(localhub, alice, repo_name, tmp_path):
    import gradio as gr

    import hubui
    from hubui.ui.quick import build_quick_tab, on_quick
    from hubui.ui.state import Session, session_factory

    with gr.Blocks() as app:
        tab = build_quick_tab(gr.State(session_factory(False, tmp_path / "scratch")))
    ids = {c.elem_id for c in app.blocks.values() if getattr(c, "elem_id", None)}
    assert {"tab-quick", "quick-repo", "quick-run", "quick-progress", "quick-result"} <= ids
    assert tab.repo.elem_id == "quick-repo" and tab.result.elem_id == "quick-result"

    repo = f"alice/{repo_name}"
    card = "---\nlibrary_name: timm\npipeline_tag: image-classification\n---\n" + _CARD_TEXT
    _timm_repo(alice, repo, tmp_path / "alice", safe=True, readme=card, seed=10)
    session = Session()
    *_, (_, shown) = on_quick(session, repo, None)  # not logged in: one error, in the result, saying what to do
    assert shown.count("⚠") == 1 and "not logged in" in shown and "Login tab" in shown

    bob = localhub.users.bob
    session.log_in(bob, hubui.whoami(bob), "typed token")
    steps = list(on_quick(session, f"  {repo}  ", None))
    _, shown = steps[-1]
    assert "Nothing to fix" in shown and "no PR" in shown and "⚠" not in shown
    assert any("reading" in p for p, _ in steps) and bob not in "".join(p + r for p, r in steps)
    assert _prs(alice, repo) == []


# --- open_clip --------------------------------------------------------------------------------------------
def test_open_clip_pickle_repo_gets_safetensors_that_open_clip_loads_exactly(
    localhub, alice, repo_name, tmp_path, fresh_cache
):
    """An open_clip repo with only open_clip_pytorch_model.bin: the PR adds open_clip_model.safetensors."""
    import open_clip
    from huggingface_hub import snapshot_download
    from open_clip.push_to_hf_hub import save_config_for_hf

    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    name = f"quick-tiny-{repo_name}"
    (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / f"{name}.json")  # alice's own architecture, as open_clip users add one
    torch.manual_seed(12)
    original = open_clip.create_model(name, pretrained=None).eval()
    folder = tmp_path / "alice"
    folder.mkdir()
    torch.save(original.state_dict(), folder / "open_clip_pytorch_model.bin")
    save_config_for_hf(original, folder / "open_clip_config.json", model_config=cfg)
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    alice.upload_folder(repo_id=repo, folder_path=str(folder), commit_message="alice's upload")
    main_before = alice.model_info(repo).sha

    result = run_quick(QuickRequest(f"hf-hub:{repo}", token=localhub.users.bob, work_dir=tmp_path / "work"))
    assert result.proposed and result.library == "open_clip" and result.verification == "passed"
    assert any("open_clip_pytorch_model.bin" in p for p in result.problems), result.problems
    assert "open_clip_model.safetensors" in alice.list_repo_files(repo, revision=result.pr_revision)
    assert alice.model_info(repo).sha == main_before

    # open_clip's own loader, on the PR's files (its hf-hub: schema reads main only; local-dir: is its own too).
    proposed = ["open_clip_config.json", "open_clip_model.safetensors", "README.md"]  # the pickle left behind
    snapshot = snapshot_download(repo, revision=result.pr_revision, cache_dir=fresh_cache, allow_patterns=proposed)
    rebuilt, _ = open_clip.create_model_from_pretrained(f"local-dir:{snapshot}")
    assert {f.name for f in Path(snapshot).iterdir()} == set(proposed)
    pixels = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(3))
    tokens = open_clip.get_tokenizer(name)(["a photo of a cat", "a diagram"])
    with torch.inference_mode():
        assert torch.equal(rebuilt.eval().encode_image(pixels), original.encode_image(pixels))
        assert torch.equal(rebuilt.encode_text(tokens), original.encode_text(tokens))
