"""`hubui models / convert / push` as a user runs them: the real command in a subprocess, the local Hub.

What is checked is what a user or a script checks: exit codes, stdout (one JSON object with --json),
error lines on stderr without a traceback, what lands on the Hub, and that a token never shows.
The conversions themselves are covered in-process by test_pipeline.py; here they are only the input.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, ModelCard

ARCH = "test_resnet"  # timm's tiny ResNet, 160 px


def _env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def _cli(*args: str, token: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``python -m hubui ARGS``; HF_ENDPOINT comes from conftest, HF_TOKEN only when given."""
    return subprocess.run(
        [sys.executable, "-m", "hubui", *args], capture_output=True, text=True, timeout=timeout, env=_env(token)
    )


def _cli_all(*commands: list[str], timeout: float = 180) -> list[subprocess.CompletedProcess]:
    """Run independent commands at the same time (each pays the torch/timm import)."""
    argvs = [[sys.executable, "-m", "hubui", *c] for c in commands]
    procs = [
        subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(None)) for a in argvs
    ]
    done = []
    for argv, proc in zip(argvs, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


def _ok(proc: subprocess.CompletedProcess, code: int = 0) -> subprocess.CompletedProcess:
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _logits(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(3, 3, 160, 160, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        return model.eval()(x)


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """The test's own model: random weights with non-trivial norms, so every layer shows in the logits."""
    torch.manual_seed(1234)
    net = timm.create_model(ARCH, pretrained=False)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def checkpoint(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training-script checkpoint: nested under 'state_dict', DataParallel 'module.' prefix, .pth."""
    path = tmp_path_factory.mktemp("ckpt") / "train_last.pth"
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 12}, path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`hubui convert --checkpoint ... --json`, run once; push tests push its folder with --from."""
    out = tmp_path_factory.mktemp("exported") / "resnet-export"
    proc = _cli(
        "convert", "--library", "timm", "--model", ARCH, "--checkpoint", str(checkpoint), "--out", str(out), "--json"
    )
    return proc, out


# --- models -----------------------------------------------------------------------------------------
def test_models_search_wildcard_and_substring():
    wildcard, substring = _cli_all(["models", "timm", "resnet*"], ["models", "timm", "est_res"])
    names = _ok(wildcard).stdout.split()
    assert "resnet50" in names and all(n.startswith("resnet") for n in names)
    assert not any("." in n for n in names)  # architectures, not pretrained tags
    assert _ok(substring).stdout.split() == ["test_resnet"]


def test_models_pretrained_json_and_limit():
    proc = _ok(_cli("models", "timm", "resnet18.*", "--pretrained", "--json", "--limit", "3"))
    names = json.loads(proc.stdout)
    assert len(names) == 3 and all(n.startswith("resnet18.") for n in names)


def test_models_facts_table_and_json():
    human, as_json = _cli_all(
        ["models", "timm", "resnet50", "--facts"], ["models", "timm", "resnet50", "--facts", "--json"]
    )
    assert re.search(r"^parameters\s+25,557,032$", _ok(human).stdout, re.M)
    facts = json.loads(_ok(as_json).stdout)
    assert facts["num_params"] == 25_557_032 and facts["input_size"] == [3, 224, 224]


# --- convert ----------------------------------------------------------------------------------------
def test_convert_checkpoint_json(exported):
    proc, out = exported
    _ok(proc)
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert report["verdict"] == "pass"
    (logits,) = report["outputs"]
    assert logits["name"] == "logits" and logits["max_abs_diff"] == 0
    assert logits["cosine_min"] == 1 and logits["top1_agreement"] == 1
    assert report["folder"] == str(out.resolve())
    files = {f["name"]: f["size"] for f in report["files"]}
    assert {"config.json", "model.safetensors", "parity.json"} <= set(files)
    assert "pytorch_model.bin" not in files and not (out / "pytorch_model.bin").exists()
    assert files["model.safetensors"] == (out / "model.safetensors").stat().st_size
    assert json.loads((out / "parity.json").read_text())["verdict"] == "pass"
    # progress went to stderr, and a checkpoint is not random weights
    assert "[export]" in proc.stderr and "random weights" not in proc.stderr


def test_convert_fp16_measures_drift(tmp_path):
    out = tmp_path / "fp16"
    proc = _ok(_cli("convert", "--model", ARCH, "--precision", "fp16", "--seed", "5", "--out", str(out), "--json"))
    report = json.loads(proc.stdout)
    assert report["verdict"] == "pass" and report["precision"] == "fp16"
    assert report["outputs"][0]["max_abs_diff"] > 0  # the rounding is measured, not hidden
    assert json.loads((out / "config.json").read_text())["hubui"]["precision"] == "fp16"
    assert "no weights given: random weights, seed 5" in proc.stderr


def test_convert_prints_a_readable_report(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\n")
    out = tmp_path / "labelled"
    proc = _ok(
        _cli(
            "convert",
            "--model",
            ARCH,
            "--num-classes",
            "3",
            "--label-names",
            str(labels),
            "--include-pytorch-bin",
            "--out",
            str(out),
        )
    )
    text = proc.stdout
    assert text.startswith("parity: PASS")
    for column in ("max abs diff", "mean abs diff", "max rel diff", "min cosine", "top-1", "top-5"):
        assert column in text
    assert re.search(r"^logits\s+8x3\s+0\s", text, re.M)
    assert re.search(r"^weights: \d+ tensors saved exactly", text, re.M)
    size = (out / "model.safetensors").stat().st_size
    assert re.search(rf"^\s+model\.safetensors\s+{size:,} B", text, re.M)
    assert "pytorch_model.bin" in text and (out / "pytorch_model.bin").is_file()
    assert json.loads((out / "config.json").read_text())["label_names"] == ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def vit_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vit") / "vit.safetensors"
    safetensors.torch.save_file(timm.create_model("test_vit").state_dict(), str(path))
    return path


BAD_INPUTS = {
    "unknown model": (["--model", "resnet_does_not_exist"], ["'resnet_does_not_exist'"]),
    "other architecture": (["--model", ARCH, "--checkpoint", "{vit}"], [r"\d+ missing keys", r"\d+ unexpected keys"]),
    "two sources": (["--model", ARCH, "--pretrained", "a1_in1k", "--checkpoint", "{vit}"], ["'a1_in1k'", "vit"]),
    "bad precision": (["--model", ARCH, "--precision", "fp8"], ["'fp8'"]),
    "mean count": (["--model", ARCH, "--image-mean", "0", "0"], [r"mean must have 3 values", r"\(0\.0, 0\.0\)"]),
    "missing image": (["--model", ARCH, "--images", "{tmp}/no-such.png"], ["no-such.png"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_convert_bad_input_exits_2_and_names_it(case, tmp_path, vit_checkpoint):
    flags, expected = BAD_INPUTS[case]
    flags = [f.format(vit=vit_checkpoint, tmp=tmp_path) for f in flags]
    out = tmp_path / "out"
    proc = _ok(_cli("convert", *flags, "--out", str(out)), code=2)
    assert proc.stdout == ""
    for pattern in expected:
        assert re.search(pattern, proc.stderr), proc.stderr
    assert not out.exists()  # nothing is written for bad input


# --- push -------------------------------------------------------------------------------------------
def _api(token: str) -> HfApi:
    return HfApi(endpoint=os.environ["HF_ENDPOINT"], token=token)


def test_push_from_folder_then_timm_loads_it(exported, localhub, repo_name, model):
    _, folder = exported
    repo_id = f"alice/{repo_name}"
    proc = _ok(_cli("push", "--from", str(folder), "--repo-id", repo_id, "--json", token=localhub.users.alice))
    result = json.loads(proc.stdout)
    assert result["commit_url"] and result["revision"] == "main" and result["pr_url"] is None
    assert result["verification"]["status"] == "passed"
    hub_model = timm.create_model(f"hf-hub:{repo_id}", pretrained=True)
    assert torch.equal(_logits(hub_model), _logits(model))


def test_push_with_model_flags_as_pr(checkpoint, localhub, repo_name):
    api = _api(localhub.users.alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"existing\n", path_in_repo="NOTES.md", repo_id=repo_id)
    main_before = sorted(api.list_repo_files(repo_id))

    proc = _ok(
        _cli(
            "push",
            "--model",
            ARCH,
            "--checkpoint",
            str(checkpoint),
            "--repo-id",
            repo_id,
            "--create-pr",
            "--json",
            token=localhub.users.alice,
        )
    )
    result = json.loads(proc.stdout)
    assert result["pr_url"] and result["revision"].startswith("refs/pr/")
    assert result["verification"]["status"] == "passed"  # against the model as loaded from the checkpoint
    pr_files = api.list_repo_files(repo_id, revision=result["revision"])
    assert {"config.json", "model.safetensors", "parity.json", "README.md"} <= set(pr_files)
    assert sorted(api.list_repo_files(repo_id)) == main_before


def test_push_to_a_branch_leaves_main_alone(exported, localhub, repo_name):
    _, folder = exported
    repo_id = f"alice/{repo_name}"
    proc = _ok(
        _cli(
            "push",
            "--from",
            str(folder),
            "--repo-id",
            repo_id,
            "--revision",
            "dev",
            "--no-verify",
            "--commit-message",
            "dev build from the CLI",
            token=localhub.users.alice,
        )
    )
    assert "@ dev" in proc.stdout and "skipped" in proc.stdout
    api = _api(localhub.users.alice)
    assert "model.safetensors" in api.list_repo_files(repo_id, revision="dev")
    assert "model.safetensors" not in api.list_repo_files(repo_id)
    assert api.list_repo_commits(repo_id, revision="dev")[0].title == "dev build from the CLI"


def test_push_card_file(exported, localhub, repo_name, tmp_path):
    _, folder = exported
    card = tmp_path / "card.yaml"
    card.write_text("license: mit\ntags: [hubui-cli-test, tiny]\ndescription: A tiny ResNet pushed by the CLI test.\n")
    repo_id = f"alice/{repo_name}"
    _ok(
        _cli(
            "push",
            "--from",
            str(folder),
            "--repo-id",
            repo_id,
            "--card",
            str(card),
            "--no-verify",
            token=localhub.users.alice,
        )
    )
    pushed = ModelCard.load(repo_id)
    assert pushed.data.license == "mit"
    assert {"hubui-cli-test", "tiny"} <= set(pushed.data.tags)
    assert "A tiny ResNet pushed by the CLI test." in pushed.text


def test_dry_run_lists_files_and_uploads_nothing(exported, localhub, repo_name):
    _, folder = exported
    repo_id = f"alice/{repo_name}"
    proc = _ok(_cli("push", "--from", str(folder), "--repo-id", repo_id, "--dry-run", token=localhub.users.alice))
    for name in ("config.json", "model.safetensors", "parity.json"):
        size = (folder / name).stat().st_size
        assert re.search(rf"^\s+{re.escape(name)}\s+{size:,} B", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\s+README\.md\s+[\d,]+ B", proc.stdout, re.M)
    assert "nothing was uploaded" in proc.stdout and "README:  new" in proc.stdout
    assert not _api(localhub.users.alice).repo_exists(repo_id)


def test_parity_gate_refuses_a_failed_folder(exported, localhub, repo_name, tmp_path):
    _, folder = exported
    failed = tmp_path / "failed"
    shutil.copytree(folder, failed)
    parity = json.loads((failed / "parity.json").read_text())
    (failed / "parity.json").write_text(json.dumps({**parity, "verdict": "fail"}))
    repo_id = f"alice/{repo_name}"
    proc = _ok(_cli("push", "--from", str(failed), "--repo-id", repo_id, token=localhub.users.alice), code=1)
    assert "'fail'" in proc.stderr and "refusing to push" in proc.stderr
    assert not _api(localhub.users.alice).repo_exists(repo_id)


REFUSALS = {
    "read-only token": ("reader", "alice/{name}", ["'read' role"]),
    "foreign namespace": ("bob", "team/{name}", ["'bob' cannot push to namespace 'team'"]),
    "bad repo id": ("alice", "a b/c", ["'a b/c'"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_push_refusals_exit_2_upload_nothing_and_hide_the_token(case, exported, localhub, repo_name):
    user, target, expected = REFUSALS[case]
    token = getattr(localhub.users, user)
    repo_id = target.format(name=repo_name)
    _, folder = exported
    proc = _ok(_cli("push", "--from", str(folder), "--repo-id", repo_id, "--token", token, "--json"), code=2)
    assert proc.stdout == ""
    for text in expected:
        assert text in proc.stderr
    assert token not in proc.stdout + proc.stderr
    if " " not in repo_id:
        assert not _api(localhub.users.alice).repo_exists(repo_id)


# --- open_clip ---------------------------------------------------------------------------------------
def test_open_clip_models_search_and_facts():
    listing, facts = _cli_all(
        ["models", "open_clip", "ViT-B-32", "--pretrained", "--json"],
        ["models", "open_clip", "RN50", "--facts", "--json"],
    )
    assert listing.returncode == 0, listing.stderr
    assert "ViT-B-32:laion2b_s34b_b79k" in json.loads(listing.stdout)
    assert facts.returncode == 0, facts.stderr
    data = json.loads(facts.stdout)
    assert data["embed_dim"] == 1024 and data["tokenizer"] == "clip_bpe"


def test_open_clip_convert_with_the_reference_scripts_overrides(tmp_path):
    out = tmp_path / "rn50"
    result = _cli(
        "convert",
        "--library",
        "open_clip",
        "--model",
        "RN50",
        "--out",
        str(out),
        "--json",
        "--image-mean",
        "0.5",
        "0.5",
        "0.5",
        "--image-std",
        "0.25",
        "0.25",
        "0.25",
        "--image-interpolation",
        "bilinear",
        "--image-resize-mode",
        "squash",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass"
    assert {o["name"] for o in report["outputs"]} >= {"image_embeds", "text_embeds", "zero_shot_logits"}
    assert all(o["max_abs_diff"] == 0 for o in report["outputs"])
    pre = json.loads((out / "open_clip_config.json").read_text())["preprocess_cfg"]
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["std"] == [0.25, 0.25, 0.25]
    assert pre["interpolation"] == "bilinear" and pre["resize_mode"] == "squash"


def test_open_clip_rejects_timm_only_flags(tmp_path):
    result = _cli(
        "convert", "--library", "open_clip", "--model", "RN50", "--crop-pct", "0.9", "--out", str(tmp_path / "x")
    )
    assert result.returncode == 2 and "crop" in result.stderr and "Traceback" not in result.stderr
