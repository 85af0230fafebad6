"""`edgekit targets`: every known board, its numbers and where it is connected now."""
from __future__ import annotations

from typing import Any

from .descriptor import all_boards
from .detection import connected

def targets_report(**detect_kwargs) -> list[dict]:
    """One row per known board: its summary, and where it is connected now (or that it is simulated)."""
    boards = all_boards()
    conns = connected(boards=boards, **detect_kwargs)
    rows = []
    for b in boards:
        conn = conns.get(b.key)
        rows.append(dict(b.summary(), connected=conn is not None,
                         connection=conn.to_dict() if conn else None,
                         status=conn.label() if conn else "not connected (simulated)"))
    return rows


def _bytes(n: Any) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def _hz(n: Any) -> str:
    if not n:
        return "-"
    return f"{n / 1e9:g} GHz" if n >= 1e9 else f"{n / 1e6:g} MHz"


def render_targets(rows: list[dict]):
    """A rich table of `targets_report()` rows."""
    from rich.table import Table
    table = Table(title="edgekit targets", title_justify="left")
    for col in ("key", "board", "chip / clock", "RAM", "flash", "runtime / kernels", "connection"):
        table.add_column(col, no_wrap=col == "key")
    for r in rows:
        if "sram_bytes" in r:
            ram = _bytes(r["sram_bytes"]) + (f" + {_bytes(r['psram_bytes'])} PSRAM" if "psram_bytes" in r else "")
        elif "dram_bytes" in r:
            ram = f"{_bytes(r['dram_bytes'])}+ DRAM"
        elif "param_cache_bytes" in r:
            ram = f"{_bytes(r['param_cache_bytes'])} cache"
        else:
            ram = "-"
        flash = _bytes(r.get("flash_bytes")) if "flash_bytes" in r else ("SD card" if r["kind"] == "linux" else "-")
        if r.get("host"):
            flash = f"host: {r['host']}"
        status = f"[green]{r['status']}[/green]" if r["connected"] else f"[dim]{r['status']}[/dim]"
        table.add_row(r["key"], r["name"], f"{r['chip']} @ {_hz(r.get('clock_hz'))}", ram, flash,
                      f"{r['runtime']} / {r['kernels']}", status)
    return table
