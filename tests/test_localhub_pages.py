"""Issue 20 item 14: the local Hub's pages render the model card (metadata as badges, evaluation results), a commit's
diff and a pull request's diff, with sizes in the units they claim.

Everything goes over HTTP to the session's local Hub, written with the real huggingface_hub client and read as a
browser would (httpx GET). Pages are parsed with the standard library's HTML parser, so an assertion about markup
checks the markup, not a substring that could be text.
"""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from hubui.localhub.pages_common import format_size

CARD = """---
license: mit
library_name: timm
pipeline_tag: image-classification
base_model: timm/resnet18.a1_in1k
datasets:
- imagenet-1k
tags:
- image-classification
- "<b>sneaky</b>"
model-index:
- name: my-resnet
  results:
  - task:
      type: image-classification
      name: Image Classification
    dataset:
      name: ImageNet-1k
      type: imagenet-1k
      split: validation
    metrics:
    - type: accuracy
      name: top-1 accuracy
      value: 71.5
---

# My ResNet

A *small* model.

| split | images |
|-------|--------|
| val   | 50000  |

```python
import timm
```
"""

HOSTILE = """---
tags:
- "<script>alert('tag')</script>"
library_name: "<img src=x onerror=alert(1)>"
---
# Hello

<script>alert('body')</script>
<img src="x" onerror="alert(2)">
<a href="https://example.org" onclick="alert(3)">raw link</a>
[click me](javascript:alert(4))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)
"""


class Markup(HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def all_text(self) -> str:
        return "".join(self.text)


def _get(url: str) -> httpx.Response:
    resp = httpx.get(url, timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")
    return resp


@pytest.fixture
def repo(alice: HfApi, repo_name: str) -> str:
    repo_id = f"alice/{repo_name}"
    alice.create_repo(repo_id)
    return repo_id


def test_the_model_page_renders_the_card_with_badges_and_evaluation_results(localhub, alice, repo):
    alice.upload_file(path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id=repo)
    resp = _get(f"{localhub.url}/{repo}")
    page = Markup(resp.text)

    assert any(t == "h1" for t, _ in page.tags) and "My ResNet" in page.all_text()
    assert page.find("em") and page.find("table") and page.find("code", **{"class": "language-python"})
    badges = {a["data-key"] for a in page.find("span", **{"class": "badge"})}
    assert badges >= {"license", "pipeline_tag", "library_name", "base_model", "datasets", "tags"}
    text = page.all_text()
    for shown in ("License: mit", "Task: image-classification", "Library: timm", "Dataset: imagenet-1k"):
        assert shown in text
    assert page.find("a", href="/timm/resnet18.a1_in1k"), "the base model links to its page on this Hub"
    assert "&lt;b&gt;sneaky&lt;/b&gt;" in resp.text and "<b>sneaky</b>" not in resp.text, "a tag's markup is text"
    # The evaluation results as a table: task, dataset (split), metric, value.
    assert "Image Classification" in text and "ImageNet-1k (validation)" in text
    assert "top-1 accuracy" in text and "71.5" in text
    # The YAML block itself is not shown as text in the card.
    assert "model-index:" not in text


def test_a_readme_cannot_put_script_or_event_handlers_on_the_page(localhub, alice, repo):
    alice.upload_file(path_or_fileobj=HOSTILE.encode(), path_in_repo="README.md", repo_id=repo)
    resp = _get(f"{localhub.url}/{repo}")
    page = Markup(resp.text)
    assert not page.find("script"), "no script element"
    assert not [a for _, a in page.tags for k in a if k.startswith("on")], "no event handler attribute"
    hrefs = [a.get("href", "") for a in page.find("a")]
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))]
    assert not [a for a in page.find("img") if a.get("src") == "x"], "the README's raw <img> is text"
    # What the README said is still there, as text a reader can see.
    text = page.all_text()
    assert "<script>alert('body')</script>" in text and "<script>alert('tag')</script>" in text
    assert "[click me](javascript:alert(4))" in text  # not a link: markdown-it refuses the URL
    # And a browser would refuse to run a script even if one slipped through.
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert "script-src" not in resp.headers["content-security-policy"]  # so default-src 'none' governs scripts


def test_a_commit_page_shows_what_it_added_changed_and_removed(localhub, alice, repo):
    weights = bytes(range(256)) * 5860 + b"xyz"  # 1,500,163 bytes: "1.50 MB" (it would be 1.43 MiB)
    alice.create_commit(
        repo,
        [
            CommitOperationAdd("README.md", b"line a\nline b\nline z\n"),
            CommitOperationAdd("config.json", b'{"a": 1}\n'),
        ],
        commit_message="first",
    )
    second = alice.create_commit(
        repo,
        [
            CommitOperationAdd("README.md", b"line a\nline c\nline z\n"),
            CommitOperationDelete("config.json"),
            CommitOperationAdd("model.safetensors", weights),
            CommitOperationAdd("notes.txt", b"<i>hello</i>\n"),
        ],
        commit_message="second <b>commit</b>",
        commit_description="why: **because**",
    )
    resp = _get(f"{localhub.url}/{repo}/commit/{second.oid}")
    page = Markup(resp.text)
    text = page.all_text()
    assert "second &lt;b&gt;commit&lt;/b&gt;" in resp.text and "<b>commit</b>" not in resp.text
    assert "why: **because**" in text  # the description as written
    assert "4 files: 2 added, 1 changed, 1 removed." in text
    kinds = {a["data-kind"] for a in page.find("h3") if "data-kind" in a}
    assert kinds == {"added", "changed", "removed"}
    assert "changed: README.md" in text and "removed: config.json" in text
    assert "added: model.safetensors" in text and "added: notes.txt" in text
    # README's lines: one removed, one added, context around them.
    assert "-line b" in text and "+line c" in text and " line a" in text
    # The binary file: its size in the unit it claims, its exact bytes in the tooltip, no line diff.
    assert "1.50 MB" in text and page.find("span", **{"class": "size", "title": "1,500,163 bytes"})
    assert "Binary file" in text
    assert "+<i>hello</i>" in text and not page.find("i"), "a text file's markup is shown, not applied"
    # Its parent is linked, and the first commit's page shows its files as added.
    first_id = alice.list_repo_commits(repo)[1].commit_id
    assert page.find("a", href=f"/{repo}/commit/{first_id}")
    first = Markup(_get(f"{localhub.url}/{repo}/commit/{first_id}").text).all_text()
    assert "2 files: 2 added." in first and "+line b" in first


def test_a_pull_request_page_shows_its_diff_against_its_merge_base(localhub, alice, bob, repo):
    alice.upload_file(path_or_fileobj=b"one\ntwo\n", path_in_repo="README.md", repo_id=repo)
    pr = bob.create_commit(
        repo,
        [CommitOperationAdd("README.md", b"one\nTWO\n"), CommitOperationAdd("model.safetensors", b"\0" * 3000)],
        commit_message="Fix the card",
        create_pr=True,
    )
    # main moves on after the PR was opened: that change is not the PR's.
    alice.upload_file(path_or_fileobj=b"later\n", path_in_repo="later.txt", repo_id=repo)
    alice.comment_discussion(repo, pr.pr_num, "Looks **good**. <script>alert(1)</script>")

    resp = _get(f"{localhub.url}/{repo}/discussions/{pr.pr_num}")
    page = Markup(resp.text)
    text = page.all_text()
    assert "Fix the card" in text and "Pull request" in text and "refs/pr/" in text
    assert "2 files: 1 added, 1 changed." in text
    assert "-two" in text and "+TWO" in text
    assert "added: model.safetensors" in text and "3.00 kB" in text
    assert "later.txt" not in text
    assert page.find("strong") and not page.find("script")
    assert page.find("a", href=f"/{repo}/commit/{pr.oid}"), "the PR's commit is listed and linked"


def test_sizes_are_si_and_say_so(localhub, alice, repo):
    alice.create_commit(
        repo,
        [
            CommitOperationAdd("small.txt", b"x" * 500),
            CommitOperationAdd("two-k.txt", b"x" * 2048),
            CommitOperationAdd("almost-mega.bin", b"\0" * 999_600),
        ],
        commit_message="sizes",
    )
    page = Markup(_get(f"{localhub.url}/{repo}").text)
    sizes = {a["title"]: a for a in page.find("span", **{"class": "size"})}
    assert {"500 bytes", "2,048 bytes", "999,600 bytes"} <= set(sizes)
    text = page.all_text()
    assert "500 B" in text and "2.05 kB" in text and "1.00 MB" in text
    assert "KB" not in text and "MiB" not in text  # one convention, labelled
    assert "1 kB = 1000 bytes" in text


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.00 kB"),
        (2048, "2.05 kB"),
        (99_949, "99.9 kB"),
        (999_499, "999 kB"),
        (999_500, "1.00 MB"),
        (1_048_576, "1.05 MB"),  # one MiB is 1.05 MB, not "1.0 MB"
        (44_700_000, "44.7 MB"),
        (5 * 10**9, "5.00 GB"),
        (1_234 * 10**9, "1234 GB"),
    ],
)
def test_format_size_uses_si_units(n, shown):
    assert format_size(n) == shown


def test_unknown_commits_and_discussions_are_404_pages(localhub, alice, repo):
    for path in ("commit/" + "0" * 40, "discussions/999", "nothing/here"):
        resp = httpx.get(f"{localhub.url}/{repo}/{path}", timeout=60)
        assert resp.status_code == 404 and "Not found" in resp.text
