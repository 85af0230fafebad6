"""The simulated board: latency per layer, memory fit, energy and (on the Pi) heat, for one model.

simulate(model, board) returns a ProfileReport (target, mode, latency_ms, latency_ms_p90,
energy_mj, flash_bytes, ram_bytes, arena_bytes, fits, layers, the Iron Law breakdown and the memory
budgets). Every number is computed from the board's descriptor in targets/ (each with its source)
and the model's layers; nothing is looked up per model. How a board is simulated follows its
kind: a microcontroller's memory plan, a Linux board's DRAM, the Coral's Edge TPU and USB.
"""
from __future__ import annotations

import statistics

from ..profile_report import ProfileReport
from ..targets import Board, load_board
from ..tflite_file import TFLiteModel, model_of
from . import counts, latency as lat
from .arena import plan_arena
from .edgetpu import simulate_edgetpu
from .layers import KINDS, layers as model_layers
from .memory import plan_memory
from .thermal import ThermalParams, sustained


def cost_model(board, clock_hz: float | None = None, arena_in: str = "sram") -> lat.CostModel:
    speed = {k: float(board.num(f"latency.speed.{k}", 1.0)) for k in KINDS}
    ram_bw = board.num("memory.psram_bw_bytes_per_s") if arena_in == "psram" else \
        board.num("memory.sram_bw_bytes_per_s", None) or board.num("memory.dram_bw_bytes_per_s")
    flash_bw = board.num("memory.flash_bw_bytes_per_s", None) or board.num("memory.dram_bw_bytes_per_s")
    return lat.CostModel(
        clock_hz=clock_hz or board.num("chip.clock_hz"),
        peak_macs_per_cycle=board.num("compute.peak_macs_per_cycle"),
        mac_cycles=board.num("latency.mac_cycles"),
        output_cycles=board.num("latency.output_cycles"),
        op_overhead_cycles=board.num("latency.op_overhead_cycles"),
        speed=speed, flash_bw=flash_bw, ram_bw=ram_bw,
        threads=int(board.num("compute.threads", 1)))


def _layer_rows(times, m) -> list[dict]:
    rows = []
    for t in times:
        eta = lat.efficiency(t, m)
        rows.append({"name": t.layer.name, "op": t.layer.op, "kind": t.layer.kind, "macs": t.layer.macs,
                     "latency_ms": t.total_s * 1e3, "bound": t.bound,
                     "memory_ms": t.memory_s * 1e3, "compute_ms": t.compute_s * 1e3,
                     "overhead_ms": t.overhead_s * 1e3, "eta": None if eta is None else round(eta, 4)})
    return rows


def simulate(model: TFLiteModel | bytes, board: Board | str, host_arena: int | None = None,
             duration_s: float | None = None, runs: int = 1, usb: int = 3, clock: str = "max", partition=None,
             arena_in: str | None = None) -> ProfileReport:
    """Simulated profile of an int8 .tflite on a board (a Board, or its key). host_arena: TFLM's
    measured arena, if known; usb and clock: the Coral's link (2 or 3) and libedgetpu build ("std" or
    "max"); partition: the Coral's split when already known (edgekit.edgetpu.plan: compiled or
    predicted), else predicted; arena_in: "psram" to put an ESP32-S3's arena in PSRAM even when it fits
    SRAM (None: edgekit decides)."""
    model = model_of(model)
    board = load_board(board) if isinstance(board, str) else board
    layers = model_layers(model)
    report = ProfileReport(target=board.key, board=board.name, mode="simulated", model_sha256=model.sha256,
                           runs=runs, fits=True, flash_bytes=len(model), ram_bytes=None, arena_bytes=None)
    if board.kind == "accelerator":
        host = load_board(board.host or "rpi4")
        simulate_edgetpu(report, model, board, host, cost_model(host), layers, usb=usb, clock=clock,
                         partition=partition)
        return report

    placed_in = "sram"
    if board.kind == "mcu":
        mem = plan_memory(model, board, host_arena, _peak_layer(model), arena_in)
        placed_in = mem.arena_in
        report.fits, report.flash_bytes = mem.fits, mem.flash.needed
        report.ram_bytes = mem.ram.needed + (mem.psram.needed if mem.psram else 0)
        report.arena_bytes, report.arena_in, report.arena_source = mem.arena_bytes, placed_in, mem.arena_source
        report.memory = {"flash": mem.flash.as_dict(), "sram": mem.ram.as_dict(),
                         **({"psram": mem.psram.as_dict()} if mem.psram else {}),
                         "parts": mem.parts, "advice": mem.advice}
    else:  # the Pi: gigabytes of DRAM; the arena is LiteRT's tensors, reported for comparison
        arena = host_arena or plan_arena(model, "host", "reference").minimum
        report.ram_bytes, report.arena_bytes, report.arena_in, report.memory = arena + len(model), arena, "dram", {}

    m = cost_model(board, arena_in=placed_in)
    times = lat.model_time(layers, m)
    total_s = sum(t.total_s for t in times)
    report.layers = _layer_rows(times, m)
    report.iron_law = _iron_law(times)
    report.latency_ms = report.latency_ms_p90 = total_s * 1e3  # the model is deterministic
    report.energy_mj = board.num("power.active_w") * total_s * 1e3
    if duration_s and board.has("thermal.throttle_c"):
        report.thermal = _thermal(board, layers, duration_s)
        lat_ms = [x * 1e3 for x in report.thermal["latency_s"]]
        report.latency_ms = statistics.median(lat_ms)
        report.latency_ms_p90 = statistics.quantiles(lat_ms, n=10)[-1] if len(lat_ms) > 1 else lat_ms[0]
    report.sources = _sources(board)
    if board.kind == "mcu" and not report.thermal:
        _from_counted_instructions(report, board, model)
    return report


def _from_counted_instructions(report: ProfileReport, board, model: TFLiteModel) -> None:
    """Latency from instructions counted on the emulated board for this very model, when a run
    with --emu left them (edgekit.sim.counts) and the board has a fitted cycles per instruction."""
    cpi = board.num("latency.emulated_cycles_per_instruction", None)
    flags = board.text("emulation.cflags")
    counted = counts.load(board.key, model.sha256, flags) if cpi is not None and flags else None
    if counted is None or len(counted["layers"]) != len(report.layers):
        return
    to_ms = cpi / board.clock_hz * 1e3
    report.latency_ms = report.latency_ms_p90 = counted["instructions"] * to_ms
    report.energy_mj = board.num("power.active_w") * report.latency_ms
    for row, n in zip(report.layers, counted["layers"]):
        if isinstance(n, int):
            row["instructions"], row["latency_ms"] = n, n * to_ms
    report.extra["instructions"] = counted["instructions"]
    report.extra["latency_source"] = (f"{counted['instructions']:,} instructions counted on the emulated board "
                                      f"(--emu) x {cpi:g} cycles per instruction / {board.clock_hz / 1e6:g} MHz; "
                                      "the Iron Law terms stay the analytical model's")


def _iron_law(times) -> dict:
    mem = sum(t.memory_s for t in times) * 1e3
    comp = sum(t.compute_s for t in times) * 1e3
    over = sum(t.overhead_s for t in times) * 1e3
    terms = {"memory": mem, "compute": comp, "overhead": over}
    return {"memory_ms": mem, "compute_ms": comp, "overhead_ms": over, "dominant": max(terms, key=terms.get)}


def _peak_layer(model: TFLiteModel) -> str | None:
    try:
        plan = plan_arena(model, "host", "reference")
        return plan.peak_op if isinstance(plan.peak_op, str) else None
    except Exception:  # the planner's view is advice only
        return None


def _thermal(board, layers, duration_s: float) -> dict:
    p = ThermalParams(
        ambient_c=board.num("thermal.ambient_c"), throttle_c=board.num("thermal.throttle_c"),
        r_th=board.num("thermal.thermal_resistance_c_per_w"), tau_s=board.num("thermal.time_constant_s"),
        clock_hz=board.num("chip.clock_hz"), throttled_clock_hz=board.num("thermal.throttled_clock_hz"),
        active_w=board.num("power.active_w"), idle_w=board.num("power.idle_w", 0.0))

    def latency_at(clock):
        m = cost_model(board, clock_hz=clock)
        return sum(t.total_s for t in lat.model_time(layers, m))

    trace = sustained(p, duration_s, latency_at)
    return {**trace.summary(), "seconds": trace.seconds, "temperature_c": trace.temperature_c,
            "clock_hz": trace.clock_hz, "latency_s": trace.latency_s}


def _sources(board) -> dict:
    keys = ["chip.clock_hz", "compute.peak_macs_per_cycle", "latency.mac_cycles", "latency.output_cycles",
            "latency.op_overhead_cycles", "power.active_w"]
    keys += ["memory.sram_bytes", "memory.flash_bytes", "memory.runtime_flash_bytes",
             "memory.runtime_ram_bytes"] if board.kind == "mcu" else []
    return {k: board.source(k) for k in keys if board.has(k)}
