"""The Edge TPU partition for people: what mapped, what stayed on the CPU and why, where parameters go."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _mb(n) -> str:
    return "?" if n is None else f"{n:,} B ({n / 2**20:.2f} MiB)"


def render_partition(p) -> Group:
    part = p.partition
    tag = Text(part.source.upper(), style="bold green" if part.source == "compiled" else "bold yellow")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Edge TPU", Text.assemble(tag, f"  {p.note}"))
    total = "?" if part.total_ops is None else part.total_ops
    mapped = "?" if part.mapped_ops is None else part.mapped_ops
    head.add_row("ops", f"{mapped} of {total} mapped to the Edge TPU, {len(part.cpu_ops)} on the CPU, "
                        f"{part.subgraphs} Edge TPU subgraph(s)")
    head.add_row("parameters", f"on-chip {_mb(part.on_chip_bytes)}, streamed every call {_mb(part.off_chip_bytes)}")
    parts = [head]
    if part.op_table:
        t = Table(title="operators (as edgetpu_compiler -s prints them)", title_justify="left")
        for c in ("operator", "count", "status"):
            t.add_column(c, justify="right" if c == "count" else "left")
        for op, count, status in part.op_table:
            t.add_row(op, str(count), Text(status, style="green" if status.startswith("Mapped") else "red"))
        parts.append(t)
    if part.cpu_ops and part.ops:  # predicted: op by op, with the rule that kept it off the TPU
        t = Table(title="left on the CPU", title_justify="left")
        for c in ("op", "name", "why"):
            t.add_column(c)
        for o in part.ops:
            if not o.mapped:
                t.add_row(str(o.index), o.op, f"{o.status}: {o.reason}")
        parts.append(t)
    parts += [Text("note: " + n, style="yellow") for n in part.notes]
    return Group(*parts)
