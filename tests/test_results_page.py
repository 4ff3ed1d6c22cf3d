"""The book's results page: its published tables are those of `stad_utils.published`, and
its commands are valid command lines."""

import re
import shlex
from pathlib import Path

import pytest

from stad_utils.__main__ import build_parser
from stad_utils.published import SOURCES, published_tables

PAGE = Path(__file__).resolve().parents[1] / "book" / "results.md"


def test_published_tables_match_the_package():
    text = PAGE.read_text()
    for title, table in published_tables().items():
        assert f"**{title}**\n\n{table}" in text, f"the table '{title}' differs from published.py"
    for key, source in SOURCES.items():
        assert f"* `{key}`: {source}" in text


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    inline = re.findall(r"`(python -m stad_utils [^`]*)`", PAGE.read_text())
    lines = [line for block in blocks for line in block.splitlines()] + inline
    return [line.strip() for line in lines if line.strip().startswith("python -m stad_utils")]


def test_the_page_shows_the_sweep_shard_and_merge_commands():
    commands = " ".join(_commands())
    for part in ("download", "bench --profile full", "--shard 1/4", "bench --merge"):
        assert part in commands


@pytest.mark.parametrize("command", _commands())
def test_every_command_parses(command):
    words = shlex.split(command.replace("${SLURM_ARRAY_TASK_ID}", "1"), comments=True)
    build_parser().parse_args(words[3:])
