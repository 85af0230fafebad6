"""Benchmark and fit: instructions on the emulated Cortex-M4, and the cycles per instruction that
turn them into milliseconds.

For every Cortex-M4 row of bench/fidelity.py (the STM32L4R5's MLPerf Tiny reference results and the
Nano 33 BLE Sense's student project), the model is built as fidelity.py builds it, its firmware is
built with the board's own flags (targets/<board>.toml [emulation]) and run under QEMU
(`edgekit deploy --emu`'s path), and the instructions of one inference are counted.

--fit solves one cycles-per-instruction for the Cortex-M4 by least squares over the "fitted" rows
only (the calibration set: MLPerf Tiny v0.5 KWS 181.9 ms and ResNet-8 704.2 ms at 120 MHz), and
prints it with each row's error; held-out rows are never used. The value goes into
targets/stm32l4r5.toml and targets/nano33ble.toml as latency.emulated_cycles_per_instruction.

    .venv/bin/python bench/emulated.py [--fit] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity  # noqa: E402  (the rows and the models, built the same way)

from edgekit import emulator  # noqa: E402
from edgekit.backends import open_backend  # noqa: E402
from edgekit.targets import can_emulate, load_board  # noqa: E402
from edgekit.tflite_file import TFLiteModel  # noqa: E402


def instructions(data: bytes, board: str, name: str) -> dict:
    """One inference's instructions on the emulated board, per layer and in total, and its image."""
    t0 = time.perf_counter()
    with open_backend(board, force="emu") as b:
        b.load(TFLiteModel(data, name), runs=1)
        report = b.profile()
    return {"instructions": report.extra["instructions"], "latency_ms": report.latency_ms,
            "layers": [(row["op"], row.get("instructions")) for row in report.layers],
            "flags": report.extra["image"]["flags"], "seconds": time.perf_counter() - t0}


def rows(log) -> list[dict]:
    out = []
    for row in fidelity.ROWS:
        if not can_emulate(load_board(row["board"])):
            continue
        data, origin = fidelity.MODELS[row["model"]][1]()
        r = {k: row[k] for k in ("board", "model", "status", "ms")}
        r.update(instructions(data, row["board"], row["model"]))
        log(f"{row['board']} {row['model']}: {r['instructions']:,} instructions ({r['seconds']:.1f} s)")
        out.append(r)
    return out


def fit_cpi(rows: list[dict]) -> float:
    """Least-squares cycles per instruction over the fitted rows: cycles = CPI x instructions."""
    fitted = [r for r in rows if r["status"] == "fitted"]
    pairs = [(r["instructions"], r["ms"] / 1e3 * load_board(r["board"]).clock_hz) for r in fitted]
    return sum(i * c for i, c in pairs) / sum(i * i for i, _ in pairs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit one cycles per instruction on the fitted rows")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    err = Console(stderr=True)
    ok, why = emulator.available()
    if not ok:
        err.print(f"the emulated board is not available: {why}")
        return 2
    measured = rows(lambda m: err.print(f"[dim]{m}[/dim]"))
    cpi = fit_cpi(measured) if args.fit else None
    for r in measured:
        clock = load_board(r["board"]).clock_hz
        r["cpi_ms"] = r["instructions"] * cpi / clock * 1e3 if cpi else None
        r["cpi_err"] = None if cpi is None else 100 * (r["cpi_ms"] - r["ms"]) / r["ms"]
        r["published_cpi"] = r["ms"] / 1e3 * clock / r["instructions"]
    if args.json:
        print(json.dumps({"cycles_per_instruction": cpi, "rows": measured}, indent=1))
        return 0
    t = Table(title="Instructions on the emulated Cortex-M4 (QEMU mps2-an386, -icount shift=0)")
    for col in ("board", "model", "status", "instructions", "published ms", "cycles/instr. published",
                "fitted ms", "err"):
        t.add_column(col, justify="left" if col in ("board", "model", "status") else "right")
    for r in measured:
        t.add_row(r["board"], r["model"], r["status"], f"{r['instructions']:,}", f"{r['ms']:.1f}",
                  f"{r['published_cpi']:.2f}", "-" if r["cpi_ms"] is None else f"{r['cpi_ms']:.1f}",
                  "-" if r["cpi_err"] is None else f"{r['cpi_err']:+.0f}%")
    Console(width=160).print(t)
    if cpi:
        Console().print(f"fitted cycles per instruction: {cpi:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
