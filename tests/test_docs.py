"""The lessons cite only what a learner has: no developer-only files, and links to
docs/paper_notes.md that land on a heading that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "paper_notes.md"

# What the learners get: every tracked file in these folders, and the README.
SCANNED_DIRS = ("notebooks/", "pspnet_edu/", "data/", "results/", "docs/", "benchmarks/")
SCANNED_FILES = ("README.md",)
# Files that exist only for the people building the course; a learner cannot open them.
FORBIDDEN = ("REFERENCE.md", "STYLE.md", "COURSE.md", "../shared")

# A relative link to the notes with an anchor: "../docs/paper_notes.md#2-the-authors-code-hszhaosemseg".
NOTES_LINK = re.compile(r"((?:\.\./|\./)*(?:docs/)?)paper_notes\.md#([^)\s\"'\\>]+)")
# A link inside the notes to one of their own headings: "](#4-cityscapes)".
SELF_LINK = re.compile(r"\]\(#([^)\s]+)\)")


def tracked_files() -> list[str]:
    """The repository's tracked files (paths relative to the root); skips the test without git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available or this is not a git checkout")
    return [p for p in out.decode("utf-8").split("\0") if p]


def in_scope(path: str) -> bool:
    return path in SCANNED_FILES or path.startswith(SCANNED_DIRS)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation removed, spaces to hyphens.

    >>> github_anchor("2. The author's code (hszhao/semseg)")
    '2-the-authors-code-hszhaosemseg'
    >>> github_anchor("1.4 Table 2: auxiliary loss weight")
    '14-table-2-auxiliary-loss-weight'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of every heading outside code fences; repeated headings get -1, -2, ... as on GitHub."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or not match:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def test_the_anchor_rule_matches_github() -> None:
    assert github_anchor("2. The author's code (hszhao/semseg)") == "2-the-authors-code-hszhaosemseg"
    assert github_anchor("5. Mistakes seen in popular PSPNet code") == "5-mistakes-seen-in-popular-pspnet-code"
    assert heading_anchors("# A\n## A\n```\n# not a heading\n```\n### A\n") == {"a", "a-1", "a-2"}


def test_no_tracked_file_names_the_developer_only_files() -> None:
    offenders = []
    for path in filter(in_scope, tracked_files()):
        file = ROOT / path
        if not file.is_file():  # deleted in the working tree, not yet committed
            continue
        data = file.read_bytes()
        offenders += [f"{path}: {name}" for name in FORBIDDEN if name.encode() in data]
    assert not offenders, "cite the primary source or docs/paper_notes.md instead:\n  " + "\n  ".join(offenders)


def test_every_link_to_the_paper_notes_lands_on_a_heading() -> None:
    anchors = heading_anchors(NOTES.read_text(encoding="utf-8"))
    broken, links = [], 0
    for path in tracked_files():
        if not (path == "README.md" or path.startswith(("notebooks/", "docs/", "data/", "results/"))):
            continue
        if not path.endswith((".md", ".ipynb")) or not (ROOT / path).is_file():
            continue
        file = ROOT / path
        text = file.read_text(encoding="utf-8")
        for match in NOTES_LINK.finditer(text):
            links += 1
            prefix, anchor = match.groups()
            if (file.parent / prefix / "paper_notes.md").resolve() != NOTES.resolve():
                broken.append(f"{path}: {match.group(0)} does not point to docs/paper_notes.md")
            elif anchor not in anchors:
                broken.append(f"{path}: #{anchor} is not a heading of docs/paper_notes.md")
        if file.resolve() == NOTES.resolve():
            broken += [f"{path}: #{a} is not a heading" for a in SELF_LINK.findall(text) if a not in anchors]
    assert links > 0, "the lessons link the paper notes; the link pattern found none"
    assert not broken, "\n".join(broken)
