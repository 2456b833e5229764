"""The nodes' background threads (fusion_node's model worker, sync_node's publisher): how a
node stops one when it is destroyed."""
from __future__ import annotations

import threading

__all__ = ["stop_worker"]


def stop_worker(stop: threading.Event, wake: threading.Condition, thread: threading.Thread,
                timeout: float) -> None:
    """Ask ``thread`` to stop (``stop``), wake it where it waits (``wake``) and wait for it up
    to ``timeout`` seconds; from the thread itself, only ask."""
    stop.set()
    with wake:
        wake.notify_all()
    if thread.is_alive() and threading.current_thread() is not thread:
        thread.join(timeout=timeout)
