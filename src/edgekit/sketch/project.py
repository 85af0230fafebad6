"""A generated sketch folder, as the generator writes it and the builder reads it back: its marker
file (.edgekit-project.json) says which board, model and arena it was made for."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import EdgekitError

MARKER = ".edgekit-project.json"


@dataclass
class ArenaBudget:
    """EDGEKIT_ARENA_BYTES and where each term comes from."""
    board: str
    host_bytes: int            # TFLM's minimum arena on this machine (x86-64)
    host_source: str
    scratch_bytes: int         # the board's optimized kernels beyond the reference kernels
    scratch_source: str
    margin_bytes: int          # memory.arena_margin_bytes
    margin_source: str
    total_bytes: int           # round_up_16(host + scratch + margin)
    in_psram: bool = False
    placement: str = ""        # why SRAM or PSRAM, with the numbers

    @property
    def sum_bytes(self) -> int:
        return self.host_bytes + self.scratch_bytes + self.margin_bytes


@dataclass
class Project:
    """A generated sketch folder."""
    path: Path
    board: str
    sketch: Path                     # path / f"{path.name}.ino"
    model_sha256: str
    model_bytes: int
    ops: list[str]
    methods: list[str]
    arena: ArenaBudget
    files: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"], d["sketch"] = str(self.path), str(self.sketch)
        return d

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        """An existing generated project folder (read back from its marker file)."""
        path = Path(path)
        try:
            data = json.loads((path / MARKER).read_text())
            return cls(path=path, board=data["board"], sketch=path / f"{path.name}.ino",
                       model_sha256=data["model_sha256"], model_bytes=data["model_bytes"], ops=data["ops"],
                       methods=data["methods"], arena=ArenaBudget(**data["arena"]), files=data["files"])
        except (OSError, ValueError, KeyError, TypeError):
            raise EdgekitError(f"{path} is not an edgekit firmware project (no readable {MARKER}); "
                               "generate it with edgekit.sketch.generate_project") from None
