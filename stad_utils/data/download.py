"""Download MVTec AD: resumable, checksummed, extracted safely, never half-done.

* The archive is written to ``<file>.part`` and renamed only once its SHA-256 matches,
  so a file with the final name is always complete.
* An interrupted transfer resumes with an HTTP ``Range`` request from the bytes
  already on disk (a server that ignores ``Range`` makes us start over, correctly).
* A checksum mismatch of a download removes the bad ``.part`` file and says so; a file
  that was already under the final name (e.g. placed there by hand) is never deleted:
  it is moved aside to ``<name>.mismatch-<sha8>`` and the message says where.
* One category can come from its own archive (about 5–10 % of the full 4.9 GB). No
  checksums are published for those, so the archive must be a readable tar holding
  exactly that category's layout; its size and SHA-256 are recorded on first download
  in ``<root>/category_archives.json`` and checked on every later use. If the category
  archive fails, the full, checksummed archive is used instead, with a message.
* Extraction refuses any member that would land outside the target folder, extracts
  into a temporary folder next to the target, and moves the category into place only
  when it is complete.

MVTec AD is licensed CC BY-NC-SA 4.0 (non-commercial use; cite Bergmann et al. 2019/2021).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import lzma
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..config import progress_bar
from ..files import write_atomically


@dataclass(frozen=True)
class Source:
    """Where an archive comes from and what its SHA-256 must be (None: unpublished)."""

    url: str
    sha256: str | None
    filename: str


# The one place the MVTec AD address and checksum live (DESIGN.md §2).
MVTEC_AD = Source(
    url=(
        "https://www.mydrive.ch/shares/150996/b52ecdcbf521176e9db9c731f2304b27/"
        "download/420938113-1629960298/mvtec_anomaly_detection.tar.xz"
    ),
    sha256="cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
    filename="mvtec_anomaly_detection.tar.xz",
)

MVTEC_CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip

# One archive per category (Bergmann et al.'s own share): BASE + "<id>/<category>.tar.xz".
CATEGORY_ARCHIVE_BASE = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
)
CATEGORY_ARCHIVE_IDS = {
    "bottle": "420937370-1629951468",
    "cable": "420937413-1629951498",
    "capsule": "420937454-1629951595",
    "carpet": "420937484-1629951672",
    "grid": "420937487-1629951814",
    "hazelnut": "420937545-1629951845",
    "leather": "420937607-1629951964",
    "metal_nut": "420937637-1629952063",
    "pill": "420938129-1629953099",
    "screw": "420938130-1629953152",
    "tile": "420938133-1629953189",
    "toothbrush": "420938134-1629953256",
    "transistor": "420938166-1629953277",
    "wood": "420938383-1629953354",
    "zipper": "420938385-1629953449",
}
CATEGORY_MANIFEST = "category_archives.json"  # size and SHA-256 seen on first download
# Top-level files a category archive may hold besides <category>/ (never extracted).
ARCHIVE_DOCUMENTS = ("license.txt", "readme.txt")

CHUNK = 1 << 20  # 1 MiB


class DownloadError(RuntimeError):
    """A download could not be completed; the message says what to do."""


class ServerError(DownloadError):
    """The server answered with an HTTP error status (e.g. 404: the address expired)."""


class ChecksumError(DownloadError):
    """The downloaded file is not the expected one (it has been removed)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


class ArchiveContentError(DownloadError):
    """An archive is unreadable or does not hold what it should."""


def category_source(category: str, base: str = CATEGORY_ARCHIVE_BASE) -> Source:
    """The address of one category's own archive (no published checksum)."""
    return Source(
        url=f"{base}{CATEGORY_ARCHIVE_IDS[category]}/{category}.tar.xz",
        sha256=None,
        filename=f"{category}.tar.xz",
    )


def _notify(message: str) -> None:
    """Tell the user what happened to their files (the CLI and notebooks show stderr)."""
    print(message, file=sys.stderr, flush=True)


def _set_aside(path: Path, reason: str, digest: str) -> Path:
    """Rename ``path`` to ``<name>.<reason>-<sha8>`` (never overwriting) and return it."""
    aside = path.with_name(f"{path.name}.{reason}-{digest[:8]}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.{reason}-{digest[:8]}-{number}")
    os.replace(path, aside)
    return aside


def _partial_note(partial: Path) -> str:
    """The truth about the partial file, for error messages."""
    if partial.exists() and partial.stat().st_size:
        return (
            f"The {partial.stat().st_size} bytes downloaded so far are kept in {partial}; "
            "the next try resumes from them."
        )
    return "Nothing was downloaded yet."


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url: str, target: str | Path, sha256: str | None = None, progress: bool = True, timeout=60
) -> Path:
    """Download ``url`` to ``target``, resuming a partial ``target.part`` if present.

    Returns the path of the complete, verified file. A complete ``target`` already on
    disk (with the right checksum) is reused without any network access.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if sha256 is None:
            return target
        actual = sha256_of(target)
        if actual == sha256:
            return target
        # A wrong file under the final name, perhaps placed by hand: keep it, fetch again.
        aside = _set_aside(target, "mismatch", actual)
        _notify(
            f"{target} does not have the expected SHA-256 ({sha256}; it has {actual}). "
            f"It was moved to {aside} (not deleted) and the archive is downloaded again. "
            "Delete that file yourself once you no longer need it."
        )
    partial = target.with_name(target.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "stad-utils"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the partial file is already whole
            return _finish(partial, target, sha256)
        raise ServerError(
            f"Download of {url} failed: HTTP {error.code} {error.reason}. If the address has "
            f"expired, download {target.name} by hand from the dataset's web page and put it "
            f"at {target}: it is verified and extracted on the next run. " + _partial_note(partial)
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"Cannot reach {url} ({error}). Check your internet connection and run the "
            "same command again. " + _partial_note(partial)
        ) from error
    with response:
        resumed = response.status == 206
        if offset and not resumed:
            offset = 0  # the server ignored Range: start over
        total = response.headers.get("Content-Length")
        total = int(total) + offset if total is not None else None
        mode = "ab" if resumed else "wb"
        with (
            open(partial, mode) as out,
            progress_bar(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=target.name,
                disable=not progress,
            ) as bar,
        ):
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
                # http.client returns b"" (no error) when the server closes early.
                if total is not None and out.tell() < total:
                    raise OSError(f"connection closed after {out.tell()} of {total} bytes")
            except (OSError, http.client.HTTPException) as error:
                out.flush()
                raise DownloadError(
                    f"The transfer of {url} was interrupted ({error}). Run the same "
                    f"command again: it resumes from the {partial.stat().st_size} bytes "
                    f"kept in {partial}."
                ) from error
    return _finish(partial, target, sha256)


def _finish(partial: Path, target: Path, sha256: str | None) -> Path:
    if sha256 is not None:
        actual = sha256_of(partial)
        if actual != sha256:
            partial.unlink()
            raise ChecksumError(
                f"Checksum mismatch for {target.name}: expected {sha256}, got {actual}. "
                "The file was removed; run the download again (if it keeps failing, the "
                "URL may serve a different file)."
            )
    os.replace(partial, target)
    return target


def _check_member(member: tarfile.TarInfo, target: Path) -> None:
    """Refuse members that would escape ``target`` (absolute paths, ``..``, links)."""
    destination = (target / member.name).resolve()
    if not destination.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(
            f"Refusing to extract {member.name!r}: it would be written outside {target}. "
            "The archive is not the expected one; delete it and download it again."
        )
    if member.issym() or member.islnk():
        # a symlink's target is relative to its folder, a hard link's to the archive root
        base = destination.parent if member.issym() else target
        link = (base / member.linkname).resolve()
        if not link.is_relative_to(target.resolve()):
            raise UnsafeArchiveError(
                f"Refusing to extract link {member.name!r} -> {member.linkname!r}: it "
                f"points outside {target}."
            )


def extract(archive: str | Path, target: str | Path, category: str | None = None) -> Path:
    """Extract ``archive`` (any tar compression) into ``target``.

    With ``category``, only the members under ``<category>/`` are extracted (the path
    Colab readers need). Extraction happens in a temporary folder beside ``target``; the
    category folders are moved into place only after every member is out, so an
    interrupted extraction never leaves a folder that looks complete.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if _in_category(m.name, category)]
        if not members:
            what = f"category {category!r}" if category else "anything"
            raise DownloadError(f"{archive.name} does not contain {what}.")
        for member in members:
            _check_member(member, target)
        with tempfile.TemporaryDirectory(dir=target, prefix=".extracting-") as tmp:
            # filter="data" adds the standard library's own safety checks (PEP 706).
            tar.extractall(tmp, members=members, filter="data")
            for top in sorted(Path(tmp).iterdir()):
                final = target / top.name
                if final.exists():
                    shutil.rmtree(final) if final.is_dir() else final.unlink()
                os.replace(top, final)
    return target


def _in_category(name: str, category: str | None) -> bool:
    if category is None:
        return True
    parts = Path(name.lstrip("./")).parts
    return bool(parts) and parts[0] == category


def download_mvtec(
    root: str | Path,
    category: str | None = None,
    source: Source = MVTEC_AD,
    progress: bool = True,
    keep_archive: bool = True,
    category_base: str | None = CATEGORY_ARCHIVE_BASE,
) -> Path:
    """Make MVTec AD (one ``category``, or all of it) available under ``root``.

    Does nothing when the categories asked for are already there. One category comes
    from its own archive (``category_base`` + id, see ``CATEGORY_ARCHIVE_IDS``; None
    turns this off), unless the full archive is already on disk; if the category
    archive fails (HTTP error, unreadable, wrong content) the full archive is used, with
    a message. The full archive is downloaded once (resuming, checksummed); with
    ``category=None`` it is extracted whole, replacing what was extracted before.
    Returns ``root``. The dataset is CC BY-NC-SA 4.0: non-commercial use only.
    """
    root = Path(root)
    wanted = [category] if category else list(MVTEC_CATEGORIES)
    if category is not None and category not in MVTEC_CATEGORIES:
        raise ValueError(
            f"Unknown MVTec AD category {category!r}; choose one of {', '.join(MVTEC_CATEGORIES)}."
        )
    if all(_looks_complete(root / c) for c in wanted):
        return root
    if category is not None and category_base is not None and not (root / source.filename).exists():
        try:
            return _from_category_archive(root, category, category_base, progress, keep_archive)
        except (ServerError, ChecksumError, ArchiveContentError) as error:
            _notify(
                f"The archive of {category!r} alone could not be used: {error}\n"
                f"Falling back to the full MVTec AD archive (4.9 GB, checksummed): "
                f"{source.url}"
            )
    archive = download_file(source.url, root / source.filename, source.sha256, progress)
    extract(archive, root, category)
    if not keep_archive:
        archive.unlink()
    return root


def _from_category_archive(
    root: Path, category: str, base: str, progress: bool, keep_archive: bool
) -> Path:
    """Download (resuming), check and extract one category's own archive."""
    source = category_source(category, base)
    target = root / source.filename
    was_there = target.exists()  # placed by hand or kept from before: never deleted
    recorded = _recorded_archives(root).get(category)
    archive = download_file(source.url, target, recorded["sha256"] if recorded else None, progress)
    try:
        digest = _check_category_archive(archive, category, recorded)
    except ArchiveContentError as error:
        if was_there:
            aside = _set_aside(archive, "invalid", sha256_of(archive))
            raise ArchiveContentError(f"{error} It was moved to {aside}.") from error
        archive.unlink()  # our own download: a bad copy is not worth keeping
        raise
    extract(archive, root, category)
    if recorded is None:  # recorded once it has proved good
        _record_archive(root, category, source.url, archive.stat().st_size, digest)
    if not keep_archive:
        archive.unlink()
    return root


def _check_category_archive(archive: Path, category: str, recorded: dict | None) -> str:
    """Return the archive's SHA-256 once it is known to hold exactly ``category``.

    With a record from the first download, ``download_file`` has already checked the
    SHA-256 against it (a mismatch falls back to the full archive); without one, the
    archive must be a readable tar holding only ``<category>/`` in MVTec layout
    (train/good, test, ground_truth; regular files and folders, no links)."""
    digest = sha256_of(archive)
    if recorded is not None:  # download_file has checked it against the record
        return digest
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()  # reads to the end: a truncated file fails here
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as error:
        raise ArchiveContentError(
            f"{archive} is not a readable tar archive ({error}): the download is "
            "truncated or the server sent something else."
        ) from error
    problems = _layout_problems(members, category)
    if problems:
        raise ArchiveContentError(
            f"{archive} does not hold exactly the {category!r} category in MVTec AD layout: "
            + "; ".join(problems)
            + "."
        )
    return digest


def _layout_problems(members: list[tarfile.TarInfo], category: str) -> list[str]:
    """What is wrong with a category archive's member list (empty if nothing)."""
    problems, outside, present = [], [], set()
    for member in members:
        parts = Path(member.name.lstrip("./")).parts
        if not parts:
            continue
        if parts[0] != category:
            if not (len(parts) == 1 and member.isfile() and parts[0].lower() in ARCHIVE_DOCUMENTS):
                outside.append(member.name)
            continue
        if not (member.isfile() or member.isdir()):
            problems.append(f"{member.name!r} is a link or special file")
        if ".." in parts:
            problems.append(f"{member.name!r} would be written outside the target folder")
        if member.isfile() and len(parts) >= 3:
            present.add(parts[1] if parts[1] != "train" else "/".join(parts[1:3]))
    if outside:
        shown = ", ".join(repr(n) for n in outside[:3]) + (", ..." if len(outside) > 3 else "")
        problems.append(f"{len(outside)} member(s) outside {category}/ ({shown})")
    for needed in ("train/good", "test", "ground_truth"):
        if needed not in present:
            problems.append(f"no files under {category}/{needed}/")
    extra_train = sorted(p for p in present if p.startswith("train/") and p != "train/good")
    problems += [f"unexpected folder {category}/{p}/" for p in extra_train]
    return problems


def _recorded_archives(root: Path) -> dict:
    """The category archives' size and SHA-256 recorded on first download."""
    path = root / CATEGORY_MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DownloadError(
            f"{path} is unreadable ({error}). It records the category archives' checksums; "
            "fix it, or move it away to record them again on the next download."
        ) from error


def _record_archive(root: Path, category: str, url: str, size: int, sha256: str) -> None:
    records = _recorded_archives(root)
    records[category] = {"url": url, "size": size, "sha256": sha256}
    text = json.dumps(records, indent=2, sort_keys=True)
    write_atomically(root / CATEGORY_MANIFEST, lambda path: path.write_text(text))


def _looks_complete(folder: Path) -> bool:
    return (folder / "train" / "good").is_dir() and (folder / "test").is_dir()
