"""Where an Olympics run evaluates: one slot per board it may drive at once.

A simulated or emulated board is this machine's CPU: `jobs` slots share every such target. A
connected board is one slot. Each free labgrid place tagged with a board kind is one slot, acquired
when its worker starts (so no other user, and no other worker, drives that board) and released
when it stops, however the run ends.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from ..errors import EdgekitError
from ..targets import can_emulate, choose, load_board

SHARED = "this machine"  # the queue of the targets this machine's cores evaluate


@dataclass(frozen=True)
class Slot:
    name: str                 # "simulated 1", "place nano-a", "the connected nano33ble"
    queue: str                # SHARED, or the one target whose board this is
    place: str | None = None  # a labgrid place, acquired while the slot works

    @contextlib.contextmanager
    def open(self):
        """Acquire the board; yields what each row it evaluates records as where it ran."""
        if self.place is None:
            yield {"ran_on": "simulated" if self.queue == SHARED else "connected board"}
            return
        from ..targets.lab import lab_port  # lazy: only lab runs talk to labgrid
        with lab_port(self.queue, self.place) as port:
            yield {"ran_on": "labgrid", "place": port.place, "exporter": port.exporter, "port": port.url,
                   "lab_pc": {"host": port.host, "device": port.device}}


def target_force(target: str, force: str | None) -> str | None:
    """force for one board: "emu" asks for the boards that can be emulated, the others are simulated."""
    if force == "emu" and not can_emulate(load_board(target)):
        return "sim"
    return force


def plan(targets: list[str], force: str | None, jobs: int | None = None, lab: str | None = None
         ) -> tuple[list[Slot], dict[str, tuple[str, str]], dict[str, str]]:
    """(slots, per target its mode and the line saying why, per target its queue)."""
    jobs = jobs or os.cpu_count() or 1
    slots, modes, queue = [], {}, {}
    places = _lab_places(lab) if lab else {}
    for t in targets:
        if lab and places.get(t):
            slots += [Slot(f"place {p}", t, place=p) for p in places[t]]
            modes[t] = ("measured", f"{t}: on the labgrid place(s) {', '.join(places[t])}")
            queue[t] = t
            continue
        if lab and force == "hw":
            raise EdgekitError(f"--hw: the lab has no free labgrid place tagged board={t}; tag one with "
                               f"`labgrid-client -p NAME set-tags board={t}`, or leave out --hw to simulate it")
        choice = choose(load_board(t), "sim" if lab else target_force(t, force))
        why = f"{t}: simulated (no free labgrid place tagged board={t})" if lab else choice.why
        modes[t] = (choice.mode, why)
        if choice.mode == "measured":  # a board on this machine: one at a time
            slots.append(Slot(f"the connected {t}", t))
            queue[t] = t
        else:
            queue[t] = SHARED
    if SHARED in queue.values():
        slots += [Slot(f"simulated {i + 1}", SHARED) for i in range(jobs)]
    return slots, modes, queue


def _lab_places(lab: str) -> dict[str, list[str]]:
    """Per board kind, the names of the lab's free places tagged with it."""
    from ..targets.lab import places  # lazy: only lab runs talk to labgrid
    free: dict[str, list[str]] = {}
    for p in places():
        if p.acquired is None and p.tags.get("board"):
            free.setdefault(p.tags["board"], []).append(p.name)
    return free
