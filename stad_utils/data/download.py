"""Download MVTec AD: resumable, checksummed, extracted safely, never half-done.

* The archive is written to ``<file>.part`` and renamed only once its SHA-256 matches,
  so a file with the final name is always complete.
* An interrupted transfer resumes with an HTTP ``Range`` request from the bytes
  already on disk (a server that ignores ``Range`` makes us start over, correctly).
* A checksum mismatch removes the bad file and says so.
* Extraction refuses any member that would land outside the target folder, extracts
  into a temporary folder next to the target, and moves the category into place only
  when it is complete.

MVTec AD is licensed CC BY-NC-SA 4.0 (non-commercial use; cite Bergmann et al. 2019/2021).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..config import progress_bar




@dataclass(frozen=True)
class Source:
    """Where an archive comes from and what its SHA-256 must be."""

    url: str
    sha256: str
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

CHUNK = 1 << 20  # 1 MiB


class DownloadError(RuntimeError):
    """A download could not be completed; the message says what to do."""


class ChecksumError(DownloadError):
    """The downloaded file is not the expected one (it has been removed)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


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
        if sha256 is None or sha256_of(target) == sha256:
            return target
        target.unlink()  # a wrong file under the final name: fetch it again
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
        raise DownloadError(
            f"Download of {url} failed: HTTP {error.code} {error.reason}. If the address has "
            f"expired, download {target.name} by hand from the dataset's web page and put it "
            f"at {target}: it is verified and extracted on the next run."
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"Cannot reach {url} ({error}). Check your internet connection; a partial "
            f"download is kept in {partial} and resumes on the next try."
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
) -> Path:
    """Make MVTec AD (one ``category``, or all of it) available under ``root``.

    Does nothing when the categories asked for are already there; otherwise downloads the
    archive once (resuming, verified) and extracts the category — or, with
    ``category=None``, the whole archive, replacing what was extracted before.
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
    archive = download_file(source.url, root / source.filename, source.sha256, progress)
    extract(archive, root, category)
    if not keep_archive:
        archive.unlink()
    return root


def _looks_complete(folder: Path) -> bool:
    return (folder / "train" / "good").is_dir() and (folder / "test").is_dir()
