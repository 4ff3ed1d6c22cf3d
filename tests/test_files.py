"""Atomic writes: the old file or the whole new one, and no temporary file left behind."""

import pytest

from stad_utils.files import write_atomically


def test_a_write_replaces_the_file_in_one_step(tmp_path):
    path = tmp_path / "sub" / "result.json"
    assert write_atomically(path, lambda t: t.write_text("new")) == path
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")

    def crash(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
