"""The README tells the truth: its tables from committed files are those files' numbers today,
and every ``pspnet_edu.name`` it cites exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from pspnet_edu.experiments.report import blocks

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- from: (?P<source>[^>]+?) -->\n(?P<table>.*?)\n<!-- end -->", re.S)


def readme_blocks(path: Path = README) -> dict[str, str]:
    return {match["source"]: match["table"] for match in BLOCK.finditer(path.read_text())}


# The tables of the current files; those of earlier recipes (results/lottery/) are quoted by data/README.md.
CURRENT = sorted(source for source in blocks() if not source.startswith("results/lottery/"))


def test_every_table_from_a_committed_file_is_in_the_readme() -> None:
    assert sorted(readme_blocks()) == CURRENT


@pytest.mark.parametrize("source", CURRENT)
def test_the_readme_table_is_what_its_file_gives_today(source) -> None:
    assert readme_blocks().get(source) == blocks()[source], (
        f"README.md's table from {source} is stale: paste the output of `python -m pspnet_edu.experiments.report`")


def test_the_data_readme_quotes_the_same_tables_as_its_files_give_today() -> None:
    quoted = readme_blocks(README.parent / "data" / "README.md")
    assert quoted, "data/README.md quotes the ablation through <!-- from: ... --> blocks"
    for source, table in quoted.items():
        assert table == blocks().get(source), f"data/README.md's table from {source} is stale"


def test_a_changed_number_is_caught() -> None:
    source, table = next(iter(blocks().items()))
    altered = re.sub(r"0\.(\d)", lambda m: f"0.{(int(m[1]) + 1) % 10}", table, count=1)
    assert altered != table and altered != readme_blocks()[source]


def test_every_dotted_name_the_readme_cites_exists() -> None:
    missing = []
    for dotted in sorted(set(re.findall(r"pspnet_edu(?:\.[A-Za-z_]\w*)+", README.read_text()))):
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                target = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    target = getattr(target, attribute)
            except AttributeError:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    assert not missing, missing
