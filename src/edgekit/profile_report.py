"""The profile report: what `profile` and `deploy` say about one model on one board, typed, with its
JSON form (`to_json()`), a rich summary, the per-layer Iron Law table and plots.

The simulator fills every figure; a backend that measures on a board replaces latency and energy
and sets `mode` to "measured". `layers` rows are dicts with name, op, kind, macs, latency_ms,
memory_ms, compute_ms, overhead_ms, eta, bound (and device on the Coral, board_us when the board
timed its layers); `memory` holds the budgets (flash, sram, psram: needed, available, short_by),
parts and advice.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from rich.console import Group
from rich.table import Table
from rich.text import Text


REQUIRED = ("target", "board", "mode", "model_sha256", "runs", "fits", "flash_bytes", "ram_bytes", "arena_bytes")


@dataclass
class ProfileReport:
    target: str
    board: str
    mode: str                         # "simulated", "measured" or "stand-in"
    model_sha256: str
    runs: int
    fits: bool
    flash_bytes: int | None
    ram_bytes: int | None
    arena_bytes: int | None
    latency_ms: float = 0.0
    latency_ms_p90: float = 0.0
    energy_mj: float = 0.0
    layers: list[dict] = field(default_factory=list)
    iron_law: dict | None = None
    memory: dict | None = None        # None on the Coral, whose parameters stream (edgetpu has its plan)
    arena_in: str | None = None
    arena_source: str | None = None
    thermal: dict | None = None
    sources: dict | None = None
    edgetpu: dict | None = None
    lesson: list[str] | None = None
    via: str | None = None            # the serial port or URL the board was driven over
    outputs_by: str | None = None
    board_info: dict | None = None
    selected: str | None = None       # which backend was chosen, and why
    outputs_check: dict | None = None
    converted: bool | None = None
    extra: dict = field(default_factory=dict)  # what only some backends report (measured, runtime, host, ...)

    def to_json(self) -> dict:
        """The report as plain JSON values; optional fields never set are left out (null figures,
        e.g. the RAM of a compiled Coral model, stay as null)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None or k in REQUIRED}
        out.update(self.extra)
        return out

    def copy(self) -> "ProfileReport":
        """A report to fill in that leaves this one as it was: its layer rows and extras are copied,
        since backends edit them."""
        return replace(self, layers=[dict(row) for row in self.layers], extra=dict(self.extra))

    @classmethod
    def from_json(cls, data: dict) -> "ProfileReport":
        """A report read back from its JSON form (e.g. printed by edgekit on a Pi over ssh)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        missing = set(REQUIRED) - set(data)
        if missing:
            raise ValueError(f"a profile report needs {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names})

    @property
    def failed_budgets(self) -> list[str]:
        """'flash needs N B, has M B, short by K B' for every memory budget the model misses."""
        return [f"{name} needs {b['needed']:,} B, has {b['available']:,} B, short by {b['short_by']:,} B"
                for name, b in (self.memory or {}).items() if isinstance(b, dict) and b.get("short_by")]

    def no_fit_message(self) -> str:
        advice = "; ".join((self.memory or {}).get("advice", [])) or "use a smaller model"
        return f"the model does not fit {self.board}: {'; '.join(self.failed_budgets)}. To fit: {advice}"


def _b(n) -> str:
    return "-" if n is None else f"{int(n):,} B"


def render_profile(report: ProfileReport, max_layers: int = 40):
    r = report.to_json()
    mode = r["mode"]
    tag = Text(mode.upper(), style={"measured": "bold green", "emulated": "bold cyan"}.get(mode, "bold yellow"))
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("target", Text.assemble(f"{r['target']} ({r.get('board', '')}) ", tag))
    head.add_row("latency", f"{r['latency_ms']:.3f} ms median, {r['latency_ms_p90']:.3f} ms p90 ({mode})")
    head.add_row("energy", f"{r['energy_mj']:.4f} mJ per inference ({mode})")
    fit = Text("fits", style="green") if r["fits"] else Text("DOES NOT FIT", style="bold red")
    e = r.get("edgetpu")
    # a microcontroller has a flash budget; a Linux board (the Pi, the Coral's host) keeps the
    # model as a file and runs it itself, over no serial link
    mcu = "flash" in (r.get("memory") or {})
    if e:
        sizes = (f": model {_b(r['flash_bytes'])}; parameters {e['on_chip_bytes']:,} B cached on the Edge TPU, "
                 f"{e['off_chip_bytes']:,} B streamed per call")
    else:
        sizes = (f": {'flash' if mcu else 'model'} {_b(r['flash_bytes'])}, RAM {_b(r['ram_bytes'])}, "
                 f"arena {_b(r['arena_bytes'])}" + (f" in {r['arena_in']}" if r.get("arena_in") else "")
                 + (f" ({r['arena_source']})" if r.get("arena_source") else ""))
    head.add_row("memory", Text.assemble(fit, sizes))
    law = r.get("iron_law")
    if law:
        head.add_row("Iron Law", f"memory {law['memory_ms']:.3f} ms + compute {law['compute_ms']:.3f} ms + "
                                 f"overhead {law['overhead_ms']:.3f} ms: {law['dominant']}-bound")
    if r.get("instructions"):
        head.add_row("instructions", f"{r['instructions']:,} per inference, counted on the emulated core; latency: "
                                     f"{r.get('latency_source', '')}")
    if r.get("via") and mcu:
        head.add_row("board", f"driven over {r['via']} (edgekit's serial protocol)")
    if r.get("outputs_by"):
        head.add_row("outputs", f"computed by {r['outputs_by']}")
    parts = [head]
    if e:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold")
        t.add_column()
        t.add_row("Edge TPU", f"{e['source']}: {e['mapped_ops']} ops mapped, {len(e['cpu_ops'])} on the CPU, "
                              f"{e['subgraphs']} TPU subgraph(s), on-chip {e['on_chip_bytes']:,} B, "
                              f"streamed {e['off_chip_bytes']:,} B per call (USB {e.get('usb', 3)}, "
                              f"{e.get('clock', 'max')} clock)")
        parts.append(t)
    for line in r.get("lesson", []):
        parts.append(Text("• " + line))
    mem = r.get("memory") or {}
    budgets = [(k, v) for k, v in mem.items() if isinstance(v, dict) and "needed" in v]
    if budgets:
        t = Table(title="memory budget", title_justify="left")
        for c in ("memory", "needed", "available", "short by"):
            t.add_column(c, justify="left" if c == "memory" else "right")
        for name, b in budgets:
            t.add_row(name, f"{b['needed']:,}", f"{b['available']:,}",
                      Text(f"{b['short_by']:,}", style="red") if b["short_by"] else "0")
        parts.append(t)
        for tip in mem.get("advice", []):
            parts.append(Text(f"to fit: {tip}", style="yellow"))
    layers = r.get("layers") or []
    title = f"per layer ({mode}; Iron Law terms in ms)"
    if e:  # the Edge TPU runs each segment as one call: its ops have no time of their own
        on_tpu = sum(layer.get("device") == "edgetpu" for layer in layers)
        layers = [layer for layer in layers if layer.get("device") != "edgetpu"]
        ops = "the op on the Edge TPU runs" if on_tpu == 1 else f"the {on_tpu} ops on the Edge TPU run"
        parts.append(Text(f"per layer: {ops} as one call per segment, timed only as a whole (above)"
                          + ("; the Pi's CPU runs the rest:" if layers else ".")))
        title = f"per layer on the Pi's CPU ({mode}; Iron Law terms in ms)"
    if layers:
        t = Table(title=title, title_justify="left")
        counted = any("instructions" in layer for layer in layers)
        for c in ("layer", "op", "MACs", "ms", "memory", "compute", "overhead", "eta", "bound") + \
                (("instructions",) if counted else ()):
            t.add_column(c, justify="left" if c in ("layer", "op", "bound") else "right")
        for layer in layers[:max_layers]:
            eta = layer.get("eta")
            name = layer["name"] if len(layer["name"]) <= 32 else "..." + layer["name"][-29:]
            t.add_row(name, layer["op"], f"{layer['macs']:,}", f"{layer['latency_ms']:.3f}",
                      f"{layer.get('memory_ms', 0):.3f}", f"{layer.get('compute_ms', 0):.3f}",
                      f"{layer.get('overhead_ms', 0):.3f}", "-" if eta is None else f"{eta:.1%}", layer["bound"],
                      *((f"{layer['instructions']:,}" if "instructions" in layer else "-",) if counted else ()))
        if len(layers) > max_layers:
            t.add_row(f"... {len(layers) - max_layers} more (--json has all)", *[""] * (len(t.columns) - 1))
        parts.append(t)
    th = r.get("thermal")
    if th:
        start = "never" if th["throttle_start_s"] is None else f"after {th['throttle_start_s']:.0f} s"
        parts.append(Text(f"sustained {th['duration_s']:.0f} s: {th['start_temperature_c']} C -> "
                          f"{th['final_temperature_c']} C, throttling (80 C) starts {start}; latency "
                          f"{th['latency_ms_first_minute']:.3f} ms in the first minute, "
                          f"{th['latency_ms_last_minute']:.3f} ms in the last ({th['slowdown']:.2f}x)"))
    return Group(*parts)


def plot_rows(r: dict) -> list[dict]:
    """The bars of the per-layer chart: every layer, but on the Coral one bar for the Edge TPU's
    calls (its ops have no time of their own; the host's overhead and USB are the call's) and
    one per op on the Pi's CPU, so that the bars add up to the latency."""
    e = r.get("edgetpu")
    if not e:
        return r["layers"]
    cpu = [layer for layer in r["layers"] if layer.get("device") != "edgetpu"]
    busy = e["tpu_ms"] - e["host_overhead_ms"] - e["transfer_ms"]  # max(compute, streaming)
    streamed = min(e["stream_ms"], busy)  # streaming that compute does not hide
    on_tpu = len(r["layers"]) - len(cpu)
    tpu = {"op": f"Edge TPU ({on_tpu} ops)", "segment": True, "memory_ms": e["transfer_ms"] + (streamed if streamed >= busy else 0.0),
           "compute_ms": busy if streamed < busy else 0.0, "overhead_ms": e["host_overhead_ms"]}
    return ([tpu] if on_tpu else []) + cpu


def plot_layers(report: ProfileReport, path) -> None:
    """A stacked bar per layer: memory, compute and overhead time (the Iron Law's three terms)."""
    r = report.to_json()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = plot_rows(r)
    names = [l["op"] if l.get("segment") else f"{i}:{l['op']}" for i, l in enumerate(layers)]
    mem = [l.get("memory_ms", 0) for l in layers]
    comp = [l.get("compute_ms", 0) for l in layers]
    over = [l.get("overhead_ms", 0) for l in layers]
    fig, axes = plt.subplots(2 if r.get("thermal") else 1, 1, figsize=(max(8, 0.35 * len(layers)), 8 if r.get("thermal") else 5))
    ax = axes[0] if r.get("thermal") else axes
    x = range(len(layers))
    ax.bar(x, mem, label="memory (D_vol / BW)")
    ax.bar(x, comp, bottom=mem, label="compute (O / R_peak x eta)")
    ax.bar(x, over, bottom=[a + b for a, b in zip(mem, comp)], label="overhead (L_lat)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("ms per inference")
    ax.set_title(f"{r['target']} ({r['mode']}): {r['latency_ms']:.3f} ms, {r['iron_law']['dominant']}-bound")
    ax.legend()
    if r.get("thermal"):
        th = r["thermal"]
        ax2 = axes[1]
        ax2.plot(th["seconds"], th["temperature_c"], color="tab:red", label="temperature C")
        ax2.axhline(80, color="tab:red", linestyle=":", label="throttle 80 C")
        ax2.set_xlabel("seconds of sustained inference")
        ax2.set_ylabel("C")
        ax3 = ax2.twinx()
        ax3.plot(th["seconds"], [1e3 * v for v in th["latency_s"]], color="tab:blue", label="latency ms")
        ax3.set_ylabel("ms")
        ax2.legend(loc="upper left")
        ax3.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
