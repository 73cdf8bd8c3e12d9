"""Peak memory of the current process, as benchmarks report it.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is wrong for a benchmark's child process on Linux:
the kernel folds the parent's high-water mark into the child's at ``exec`` (a child started by a
parent holding 1.5 GB reports at least 1.5 GB, whatever it used). ``VmHWM`` in
``/proc/self/status`` is the high-water mark of this process's own address space, which starts
fresh at ``exec``; it is read where it exists, ``ru_maxrss`` elsewhere.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """The most resident memory this process has held since it started, in MiB."""
    if _STATUS.exists():
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
