"""The eval runner dies with facetopt, whatever ends facetopt (SIGKILL included).

Two guards. On Linux the runner facetopt starts (bt, or the SDK runner) gets a parent-death signal
(prctl PR_SET_PDEATHSIG, SIGKILL) set between fork and exec. That signal is not inherited by
bt's own child, the Python runner, so inside the runner a watchdog thread checks twice a second
that facetopt (its pid travels in PARENT_ENV) and its own parent are still there; when either is
gone it kills its process group (bt and the runner, started in a session of their own).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

PARENT_ENV = "FACETOPT_EVAL_PARENT_PID"
PR_SET_PDEATHSIG = 1
CHECK_EVERY_S = 0.5


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive SIGKILL when this thread ends (Linux only;
    the signal follows the thread that forked, so only the main thread uses it)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before the fork: no import after it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # facetopt died before the signal was armed
            os._exit(1)

    return preexec


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def watch_parent(environ: dict[str, str] | None = None) -> threading.Thread | None:
    """Inside the runner: start the watchdog when facetopt named itself in the environment."""
    raw = (environ if environ is not None else os.environ).get(PARENT_ENV, "")
    if not raw.isdigit():
        return None
    facetopt, first_parent = int(raw), os.getppid()

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(CHECK_EVERY_S):
            if os.getppid() != first_parent or not alive(facetopt):
                _end_group()

    watcher = threading.Thread(target=watch, name="facetopt-parent-watch", daemon=True)
    watcher.start()
    return watcher


def _end_group() -> None:
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)
