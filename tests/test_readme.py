"""The README a newcomer reads (what it answers, a real run, install, words, exit codes) and the docs/
pages it links: every relative link resolves, and each generated section's markers are where their
writers look: the badges and the results table in the README (`repro report`), the fault table in
docs/reliability.md (`--fault-table`)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_resolves(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path, _, anchor = target.partition("#")
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (page.parent / path) if path else page
        assert resolved.exists(), f"{page.name}: {target}"
        if anchor and resolved.suffix == ".md":
            headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                        for h in re.findall(r"^#+ (.+)$", resolved.read_text(), flags=re.M)}
            assert anchor in headings, f"{page.name}: {target}: no such heading"


@pytest.mark.parametrize("page, name", [("README.md", "badges"), ("README.md", "results"),
                                        ("docs/reliability.md", "fault-table")])
def test_each_generated_section_is_where_its_writer_looks(page, name):
    text = (ROOT / page).read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)
    others = [p for p in PAGES if p != ROOT / page and start in p.read_text()]
    assert not others, f"{name} markers also in {others}"


def test_the_readme_answers_first_and_defines_its_words():
    text = (ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections[0] == "One question, one command"
    assert text.index("$ repro run ") < text.index("## Install") < text.index("## Words")
    for word in ("**cell**", "**variant**", "**trigger**", "**control**", "**verdicts**", "**strength**", "**tier**"):
        assert word in text.split("## Words", 1)[1].split("\n## ", 1)[0], word
    assert "| 3 | cannot tell" in text
