"""What the compiler put inside an edgetpu-custom-op: its executables and their cycle estimates.

An *_edgetpu.tflite carries, in each custom op's options, a "DWN1" package (libedgetpu's
executable/executable.fbs): Package.serialized_multi_executable (field 1) holds a MultiExecutable
whose serialized_executables (field 0) are Executables. Each Executable has a type (field 13:
0 stand-alone, 1 parameter caching, 2 execution only), its parameters (field 6) and the compiler's
own estimate of its run time in TPU cycles (estimated_cycles_64bit, field 16; older compilers
filled the 32-bit field 11). Only the fields edgekit reads are decoded here.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import flatbuffers
from flatbuffers import number_types as N
from flatbuffers.table import Table

from ..errors import EdgekitError

IDENTIFIER = b"DWN1"
TYPES = {0: "stand-alone", 1: "parameter-caching", 2: "execution-only"}


@dataclass
class Executable:
    name: str
    type: str
    estimated_cycles: int
    parameter_bytes: int


def _root(buf: bytes) -> Table:
    return Table(bytearray(buf), flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, buf, 0))


def _field(t: Table, i: int) -> int:
    return t.Offset(4 + 2 * i)


def _scalar(t: Table, i: int, flags, default=0):
    o = _field(t, i)
    return t.Get(flags, t.Pos + o) if o else default


def _bytes(t: Table, i: int) -> bytes:
    o = _field(t, i)
    if not o:
        return b""
    start = t.Vector(o)
    return bytes(t.Bytes[start:start + t.VectorLen(o)])


def read_package(custom_options: bytes) -> list[Executable]:
    """The executables in one edgetpu-custom-op's options (a few header bytes precede the package)."""
    at = custom_options.find(IDENTIFIER)
    if at < 4:
        raise EdgekitError("this custom op holds no Edge TPU package (no DWN1 identifier); "
                           "was the model compiled by edgetpu_compiler?")
    try:
        package = _root(custom_options[at - 4:])
        multi = _root(_bytes(package, 1))
        o = _field(multi, 0)
        blobs = [multi.String(multi.Vector(o) + 4 * k) for k in range(multi.VectorLen(o))] if o else []
        out = []
        for blob in blobs:
            ex = _root(bytes(blob))
            o = _field(ex, 1)
            cycles = _scalar(ex, 16, N.Int64Flags) or _scalar(ex, 11, N.Int32Flags)
            out.append(Executable(name=ex.String(ex.Pos + o).decode() if o else "",
                                  type=TYPES.get(_scalar(ex, 13, N.Int16Flags), "unknown"),
                                  estimated_cycles=int(cycles), parameter_bytes=len(_bytes(ex, 6))))
        return out
    except (IndexError, ValueError, struct.error) as e:  # a truncated or overwritten package
        raise EdgekitError(f"the Edge TPU package is damaged ({e}); compile the model again") from None
