"""The Coral USB Accelerator on a Raspberry Pi 4: the Pi's backend plus the Edge TPU plan.

Before anything runs, edgekit.edgetpu.plan says which ops map (compiled by edgetpu_compiler where it
is, else predicted by its rules) and refuses what the Coral cannot run, naming the op. The simulator
takes that split and the USB link and clock asked for; the accelerator runs the compiled model.
"""
from __future__ import annotations

from ..edgetpu.plan import CoralPlan, need_compiled, plan, summary
from ..errors import EdgekitError
from ..profile_report import ProfileReport
from ..tflite_file import TFLiteModel
from .linux import LinuxBoard


class Coral(LinuxBoard):
    accelerator = True
    # The plan judges "mixed" models op by op: a float interface is named, a float op in the middle refused.
    accepts = ("int8", "uint8", "mixed")

    plan: CoralPlan | None = None
    compiled: TFLiteModel | None = None

    @classmethod
    def for_remote(cls, model: TFLiteModel) -> TFLiteModel:
        """The Pi has no edgetpu_compiler (x86-64 only): compile here, send the result."""
        return TFLiteModel(need_compiled(plan(model, model.name)), f"{model.name}_edgetpu")

    def _prepare(self, conversion, progress, usb: int = 3, clock: str = "max", **options) -> None:
        self.plan = plan(self.model, self.model.name)
        if not self.plan.given_compiled and self.model.quantization == "mixed":
            raise EdgekitError("this model is int8 inside but takes or gives float32 at its edges (QUANTIZE/"
                               "DEQUANTIZE on the CPU); edgekit exchanges int8 with its targets: convert it with "
                               "`edgekit convert` for int8 inputs and outputs")
        progress(f"{self.key}: {self.plan.note}")
        if not self.choice.simulated:
            self.compiled = TFLiteModel(need_compiled(self.plan), f"{self.model.name}_edgetpu")
            return
        if self.plan.given_compiled:
            raise EdgekitError("the simulator needs the int8 model from before edgetpu_compiler (this one is already "
                               "compiled, its Edge TPU part opaque): give that model, or run this one on the Coral "
                               "itself (--hw)")
        self.sim_options = {"usb": usb, "clock": clock, "partition": self.plan.partition}

    def check_fit(self) -> None:
        """Nothing to check: the Edge TPU streams what its cache cannot hold, and the plan refused
        what cannot run."""

    def _runs_here(self) -> TFLiteModel:
        return self.compiled

    def verify_outputs(self) -> dict:
        if not self.choice.simulated:
            # a compiled model's edgetpu-custom-op has no reference runtime on the host to compare with
            return {"samples": 0, "max_lsb": 0, "reference": "none (the Edge TPU's compiled op has no host reference)"}
        return super().verify_outputs()

    def _finish(self, report: ProfileReport) -> ProfileReport:
        """The measured report gets the plan's `edgetpu` object (the simulated one has it already)."""
        if report.edgetpu is None:
            report.edgetpu = summary(self.plan.partition)
        report.edgetpu["plan"] = self.plan.note
        if self.plan.compiled_path is not None:
            report.edgetpu["compiled_model"] = str(self.plan.compiled_path)
        return report
