"""Which feature group each of huggingface_hub's tests belongs to, and whether hubui's local Hub has to
pass it (issue 16: buckets, webhooks, collections, likes, access requests, super-squash, billing and
inference are out of scope; so is whatever needs huggingface.co itself)."""

from __future__ import annotations

import re

# (group, pattern on "file::Class::test"), first match wins. Out-of-scope groups first.
OUT_OF_SCOPE: tuple[tuple[str, str], ...] = (
    ("buckets", r"bucket"),
    ("webhooks", r"webhook"),
    ("collections", r"collection"),
    ("likes", r"(?<![a-z])(un)?like[sd]?(?![a-z])|likers|LikesApi|ActivityApi"),
    ("access requests", r"access_?request|AccessRequest|Gated_?Repo|gated_repo"),
    ("super-squash", r"squash"),
    ("billing", r"billing"),
    ("inference", r"[Ii]nference"),
    ("jobs", r"[Jj]obs?Api|_jobs?_"),
    ("papers", r"[Pp]aper"),
    ("users & orgs overview", r"TestUserApi|overview|followers|following|organization_members"),
    ("Space runtime (hardware, secrets, restarts)", r"SpaceAPI|space_runtime|secrets|variables|hardware|sleep_time"),
    ("production Hub data", r"HfApiPublicProduction|TestListGitRefs|production"),
    ("staging account data", r"test_whoami_with_passing_token"),
    ("enterprise orgs", r"private_by_default|[Ee]nterprise"),
    ("LFS storage management", r"ListAndPermanentlyDeleteLFSFiles|permanently_delete"),
)
# A failure whose message says this is not about the Hub: the sdist ships the tests without their data files.
MISSING_FIXTURES = ("sdist lacks fixture files", "tests/fixtures/")
IN_SCOPE: tuple[tuple[str, str], ...] = (
    ("card metadata", r"repocard|[Cc]ard|metadata"),
    ("copy", r"[Cc]opy|cp_file|::test_cp"),
    ("pull requests & discussions", r"[Dd]iscussion|pull_request|_pr(_|\b)|merge|cli_discussions"),
    ("tags", r"Tag[A-Z]|_tags?\b|_tag_|::test_tag"),  # not "Staging"
    ("branches & refs", r"[Bb]ranch|refs"),
    ("errors & existence", r"exists|not_?found|[Mm]issing|[Ee]rror|invalid"),
    ("tree & paths", r"tree|list_repo_files|paths_info|expand|::test_ls|glob|find|walk|info"),
    (
        "repos (create, move, list, settings)",
        r"create_repo|move_repo|delete_repo|settings|visibility|list_models|list_datasets|list_spaces|[Pp]rivate|repo_id",
    ),
    ("upload & commit", r"RelativePaths|upload|commit|delete_f|[Dd]elete[A-Z]|preupload|gitattributes|lfs|[Ll]arge"),
    ("auth", r"whoami|token|[Aa]uth"),
)
FILE_DEFAULT = {
    "test_file_download.py": "download",
    "test_snapshot_download.py": "download",
    "test_hf_file_system.py": "filesystem (HfFileSystem)",
    "test_hub_mixin.py": "hub mixin",
    "test_cli_discussions.py": "pull requests & discussions",
    "test_commit_scheduler.py": "commit scheduler",
    "test_repocard.py": "card metadata",
}
# Files whose every test is one group: keyword rules would only scatter them.
WHOLE_FILE = {"test_cli_discussions.py", "test_commit_scheduler.py", "test_hub_mixin.py"}


def classify(nodeid: str) -> tuple[str, bool]:
    """The feature group of a test and whether it is in scope.

    Args:
        nodeid: ``tests/test_hf_api.py::TestClass::test_name[param]``.

    Returns:
        ``(group, in_scope)``.
    """
    file = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    for group, pattern in OUT_OF_SCOPE:
        if re.search(pattern, nodeid):
            return group, False
    if file in WHOLE_FILE:
        return FILE_DEFAULT[file], True
    for group, pattern in IN_SCOPE:
        if re.search(pattern, nodeid.split("::", 1)[-1]):
            return group, True
    return FILE_DEFAULT.get(file, "other API calls"), True
