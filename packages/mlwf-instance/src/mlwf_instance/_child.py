"""Launcher of every supervised process: it dies with its parent, and so do the processes it forks.

``python -m mlwf_instance._child PARENT_PID PROGRAM [ARGS...]`` runs ``PROGRAM ARGS...`` after
asking the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux) to kill it the moment the process that
started it (``PARENT_PID``) dies, however that one dies (SIGKILL included). When ``PROGRAM`` is this interpreter
(``sys.executable -m MODULE``, ``sys.executable -c CODE`` or ``sys.executable SCRIPT``), it runs
in this very process instead of an ``exec``, so a hook registered with ``os.register_at_fork`` stays
active: every process it forks from its main thread (LocalExecutor workers, task runners, DAG
file processors, log servers, ``subprocess`` children started with a ``preexec_fn``) is armed the
same way against its own parent, so a whole component tree collapses when its root dies.

Forks from other threads are not armed: the kernel sends the signal when the parent *thread*
exits, which would kill a child forked by a short-lived worker thread while its process runs on.
Processes that ``exec`` without a Python fork hook (``subprocess`` without ``preexec_fn``) are
not armed either; the supervisor's watchdog (:mod:`mlwf_instance._watchdog`) sweeps those.

Only the standard library is used here: it runs before every Airflow component.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
#: Pid of the process that is forking from its main thread (0: do not arm the child).
_forking_parent = 0


def arm(expected_parent: int) -> bool:
    """Have the kernel SIGKILL this process when its parent dies; return False off Linux.

    If the parent is already gone (it died before the request), exit at once: the kernel would
    never send the signal.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(err)}")
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def _before_fork() -> None:
    global _forking_parent
    main = threading.current_thread() is threading.main_thread()
    _forking_parent = os.getpid() if main else 0


def _after_fork_in_child() -> None:
    if _forking_parent:
        arm(_forking_parent)


def install_fork_hook() -> None:
    """Arm every process this one forks from its main thread against its parent (see module doc)."""
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _run(argv: list[str]) -> None:
    """Run ``argv`` in this process if it is this interpreter, else ``exec`` it."""
    same_interpreter = os.path.realpath(argv[0]) == os.path.realpath(sys.executable)
    if same_interpreter and len(argv) >= 3 and argv[1] == "-m":
        sys.argv = [argv[2], *argv[3:]]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    elif same_interpreter and len(argv) >= 3 and argv[1] == "-c":
        sys.argv = ["-c", *argv[3:]]
        sys.path[0] = ""
        exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})
    elif same_interpreter and len(argv) >= 2 and not argv[1].startswith("-"):
        sys.argv = argv[1:]
        sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
        runpy.run_path(argv[1], run_name="__main__")
    else:
        os.execvp(argv[0], argv)


def main(argv: list[str]) -> None:
    """Arm this process against its parent ``argv[0]`` (a pid) and run ``argv[1:]``."""
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m mlwf_instance._child PARENT_PID PROGRAM [ARGS...]")
    arm(int(argv[0]))
    install_fork_hook()
    _run(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
