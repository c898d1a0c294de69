"""Writing output files: each appears whole or not at all, readable as a normal file (0666 less the umask)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .ir import CompileError

NEW_FILE_MODE = 0o666  # what open() gives a new file; the process umask takes away the rest (0644 under 022)


def write_files(files: dict[Path, bytes], what: str, fix: str) -> None:
    """Write every file of `files` to a temporary name in its directory, then rename them all into place.

    On failure nothing is left behind (no temporary file, no partial output) and a CompileError says
    `{path}: cannot write {what} ({reason}); {fix}`. mkstemp would create its files 0600, unreadable to a
    build container running as another user, so the temporary files are created with os.open and the mode
    of any new file.
    """
    staged: list[tuple[str, Path]] = []
    path = next(iter(files), Path("."))
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.partial")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        for tmp, final in staged:
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise CompileError(f"{path}: cannot write {what} ({exc.strerror or exc}); {fix}") from None
