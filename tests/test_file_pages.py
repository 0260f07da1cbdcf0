"""The rebuild gives back a memory-mapped checkpoint's pages as the loader copies them (issue 18), and dropping a
page never changes what a tensor reads."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hubui._noinit import without_random_init
from hubui.file_pages import drop_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pagemap and madvise are Linux's")

MB = 1 << 20


def _mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_a_copied_tensor_s_file_pages_leave_the_process_and_its_values_stay(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    weight = torch.randn(16 * MB // 4, generator=torch.Generator().manual_seed(0))
    save_file({"w": weight}, str(path))
    loaded = load_file(str(path))["w"]
    target = torch.empty_like(loaded)
    target.copy_(loaded)  # reads every page of the mapping
    before = _mapped_kb(path)
    assert before >= 15 * 1024, before
    dropped = drop_file_pages(loaded)
    assert dropped >= 15 * MB
    assert _mapped_kb(path) <= before - 15 * 1024
    assert torch.equal(loaded, weight)  # faulted back in from the page cache, unchanged
    assert torch.equal(target, weight)


def test_pages_the_loader_wrote_are_never_dropped(tmp_path: Path) -> None:
    # A private mapping's written page is anonymous memory: dropping it would lose the write.
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(4 * MB // 4)}, str(path))
    loaded = load_file(str(path))["w"]
    loaded.add_(1.0)
    assert drop_file_pages(loaded) == 0
    assert torch.equal(loaded, torch.ones_like(loaded))


def test_heap_tensors_are_left_alone() -> None:
    heap = torch.arange(4 * MB // 4, dtype=torch.float32)
    assert drop_file_pages(heap) == 0
    assert torch.equal(heap, torch.arange(4 * MB // 4, dtype=torch.float32))


def test_a_load_under_without_random_init_gives_the_checkpoint_back(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    source = torch.nn.Linear(1024, 2048)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    state: dict[str, torch.Tensor] = {}

    def build() -> torch.nn.Module:
        model = torch.nn.Linear(1024, 2048)
        state.update(load_file(str(path)))  # the library loader's own state dict, still held after the load
        model.load_state_dict(state)
        return model

    model = without_random_init(build, "a linear layer")
    assert _mapped_kb(path) < 1024  # the 8 MB weight was copied, then given back
    assert torch.equal(model.weight, source.weight)
    assert torch.equal(state["weight"], source.weight)
