"""The protocol's constants in Python (edgekit.protocol.wire) equal the C++ core's, read from
firmware/common/edgekit_protocol.{h,cpp}, so the virtual board and the firmware cannot drift."""
import re
from pathlib import Path

import pytest

from edgekit.protocol import wire

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
HEADER = (FIRMWARE / "common" / "edgekit_protocol.h").read_text()
SOURCE = (FIRMWARE / "common" / "edgekit_protocol.cpp").read_text()


def cpp_enum(name: str) -> int:
    found = re.findall(rf"\b{name}\s*=\s*(\d+)\s*[,}}]", HEADER)
    assert len(found) == 1, f"{name} defined {len(found)} times in edgekit_protocol.h"
    return int(found[0])


@pytest.mark.parametrize("cpp, py", [
    ("kProtocolVersion", "PROTOCOL_VERSION"),
    ("kCmdMax", "MAX_COMMAND"),
    ("kMaxTokens", "MAX_TOKENS"),
    ("kMaxChunkBytes", "DBX_CHUNK"),
    ("kMaxFrameBytes", "FRAME_BYTES"),
    ("kMaxChannels", "MAX_CHANNELS"),
])
def test_numbers_match_the_cpp_core(cpp, py):
    assert getattr(wire, py) == cpp_enum(cpp)


def test_profile_and_help_match_the_cpp_core():
    assert re.findall(r'"m-profile-\[([^]"]*)\]"', SOURCE) == [wire.PROFILE]
    assert re.findall(r'"m-help-([^"]*)"', SOURCE) == wire.HELP


def test_every_sketch_opens_the_serial_port_at_the_protocol_baud_rate():
    rates = {p.relative_to(FIRMWARE): re.findall(r"Serial\.begin\((\d+)\)", p.read_text())
             for p in FIRMWARE.rglob("*.ino")}
    assert rates and all(rates.values())
    assert {p: [int(r) for r in found] for p, found in rates.items()} == \
        {p: [wire.BAUD] * len(found) for p, found in rates.items()}

