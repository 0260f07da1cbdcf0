"""timm's and open_clip's own Hub code, unmodified, against the local Hub."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
from huggingface_hub import HfApi


def test_timm_push_to_hf_hub_then_hf_hub_loader_reproduces_logits(localhub, repo_name):
    import timm
    from timm.models import push_to_hf_hub

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False).eval()
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(x)

    repo = f"alice/{repo_name}"
    commit = push_to_hf_hub(model, repo, token=localhub.users.alice)
    assert repo in commit.commit_url
    files = set(HfApi(endpoint=localhub.url).list_repo_files(repo))
    assert {"config.json", "model.safetensors", "README.md"} <= files

    rebuilt = timm.create_model(f"hf-hub:{repo}", pretrained=True).eval()
    with torch.inference_mode():
        got = rebuilt(x)
    assert (got - expected).abs().max().item() == 0.0


@pytest.mark.slow
def test_open_clip_vit_b_32_from_hf_hub_reproduces_image_embeddings(localhub, repo_name, tmp_path):
    import open_clip
    from safetensors.torch import save_file

    # open_clip's own config writer; its push function is broken on huggingface_hub 2.x, so the
    # upload goes through HfApi.
    save_config_for_hf = importlib.import_module("open_clip.push_to_hf_hub").save_config_for_hf

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    folder = tmp_path / "vit-b-32"
    folder.mkdir()
    save_config_for_hf(model, folder / "open_clip_config.json", model_config=open_clip.get_model_config("ViT-B-32"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    assert json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]["embed_dim"] == 512

    repo = f"laion/{repo_name}"
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=folder, commit_message="ViT-B-32 random weights")

    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model.encode_image(images)
    del model
    rebuilt, preprocess = open_clip.create_model_from_pretrained(f"hf-hub:{repo}")
    rebuilt.eval()
    with torch.inference_mode():
        got = rebuilt.encode_image(images)
    assert got.shape == (2, 512)
    assert (got - expected).abs().max().item() == 0.0
    assert preprocess is not None
