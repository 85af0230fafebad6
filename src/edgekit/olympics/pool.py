"""Evaluations in parallel: one thread per slot (slots.py), each with its own fork server
(sandbox.Zygote), taking tasks from its queue. Everything the caller is told happens in the
caller's thread, which alone touches the store.

A board lost in the middle of an evaluation (the place's exporter gone, the board unplugged: the
worker says board_lost) ends its slot; the evaluation is tried again, once, on another board of the
same queue, and the row says so. What no board is left to run is handed back as not run, to be
done when the same command runs again: never stored as a failure that was not the team's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
from collections import Counter
from typing import Callable

from . import sandbox
from .slots import Slot
from .submissions import Submission

JOIN_S = 30  # how long a stopped run waits for each worker to kill its child and release its board


@dataclasses.dataclass(frozen=True)
class Task:
    sub: Submission
    model_sha256: str | None
    target: str
    lost_on: str | None = None  # the slot whose board was lost running it, once


def run_all(tasks: list[Task], slots: list[Slot], queue_of: dict[str, str], evaluate: Callable,
            on_start: Callable, on_done: Callable, fork_server: bool = True) -> list[tuple[Task, str]]:
    """evaluate(task, where, zygote, cancel) -> result runs in the slots' threads; on_start(task,
    where) and on_done(task, result, where) run here. Returns the tasks not run, each with why."""
    queues = {name: queue.Queue() for name in {s.queue for s in slots}}
    for task in tasks:
        queues[queue_of[task.target]].put(task)
    events: queue.Queue = queue.Queue()
    cancel, finished = threading.Event(), threading.Event()
    live = Counter(s.queue for s in slots)
    ended: dict[Slot, str] = {}  # slot -> why it stopped working
    not_run: list[tuple[Task, str]] = []
    threads = [threading.Thread(target=_work, name=s.name, daemon=True,
                                args=(s, queues[s.queue], events, cancel, finished, evaluate, fork_server))
               for s in slots]
    pending = len(tasks)

    def end(slot: Slot, why: str) -> None:
        if slot not in ended:
            ended[slot] = why
            live[slot.queue] -= 1

    try:
        for t in threads:
            t.start()
        while pending:
            try:
                kind, slot, task, payload = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "start":
                on_start(task, payload)
            elif kind == "ended":
                end(slot, payload)
            else:
                result, where = payload
                if result.get("board_lost"):
                    end(slot, result.get("reason") or "its board was lost")
                    if task.lost_on is None:  # once more, on another board of its kind
                        lost = f"{slot.name} lost its board ({result['reason'].split(';')[0]})"
                        queues[slot.queue].put(dataclasses.replace(task, lost_on=lost))
                    else:
                        not_run.append((task, f"lost its board twice (last: {result['reason']})"))
                        pending -= 1
                    continue
                on_done(task, result, where)
                pending -= 1
            for name, q in queues.items():  # a queue no board serves any more: its tasks wait for another run
                while live[name] <= 0 and not q.empty():
                    why = "; ".join(f"{s.name}: {w}" for s, w in ended.items() if s.queue == name)
                    not_run.append((q.get(), f"no board left to run it ({why})"))
                    pending -= 1
    except BaseException:
        cancel.set()  # each worker kills its child and releases its board
        raise
    finally:
        finished.set()
        for t in threads:
            t.join(JOIN_S)
    return not_run


def _work(slot: Slot, tasks: queue.Queue, events: queue.Queue, cancel: threading.Event,
          finished: threading.Event, evaluate: Callable, fork_server: bool) -> None:
    why = "the run ended"
    try:
        with slot.open() as where, (sandbox.Zygote() if fork_server else contextlib.nullcontext()) as zygote:
            while not (cancel.is_set() or finished.is_set()):
                try:
                    task = tasks.get(timeout=0.1)
                except queue.Empty:
                    continue
                events.put(("start", slot, task, where))
                try:
                    result = evaluate(task, where, zygote, cancel)
                except sandbox.Cancelled:
                    return
                except Exception as e:  # noqa: BLE001 - an evaluation never takes the run down
                    result = {"status": "failed", "reason": f"the evaluation could not run ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]})"}
                events.put(("done", slot, task, (result, where)))
                if result.get("board_lost"):
                    return
    except Exception as e:  # noqa: BLE001 - e.g. its labgrid place could not be acquired
        why = " ".join(str(e).split())[:300]
    finally:
        events.put(("ended", slot, None, why))
