"""Before anything runs on the Coral: what maps to the Edge TPU, compiled where the compiler is.

    p = plan(int8_bytes, "digits_int8")
    p.partition    # source "compiled" (edgetpu_compiler ran here) or "predicted" (rules.py)
    p.compiled     # the *_edgetpu.tflite bytes the accelerator runs, or None
    p.note         # one line for the user: which, and why

Everything that would make the Coral refuse the model (float, partly quantized, nothing maps)
is raised here by rules.predict, before a board is touched or a simulation starts. Where
edgetpu_compiler is on PATH it runs (edgetpu_compiler -s, into out_dir, default the current folder
as the compiler itself does) and its log replaces the prediction's figures; the prediction's op
by op split is kept for the simulator's per-layer rows, since a log does not say which op is which.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekitError
from ..targets import load_board
from ..tflite_file import TFLiteModel, builtin_name, model_of
from .compiler import CUSTOM_OP, compile, edgetpu_compiler_available, from_compiled_model
from .rules import Partition, predict


@dataclass
class CoralPlan:
    partition: Partition | None
    compiled: bytes | None = None
    compiled_path: Path | None = None
    note: str = ""
    given_compiled: bool = False   # the model given was already compiled (its Edge TPU part opaque)


def is_compiled(model: TFLiteModel | bytes) -> bool:
    m = model_of(model).parsed
    return any(builtin_name(m, op.opcodeIndex) == f"CUSTOM({CUSTOM_OP})"
               for sg in m.subgraphs for op in (sg.operators or []))


def compiled_partition(model: bytes) -> Partition:
    """What a compiled model itself tells: its Edge TPU subgraphs and the CPU ops around them. The
    count of original ops folded into each subgraph and the memory split are in the log, not here."""
    c = from_compiled_model(model)
    return with_cycles(Partition(
        source="compiled", total_ops=None, mapped_ops=None, cpu_ops=c["cpu_ops"],
        cpu_reasons=["left on the CPU by edgetpu_compiler (its log says why)"] * len(c["cpu_ops"]),
        op_table=[], subgraphs=c["edgetpu_ops"], on_chip_bytes=None, off_chip_bytes=None,
        notes=["read from the compiled model: compile with edgekit (or keep the compiler's log) "
               "for mapped-op counts and on-chip/off-chip bytes"]), c["estimated_cycles"])


def with_cycles(part: Partition, cycles: int | None) -> Partition:
    """The partition with the compiler's cycle estimate, and a note saying what it means in time."""
    if not cycles:
        return part
    coral = load_board("coral")
    hz = coral.num("compute.peak_macs_per_s") / coral.num("compute.peak_macs_per_cycle")  # the max clock
    note = (f"edgetpu_compiler estimates {cycles:,} Edge TPU cycles per call: {cycles / hz * 1e3:.3f} ms at the "
            f"{hz / 1e6:.0f} MHz max clock (libedgetpu1-max), twice that with libedgetpu1-std; USB and host "
            "time come on top")
    return dataclasses.replace(part, estimated_cycles=cycles, notes=list(part.notes) + [note])


def plan(model: TFLiteModel | bytes, name: str = "model", out_dir: str | Path = ".",
         use_compiler: bool = True) -> CoralPlan:
    """The Edge TPU plan for an int8/uint8 model (or an already compiled one), see the module doc."""
    model = model_of(model, name)
    if is_compiled(model):
        return CoralPlan(compiled_partition(model.data), compiled=model.data, given_compiled=True,
                         note="already compiled for the Edge TPU: runs on the accelerator as it is")
    predicted = predict(model, name=name)  # refuses float, partly quantized, nothing-maps models
    ok, why = edgetpu_compiler_available() if use_compiler else (False, "compiling was not asked for")
    if not ok:
        why = why.split(", or predict the partition")[0]  # that advice is for API users; this is it
        return CoralPlan(predicted, note=f"partition predicted from the documented rules ({why})")
    with tempfile.TemporaryDirectory(prefix="edgekit-coral-") as tmp:
        src = Path(tmp) / f"{name}.tflite"
        src.write_bytes(model.data)
        path, log = compile(src, Path(out_dir).resolve())
    part = log  # a CompileLog is a Partition with what else the log says
    if part.mapped_ops == predicted.mapped_ops:
        part = dataclasses.replace(part, mapping=predicted.mapping, ops=predicted.ops)
    else:
        part = dataclasses.replace(part, mapping=predicted.mapping, ops=predicted.ops, notes=part.notes + [
            f"edgetpu_compiler mapped {part.mapped_ops} ops where the rules predicted {predicted.mapped_ops}; "
            "the simulated per-op split follows the prediction, the totals follow the compiler"])
    compiled = path.read_bytes()
    part = with_cycles(part, from_compiled_model(compiled)["estimated_cycles"])
    return CoralPlan(part, compiled=compiled, compiled_path=path,
                     note=f"compiled by edgetpu_compiler: {path}")


def summary(part: Partition) -> dict:
    """The profile report's `edgetpu` object for a partition."""
    return {"source": part.source, "mapped_ops": part.mapped_ops, "cpu_ops": list(part.cpu_ops),
            "cpu_reasons": list(part.cpu_reasons), "subgraphs": part.subgraphs,
            "on_chip_bytes": part.on_chip_bytes, "off_chip_bytes": part.off_chip_bytes,
            "compiler_estimated_cycles": part.estimated_cycles, "notes": list(part.notes)}


def need_compiled(p: CoralPlan) -> bytes:
    """The bytes the accelerator runs, or the one-line reason there are none and how to get them."""
    if p.compiled is not None:
        return p.compiled
    raise EdgekitError("the Coral runs models compiled by edgetpu_compiler, which is not here "
                       f"({p.note.split('(', 1)[-1].rstrip(')')}); on an x86-64 Linux machine run "
                       "`edgekit compile MODEL_int8.tflite` and give the MODEL_int8_edgetpu.tflite it writes, "
                       "or add --sim to simulate")
