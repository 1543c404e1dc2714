"""Writing the files the user names (``--fix``, ``--output-file``): atomically, never via a link.

A file is written to a temporary file in the same directory and renamed over the target, so a
reader (a CI step applying a fix) never sees half a file, and a failed write leaves the old
file as it was. ``rename(2)`` replaces a link itself rather than following it, but skycheck
refuses a symbolic link or a non-regular file (a FIFO, a device, a directory) as the target
outright: writing through a link would overwrite whatever it points to, and replacing it
would silently turn the link into a file. The new file gets the mode any new file gets
(``0666`` less the umask), because the temporary file is created with exactly that request.
Nothing here ever deletes a file the user had.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from skycheck.errors import UsageError

# O_NOFOLLOW and O_CLOEXEC are absent on some platforms; 0 leaves the flag out.
_CREATE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def check_target(path: Path, what: str) -> None:
    """Raise UsageError (exit 2) if ``path`` may not be written: a link or not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"refusing to write {what} {path}: it is a symbolic link (name the real file)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"refusing to write {what} {path}: it exists and is not a regular file")


def write_text(path: Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename in the same directory)."""
    check_target(path, what)
    directory = path.parent
    # os.urandom is what secrets.token_hex reads; importing secrets costs 0.03 s (hmac, random).
    temp = directory / f".{path.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(temp, _CREATE_FLAGS, 0o666)  # the kernel applies the umask
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        # Checked again just before the rename: a link that appeared meanwhile is refused
        # too (and rename would replace the link, never write through it).
        try:
            check_target(path, what)
        except UsageError:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
