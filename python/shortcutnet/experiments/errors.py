"""Why a sweep cannot go on: errors whose message is one line that says what happened and what to do.

The command line prints the message of a :class:`SweepError` as it is and exits non-zero, with no
traceback; from Python they are ordinary exceptions.
"""
from __future__ import annotations

import errno
import os
from typing import Optional

#: the errors of a full disk or an exhausted quota
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class SweepError(RuntimeError):
    """A sweep stopped (or did not start) for a reason outside its configuration."""


class FolderInUse(SweepError):
    """Another sweep holds the output folder's lock."""


class StoreRefused(SweepError):
    """The results file cannot be used by this version of the package."""


class WriteFailed(SweepError):
    """Writing into the output folder failed (a full disk, a lost mount, no permission)."""

    def __init__(self, folder, exc: OSError, *, kept: Optional[int] = None):
        cause = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}.get(
            exc.errno, exc.strerror or str(exc))
        kept_text = "" if kept is None else f"; the {kept} cell(s) finished before are kept in results.jsonl"
        fix = "free some space" if exc.errno in NO_SPACE else "fix the folder"
        message = (f"cannot write into {os.path.abspath(os.fspath(folder))}: {cause}{kept_text}; "
                   f"{fix} and rerun the same command to resume")
        super().__init__(message)
        self.errno = exc.errno
