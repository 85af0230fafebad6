"""olympics/pool.py: evaluations on every slot at once, with real threads and queues. The
evaluation itself is the injected part here (the lab tests and test_olympics run real ones): it
tells which board ran it by its worker thread's name, which is the slot's."""
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from edgekit.olympics import pool, sandbox
from edgekit.olympics.slots import SHARED, Slot, plan
from edgekit.olympics.submissions import Submission


def _tasks(n, target="nano33ble"):
    return [pool.Task(Submission(name=f"team{i}", folder=Path(f"/nowhere/team{i}"), team=f"team{i}"), None, target)
            for i in range(n)]


def _run(tasks, slots, evaluate, queue_of=None):
    started, done = [], []
    not_run = pool.run_all(tasks, slots, queue_of or {"nano33ble": "nano33ble"}, evaluate,
                           lambda task, where: started.append(task.sub.name),
                           lambda task, result, where: done.append((task, result)))
    return started, done, not_run


def test_each_slot_runs_one_evaluation_at_a_time_and_all_run_at_once():
    running, most, lock = Counter(), [0], threading.Lock()

    def evaluate(task, where, zygote, cancel):
        me = threading.current_thread().name
        with lock:
            running[me] += 1
            assert running[me] == 1, f"{me} runs two evaluations at once"
            most[0] = max(most[0], sum(running.values()))
        time.sleep(0.05)
        with lock:
            running[me] -= 1
        return {"status": "ok", "by": me}

    slots = [Slot("nano-a", "nano33ble"), Slot("nano-b", "nano33ble"), Slot("nano-c", "nano33ble")]
    _, done, not_run = _run(_tasks(12), slots, evaluate)
    assert not_run == [] and sorted(t.sub.name for t, _ in done) == sorted(f"team{i}" for i in range(12))
    assert most[0] == 3  # every board busy at once
    assert {r["by"] for _, r in done} == {"nano-a", "nano-b", "nano-c"}


def test_a_lost_board_costs_its_evaluation_one_retry_on_another():
    def evaluate(task, where, zygote, cancel):
        if threading.current_thread().name == "nano-b":
            return {"status": "failed", "reason": "the board at rfc2217://x disappeared; plug it in", "board_lost": True}
        time.sleep(0.05)  # so that nano-b surely takes one
        return {"status": "ok", "by": threading.current_thread().name}

    _, done, not_run = _run(_tasks(6), [Slot("nano-a", "nano33ble"), Slot("nano-b", "nano33ble")], evaluate)
    assert not_run == [] and len(done) == 6 and {r["by"] for _, r in done} == {"nano-a"}
    (retried,) = [t for t, _ in done if t.lost_on]  # nano-b lost its board once, then ran nothing more
    assert retried.lost_on == "nano-b lost its board (the board at rfc2217://x disappeared)"


def test_what_no_board_is_left_to_run_is_handed_back_not_failed():
    def evaluate(task, where, zygote, cancel):
        return {"status": "failed", "reason": "gone", "board_lost": True}

    _, done, not_run = _run(_tasks(3), [Slot("nano-a", "nano33ble"), Slot("nano-b", "nano33ble")], evaluate)
    assert done == [] and sorted(t.sub.name for t, _ in not_run) == ["team0", "team1", "team2"]
    assert all("lost its board twice" in why or "no board left" in why for _, why in not_run)


def test_a_slot_that_cannot_open_leaves_its_work_to_the_others():
    class Taken(Slot):
        def open(self):
            raise EdgekitError("labgrid-client -p nano-b acquire failed: place nano-b is already acquired")

    _, done, not_run = _run(_tasks(4), [Slot("nano-a", "nano33ble"), Taken("nano-b", "nano33ble", place="nano-b")],
                            lambda task, where, zygote, cancel: {"status": "ok"})
    assert not_run == [] and len(done) == 4


def test_an_unexpected_error_in_an_evaluation_is_that_row_only():
    def evaluate(task, where, zygote, cancel):
        if task.sub.name == "team1":
            raise ValueError("a bug")
        return {"status": "ok"}

    _, done, not_run = _run(_tasks(3), [Slot("nano-a", "nano33ble")], evaluate)
    reasons = {t.sub.name: r.get("reason") for t, r in done}
    assert not_run == [] and reasons["team1"] == "the evaluation could not run (ValueError: a bug)"
    assert reasons["team0"] is None and reasons["team2"] is None


def test_ctrl_c_stops_every_worker():
    stopped = threading.Event()

    def evaluate(task, where, zygote, cancel):
        if cancel.wait(30):
            stopped.set()
            raise sandbox.Cancelled()
        return {"status": "ok"}

    def interrupt(task, where):
        raise KeyboardInterrupt

    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.run_all(_tasks(4), [Slot("nano-a", "nano33ble"), Slot("nano-b", "nano33ble")], {"nano33ble": "nano33ble"},
                     evaluate, interrupt, lambda *a: None)
    assert stopped.is_set() and time.monotonic() - t < 10


def test_the_plan_shares_this_machine_among_the_simulated_boards():
    slots, modes, queue_of = plan(["nano33ble", "esp32s3", "coral"], "sim", jobs=3)
    assert [s.name for s in slots] == ["simulated 1", "simulated 2", "simulated 3"]
    assert set(queue_of.values()) == {SHARED} and all(m == "simulated" for m, _ in modes.values())
