"""A worker process that dies on one session, as one the kernel's OOM killer ends would: for
the batch's test that a dead worker costs only its own session."""

from __future__ import annotations

import os
from typing import Any


def die_on(name: str) -> None:
    """Process-pool initializer: in this worker, analysing the session called ``name`` ends
    the process at once (no exception, no cleanup), the rest are analysed as always."""
    from decoders.corpus import task

    real = task.analyse_session

    def analyse_or_die(session: Any, *args: Any) -> Any:
        if session.name == name:
            os._exit(70)
        return real(session, *args)

    task.analyse_session = analyse_or_die  # type: ignore[assignment]
