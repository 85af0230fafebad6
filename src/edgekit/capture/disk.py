"""Writing a data set to a disk that can fail: full (ENOSPC, EDQUOT), a file-size limit (EFBIG,
`ulimit -f`), read-only (EROFS), no permission (EACCES, EPERM), or a path that cannot hold files
at all (/proc, /sys).

- WriteFailed: the one-line error naming the file, the error and what to do;
- prepare_folder: the folder is made and a file created in it before anything is recorded;
- Reserve: room for the manifest, held while recording and given back just before the manifest
  is rewritten, so that a recording that fills the disk can still be listed (as incomplete).
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import suppress
from pathlib import Path

from ..errors import EdgekitError

SHARED_SPACE = (errno.ENOSPC, errno.EDQUOT)   # failures that leave no room for the manifest either
ENTRY_ROOM = 8192                             # what one manifest entry may add (a typical one is 1.5 KB)

_WHAT_TO_DO = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space (the disk quota is used up)",
    errno.EFBIG: "raise the file-size limit (ulimit -f)",
    errno.EROFS: "remount the disk writable or capture to another folder",
    errno.EACCES: "make the folder writable or capture to another one",
    errno.EPERM: "make the folder writable or capture to another one",
}


def why(e: OSError) -> str:
    """'No space left on device (ENOSPC)': the error's text and its name."""
    if not e.errno:
        return str(e)
    name = errno.errorcode.get(e.errno)
    return f"{os.strerror(e.errno)} ({name})" if name else os.strerror(e.errno)


def what_to_do(e: OSError) -> str:
    return _WHAT_TO_DO.get(e.errno, "check the disk or capture to another folder")


class WriteFailed(EdgekitError):
    """Writing `path` failed with `cause`; the message names both."""

    def __init__(self, doing: str, path: Path, cause: OSError):
        self.path, self.cause = Path(path), cause
        super().__init__(f"{doing} {path} failed: {why(cause)}")


def prepare_folder(out: Path, folder: Path) -> None:
    """Make `folder` (inside the -o folder `out`) and create a file in it, before recording: a path
    on a read-only disk, in /proc or /sys, or without permission is refused with one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise EdgekitError(f"-o {out}: cannot create files in {folder}: {why(e)}; choose a folder on a "
                           "writable disk, e.g. -o ~/week4/data") from None


class Reserve:
    """Room for the manifest: a file of (manifest size + ENTRY_ROOM) bytes beside it, held while
    recording. Given back before the manifest is rewritten, it is the room that rewrite needs even
    when the recording filled the disk."""

    def __init__(self, manifest: Path):
        self.manifest = manifest
        self.path = manifest.with_name(f".{manifest.name}.reserve")

    def size(self) -> int:
        have = self.manifest.stat().st_size if self.manifest.exists() else 0
        return have + ENTRY_ROOM

    def hold(self) -> None:
        """Set the room aside. On a full disk this raises WriteFailed (nothing is recorded then);
        any other failure (a per-file size limit, which the manifest does not share) leaves no
        reserve."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size())   # real blocks, not a sparse file
            finally:
                os.close(fd)
        except OSError as e:
            self.release()
            if e.errno in SHARED_SPACE:
                raise WriteFailed("setting aside room for the manifest in", self.path.parent, e) from None

    def release(self) -> None:
        with suppress(OSError):    # never there, or the disk turned read-only: nothing to give back
            self.path.unlink()
