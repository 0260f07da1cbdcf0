"""One round trip over every registered library and target: convert, parity, push, verify, card.

The cases (what the user's model is, and how the library loads it back) are the table in ``tests/_matrix.py``;
the steps are the same for all and use only hubui's public API, the real huggingface_hub client over HTTP against
the session's local Hub, and each library's own loaders. A library registered without a row fails
:func:`test_every_registered_library_and_target_has_a_matrix_case`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from _matrix import CASES, Case, UserModel
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from safetensors.torch import load_file

from hubui.card import python_blocks
from hubui.export import rebuild_from_folder, rebuild_from_hub
from hubui.libraries import NATIVE, folder_format, source_names, target_format, target_names
from hubui.libraries.base import Format
from hubui.pipeline import ConvertEvent, ConvertOptions, ConvertResult, PublishResult, iter_convert, make_card, publish
from hubui.publishing import PushRequest

PAIRS = [(source, target) for source in source_names() for target in target_names(source)]


@dataclass(frozen=True)
class Trip:
    """One case converted: what the user had, every event of the conversion, its result and the folder's format."""

    source: str
    target: str
    case: Case
    user: UserModel
    events: list[ConvertEvent]
    result: ConvertResult
    fmt: Format
    tmp: Path

    @property
    def folder(self) -> Path:
        return self.result.export.folder


def test_every_registered_library_and_target_has_a_matrix_case():
    registered = {(source, target) for source in source_names() for target in target_names(source)}
    assert {("timm", NATIVE), ("timm", "transformers"), ("open_clip", NATIVE)} <= registered
    missing = sorted(registered - set(CASES))
    assert not missing, f"add a row to tests/_matrix.py CASES for each registered (library, target): {missing}"
    assert sorted(set(CASES) - registered) == [], "tests/_matrix.py has rows for what is no longer registered"


@pytest.fixture(scope="module", params=PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
def trip(request, localhub, tmp_path_factory) -> Trip:
    source, target = request.param
    if (source, target) not in CASES:
        pytest.fail(f"no tests/_matrix.py case for {source}/{target}")
    case = CASES[source, target]
    tmp = tmp_path_factory.mktemp(f"matrix-{source}-{target}")
    user = case.make(tmp)
    # batch_size 2: the parity images come in several batches, so the stream has partial reports to show.
    events = list(iter_convert(user.spec, ConvertOptions(tmp / "out", target=target, batch_size=2)))
    result = events[-1].result
    assert result is not None, [e.stage for e in events]
    return Trip(source, target, case, user, events, result, target_format(source, target), tmp)


@pytest.fixture(scope="module")
def pushed(trip: Trip, localhub) -> tuple[str, PublishResult]:
    if not trip.result.passed:
        pytest.fail(f"parity did not pass, nothing to push: {trip.result.report.reasons}")
    repo = f"alice/matrix-{trip.source}-{trip.target}-{uuid.uuid4().hex[:8]}".replace("_", "-")
    request = PushRequest(trip.folder, repo, allow_random_weights=True)
    return repo, publish(request, token=localhub.users.alice, original=trip.result.loaded)


def _assert_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], atol: float) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        if atol == 0:
            assert torch.equal(got[name], value), name
        else:
            assert got[name].shape == value.shape, name
            assert (got[name] - value).abs().max() <= atol, name
            assert torch.equal(got[name].argmax(-1), value.argmax(-1)), name


def _assert_holds_the_folders_weights(model: torch.nn.Module, trip: Trip) -> None:
    saved = load_file(trip.folder / trip.fmt.files.weights)
    state = model.state_dict()
    assert set(saved) <= set(state)
    mismatched = [k for k, v in saved.items() if not torch.equal(state[k], v)]
    assert mismatched == []


# --- convert and parity ------------------------------------------------------------------------------------
def test_convert_streams_parity_that_passes(trip: Trip):
    stages = [e.stage for e in trip.events]
    # Issue 18: the folder is written while the original's reference outputs are computed, then the rebuild.
    assert list(dict.fromkeys(stages)) == ["load", "export", "reference", "rebuild", "parity", "done"], stages
    assert stages[-1] == "done"
    partial = [e.report for e in trip.events if e.stage == "parity" and e.report.status == "running"]
    assert len(partial) >= 2
    assert all(r.batches_done < r.batches_total for r in partial)
    assert [r.batches_done for r in partial] == sorted(r.batches_done for r in partial)
    fractions = [e.fraction for e in trip.events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    report = trip.result.report
    assert trip.result.passed and report.verdict == "pass", report.reasons
    assert report.inputs.get("target", NATIVE) == trip.target
    assert report.outputs and all(o.max_abs_diff <= trip.case.atol for o in report.outputs), report.outputs
    assert report.weights is not None and report.weights.identical
    assert report.weights.file.endswith(trip.fmt.files.weights)


def test_parity_json_is_the_final_report(trip: Trip):
    saved = json.loads((trip.folder / "parity.json").read_text(encoding="utf-8"))
    assert saved["verdict"] == "pass"
    assert saved == json.loads(trip.result.report.to_json())


def test_folder_holds_the_files_the_formats_loader_reads(trip: Trip):
    files = trip.fmt.files
    visible = {p.name for p in trip.folder.iterdir() if not p.name.startswith(".")}
    assert visible == {files.config, files.weights, "parity.json", *trip.case.extra_files}
    assert files.pickle not in visible  # only written when asked for
    assert {name for name, _ in trip.result.export.files} == visible
    assert folder_format(trip.folder).name == trip.fmt.name
    rebuilt = rebuild_from_folder(trip.folder, trip.fmt.name)
    _assert_holds_the_folders_weights(rebuilt, trip)


# --- push and verify ---------------------------------------------------------------------------------------
def test_push_lands_the_folder_and_verifies(trip: Trip, pushed, localhub):
    repo, published = pushed
    verification = published.verification
    assert verification is not None and verification.status == "passed", verification
    assert verification.parity["inputs"].get("target", NATIVE) == trip.target
    assert published.push.repo_id == repo

    # Everything in the folder travels, the hidden .hubui-export marker never; and byte for byte.
    local = {p.name for p in trip.folder.iterdir() if not p.name.startswith(".")}
    on_hub = set(HfApi(endpoint=localhub.url, token=localhub.users.alice).list_repo_files(repo))
    assert on_hub == local | {"README.md", ".gitattributes"}
    assert (trip.folder / ".hubui-export").exists() and ".hubui-export" not in on_hub
    for name in sorted(local):
        got = Path(hf_hub_download(repo, name, cache_dir=trip.tmp / "files")).read_bytes()
        assert got == (trip.folder / name).read_bytes(), name


def test_the_librarys_own_loader_gives_the_users_outputs_from_the_hub(trip: Trip, pushed, localhub):
    repo, _ = pushed
    model, outputs = trip.case.hub_outputs(repo, trip.tmp / "user-cache", localhub.users.alice)
    _assert_close(outputs, trip.user.outputs, trip.case.atol)
    _assert_holds_the_folders_weights(model, trip)
    # hubui's own rebuild (what verification runs) reads the same weights.
    rebuilt = rebuild_from_hub(repo, cache_dir=trip.tmp / "hubui-cache", library=trip.fmt.name)
    _assert_holds_the_folders_weights(rebuilt, trip)


# --- the card ----------------------------------------------------------------------------------------------
def test_card_names_the_format_and_its_snippet_runs(trip: Trip, pushed):
    repo, _ = pushed
    card = ModelCard.load(repo)
    assert card.data.library_name == trip.fmt.card.library_name
    assert card.data.pipeline_tag == trip.fmt.card.pipeline_tag
    assert set(trip.fmt.card.tags) <= set(card.data.tags or [])
    section = card.text.split("Conversion and parity")[1]
    assert all(f"| {o.name} |" in section for o in trip.result.report.outputs)
    assert [s for s in trip.case.card_says if s not in str(card)] == []
    assert [s for s in trip.case.card_lacks if s in str(card)] == []
    assert card.text == make_card(trip.folder, repo).text  # what was pushed is the folder's card

    (snippet,) = python_blocks(card.text)
    assert [s for s in trip.case.snippet_says if s not in snippet] == []
    printed: list[tuple[Any, ...]] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(args)}
    exec(compile(snippet, "card-snippet", "exec"), namespace)  # the user's code, as written
    (args,) = printed
    trip.case.check_printed(args, trip.folder)
    _assert_holds_the_folders_weights(namespace["model"], trip)
