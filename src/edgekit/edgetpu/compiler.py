"""Running Coral's edgetpu_compiler, reading its log, and reading what it wrote.

    ok, why = edgetpu_compiler_available()
    path, log = compile("model_int8.tflite", "out/")    # edgetpu_compiler -s -o out/ model_int8.tflite
    log.mapped_ops, log.cpu_ops, log.on_chip_bytes, log.off_chip_bytes, log.subgraphs
    parse_log(text)                                     # a log pasted from elsewhere (Colab, an issue)
    from_compiled_model(open("out/model_int8_edgetpu.tflite", "rb").read())

The compiler exists for x86-64 Linux only (Coral's apt package edgetpu-compiler); elsewhere use
Coral's Colab notebook and parse_log its output, or rules.predict.

The log format (versions 2.x to 16, from logs pasted in google-coral/edgetpu issues):

    Edge TPU Compiler version 16.0.384591198
    Started a compilation timeout timer of 180 seconds.          (16 only)
    Model compiled successfully in 130 ms.
    Input model: model.tflite
    Input size: 2.55MiB
    Output model: model_edgetpu.tflite
    Output size: 2.53MiB
    On-chip memory used for caching model parameters: 187.00KiB
    On-chip memory remaining for caching model parameters: 6.83MiB   (2.0: "available", the budget)
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 113
    Operation log: model_edgetpu.log
    Model successfully compiled but not all operations are supported by the Edge TPU. ... (only then,
    possibly wrapped over several lines)
    Number of operations that will run on Edge TPU: 26
    Number of operations that will run on CPU: 87
    Operator                       Count      Status                (with -s; otherwise "See the
    CONV_2D                        14         Mapped to Edge TPU     operation log file ...")

Failures print e.g. "Internal compiler error. Aborting!", "Compilation failed: ...",
"Invalid model: ... Model could not be parsed" or "ERROR: Didn't find op for builtin opcode ...".
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekitError
from ..tflite_file import builtin_name, read_model
from .executable import read_package
from .rules import MAPPED, Partition

EXE = "edgetpu_compiler"
CUSTOM_OP = "edgetpu-custom-op"
TIMEOUT_S = 300.0  # compiler 16 stops itself after 180 s; older ones have no timer
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_SIZE = r"([\d.]+)\s*(B|KiB|MiB|GiB)"
_ERRORS = ("Internal compiler error", "Compilation failed", "Invalid model", "Model could not be parsed",
           "ERROR:", "Didn't find op for builtin opcode")


@dataclass
class CompileLog(Partition):
    """A Partition read from the compiler's log (source = "compiled"), with what else the log says.

    cpu_ops/cpu_reasons come from the op table (-s) in its order, each op repeated by its count;
    without the table they are empty and only cpu_count (the summary line) is known. `mapping` and
    `ops` stay empty: the log does not say which op is which.
    """
    compiler_version: str = ""
    compile_ms: int | None = None
    input_model: str = ""
    output_model: str = ""
    input_bytes: int | None = None
    output_bytes: int | None = None
    remaining_bytes: int | None = None   # on-chip memory left for parameters
    operation_log: str = ""
    cpu_op_count: int = 0
    text: str = ""

    @property
    def cpu_count(self) -> int:
        return self.cpu_op_count


def to_bytes(value: str, unit: str) -> int:
    """'1.23', 'MiB' -> bytes (the compiler prints binary units with two decimals)."""
    return int(round(float(value) * UNITS[unit]))


def compiler_error(text: str) -> str | None:
    """The compiler's error line, when the text reports a failure and no compiled model."""
    if "Model compiled successfully" in text:
        return None
    for line in text.splitlines():
        line = line.strip()
        if any(e in line for e in _ERRORS):
            return line
    return None


def _clean(text: str) -> list[str]:
    """Lines with markdown quoting ('> ') removed, as logs pasted into issues often have it."""
    return [re.sub(r"^\s*>\s?", "", line).rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def parse_log(text: str) -> CompileLog:
    """Read edgetpu_compiler's console output (any version seen: 2.x to 16) into a CompileLog.

    When the text holds several reports (co-compiled models, or -d trying segments), the last one is read.
    """
    err = compiler_error(text)
    if err:
        raise EdgekitError(f"edgetpu_compiler failed: {err}; check the model's ops and quantization "
                           "(edgekit.edgetpu.predict shows what should map)")
    lines = _clean(text)
    starts = [n for n, line in enumerate(lines) if line.startswith("Input model:")]
    head, body = (lines[:starts[-1]], lines[starts[-1]:]) if starts else (lines, lines)

    def last(pattern: str, where: list[str]):
        found = None
        for line in where:
            m = re.search(pattern, line)
            if m:
                found = m
        return found

    def size(label: str):
        m = last(re.escape(label) + r":\s*" + _SIZE, body)
        return to_bytes(*m.groups()) if m else None

    def number(label: str):
        m = last(re.escape(label) + r":\s*(\d+)", body)
        return int(m.group(1)) if m else None

    version = last(r"Edge TPU Compiler version (\S+)", lines)
    ms = last(r"Model compiled successfully in (\d+) ms", head) or last(r"Model compiled successfully in (\d+) ms",
                                                                        lines)
    inp, out, oplog = (last(p, body) for p in (r"^Input model:\s*(.+)$", r"^Output model:\s*(.+)$",
                                                r"^Operation log:\s*(.+)$"))
    used = size("On-chip memory used for caching model parameters")
    remaining = size("On-chip memory remaining for caching model parameters")
    available = size("On-chip memory available for caching model parameters")  # compiler 2.0
    if remaining is None and available is not None:
        remaining = max(available - (used or 0), 0)
    off = size("Off-chip memory used for streaming uncached model parameters")
    subgraphs = number("Number of Edge TPU subgraphs")
    total = number("Total number of operations")
    on_tpu = number("Number of operations that will run on Edge TPU")
    on_cpu = number("Number of operations that will run on CPU")

    table: list[tuple[str, int, str]] = []
    header = next((n for n, line in enumerate(body) if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line)), None)
    if header is not None:
        for line in body[header + 1:]:
            if not line.strip():
                if table:
                    break
                continue
            m = re.match(r"^\s*([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$", line)
            if not m:
                break
            table.append((m.group(1), int(m.group(2)), m.group(3)))

    if not any(v is not None for v in (version, inp, used, subgraphs, total, on_tpu, on_cpu)) and not table:
        raise EdgekitError("this text is not an edgetpu_compiler log (no 'Edge TPU Compiler version', memory, "
                           "operation counts or op table); paste the compiler's whole console output")

    cpu_rows = [(op, n, status) for op, n, status in table if status != MAPPED]
    cpu_ops = [op for op, n, _ in cpu_rows for _ in range(n)]
    cpu_reasons = [status for _, n, status in cpu_rows for _ in range(n)]
    if on_tpu is None:  # no warning block: either everything mapped, or only the table says
        on_tpu = sum(n for _, n, s in table if s == MAPPED) if table else (total or 0)
        on_cpu = len(cpu_ops) if table else 0
    if on_cpu is None:
        on_cpu = len(cpu_ops)
    if total is None:
        total = on_tpu + on_cpu
    notes = []
    if not table and on_cpu:
        notes.append("no op table in this log: compile with -s to see which ops run on the CPU")
    if table and sum(n for _, n, _ in table) != total:
        notes.append(f"the op table counts {sum(n for _, n, _ in table)} ops but the log says {total}")
    return CompileLog(
        source="compiled", total_ops=total, mapped_ops=on_tpu, cpu_ops=cpu_ops, cpu_reasons=cpu_reasons,
        op_table=table, subgraphs=subgraphs if subgraphs is not None else int(on_tpu > 0),
        on_chip_bytes=used or 0, off_chip_bytes=off or 0, notes=notes,
        compiler_version=version.group(1) if version else "", compile_ms=int(ms.group(1)) if ms else None,
        input_model=inp.group(1).strip() if inp else "", output_model=out.group(1).strip() if out else "",
        input_bytes=size("Input size"), output_bytes=size("Output size"), remaining_bytes=remaining,
        operation_log=oplog.group(1).strip() if oplog else "", cpu_op_count=on_cpu, text=text)


# -- running the compiler -------------------------------------------------------------------------

def edgetpu_compiler_available() -> tuple[bool, str]:
    """(True, path) when edgetpu_compiler can run here; (False, why and what to do) otherwise."""
    system, machine = platform.system(), platform.machine().lower()
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        return False, (f"edgetpu_compiler exists for x86-64 Linux only and this is {system} {machine}: compile "
                       "on an x86-64 Linux machine or in Coral's Colab notebook (compile_for_edgetpu.ipynb), or "
                       "predict the partition with edgekit.edgetpu.predict")
    path = shutil.which(EXE)
    if not path:
        return False, ("edgetpu_compiler is not on PATH: install Coral's apt package edgetpu-compiler "
                       "(coral.ai/docs/edgetpu/compiler), or predict the partition with edgekit.edgetpu.predict")
    return True, path


def compile(model_path: str | os.PathLike, out_dir: str | os.PathLike,
            timeout: float = TIMEOUT_S) -> tuple[Path, CompileLog]:
    """Run `edgetpu_compiler -s -o out_dir model_path`; return (out_dir/<name>_edgetpu.tflite, its log).

    Raises EdgekitError (one line) when the compiler is missing, fails, times out or writes no model.
    """
    ok, why = edgetpu_compiler_available()
    if not ok:
        raise EdgekitError(why)
    model_path, out_dir = Path(model_path), Path(out_dir)
    if not model_path.is_file():
        raise EdgekitError(f"'{model_path}' does not exist; give the path of an int8 .tflite model")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [why, "-s", "-o", str(out_dir), str(model_path)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"edgetpu_compiler did not finish within {timeout:g} s on '{model_path.name}'; "
                           "give it a longer timeout, or make the model smaller") from None
    except OSError as e:
        raise EdgekitError(f"cannot run '{why}': {e.strerror}; reinstall the edgetpu-compiler package") from None
    output = (run.stdout or "") + ("\n" + run.stderr if run.stderr else "")
    err = compiler_error(output)
    if run.returncode != 0 or err:
        what = err or next((line.strip() for line in reversed(output.splitlines()) if line.strip()),
                           f"exit status {run.returncode}")
        raise EdgekitError(f"edgetpu_compiler failed on '{model_path.name}': {what}; check the model with "
                           "edgekit.edgetpu.predict (fully int8, supported ops, batch 1)")
    log = parse_log(output)
    compiled = out_dir / f"{model_path.stem}_edgetpu.tflite"
    if not compiled.is_file() or compiled.stat().st_size == 0:
        raise EdgekitError(f"edgetpu_compiler reported success but wrote no '{compiled.name}' in '{out_dir}'; "
                           "run it by hand to see why (a model of which nothing maps can give an empty file)")
    return compiled, log


compile_model = compile  # for callers who would rather not shadow the builtin


# -- reading a compiled model ---------------------------------------------------------------------

def from_compiled_model(edgetpu_model: bytes | str | os.PathLike) -> dict:
    """What an *_edgetpu.tflite holds: its edgetpu-custom-op ops and the CPU ops left around them.

    Returns {"edgetpu_ops": count of edgetpu-custom-op, "cpu_ops": the other ops' names in order,
    "cpu_before"/"cpu_after": those before the first / after the last custom op, "ops": every op in
    order, "executable_bytes": the custom ops' payload (compiled code and cached parameters),
    "estimated_cycles": the compiler's own estimate of the TPU cycles per call, summed over the
    custom ops (None when a package cannot be read)}.
    """
    name = "model"
    if isinstance(edgetpu_model, (str, os.PathLike)):
        name = str(edgetpu_model)
        try:
            edgetpu_model = Path(edgetpu_model).read_bytes()
        except OSError as e:
            raise EdgekitError(f"cannot read '{name}': {e.strerror}; check the path") from None
    model = read_model(edgetpu_model, name)
    sg = model.subgraphs[0]
    ops = [builtin_name(model, op.opcodeIndex) for op in sg.operators or []]
    tpu = [k for k, op in enumerate(ops) if op == f"CUSTOM({CUSTOM_OP})"]
    cpu = [op for op in ops if op != f"CUSTOM({CUSTOM_OP})"]
    payload = sum(len(op.customOptions) for k, op in enumerate(sg.operators or [])
                  if k in tpu and op.customOptions is not None)
    return {"edgetpu_ops": len(tpu), "cpu_ops": cpu, "estimated_cycles": _estimated_cycles(sg, tpu),
            "cpu_before": ops[:tpu[0]] if tpu else cpu, "cpu_after": ops[tpu[-1] + 1:] if tpu else [],
            "ops": ops, "executable_bytes": payload}


def _estimated_cycles(subgraph, tpu_ops: list[int]) -> int | None:
    """Per custom op, the cycles of the executable that runs it (not the one that only loads the cache)."""
    total = 0
    try:
        for k in tpu_ops:
            runs = [e.estimated_cycles for e in read_package(bytes(subgraph.operators[k].customOptions))
                    if e.type != "parameter-caching"]
            total += max(runs, default=0)
    except (EdgekitError, TypeError):  # TypeError: a custom op without options
        return None
    return total or None
