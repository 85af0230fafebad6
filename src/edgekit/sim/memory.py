"""Does the model fit the board? Flash and RAM, byte for byte, with what would make it fit.

This is the one memory rule: the simulator's verdict, the firmware generator's refusal and the
report all come from `plan_memory`, so `deploy --sim` says "fits" exactly when the firmware build
would accept the model.

flash = model bytes + the runtime's code (TFLM, kernels, the protocol sketch), per board;
arena = round_up_16(host + scratch + margin), what the firmware allocates (EDGEKIT_ARENA_BYTES):
        host    TFLite Micro's minimum arena (measured on this machine when it runs, else edgekit's
                planner replaying TFLM's allocator),
        scratch the extra buffers the board's optimized kernels (CMSIS-NN, ESP-NN) request over
                TFLM's reference kernels,
        margin  memory.arena_margin_bytes of the descriptor (what the plan cannot see);
RAM   = the arena + stack, heap and runtime (mbed OS, FreeRTOS): memory.runtime_ram_bytes.
On the ESP32-S3, an arena that does not fit the internal SRAM left by the runtime goes to PSRAM
(as esp-tflite-micro does with heap_caps_malloc(MALLOC_CAP_SPIRAM)); the latency model then
reads activations at PSRAM's bandwidth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EdgekitError
from ..tflite_file import TFLiteModel, model_of
from .arena import ALIGN, kernel_scratch, plan_arena, round_up


@dataclass
class Budget:
    name: str
    needed: int
    available: int

    @property
    def short_by(self) -> int:
        return max(self.needed - self.available, 0)

    def as_dict(self) -> dict:
        return {"needed": self.needed, "available": self.available, "short_by": self.short_by}


@dataclass
class MemoryPlan:
    flash: Budget
    ram: Budget
    arena_bytes: int            # what the firmware allocates: round_up_16(host + scratch + margin)
    arena_source: str           # "measured by TFLite Micro" or "edgekit planner"
    arena_in: str = "sram"      # "sram" or "psram"
    psram: Budget | None = None
    parts: dict = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)
    margin_bytes: int = 0

    @property
    def fits(self) -> bool:
        return all(b.short_by == 0 for b in self.budgets)

    @property
    def budgets(self) -> list[Budget]:
        return [self.flash, self.ram] + ([self.psram] if self.psram else [])


def plan_memory(model: TFLiteModel | bytes, board, host_arena: int | None = None,
                largest_layer: str | None = None, arena_in: str | None = None) -> MemoryPlan:
    """Memory budgets of `model` on an MCU `board`; host_arena is TFLM's measurement, if any.
    arena_in: None puts the arena in SRAM when it fits and in PSRAM (if the board has it) when not;
    "psram" puts it there regardless, as a sketch that allocates it with ps_malloc does."""
    model = model_of(model)
    if host_arena is None:
        host_arena, source = plan_arena(model, "host", "reference").minimum, "edgekit planner"
    else:
        source = "measured by TFLite Micro"
    scratch = kernel_scratch(model, board.arch, board.kernels)
    margin = int(board.num("memory.arena_margin_bytes", 0))
    arena = round_up(host_arena + scratch + margin, ALIGN)
    runtime_ram = int(board.num("memory.runtime_ram_bytes"))
    # what the linker leaves a sketch, where the board states it (ESP32-S3: 320 KB of its 512 KB)
    sram = int(board.num("memory.data_ram_max_bytes", board.num("memory.sram_bytes")))
    flash_avail = int(board.num("memory.sketch_flash_max_bytes", board.num("memory.flash_bytes")))
    flash = Budget("flash", len(model) + int(board.num("memory.runtime_flash_bytes")), flash_avail)
    parts = {"model_bytes": len(model), "runtime_flash_bytes": int(board.num("memory.runtime_flash_bytes")),
             "arena_host_bytes": host_arena, "kernel_scratch_bytes": scratch, "runtime_ram_bytes": runtime_ram}
    if margin:
        source += f" + {margin:,} B margin"
    psram_total = int(board.num("memory.psram_bytes", 0))
    if arena_in == "psram" and not psram_total:
        raise EdgekitError(f"{board.key} has no PSRAM to hold the arena; leave the arena's placement to edgekit")
    if psram_total and (arena + runtime_ram > sram or arena_in == "psram"):
        plan = MemoryPlan(flash, Budget("sram", runtime_ram, sram), arena, source, "psram",
                          Budget("psram", arena, psram_total), parts, margin_bytes=margin)
    else:
        plan = MemoryPlan(flash, Budget("sram", arena + runtime_ram, sram), arena, source, "sram", None, parts,
                          margin_bytes=margin)
    plan.advice = _advice(plan, board, largest_layer)
    return plan


def _advice(plan: MemoryPlan, board, largest_layer: str | None) -> list[str]:
    tips = []
    if plan.flash.short_by:
        weights = plan.parts["model_bytes"]
        cut = plan.flash.short_by / max(weights, 1)
        tips.append(f"flash: the model must shrink by {plan.flash.short_by:,} B ({cut:.0%} of it): fewer "
                    "parameters (a smaller width multiplier, fewer or narrower dense layers, pruning)")
    short_ram = plan.ram.short_by or (plan.psram.short_by if plan.psram else 0)
    if short_ram:
        where = f" (the arena peaks around layer '{largest_layer}')" if largest_layer else ""
        tips.append(f"RAM: the arena must shrink by {short_ram:,} B{where}: a smaller input resolution, "
                    "fewer channels in the early layers, or a stride-2 first layer")
        if not board.num("memory.psram_bytes", 0):
            tips.append("or deploy to esp32s3, whose 8 MB PSRAM takes arenas that do not fit SRAM")
    return tips
