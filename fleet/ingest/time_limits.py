"""Celery's task time limits where the pool does not enforce them: the solo pool (deploy/systemd's worker).

Celery enforces soft_time_limit and time_limit in the prefork pool only; solo runs the task in the worker's
main thread and ignores both, so a snapshot that costs the policy engine minutes would hold the worker for
minutes. Here a SIGALRM timer does what prefork's parent does: at the soft limit the task gets
SoftTimeLimitExceeded (the apply rolls back and marks its snapshot failed); if it is still running at the
hard limit the worker process is killed, as prefork kills its child: the message comes back, the
snapshot's attempt count ends it, and systemd starts the worker again.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from billiard.process import current_process
from celery.exceptions import SoftTimeLimitExceeded

log = logging.getLogger(__name__)

_state = {"armed": False, "grace": 0.0, "task": ""}


def pool_enforces_limits() -> bool:
    """True in a prefork child (its parent enforces the limits) and off the main thread (no signals there).
    A solo worker runs its tasks in the main thread of the worker's own process, "MainProcess"."""
    return current_process().name != "MainProcess" or threading.current_thread() is not threading.main_thread()


def _hard(signum, frame) -> None:
    log.error("task %s ran past its hard time limit: killing the worker (the message is redelivered)", _state["task"])
    os.kill(os.getpid(), signal.SIGKILL)


def _soft(signum, frame) -> None:
    signal.signal(signal.SIGALRM, _hard)
    if _state["grace"] > 0:
        signal.setitimer(signal.ITIMER_REAL, _state["grace"])
    raise SoftTimeLimitExceeded(f"soft time limit exceeded ({_state['task']})")


def arm(task) -> None:
    """Before a task with a soft limit: start its timer, unless the pool enforces the limits itself."""
    soft, hard = getattr(task, "soft_time_limit", None), getattr(task, "time_limit", None)
    if not soft or pool_enforces_limits():
        return
    _state.update(armed=True, grace=max(0.0, (hard or 0) - soft), task=task.name)
    signal.signal(signal.SIGALRM, _soft)
    signal.setitimer(signal.ITIMER_REAL, soft)


def disarm() -> None:
    """After a task, whatever its end."""
    if _state["armed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        _state["armed"] = False
