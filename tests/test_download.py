"""The MVTec AD downloader against a loopback HTTP server (no traffic leaves 127.0.0.1)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from stad_utils.data.download import (
    CATEGORY_ARCHIVE_BASE,
    CATEGORY_ARCHIVE_IDS,
    CATEGORY_MANIFEST,
    MVTEC_CATEGORIES,
    ChecksumError,
    DownloadError,
    Source,
    UnsafeArchiveError,
    category_source,
    download_file,
    download_mvtec,
    extract,
)
from stad_utils.data.mvtec import MVTecAD

ARCHIVE_NAME = "mvtec.tar.gz"
TIMEOUT = 5


# -- a tiny archive in MVTec AD layout ------------------------------------------------------
def _write_category(folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(3):
        write_png(folder / f"train/good/{i:03d}.png", rng.integers(0, 256, (12, 16, 3)))
    write_png(folder / "test/good/000.png", rng.integers(0, 256, (12, 16, 3)))
    write_png(folder / "test/crack/000.png", rng.integers(0, 256, (12, 16, 3)))
    mask = np.zeros((12, 16), np.uint8)
    mask[3:8, 4:10] = 255
    write_png(folder / "ground_truth/crack/000_mask.png", mask)


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("source")
    _write_category(tree / "bottle", seed=1)
    _write_category(tree / "carpet", seed=2)
    (tree / "license.txt").write_text("CC BY-NC-SA 4.0\n")
    return tree


@pytest.fixture(scope="module")
def payload(source_tree) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("bottle", "carpet", "license.txt"):
            tar.add(source_tree / name, arcname=name)
    return buffer.getvalue()


@pytest.fixture
def archive(tmp_path, payload) -> Path:
    path = tmp_path / ARCHIVE_NAME
    path.write_bytes(payload)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the loopback server ------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes; ``server.payload`` at ``/<ARCHIVE_NAME>``),
    with ``Range: bytes=N-`` support; other paths get 404.

    Knobs on the server: ``cut_after`` (send only that many body bytes on the first
    request, then close), ``ignore_range`` (always answer 200 with the whole file).
    Every request's Range header and answer status are recorded.
    """

    def do_GET(self):  # noqa: N802 (the http.server API)
        server = self.server
        requested = self.headers.get("Range")
        server.ranges.append(requested)
        server.paths.append(self.path)
        if self.path not in server.files:
            server.statuses.append(404)
            self.send_error(404)
            return
        data, start, status = server.files[self.path], 0, 200
        if requested and not server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                server.statuses.append(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        server.statuses.append(status)
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None and len(server.ranges) == 1:
            body = body[: server.cut_after]  # then the connection closes: a cut transfer
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(payload):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload = payload
    httpd.files = {f"/{ARCHIVE_NAME}": payload}
    httpd.paths = []  # the path of every request, in order
    httpd.ranges, httpd.statuses = [], []
    httpd.cut_after, httpd.ignore_range = None, False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/{ARCHIVE_NAME}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- download_file ------------------------------------------------------------------------
def test_full_download_is_verified(server, tmp_path, payload):
    target = tmp_path / "dl" / ARCHIVE_NAME
    result = download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert result == target
    assert target.read_bytes() == payload
    assert not target.with_name(target.name + ".part").exists()
    assert server.ranges == [None] and server.statuses == [200]


def test_interrupted_transfer_resumes_with_range(server, tmp_path, payload):
    cut = len(payload) // 3
    server.cut_after = cut
    target = tmp_path / ARCHIVE_NAME
    partial = tmp_path / (ARCHIVE_NAME + ".part")
    with pytest.raises(DownloadError, match="interrupted") as info:
        download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert not isinstance(info.value, ChecksumError)
    assert str(partial) in str(info.value)
    assert f"{cut} bytes" in str(info.value)
    assert not target.exists()
    assert partial.read_bytes() == payload[:cut]

    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert server.ranges == [None, f"bytes={cut}-"]
    assert server.statuses == [200, 206]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == _sha(payload)
    assert not partial.exists()


def test_server_ignoring_range_still_gives_the_right_file(server, tmp_path, payload):
    cut = len(payload) // 2
    server.cut_after = cut
    target = tmp_path / ARCHIVE_NAME
    with pytest.raises(DownloadError):
        download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    server.ignore_range = True
    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert server.ranges == [None, f"bytes={cut}-"]
    assert server.statuses == [200, 200]
    assert target.read_bytes() == payload  # started over, no duplicated prefix


def test_partial_file_already_whole_gets_416_and_is_finished(server, tmp_path, payload):
    target = tmp_path / ARCHIVE_NAME
    (tmp_path / (ARCHIVE_NAME + ".part")).write_bytes(payload)
    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert server.ranges == [f"bytes={len(payload)}-"]
    assert server.statuses == [416]
    assert target.read_bytes() == payload


def test_checksum_mismatch_removes_everything(server, tmp_path):
    target = tmp_path / ARCHIVE_NAME
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match="Checksum mismatch") as info:
        download_file(server.url, target, wrong, progress=False, timeout=TIMEOUT)
    assert wrong in str(info.value)
    assert isinstance(info.value, DownloadError)
    assert not target.exists()
    assert not (tmp_path / (ARCHIVE_NAME + ".part")).exists()


def test_complete_file_is_reused_without_any_request(server, tmp_path, payload):
    target = tmp_path / ARCHIVE_NAME
    target.write_bytes(payload)
    assert download_file(server.url, target, _sha(payload), progress=False) == target
    assert server.ranges == []


def test_wrong_file_under_the_final_name_is_fetched_again(server, tmp_path, payload):
    target = tmp_path / ARCHIVE_NAME
    target.write_bytes(b"stale")
    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert server.ranges == [None]
    assert target.read_bytes() == payload


def test_http_error_is_a_download_error(server, tmp_path):
    url = server.url.replace(ARCHIVE_NAME, "missing.tar.gz")
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(url, tmp_path / "x.tar.gz", None, progress=False, timeout=TIMEOUT)


def test_unreachable_url_gives_a_helpful_error(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/{ARCHIVE_NAME}"
    with pytest.raises(DownloadError, match="Cannot reach") as info:
        download_file(url, tmp_path / ARCHIVE_NAME, None, progress=False, timeout=TIMEOUT)
    message = str(info.value)
    assert url in message and "internet connection" in message
    assert not (tmp_path / ARCHIVE_NAME).exists()


# -- extraction ---------------------------------------------------------------------------
def _tree_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_extract_a_single_category(archive, tmp_path, source_tree):
    out = tmp_path / "out"
    assert extract(archive, out, "bottle") == out
    assert sorted(p.name for p in out.iterdir()) == ["bottle"]  # no temp folder left
    assert _tree_files(out / "bottle") == _tree_files(source_tree / "bottle")


def test_extract_everything_replacing_old_folders(archive, tmp_path, source_tree):
    out = tmp_path / "out"
    (out / "bottle").mkdir(parents=True)
    (out / "bottle" / "stale.png").write_bytes(b"old")
    extract(archive, out)
    assert sorted(p.name for p in out.iterdir()) == ["bottle", "carpet", "license.txt"]
    assert _tree_files(out) == _tree_files(source_tree)


def test_extract_a_category_the_archive_lacks(archive, tmp_path):
    with pytest.raises(DownloadError, match="does not contain category 'cable'"):
        extract(archive, tmp_path / "out", "cable")


def _unsafe_archive(path: Path, name: str, kind: str, linkname: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("bottle/train/good/000.png")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"png"))
        member = tarfile.TarInfo(name)
        if kind == "file":
            member.size = 4
            tar.addfile(member, io.BytesIO(b"evil"))
        else:
            member.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            member.linkname = linkname
            tar.addfile(member)
    return path


@pytest.mark.parametrize(
    "name, kind, linkname, category",
    [
        ("../evil.txt", "file", "", None),
        ("bottle/../../evil.txt", "file", "", "bottle"),
        ("ABSOLUTE", "file", "", None),
        ("bottle/link", "symlink", "ABSOLUTE", "bottle"),
        ("bottle/train/link", "symlink", "../../../outside/abs.txt", None),
        ("bottle/hard", "hardlink", "../outside/abs.txt", "bottle"),
    ],
    ids=["dotdot", "dotdot-in-category", "absolute", "abs-symlink", "rel-symlink", "hardlink"],
)
def test_path_escaping_members_are_refused(tmp_path, name, kind, linkname, category):
    outside = tmp_path / "outside"
    outside.mkdir()
    absolute = str(outside / "abs.txt")
    name, linkname = name.replace("ABSOLUTE", absolute), linkname.replace("ABSOLUTE", absolute)
    archive = _unsafe_archive(tmp_path / "evil.tar.gz", name, kind, linkname)
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="Refusing to extract") as info:
        extract(archive, out, category)
    assert repr(name) in str(info.value)
    assert list(outside.iterdir()) == []
    assert list(out.iterdir()) == []  # not even the harmless member
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "out", "outside"]


# -- download_mvtec -----------------------------------------------------------------------
def test_download_mvtec_end_to_end(server, tmp_path, payload):
    root = tmp_path / "data"
    source = Source(url=server.url, sha256=_sha(payload), filename=ARCHIVE_NAME)
    kwargs = dict(source=source, progress=False, category_base=None)  # the full archive only
    assert download_mvtec(root, "bottle", **kwargs) == root
    ds = MVTecAD(root, "bottle", "test", image_size=None)
    assert dict(ds.counts()) == {"crack": 1, "good": 1}
    assert ds.labels == [1, 0]
    assert ds[0]["mask"].sum() == 5 * 6
    assert not (root / "carpet").exists()
    assert (root / ARCHIVE_NAME).read_bytes() == payload

    # already there: no request; another category: extracted from the kept archive
    download_mvtec(root, "bottle", **kwargs)
    download_mvtec(root, "carpet", **kwargs)
    assert len(server.ranges) == 1
    assert len(MVTecAD(root, "carpet", "train", val_fraction=0.0)) == 3


def test_download_mvtec_can_drop_the_archive(server, tmp_path, payload):
    root = tmp_path / "data"
    source = Source(url=server.url, sha256=_sha(payload), filename=ARCHIVE_NAME)
    download_mvtec(
        root, "carpet", source=source, progress=False, keep_archive=False, category_base=None
    )
    assert sorted(p.name for p in root.iterdir()) == ["carpet"]


def test_download_mvtec_unknown_category(server, tmp_path, payload):
    source = Source(url=server.url, sha256=_sha(payload), filename=ARCHIVE_NAME)
    with pytest.raises(ValueError, match="Unknown MVTec AD category 'cat'") as info:
        download_mvtec(tmp_path, "cat", source=source, progress=False)
    assert "carpet" in str(info.value)
    assert server.ranges == []


# -- a hand-placed archive is never deleted; messages tell the truth (issue 18) ----------
def test_a_mismatching_hand_placed_archive_is_moved_aside(server, tmp_path, payload, capsys):
    target = tmp_path / ARCHIVE_NAME
    target.write_bytes(b"hand-downloaded, but another version")
    own_sha = _sha(b"hand-downloaded, but another version")
    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    aside = tmp_path / f"{ARCHIVE_NAME}.mismatch-{own_sha[:8]}"
    assert aside.read_bytes() == b"hand-downloaded, but another version"
    assert target.read_bytes() == payload
    message = capsys.readouterr().err
    assert str(aside) in message and "not deleted" in message and own_sha in message


def test_moving_aside_never_overwrites_an_earlier_copy(server, tmp_path, payload):
    target = tmp_path / ARCHIVE_NAME
    stale = b"stale"
    aside = tmp_path / f"{ARCHIVE_NAME}.mismatch-{_sha(stale)[:8]}"
    aside.write_bytes(b"an earlier copy")
    target.write_bytes(stale)
    download_file(server.url, target, _sha(payload), progress=False, timeout=TIMEOUT)
    assert aside.read_bytes() == b"an earlier copy"
    assert aside.with_name(aside.name + "-2").read_bytes() == stale


def test_unreachable_without_a_partial_file_does_not_claim_one(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/{ARCHIVE_NAME}"
    with pytest.raises(DownloadError, match="Nothing was downloaded yet") as info:
        download_file(url, tmp_path / ARCHIVE_NAME, None, progress=False, timeout=TIMEOUT)
    assert ".part" not in str(info.value)
    assert not (tmp_path / (ARCHIVE_NAME + ".part")).exists()


def test_unreachable_with_a_partial_file_says_how_much_is_kept(tmp_path):
    partial = tmp_path / (ARCHIVE_NAME + ".part")
    partial.write_bytes(b"x" * 123)
    url = f"http://127.0.0.1:{_closed_port()}/{ARCHIVE_NAME}"
    with pytest.raises(DownloadError, match="123 bytes downloaded so far") as info:
        download_file(url, tmp_path / ARCHIVE_NAME, None, progress=False, timeout=TIMEOUT)
    assert str(partial) in str(info.value)
    assert partial.read_bytes() == b"x" * 123


# -- one category from its own archive (issue 16) -----------------------------------------
def _category_tar(source_tree: Path, *names: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name in names:
            tar.add(source_tree / name, arcname=name)
    return buffer.getvalue()


def _category_path(category: str) -> str:
    return f"/{CATEGORY_ARCHIVE_IDS[category]}/{category}.tar.xz"


@pytest.fixture
def category_server(server, source_tree):
    """The loopback server also holding bottle's own archive at MVTec's path layout."""
    server.bottle = _category_tar(source_tree, "bottle")
    server.files[_category_path("bottle")] = server.bottle
    server.base = server.url.replace(ARCHIVE_NAME, "")
    return server


def _get_bottle(server, root: Path, **kwargs) -> Path:
    source = Source(url=server.url, sha256=_sha(server.payload), filename=ARCHIVE_NAME)
    return download_mvtec(
        root, "bottle", source=source, progress=False, category_base=server.base, **kwargs
    )


def _manifest(root: Path) -> dict:
    return json.loads((root / CATEGORY_MANIFEST).read_text())


def test_category_urls_come_from_one_table():
    assert set(CATEGORY_ARCHIVE_IDS) == set(MVTEC_CATEGORIES)
    carpet = category_source("carpet")
    assert carpet.url == CATEGORY_ARCHIVE_BASE + "420937484-1629951672/carpet.tar.xz"
    assert carpet.sha256 is None and carpet.filename == "carpet.tar.xz"


def test_a_good_category_archive_is_used_and_recorded(category_server, tmp_path, source_tree):
    root = tmp_path / "data"
    assert _get_bottle(category_server, root) == root
    assert category_server.paths == [_category_path("bottle")]  # not the full archive
    assert _tree_files(root / "bottle") == _tree_files(source_tree / "bottle")
    assert sorted(p.name for p in root.iterdir()) == ["bottle", "bottle.tar.xz", CATEGORY_MANIFEST]
    bottle = category_server.bottle
    assert _manifest(root)["bottle"] == {
        "url": category_server.base + _category_path("bottle")[1:],
        "size": len(bottle),
        "sha256": _sha(bottle),
    }
    assert dict(MVTecAD(root, "bottle", "test", image_size=None).counts()) == {
        "crack": 1,
        "good": 1,
    }
    _get_bottle(category_server, root)  # complete: no request
    assert len(category_server.paths) == 1


def test_a_resumed_category_download(category_server, tmp_path, source_tree):
    cut = len(category_server.bottle) // 2
    category_server.cut_after = cut
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="interrupted"):
        _get_bottle(category_server, root)
    assert (root / "bottle.tar.xz.part").stat().st_size == cut
    assert not (root / "bottle").exists()
    _get_bottle(category_server, root)
    assert category_server.paths == [_category_path("bottle")] * 2
    assert category_server.ranges == [None, f"bytes={cut}-"]
    assert category_server.statuses == [200, 206]
    assert _tree_files(root / "bottle") == _tree_files(source_tree / "bottle")
    assert _manifest(root)["bottle"]["sha256"] == _sha(category_server.bottle)


def _assert_fell_back(server, root, source_tree, capsys, reason: str) -> str:
    _get_bottle(server, root)
    assert server.paths == [_category_path("bottle"), f"/{ARCHIVE_NAME}"]
    assert _tree_files(root / "bottle") == _tree_files(source_tree / "bottle")
    assert not (root / "carpet").exists()
    message = capsys.readouterr().err
    assert "Falling back to the full MVTec AD archive" in message
    assert re.search(reason, message), message
    return message


def test_an_http_error_falls_back_to_the_full_archive(
    category_server, tmp_path, source_tree, capsys
):
    del category_server.files[_category_path("bottle")]
    root = tmp_path / "data"
    _assert_fell_back(category_server, root, source_tree, capsys, "HTTP 404")
    assert not (root / CATEGORY_MANIFEST).exists()


def test_a_truncated_category_archive_falls_back(category_server, tmp_path, source_tree, capsys):
    truncated = category_server.bottle[: len(category_server.bottle) * 2 // 3]
    category_server.files[_category_path("bottle")] = truncated  # served whole, but cut
    root = tmp_path / "data"
    _assert_fell_back(category_server, root, source_tree, capsys, "not a readable tar")
    assert not (root / "bottle.tar.xz").exists()  # our own bad download is not kept
    assert not (root / CATEGORY_MANIFEST).exists()


def test_an_archive_of_another_category_falls_back(category_server, tmp_path, source_tree, capsys):
    category_server.files[_category_path("bottle")] = _category_tar(source_tree, "carpet")
    root = tmp_path / "data"
    message = _assert_fell_back(
        category_server, root, source_tree, capsys, r"does not hold exactly the 'bottle'"
    )
    assert "outside bottle/" in message and "no files under bottle/train/good/" in message
    assert not (root / CATEGORY_MANIFEST).exists()


def test_an_archive_with_extra_content_falls_back(category_server, tmp_path, source_tree, capsys):
    category_server.files[_category_path("bottle")] = _category_tar(source_tree, "bottle", "carpet")
    _assert_fell_back(category_server, tmp_path / "data", source_tree, capsys, "outside bottle/")


def test_a_category_archive_with_a_link_is_refused(category_server, tmp_path, source_tree, capsys):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        tar.add(source_tree / "bottle", arcname="bottle")
        link = tarfile.TarInfo("bottle/train/good/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "000.png"
        tar.addfile(link)
    category_server.files[_category_path("bottle")] = buffer.getvalue()
    root = tmp_path / "data"
    _assert_fell_back(category_server, root, source_tree, capsys, "is a link")
    assert not (root / "bottle/train/good/link.png").exists()


def test_a_later_use_is_checked_against_the_record(category_server, tmp_path, source_tree, capsys):
    root = tmp_path / "data"
    _get_bottle(category_server, root)
    recorded = _manifest(root)["bottle"]
    shutil.rmtree(root / "bottle")
    # a different (but well-formed) bottle archive now sits where the first one was
    other = _category_tar(source_tree, "bottle") + b"\0" * 10240
    (root / "bottle.tar.xz").write_bytes(other)
    category_server.files[_category_path("bottle")] = other  # and the server changed too
    category_server.paths.clear()
    _get_bottle(category_server, root)
    message = capsys.readouterr().err
    aside = root / f"bottle.tar.xz.mismatch-{_sha(other)[:8]}"
    assert aside.read_bytes() == other  # the hand-placed file is kept
    assert str(aside) in message
    assert "Checksum mismatch" in message and "Falling back" in message
    assert category_server.paths == [_category_path("bottle"), f"/{ARCHIVE_NAME}"]
    assert _manifest(root)["bottle"] == recorded  # the record is not rewritten
    assert _tree_files(root / "bottle") == _tree_files(source_tree / "bottle")


def test_a_bad_hand_placed_category_archive_is_moved_aside(category_server, tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "bottle.tar.xz").write_bytes(b"an HTML page saved by a browser")
    _get_bottle(category_server, root)
    aside = root / f"bottle.tar.xz.invalid-{_sha(b'an HTML page saved by a browser')[:8]}"
    assert aside.read_bytes() == b"an HTML page saved by a browser"
    assert str(aside) in capsys.readouterr().err


def test_a_full_archive_already_on_disk_is_used_without_requests(category_server, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / ARCHIVE_NAME).write_bytes(category_server.payload)
    _get_bottle(category_server, root)
    assert category_server.paths == []
    assert (root / "bottle/train/good").is_dir()


def test_a_category_archive_escaping_its_folder_falls_back(
    category_server, tmp_path, source_tree, capsys
):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        tar.add(source_tree / "bottle", arcname="bottle")
        evil = tarfile.TarInfo("bottle/../../evil.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    category_server.files[_category_path("bottle")] = buffer.getvalue()
    root = tmp_path / "data"
    _assert_fell_back(category_server, root, source_tree, capsys, "would be written outside")
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()


def test_an_unreadable_archive_record_is_reported(category_server, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / CATEGORY_MANIFEST).write_text("{broken")
    with pytest.raises(DownloadError, match="is unreadable") as info:
        _get_bottle(category_server, root)
    assert str(root / CATEGORY_MANIFEST) in str(info.value) and "move it away" in str(info.value)
    assert (root / CATEGORY_MANIFEST).read_text() == "{broken"
