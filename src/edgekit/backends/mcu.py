"""A microcontroller (Nano 33 BLE Sense, XIAO ESP32S3, STM32L4R5): TFLite Micro firmware built
around the model, flashed with arduino-cli (and esptool), and driven over its serial port. With
--emu, the same firmware and the real TFLite Micro kernels run on QEMU's Cortex-M4 instead
(edgekit.emulator), driven over the same protocol; its clock counts instructions."""
from __future__ import annotations

from pathlib import Path

from .. import emulator
from ..errors import EdgekitError
from ..profile_report import ProfileReport
from ..runtime.tflm import run_tflm, tflm_available
from ..sim import counts
from ..sketch.build import build_and_flash
from ..sketch.generate import generate_project
from ..tflite_file import per_channel_dense
from ..verify import random_inputs
from ..pi.remote import deploy_remote
from ..protocol import BoardClient
from ..protocol.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S
from ..protocol.wire import VIRTUAL_FIRMWARE
from .base import PROBE_S, Backend

BUILD_DIR = Path("edgekit-build")


class Microcontroller(Backend):
    image: "emulator.Image | None" = None
    lab_pc: dict | None = None
    emulation: "emulator.Emulation | None" = None

    def _prepare(self, conversion: dict | None, progress, measure_arena: bool = True, **options) -> None:
        """measure_arena: run TFLite Micro here once for its exact arena (else the planner's, unless
        conversion already measured it)."""
        dense = per_channel_dense(self.model.parsed) if self.board.per_tensor_dense else []
        if dense:
            raise EdgekitError(f"the dense layer '{dense[0]}' has one weight scale per output, which TFLite Micro on "
                               f"the {self.board.name} applies as one (wrong outputs): convert the float model "
                               "with `edgekit convert --per-tensor-dense` (edgekit deploy does it from a float model)")
        self.host_arena = host_arena(self.model, conversion if measure_arena else None, measure_arena)
        # a board on a lab place: {"host", "device", "python"} of the lab PC it is plugged into
        self.lab_pc = options.get("lab_pc")

    def _flash_board(self) -> None:
        port = self.choice.port or self.choice.connection.device
        if "://" in port:
            return self._flash_over_network(port)
        if self._runs_this_model(port):
            return  # flashed with this model already: no build
        out = BUILD_DIR / f"{self.key}_{self.model.sha256[:8]}"
        project = generate_project(self.model, self.board, out, self.host_arena)
        result = build_and_flash(project, self.key, port=port)
        self._connect(result.port)

    def _flash_over_network(self, port: str) -> None:
        """A board on another machine (a labgrid place). A virtual board takes the model over the link.
        A real one is flashed on the lab PC it is plugged into, by `edgekit deploy` run there over
        ssh (lab_pc: its host and device): neither bootloader can be reached through RFC 2217 (the
        Nano's bossac needs the USB device; esptool refuses remote ports for the ESP32-S3's native
        USB). One connection where it can: opening and closing one took 0.86 s through labgrid's
        ser2net (bench/olympics.py --lab-only)."""
        where = port.split("?")[0]
        # a port that cannot be opened (the place's exporter gone) raises BoardUnreachable: the board is lost
        client = BoardClient(port, timeout=PROBE_S, retries=0)
        try:
            info = client.info()
        except EdgekitError:  # another sketch, or a board in its bootloader
            info = {}
        client.timeout, client.retries = DEFAULT_TIMEOUT_S, DEFAULT_RETRIES  # a board that answers: the usual patience
        if info.get("model_sha256") == self.model.sha256:
            return self._connect(port, client)
        if str(info.get("firmware", "")).startswith(VIRTUAL_FIRMWARE):
            self.progress(f"{self.key}: sending the model to the virtual board at {where}")
            client.flash_virtual(self.model.data)
            return self._connect(port, client)
        client.close()  # the lab PC's ser2net lets go of the device, for the flasher there
        lab_pc = self.lab_pc or {}
        if not lab_pc.get("device"):
            raise EdgekitError(f"the board at {where} does not run this model and cannot be flashed over the network: "
                               f"deploy it on the machine it is plugged into (`edgekit deploy MODEL --target "
                               f"{self.key}`), or reach it with --lab labgrid, which does that over ssh")
        self.progress(f"{self.key}: flashing it on {lab_pc['host']} ({lab_pc['device']}) over ssh")
        deploy_remote(self.model.data, self.key, host=lab_pc["host"], runs=1, python=lab_pc.get("python", "python3"),
                      extra=["--port", lab_pc["device"]])
        self._connect(port)

    def _emulate(self) -> None:
        ok, why = emulator.available(self.board)
        if not ok:
            raise EdgekitError(f"--emu: {why}")
        out = BUILD_DIR / f"{self.key}_{self.model.sha256[:8]}_emulated"
        self.image = emulator.build_image(self.model, self.board, out, self.host_arena, progress=self.progress)
        self.progress(f"{self.key}: starting QEMU")
        self.emulation = emulator.start(self.image)
        self._connect(self.emulation.port)

    @property
    def verify_samples(self) -> int:
        return 2 * super().verify_samples if self.choice.emulated else super().verify_samples  # no slow link

    def _take_timing(self, report: ProfileReport, latency_us: float, layer_us: dict[int, int]) -> None:
        if not self.choice.emulated:
            return super()._take_timing(report, latency_us, layer_us)
        # the emulated board's clock counts instructions (one per virtual ns, QEMU -icount shift=0)
        instructions = int(round(latency_us))
        for i, layer in enumerate(report.layers):
            if i in layer_us:
                layer["instructions"] = layer_us[i]
        cpi = self.board.num("latency.emulated_cycles_per_instruction", None)
        clock = self.board.clock_hz
        if cpi is not None:
            report.latency_ms = report.latency_ms_p90 = instructions * cpi / clock * 1e3
            for layer in report.layers:
                if "instructions" in layer:
                    layer["latency_ms"] = layer["instructions"] * cpi / clock * 1e3
            how = (f"{instructions:,} instructions x {cpi:g} cycles per instruction "
                   f"({self.board.source('latency.emulated_cycles_per_instruction')}) / {clock / 1e6:g} MHz")
        else:
            how = f"simulated: {self.board.name} has no fitted cycles per instruction for its instruction counts"
        image = self.image
        counts.save(self.key, self.model.sha256, self.board.text("emulation.cflags"), instructions,
                    [layer.get("instructions") for layer in report.layers])
        report.flash_bytes, report.ram_bytes, report.arena_bytes = image.flash_bytes, image.ram_bytes, image.arena_bytes
        used = (report.board_info or {}).get("arena_used")
        report.arena_source = f"allocated by the firmware; TFLite Micro on the 32-bit core uses {used:,} B" \
            if used else "allocated by the firmware"
        report.outputs_by = "TFLite Micro and CMSIS-NN on QEMU's Cortex-M4 (the firmware's own kernels)"
        report.extra.update(instructions=instructions, latency_source=how, image={
            "elf": str(image.path), "text_bytes": image.text_bytes, "data_bytes": image.data_bytes,
            "bss_bytes": image.bss_bytes, "flags": image.flags, "flags_source": image.flags_source,
            "library": image.library})

    def close(self) -> None:
        super().close()
        if self.emulation is not None:
            self.emulation.close()
            self.emulation = None


def host_arena(model, conversion: dict | None, measure: bool = True) -> int | None:
    """TFLite Micro's measured arena on this machine, if TFLM runs here (None: the planner's)."""
    if conversion and conversion.get("tflm", {}).get("ran"):
        return conversion["tflm"]["arena_bytes"]
    if not measure or not tflm_available()[0] or model.quantization != "int8":
        return None
    try:
        return run_tflm(model, [random_inputs(model)[:1]]).arena_bytes
    except EdgekitError:
        return None  # the planner still gives the arena; TFLM's refusal shows up at deploy
