"""Where the weights came from, as a user reads it (issue 20 item 1): the verdict line, ``parity.json``, the card
on the Hub, the push gate for random weights and the suggested repo name. Real conversions of timm's tiny
``test_*`` models, real pushes over HTTP to the session's local Hub, the real ``hubui`` command in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from safetensors.torch import save_file

from hubui.errors import RandomWeightsError
from hubui.pipeline import ConvertOptions, convert, dry_run, publish
from hubui.provenance import WeightsOrigin, read_weights_origin, suggested_repo_name, weights_origin
from hubui.publishing import PushRequest, validate_repo_id
from hubui.spec import ModelSpec

ARCH = "test_resnet"
TAGGED = "test_convnext"  # a tiny timm model with a pretrained tag, seeded on the local Hub below
TAG = "r160_in1k"


def _section(card_text: str) -> str:
    """The card's "Conversion and parity" section."""
    return card_text.split("## Conversion and parity", 1)[1].split("<!-- hubui:parity:end -->", 1)[0]


def _cli(*args: str, token: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


# --- the suggested repo name ------------------------------------------------------------------------
NAMES = {
    "tag": (ModelSpec("timm", "resnet18", pretrained="a1_in1k"), "resnet18.a1_in1k"),
    "random": (ModelSpec("timm", "resnet18"), "resnet18-random-seed0"),
    "random seed 7": (ModelSpec("timm", "resnet18", seed=7), "resnet18-random-seed7"),
    "checkpoint": (ModelSpec("timm", "resnet18", checkpoint="/srv/uploads/tmp1/my model.safetensors"), "my-model"),
    "hub repo": (ModelSpec("timm", "resnet18", hf_hub_id="hf-hub:someone/my-resnet@v2"), "my-resnet"),
    "odd characters": (ModelSpec("timm", "resnet18", checkpoint="--weird..name--.git.pth"), "weird.name"),
    "long name": (ModelSpec("timm", "r" * 200, seed=2**62), "r" * (96 - 31) + f"-random-seed{2**62}"),
}


@pytest.mark.parametrize("case", list(NAMES))
def test_the_suggested_repo_name_follows_the_weights_and_the_hub_accepts_it(case):
    spec, expected = NAMES[case]
    name = suggested_repo_name(spec)
    assert name == expected
    validate_repo_id(f"alice/{name}")  # raises for a name the Hub refuses


def test_a_checkpoint_is_named_by_file_and_sha256_never_by_path(tmp_path):
    path = tmp_path / "server" / "uploads" / "my.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(3 * 2**20 + 5))  # more than one hashing chunk
    origin = weights_origin(ModelSpec("timm", ARCH, checkpoint=str(path)))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert origin == WeightsOrigin("checkpoint", checkpoint_name="my.safetensors", checkpoint_sha256=sha)
    assert origin.describe() == f"checkpoint my.safetensors (sha256 {sha[:12]}…)"
    assert str(tmp_path) not in json.dumps(origin.to_dict())
    assert WeightsOrigin.from_dict(origin.to_dict()) == origin


# --- random weights: the verdict, parity.json, the push gate, the card ------------------------------
@pytest.fixture(scope="module")
def random_export(tmp_path_factory) -> Path:
    """One fp32 test_resnet export with random weights (seed 3)."""
    out = tmp_path_factory.mktemp("random") / "export"
    result = convert(ModelSpec("timm", ARCH, seed=3), ConvertOptions(out))
    assert result.passed
    assert result.report.summary() == "PASS — random weights (seed 3) — not a trained model"
    return out


def test_parity_json_records_random_weights_and_their_seed(random_export):
    parity = json.loads((random_export / "parity.json").read_text())
    assert parity["verdict"] == "pass"
    assert parity["weights_origin"] == {
        "kind": "random",
        "seed": 3,
        "description": "random weights (seed 3) — not a trained model",
    }
    assert read_weights_origin(random_export) == WeightsOrigin("random", seed=3)


def test_a_push_of_random_weights_is_refused_unless_allowed(random_export, localhub, repo_name):
    repo = f"alice/{repo_name}"
    for attempt in (
        lambda: dry_run(PushRequest(random_export, repo), token=localhub.users.alice),
        lambda: publish(PushRequest(random_export, repo), token=localhub.users.alice),
    ):
        with pytest.raises(RandomWeightsError) as info:
            attempt()
        assert "random weights (seed 3)" in info.value.message and "not a trained model" in info.value.message
        assert str(random_export) not in info.value.message  # no server path
        assert "--allow-random-weights" in info.value.hint and "confirmation" in info.value.hint
    assert not HfApi(endpoint=localhub.url, token=localhub.users.alice).repo_exists(repo)

    plan = dry_run(PushRequest(random_export, repo, allow_random_weights=True), token=localhub.users.alice)
    assert plan.weights_origin == "random weights (seed 3) — not a trained model"
    published = publish(PushRequest(random_export, repo, allow_random_weights=True), token=localhub.users.alice)
    assert published.verification is not None and published.verification.status == "passed"
    section = _section(ModelCard.load(repo).text)
    assert "Converted from `timm:test_resnet` with random weights (seed 3): **this is not a trained model**" in section
    assert "- **Weights:** random weights (seed 3) — not a trained model" in section
    pushed = json.loads(Path(hf_hub_download(repo, "parity.json")).read_text())
    assert pushed["weights_origin"]["kind"] == "random" and pushed["weights_origin"]["seed"] == 3


def test_a_folder_converted_before_the_origin_was_recorded_is_unknown_and_says_so(
    random_export, localhub, repo_name, tmp_path
):
    old = tmp_path / "old"
    shutil.copytree(random_export, old)
    parity = json.loads((old / "parity.json").read_text())
    del parity["weights_origin"]
    (old / "parity.json").write_text(json.dumps(parity))
    assert read_weights_origin(old) is None
    repo = f"alice/{repo_name}"
    assert dry_run(PushRequest(old, repo), token=localhub.users.alice).weights_origin is None
    publish(PushRequest(old, repo), token=localhub.users.alice, verify=False)  # unknown is no reason to refuse
    section = _section(ModelCard.load(repo).text)
    assert "where its weights came from is not recorded in this export" in section
    assert "weights origin not recorded" in section


# --- a pretrained tag and a checkpoint --------------------------------------------------------------
@pytest.fixture(scope="module")
def tagged(localhub) -> None:
    """Random weights at ``timm/test_convnext.r160_in1k`` on the local Hub, where timm's config looks."""
    torch.manual_seed(11)
    model = timm.create_model(TAGGED, pretrained=False).eval()
    timm.models.push_to_hf_hub(model, f"timm/{TAGGED}.{TAG}", token=localhub.users.alice, safe_serialization=True)


def test_a_pretrained_tag_is_named_in_the_verdict_parity_json_and_the_card(tagged, localhub, repo_name, tmp_path):
    spec = ModelSpec("timm", TAGGED, pretrained=TAG)
    result = convert(spec, ConvertOptions(tmp_path / "out"))
    assert result.report.summary() == f"PASS — pretrained tag {TAG}"
    parity = json.loads((tmp_path / "out" / "parity.json").read_text())
    assert parity["weights_origin"] == {"kind": "pretrained", "tag": TAG, "description": f"pretrained tag {TAG}"}
    assert suggested_repo_name(spec) == f"{TAGGED}.{TAG}"

    repo = f"alice/{repo_name}"
    publish(PushRequest(tmp_path / "out", repo), token=localhub.users.alice, verify=False)  # no confirmation needed
    section = _section(ModelCard.load(repo).text)
    assert f"with the weights of the pretrained tag `{TAG}`" in section
    assert "random" not in section

    headed = convert(ModelSpec("timm", TAGGED, pretrained=TAG, num_classes=3), ConvertOptions(tmp_path / "headed"))
    assert headed.report.summary() == f"PASS — pretrained tag {TAG}, with a new random 3-class classifier (seed 0)"


def test_a_checkpoint_push_names_its_file_and_sha256_on_the_hub(localhub, repo_name, tmp_path):
    torch.manual_seed(2)
    path = tmp_path / "private" / "runs" / "train_last.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in timm.create_model(ARCH, pretrained=False).state_dict().items()}, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    result = convert(ModelSpec("timm", ARCH, checkpoint=str(path)), ConvertOptions(tmp_path / "out"))
    assert result.report.summary() == f"PASS — checkpoint train_last.safetensors (sha256 {sha[:12]}…)"

    repo = f"alice/{repo_name}"
    publish(PushRequest(tmp_path / "out", repo), token=localhub.users.alice, verify=False)
    text = ModelCard.load(repo).text
    assert f"with the weights of checkpoint `train_last.safetensors` (sha256 `{sha}`)" in _section(text)
    parity_text = Path(hf_hub_download(repo, "parity.json")).read_text()
    assert str(tmp_path) not in text and str(tmp_path) not in parity_text  # never the converting machine's path


# --- the CLI ----------------------------------------------------------------------------------------
def test_cli_convert_prints_the_origin_in_the_verdict_line(tmp_path):
    proc = _cli("convert", "--model", ARCH, "--seed", "4", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("parity: PASS — random weights (seed 4) — not a trained model")


def test_cli_push_of_random_weights_exits_2_unless_allowed(random_export, localhub, repo_name):
    repo = f"alice/{repo_name}"
    converting = _cli("push", "--model", ARCH, "--repo-id", repo, token=localhub.users.alice)
    assert converting.returncode == 2, converting.stderr
    assert "random weights (seed 0)" in converting.stderr and "nothing was converted or pushed" in converting.stderr
    assert "hint: Pass --allow-random-weights (CLI)" in converting.stderr
    assert "Traceback" not in converting.stderr

    refused = _cli("push", "--from", str(random_export), "--repo-id", repo, token=localhub.users.alice)
    assert refused.returncode == 2, refused.stderr
    assert "weights: random weights (seed 3) — not a trained model" in refused.stderr
    assert "error: This export holds random weights (seed 3)" in refused.stderr
    assert not HfApi(endpoint=localhub.url, token=localhub.users.alice).repo_exists(repo)

    allowed = _cli(
        "push",
        "--from",
        str(random_export),
        "--repo-id",
        repo,
        "--allow-random-weights",
        "--no-verify",
        token=localhub.users.alice,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "random weights (seed 3): **this is not a trained model**" in _section(ModelCard.load(repo).text)


def test_cli_push_from_an_older_folder_says_the_origin_is_unknown(random_export, localhub, repo_name, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(random_export, old)
    parity = json.loads((old / "parity.json").read_text())
    del parity["weights_origin"]
    (old / "parity.json").write_text(json.dumps(parity))
    proc = _cli("push", "--from", str(old), "--repo-id", f"alice/{repo_name}", "--dry-run", token=localhub.users.alice)
    assert proc.returncode == 0, proc.stderr
    assert "weights: weights origin not recorded (converted before hubui recorded it)" in proc.stderr
    assert "weights: weights origin not recorded" in proc.stdout  # the plan's line
