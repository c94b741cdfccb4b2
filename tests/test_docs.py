"""The README and docs/: the README stays short, states the command CI runs, and every relative link lands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
README_LIMIT = 12_000  # bytes: the README is for users; measurements go to docs/performance.md

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of ``markdown`` (lower case, punctuation dropped, spaces to dashes)."""
    found: set[str] = set()
    for heading in re.findall(r"^#+\s+(.+)$", FENCE.sub("", markdown), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = 0
        while (candidate := slug if n == 0 else f"{slug}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or heading does not exist."""
    broken = []
    for link in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (fragment and target.suffix == ".md"
                                   and fragment not in anchors(target.read_text())):
            broken.append(link)
    return broken


def test_the_readme_is_short():
    assert README.stat().st_size < README_LIMIT


def test_the_readme_states_the_command_ci_runs():
    ci_command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = README.read_text()
    said = readme.split("run the whole test suite", 1)[1]
    first_block = re.search(r"```bash\n(.*?)\n```", said, re.DOTALL)
    assert first_block is not None and first_block.group(1).strip() == ci_command == "bash scripts/test.sh"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_lands(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# A heading, with `code`\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading-with-code) [ok](other.md#twice-1) [ok](#here) [web](https://x.y/z)\n"
                    "# Here\n[no file](missing.md#x) [no heading](other.md#nowhere)\n"
                    "```\n[in code](missing-too.md)\n```\n")
    assert broken_links(page) == ["missing.md#x", "other.md#nowhere"]
