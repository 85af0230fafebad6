"""Human-readable conversion reports (rich), from the same dict that --json prints."""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


def _kb(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KB)"


def _n(count: int) -> str:
    return f"{count} sample{'' if count == 1 else 's'}"


def renderables(info: dict):
    parts = []
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("model", f"{info['name']} (from {info['source']})")
    if info.get("float_bytes"):
        head.add_row("size", f"{_kb(info['int8_bytes'])} int8, {_kb(info['float_bytes'])} float32: "
                             f"{info['float_bytes'] / info['int8_bytes']:.1f}x less data to move (D_vol)")
    else:
        head.add_row("size", _kb(info["int8_bytes"]))
    if "input" in info:
        i = info["input"]
        head.add_row("input", f"{i['shape']} {i['dtype']}, scale {i['scale']:.6g}, zero point {i['zero_point']}")
    cal = info.get("calibration")
    if cal:
        held = f" ({cal['held_out']} more held out to measure agreement)" if cal.get("held_out") else ""
        head.add_row("calibration", f"{cal['method']} over {_n(cal['samples'])}{held}")
    agree = info.get("agreement")
    if agree:
        on = agree["on"]
        on = f"{_n(agree['samples'])} of the {on}" if on.endswith("set") else f"{agree['samples']} {on}"
        if agree["on"] == "calibration set":  # under 10 samples: none held out
            on += " (too few to hold any out: the samples that set the ranges)"
        line = f"max |error| {agree['max_abs_error']:.4g}, mean {agree['mean_abs_error']:.4g} on {on}"
        if "top1_agreement" in agree:
            line = f"top-1 agreement {agree['top1_agreement']:.1%}; " + line
        head.add_row("float vs int8", line)
    if "litert" in info and not info["litert"]["loaded"]:
        head.add_row("LiteRT", Text(f"refused: {info['litert']['reason']}", style="yellow"))
    tflm = info.get("tflm")
    if tflm:
        if tflm["ran"]:
            agree = (f"; outputs within {tflm['max_lsb_vs_litert']} LSB of LiteRT"
                     if "max_lsb_vs_litert" in tflm else "")
            head.add_row("TFLite Micro", f"arena {_kb(tflm['arena_bytes'])} (exact minimum, measured){agree}")
        else:
            head.add_row("TFLite Micro", Text(f"not run: {tflm['reason']}", style="yellow"))
    parts.append(head)
    for warning in info.get("warnings") or ():
        parts.append(Text(f"warning: {warning}", style="yellow"))
    for note in info.get("notes") or ():
        parts.append(Text(f"note: {note}"))
    layers = info.get("layers")
    if layers:
        t = Table(title="per-layer SQNR (float reference vs int8 in LiteRT; ~6 dB per bit)", title_justify="left")
        t.add_column("layer")
        t.add_column("op")
        t.add_column("SQNR dB", justify="right")
        for layer in layers:
            s = layer["sqnr_db"]
            style = "red" if s is not None and s < 20 else None
            t.add_row(layer["name"], layer["op"], "exact" if s is None else Text(f"{s:.1f}", style=style or ""))
        parts.append(t)
    return Group(*parts)


def render_text(info: dict, width: int = 100) -> str:
    console = Console(width=width, force_terminal=False)
    with console.capture() as cap:
        console.print(renderables(info))
    return cap.get()
