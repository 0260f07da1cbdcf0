"""Run huggingface_hub's own test suite against a fresh hubui local Hub and tabulate the outcome.

Steps: fetch the sdist of the installed huggingface_hub from the package index (cached), copy its tests
into a scratch folder with a conftest.py of ours (the sdist ships none) and testing constants that point
at a fresh local Hub, start that Hub with the staging users and tokens of ``tests/testing_constants.py``,
run the server-touching test files in a pytest subprocess, and read its JUnit XML.

Names the local Hub refuses are mapped (:data:`NAME_MAP`): a user name must start with a letter or digit,
so ``__DUMMY_HUB_USER__`` becomes ``DUMMY_HUB_USER``. The tests see the mapped name through their own
constants, so an assert like ``discussion.author == USER`` still means what it says.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.conformance.groups import MISSING_FIXTURES, classify

FILES = (
    "test_hf_api.py",
    "test_file_download.py",
    "test_snapshot_download.py",
    "test_hf_file_system.py",
    "test_repocard.py",
    "test_hub_mixin.py",
    "test_cli_discussions.py",
    "test_commit_scheduler.py",
)
NAME_MAP = {"__DUMMY_HUB_USER__": "DUMMY_HUB_USER"}
# A quick subset for CI (see tests/test_conformance.py): one or more tests of each in-scope group that
# the local Hub answers itself, chosen to finish in well under three minutes on two cores.
_API = "tests/test_hf_api.py"
SUBSETS: dict[str, list[str]] = {
    "ci": [
        f"{_API}::TestHfApiRepoFileExists",  # 404s with X-Error-Code, one-word ids
        f"{_API}::TestHfApiDiscussions",  # comment, rename, close/reopen, merge
        f"{_API}::TestHfApiTagEndpoint",
        f"{_API}::TestHfApiBranchEndpoint",
        f"{_API}::TestHfApiDeleteFolder",  # implicit folder deletes
        f"{_API}::TestHfApiPrivate::test_list_private_models",  # list_models(author=...)
        f"{_API}::TestHfApiEndpoints::test_move_repo_normal_usage",
        f"{_API}::TestHfApiEndpoints::test_move_repo_target_already_exists",
        f"{_API}::TestHfApiEndpoints::test_update_repo_settings",  # gated
        f"{_API}::TestHfApiEndpoints::test_delete_repo_error_message",
        f"{_API}::TestCommitApi::test_commit_modelcard_invalid_metadata",  # card metadata
        f"{_API}::TestCommitApi::test_commit_modelcard_empty_metadata",
        f"{_API}::TestCommitApi::test_create_commit_create_pr_on_foreign_repo",
        f"{_API}::TestCommitApi::test_continue_commit_if_copy_is_identical",  # LFS copy without size, expand
        f"{_API}::TestCommitApi::test_continue_commit_without_existing_files",
        f"{_API}::TestCommitApi::test_create_commit_lfs_file_implicit_token",  # the repo's .gitattributes
        f"{_API}::TestCommitApi::test_upload_folder_gitignore_already_exists",
        f"{_API}::TestCommitApi::test_create_file_with_relative_path",  # 422
        f"{_API}::TestCommitApi::test_create_commit_repo_id_case_insensitive",
        f"{_API}::TestCommitApi::test_create_commit_conflict",
        "tests/test_hf_file_system.py::TestHfFileSystemRepositoryRO::test_list_data_file",  # tree on a file
        "tests/test_hf_file_system.py::TestHfFileSystemRepositoryRO::test_modified_time",
        "tests/test_hf_file_system.py::TestHfFileSystemRepositoryRW::test_copy_file",
        "tests/test_cli_discussions.py",
        "tests/test_file_download.py::TestHfHubDownloadRelativePaths",  # backslash paths stored as on the Hub
    ],
}
OUT_OF_SCOPE_WHY = {
    "buckets": "storage buckets are not repos; out of scope in issue 16",
    "webhooks": "out of scope in issue 16",
    "collections": "out of scope in issue 16",
    "likes": "out of scope in issue 16",
    "access requests": "gated-repo access requests are out of scope in issue 16",
    "super-squash": "out of scope in issue 16",
    "billing": "out of scope in issue 16",
    "inference": "out of scope in issue 16",
    "jobs": "compute jobs are not part of a Hub's repo API",
    "papers": "daily papers live only on huggingface.co",
    "users & orgs overview": "profiles and followers live only on huggingface.co",
    "Space runtime (hardware, secrets, restarts)": "the local Hub stores Spaces but runs none",
    "production Hub data": "reads repos that exist only on huggingface.co, which this machine cannot reach",
    "staging account data": "asserts the staging user's display name and its org 'valid_org_hub'",
    "enterprise orgs": "enterprise-plan organisations (private by default) are a billing feature",
    "LFS storage management": "listing and permanently deleting LFS objects (storage quotas): no hubui flow uses it",
    "sdist lacks fixture files": "the sdist has no tests/fixtures/cards/*.md; the test fails before any Hub call",
}


# Issue 16's named groups and the feature groups (above) whose tests judge them.
ISSUE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("card metadata validation", ("card metadata",)),
    ("CommitOperationCopy of LFS files without size", ("copy", "filesystem (HfFileSystem)")),
    ("pull requests (comment, close, reopen, rename, merge, non-members, diff)", ("pull requests & discussions",)),
    ("tags create/list/delete", ("tags",)),
    ("404 with X-Error-Code, tree on a file path, one-word ids", ("errors & existence", "tree & paths")),
    ("expand=True and gated, implemented or 400", ("tree & paths", "repos (create, move, list, settings)")),
    ("upload semantics (.gitattributes, implicit folder deletes, backslash paths, 400 vs 422)", ("upload & commit",)),
    ("list_models(author=...) and move_repo", ("repos (create, move, list, settings)",)),
)


class ConformanceSetupError(RuntimeError):
    """The runner could not get huggingface_hub's tests ready (no sdist, no network to the index...)."""


def cache_dir() -> Path:
    """Where sdists and unpacked tests are kept between runs (``HUBUI_CONFORMANCE_CACHE`` overrides)."""
    env = os.environ.get("HUBUI_CONFORMANCE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hubui" / "conformance"


def fetch_sdist(version: str, cache: Path) -> Path:
    """The unpacked sdist of ``huggingface_hub==version``, downloaded with pip on first use.

    Raises:
        ConformanceSetupError: If pip cannot download it; the message has pip's last lines.
    """
    unpacked = cache / f"huggingface_hub-{version}"
    if (unpacked / "tests" / "testing_constants.py").is_file():
        return unpacked
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"huggingface_hub-{version}.tar.gz"
    if not archive.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        cmd += [f"huggingface_hub=={version}", "-d", str(cache), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not archive.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            raise ConformanceSetupError(
                f"pip could not download the huggingface_hub {version} sdist into {cache} "
                f"(exit {proc.returncode}). The conformance run needs the package index.\n{tail}"
            )
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        inner = tmp / f"huggingface_hub-{version}"
        if not (inner / "tests" / "testing_constants.py").is_file():
            raise ConformanceSetupError(f"{archive} has no tests/testing_constants.py: not a huggingface_hub sdist?")
        os.replace(inner, unpacked)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return unpacked


@dataclass(frozen=True)
class Staging:
    """The staging users, orgs and tokens of huggingface_hub's tests, names mapped for the local Hub."""

    users: tuple[tuple[str, str], ...]  # (name, token)
    orgs: tuple[tuple[str, str], ...]  # (org, member)

    def user_specs(self) -> list[str]:
        return [f"{name}:{token}:write" for name, token in self.users]

    def org_specs(self) -> list[str]:
        return [f"{org}:{member}" for org, member in self.orgs]


def staging_from(constants_file: Path) -> Staging:
    c = runpy.run_path(str(constants_file))
    users = [(c["USER"], c["TOKEN"]), (c["OTHER_USER"], c["OTHER_TOKEN"])]
    if "ENTERPRISE_USER" in c:
        users.append((c["ENTERPRISE_USER"], c["ENTERPRISE_TOKEN"]))
    orgs = [(c["ENTERPRISE_ORG"], c["ENTERPRISE_USER"])] if "ENTERPRISE_ORG" in c else []
    mapped = tuple((NAME_MAP.get(n, n), t) for n, t in users)
    return Staging(mapped, tuple((NAME_MAP.get(o, o), NAME_MAP.get(m, m)) for o, m in orgs))


def prepare(sdist: Path, work: Path) -> Path:
    """Copy the sdist's tests into ``work`` with our conftest.py, pytest.ini and mapped constants."""
    tests = work / "tests"
    shutil.copytree(sdist / "tests", tests)
    (tests / "__init__.py").write_text("")
    shutil.copy(Path(__file__).with_name("hf_conftest.py"), tests / "conftest.py")
    overrides = ["", "# --- hubui conformance runner: the local Hub instead of hub-ci ---", "import os as _os"]
    overrides.append('ENDPOINT_STAGING = _os.environ["HUBUI_CONFORMANCE_ENDPOINT"]')
    for name in ("USER", "OTHER_USER", "ENTERPRISE_USER", "ENTERPRISE_ORG"):
        overrides.append(f"{name} = {{**{NAME_MAP!r}}}.get({name}, {name})")
    with (tests / "testing_constants.py").open("a") as fh:
        fh.write("\n".join(overrides) + "\n")
    markers = ["api", "transfer", "inference", "xet", "no_xet", "production", "deprecated", "git_lfs", "vcr"]
    ini = ["[pytest]", "markers ="] + [f"    {m}: see tests/conformance/hf_conftest.py" for m in markers]
    (work / "pytest.ini").write_text("\n".join(ini) + "\n")
    return tests


def classify_outcome(o: Outcome) -> tuple[str, bool]:
    """:func:`classify`, except that a failure caused by a fixture file the sdist does not ship is no Hub matter."""
    if o.status in ("failed", "error") and MISSING_FIXTURES[1] in o.message:
        return MISSING_FIXTURES[0], False
    return classify(o.nodeid)


@dataclass
class Outcome:
    nodeid: str
    status: str  # passed, failed, error, skipped
    message: str = ""

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def parse_junit(path: Path) -> list[Outcome]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        cls, name = case.get("classname", ""), case.get("name", "")
        parts = cls.split(".")
        # classname "tests.test_hf_api.TestX" (or "tests.test_hf_api" for functions)
        file_idx = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        nodeid = "tests/" + parts[file_idx] + ".py" + "".join(f"::{p}" for p in parts[file_idx + 1 :]) + f"::{name}"
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (
                    (el.get("message") or el.text or "").strip().splitlines()[0][:300]
                    if (el.get("message") or el.text)
                    else ""
                )
                break
        out.append(Outcome(nodeid, status, message))
    return out


@dataclass
class Report:
    version: str
    outcomes: list[Outcome] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)

    def in_scope_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "error") and classify_outcome(o)[1]]


def run(selection: list[str] | None = None, *, keep: Path | None = None, extra_args: list[str] = ()) -> Report:
    """Run huggingface_hub's tests (``selection``: files or node ids under ``tests/``; default: :data:`FILES`)
    against a fresh local Hub and return every test's outcome.

    Raises:
        ConformanceSetupError: If the sdist cannot be had or pytest produced no report.
    """
    from hubui.localhub import LocalHub, build_directory

    version = importlib.metadata.version("huggingface_hub")
    sdist = fetch_sdist(version, cache_dir())
    work = Path(tempfile.mkdtemp(prefix="hubui-conformance-")) if keep is None else keep
    try:
        prepare(sdist, work)
        staging = staging_from(sdist / "tests" / "testing_constants.py")
        hub = LocalHub(work / "hub", build_directory(staging.user_specs(), staging.org_specs())).start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
            env.update(
                HUBUI_CONFORMANCE_ENDPOINT=hub.url,
                HF_ENDPOINT=hub.url,
                HF_HUB_DISABLE_XET="1",
                HF_HUB_DISABLE_TELEMETRY="1",
                HF_HUB_DISABLE_PROGRESS_BARS="1",
                HF_HOME=str(work / "hf_home"),
                PYTHONPATH=str(work),
            )
            targets = [t if t.startswith("tests/") else f"tests/{t}" for t in (selection or list(FILES))]
            xml = work / "report.xml"
            cmd = [sys.executable, "-m", "pytest", *targets, f"--junitxml={xml}", "-p", "no:cacheprovider"]
            cmd += ["-q", "--no-header", "-rN", "-o", "junit_family=xunit1", *extra_args]
            subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not xml.is_file():
                raise ConformanceSetupError(f"pytest wrote no report for {targets}; run it by hand in {work}")
            return Report(version, parse_junit(xml), dict(NAME_MAP))
        finally:
            hub.stop()
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def tally(outcomes: list[Outcome], key) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        k = key(o)
        table[k]["collected"] += 1
        table[k][o.status] += 1
    return dict(table)


BASELINE = Path(__file__).with_name("baseline.json")


def _rows(table: dict[str, Counter], names: list[str], before: dict[str, dict] | None = None) -> list[str]:
    extra = " failed+errored before |" if before is not None else ""
    lines = [f"| | collected | passed | failed | errored | skipped |{extra}", "|---|---:|---:|---:|---:|---:|"]
    if before is not None:
        lines[1] += "---:|"
    for name in names:
        c = table[name]
        row = f"| {name} | {c['collected']} | {c['passed']} | {c['failed']} | {c['error']} | {c['skipped']} |"
        if before is not None:
            b = before.get(name)
            row += f" {b['failed'] + b['error']} |" if b else " – |"
        lines.append(row)
    total = Counter()
    for name in names:
        total.update(table[name])
    lines.append(
        f"| **total** | {total['collected']} | {total['passed']} | {total['failed']} | {total['error']} | "
        f"{total['skipped']} |" + (" |" if before is not None else "")
    )
    return lines


def markdown(report: Report, command: str) -> str:
    """``docs/hub-conformance.md``: per file, per in-scope group, per out-of-scope group with its reason."""
    o = report.outcomes
    by_file = tally(o, lambda x: x.file)
    by_group = tally(o, lambda x: classify_outcome(x)[0])
    scope = dict(classify_outcome(x) for x in o)
    inside = sorted(g for g in by_group if scope[g])
    outside = sorted(g for g in by_group if not scope[g])
    bad = report.in_scope_failures()
    baseline = json.loads(BASELINE.read_text()) if BASELINE.is_file() else None
    before = baseline["groups"] if baseline else None
    lines = [
        "# Hub conformance: huggingface_hub's own tests against `hubui localhub`",
        "",
        f"Generated by `{command}` with huggingface_hub {report.version} (its sdist's tests, run against a fresh",
        "local Hub with the staging users and tokens of `tests/testing_constants.py`). Do not edit by hand.",
        "",
        "User names the local Hub refuses are mapped: "
        + ", ".join(f"`{a}` → `{b}`" for a, b in report.mapping.items())
        + " (a name must start with a letter or digit). Skipped tests are the ones marked for the production Hub",
        "(this machine cannot reach huggingface.co), Xet transfers (the local Hub speaks LFS), git-lfs pushes and",
        "huggingface_hub's own skips.",
        "",
        f"**In-scope failures: {len(bad)}.**"
        + (f" Before ({baseline['note']}): {baseline['in_scope_failures']}." if baseline else ""),
        "",
        "## Issue 16's groups",
        "",
        "| group | judged by | collected | failed + errored |",
        "|---|---|---:|---:|",
        *[
            f"| {name} | {', '.join(groups)} | {sum(by_group.get(g, Counter())['collected'] for g in groups)} | "
            f"{sum(by_group.get(g, Counter())['failed'] + by_group.get(g, Counter())['error'] for g in groups)} |"
            for name, groups in ISSUE_GROUPS
        ],
        "",
        "Xet (`xet-write-token` answers how to set `HF_HUB_DISABLE_XET=1`) has no test in huggingface_hub's suite",
        "that runs without Xet; hubui's `tests/test_localhub_hub_parity.py` checks it.",
        "",
        "## Per file",
        "",
        *_rows(by_file, sorted(by_file)),
        "",
        "## In-scope feature groups",
        "",
        *_rows(by_group, inside, before),
        "",
        "## Out-of-scope groups",
        "",
        *_rows(by_group, outside),
        "",
        "| group | why it is out of scope |",
        "|---|---|",
        *[f"| {g} | {OUT_OF_SCOPE_WHY.get(g, 'out of scope')} |" for g in outside],
        "",
    ]
    if bad:
        lines += ["## In-scope failures", "", "| test | outcome | message |", "|---|---|---|"]
        lines += [f"| `{x.nodeid}` | {x.status} | {x.message.replace('|', '/')[:160]} |" for x in bad]
        lines.append("")
    failing_out = [x for x in o if x.status in ("failed", "error") and not classify_outcome(x)[1]]
    if failing_out:
        lines += ["## Out-of-scope failures", "", "| test | group | outcome |", "|---|---|---|"]
        lines += [f"| `{x.nodeid}` | {classify_outcome(x)[0]} | {x.status} |" for x in failing_out]
        lines.append("")
    return "\n".join(lines)
