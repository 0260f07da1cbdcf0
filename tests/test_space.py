"""The Space face: its metadata, its app, and `hubui space deploy` against the local Hub."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.repocard import metadata_load

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "space"


def _requirements() -> dict[str, str]:
    reqs = {}
    for line in (SPACE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("-", "_")
            reqs[name] = line
    return reqs


def test_space_yaml_parses_and_asks_for_the_scopes_hubui_needs():
    meta = metadata_load(SPACE / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["hf_oauth"] is True
    # create repos (manage-repos), commit to them (write-repos), open PRs (write-discussions), read cards
    assert {"read-repos", "write-repos", "manage-repos", "write-discussions"} <= set(meta["hf_oauth_scopes"])
    assert meta["title"] and meta["emoji"] and 0 < len(meta["short_description"]) <= 60


def test_sdk_version_is_the_pinned_gradio():
    meta = metadata_load(SPACE / "README.md")
    assert _requirements()["gradio"] == f"gradio[oauth]=={meta['sdk_version']}"


def test_requirements_cover_every_runtime_dependency():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0].lower().replace("-", "_") for d in deps}
    assert names - set(_requirements()) == set()


def test_space_app_builds_the_blocks_without_launching():
    import gradio as gr

    namespace = runpy.run_path(str(SPACE / "app.py"), run_name="space_app")
    assert isinstance(namespace["demo"], gr.Blocks)
    assert not namespace["demo"].is_running


def test_deploy_makes_a_space_whose_files_match(localhub, repo_name, fresh_cache):
    repo = f"alice/{repo_name}"
    env = {**os.environ, "HF_TOKEN": localhub.users.alice}
    result = subprocess.run(
        [sys.executable, "-m", "hubui", "space", "deploy", "--repo-id", repo, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["url"] == f"{localhub.url}/spaces/{repo}"
    assert localhub.users.alice not in result.stdout + result.stderr

    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    info = api.space_info(repo)
    assert info.sdk == "gradio"
    remote = set(api.list_repo_files(repo, repo_type="space"))
    for local in SPACE.iterdir():
        path = hf_hub_download(repo, local.name, repo_type="space", cache_dir=fresh_cache)
        assert Path(path).read_bytes() == local.read_bytes(), local.name
    # The package travels next to app.py, byte for byte, without caches.
    for rel in ("hubui/__init__.py", "hubui/ui/app.py", "hubui/data/images/NOTICE.md"):
        assert rel in remote
        path = hf_hub_download(repo, rel, repo_type="space", cache_dir=fresh_cache)
        assert Path(path).read_bytes() == (ROOT / rel).read_bytes()
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in remote)
    assert httpx_get(f"{localhub.url}/spaces/{repo}").status_code == 200


def httpx_get(url: str):
    import httpx

    return httpx.get(url)


def test_deploy_as_read_only_user_uploads_nothing(localhub, repo_name):
    env = {**os.environ, "HF_TOKEN": localhub.users.reader}
    result = subprocess.run(
        [sys.executable, "-m", "hubui", "space", "deploy", "--repo-id", f"reader/{repo_name}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and "read" in result.stderr and "Traceback" not in result.stderr
    assert localhub.users.reader not in result.stderr


@pytest.mark.parametrize("bad", ["alice/has space", "../x"])
def test_deploy_bad_repo_id(bad):
    result = subprocess.run(
        [sys.executable, "-m", "hubui", "space", "deploy", "--repo-id", bad], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and bad in result.stderr
