"""A Raspberry Pi 4: edgekit runs on the Pi itself, and the model runs in this process with LiteRT
(edgekit.pi); from a laptop, `--host` reaches the Pi over ssh (edgekit.pi.remote)."""
from __future__ import annotations

import numpy as np

from ..pi import infer, profile_on_board
from ..profile_report import ProfileReport
from .base import Backend


class LinuxBoard(Backend):
    accelerator = False     # the Coral's backend runs its model on the Edge TPU

    def _runs_here(self):
        """The model this machine runs (the Coral's is the compiled one)."""
        return self.model

    def _flash_board(self) -> None:
        """Nothing to flash: the Pi runs the model in this process."""

    def _infer_on_board(self, inputs: np.ndarray) -> list[np.ndarray]:
        return infer(self._runs_here().data, inputs, accelerator=self.accelerator, usb=self.choice.connection)

    def _profile_on_board(self) -> ProfileReport:
        return profile_on_board(self._runs_here().data, self.board, runs=self.runs, connection=self.choice.connection,
                                duration_s=self.duration_s, simulation=self.simulation if not self.accelerator
                                else None)
