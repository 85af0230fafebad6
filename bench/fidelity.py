"""Benchmark: how close the board simulator comes to published on-device latencies, next to mlsysim.

One row per published measurement. Each row names a board (nano33ble, esp32s3, rpi4, coral,
stm32l4r5), a model that we can build here as an int8 .tflite, the published latency and where it
comes from, and its status:

  fitted             in the calibration set edgekit.sim.fit names: the simulator may be calibrated on it
  held-out           not in that file: the simulator is judged on these (never tune on them)
  held-out (kernel)  a single-kernel timing (ESP-NN's README): the op alone, no interpreter around it
  context            published on the board, but with another runtime than the one the simulator
                     models (e.g. 2019 TFLite without XNNPACK on the Pi 4); shown, not scored

For every row the model is built (or read from ../shared/models when the reference file is there),
then:

  edgekit   edgekit.sim.simulate.simulate(model_bytes, board, arena_in=row's arena_in).latency_ms
            (arena_in "psram" where the source says the arena was in PSRAM, else edgekit places it)
  emulated  the Cortex-M4 rows only (boards with an [emulation] table, when QEMU and the Arm toolchain
            are here): the model's firmware built with the board's flags and run on QEMU's Cortex-M4
            (`edgekit profile --emu`): instructions counted x the fitted cycles per instruction
            (latency.emulated_cycles_per_instruction, fitted by bench/emulated.py --fit on the fitted rows)
  mlsysim   mlsysim.Engine.solve(workload, device, batch_size=1, precision="int8",
            efficiency=0.5)  (mlsysim's defaults, except precision) with
            workload = mlsysim.models.types.CNNWorkload(
                parameters      = params counted from the same .tflite (weights + biases),
                inference_flops = 2 x MACs counted from the same .tflite (conv, depthwise, dense),
                layers          = number of layers with MACs (mlsysim charges a per-layer tax))
            and the result's .latency in ms. mlsysim's Roofline is
            max(FLOPs / (peak x efficiency), bytes / bandwidth) + device dispatch tax + layers x 0.01 ms,
            with bytes = int8 weights x 1.1.

mlsysim devices (mlsysim 0.3.0 registry, used as they are):
  nano33ble -> Hardware.Tiny.nRF52840   same chip (int8 peak 128 MOPS, dispatch 0.5 ms)
  esp32s3   -> Hardware.Tiny.ESP32_S3   same chip (int8 peak 2.4 GOPS, dispatch 1 ms)
  stm32l4r5 -> Hardware.Tiny.STM32F4    STM32F407, the registry's other Cortex-M4F (168 MHz; it has no
                                        int8 rate, so mlsysim falls back to its 168 MFLOP/s peak)
  coral     -> Hardware.Edge.Coral      Edge TPU (4 TOPS, 8 GB/s, dispatch 1 ms; no host/USB model)
  rpi4      -> none in the registry (no Cortex-A device). We build one HardwareNode from the
               Raspberry Pi 4 product brief, the way the registry's YAMLs are written: 4 x Cortex-A72
               at 1.5 GHz, NEON 2 x 128-bit pipes = 16 int8 MAC/cycle/core -> 0.192 TOPS int8,
               96 GFLOP/s fp32 (unused here); LPDDR4-3200 x 32 bit = 12.8 GB/s; 4 GiB. Its name says "derived".
mlsysim's warnings (no int8 rate on STM32F4 and Coral) are silenced: the fallback is documented here.

Models are built with random weights (latency does not depend on their values) and quantized with
a few calibration samples. The Coral rows get the int8 CPU model; simulate() maps it to the Edge TPU.

    python bench/fidelity.py [--json] [--board B ...] [--no-heavy] [--no-emu]

--no-heavy skips Inception v4 (43 M parameters: a few seconds and ~1 GB of memory to build).
Goal: held-out mean |error| within 15 %, and at least twice as close as mlsysim.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgekit
from edgekit import passes, zoo
from edgekit.graph import Graph
from edgekit.inspect import inspect_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models"
MLPERF_V05 = "github.com/mlcommons/tiny_results_v0.5 closed/reference/results/Nucleo-L4R5ZI/{}/performance/results.txt"
CORAL_CSV = ("github.com/google-coral/edgetpu benchmarks/reference/basic_engine_reference_rp4b.csv "
             "(commit 75e67563; Python timeit, 200 runs, random input)")
ESPNN = "github.com/espressif/esp-nn README.md (version with ESP32-P4/S31 tables)"

# -- the published measurements -----------------------------------------------------------------
# ms: the published latency. MLPerf Tiny: 1000 / "Median throughput" (inf./s).
ROWS = [
    # fitted: the calibration set edgekit.sim.fit names
    dict(board="stm32l4r5", model="kws_dscnn", ms=1000 / 5.497, status="fitted",
         source="MLPerf Tiny v0.5 ref, KWS", where=MLPERF_V05.format("kws"),
         conditions="Nucleo-L4R5ZI 120 MHz, TFLM 2.3.1 + CMSIS-NN, mbed-os; median throughput 5.497 inf/s"),
    dict(board="stm32l4r5", model="resnet8", ms=704.2, status="fitted",
         source="MLPerf Tiny v0.5 ref, IC", where=MLPERF_V05.format("ic"),
         conditions="as above; 1000 / median throughput: 704.2 ms"),
    dict(board="esp32s3", model="person_detect", ms=54.0, status="fitted", arena_in="psram",
         source="esp-nn README, model-level", where=ESPNN + "; also esp-tflite-micro README.md, ESP-NN table",
         conditions="240 MHz, invoke() with ESP-NN; the esp-nn README's note says SPIRAM held the arena "
                    "(and 47 ms with internal RAM); esp-tflite-micro's README says internal memory for the "
                    "same 54 ms, which cannot also be true of the 47 ms"),
    dict(board="coral", model="mobilenet_v1_1.0_224", ms=4.2039, status="fitted",
         source="Coral bench rp4b.csv", where=CORAL_CSV,
         conditions="Pi 4 + USB Accelerator (USB 3), mobilenet_v1_1.0_224_quant_edgetpu.tflite"),
    dict(board="coral", model="inception_v4_299", ms=141.197, status="fitted",
         source="Coral bench rp4b.csv", where=CORAL_CSV,
         conditions="Pi 4 + USB Accelerator (USB 3), inception_v4_299_quant_edgetpu.tflite"),

    # held-out: MLPerf Tiny v0.5 reference, the two benchmarks not in the calibration set
    dict(board="stm32l4r5", model="vww_mobilenet_v1_0.25_96x3", ms=1000 / 1.665, status="held-out",
         source="MLPerf Tiny v0.5 ref, VWW", where=MLPERF_V05.format("vww"),
         conditions="Nucleo-L4R5ZI 120 MHz, TFLM 2.3.1 + CMSIS-NN; median throughput 1.665 inf/s"),
    dict(board="stm32l4r5", model="ad_autoencoder", ms=1000 / 99.487, status="held-out",
         source="MLPerf Tiny v0.5 ref, AD", where=MLPERF_V05.format("ad"),
         conditions="as above; median throughput 99.487 inf/s (FC autoencoder, 640-dim input)"),
    # held-out: ESP32-S3, esp-nn README "Model-level performance"
    dict(board="esp32s3", model="person_detect", ms=47.0, status="held-out",
         source="esp-nn README, model-level", where=ESPNN,
         conditions="240 MHz, ESP-NN, invoke(); 'Person detection on ESP32-S3 with internal RAM: 47ms'"),
    dict(board="esp32s3", model="mobilenet_v3_small_224", ms=729.0, status="held-out", arena_in="psram",
         source="esp-nn README, model-level", where=ESPNN,
         conditions="240 MHz, ESP-NN single core, invoke(); arena in 80 MHz octal PSRAM, 64 KB dcache; "
                    "model built here from Keras' MobileNetV3Small layer list, random weights, "
                    "hard-swish as TFLite's HARD_SWISH op"),
    # held-out: Coral USB on the Pi 4 (USB 3), same CSV, other models
    dict(board="coral", model="mobilenet_v2_1.0_224", ms=4.5481, status="held-out",
         source="Coral bench rp4b.csv", where=CORAL_CSV,
         conditions="Pi 4 + USB Accelerator (USB 3), mobilenet_v2_1.0_224_quant_edgetpu.tflite"),
    dict(board="coral", model="inception_v1_224", ms=6.2126, status="held-out",
         source="Coral bench rp4b.csv", where=CORAL_CSV,
         conditions="Pi 4 + USB Accelerator (USB 3), inception_v1_224_quant_edgetpu.tflite"),
    # held-out: Arduino Nano 33 BLE Sense
    dict(board="nano33ble", model="mobilenet_v1_0.25_96x3_6cls", ms=930.0, status="held-out",
         source="lightb0x/arduino_trash_classification", where="github.com/lightb0x/arduino_trash_classification "
         "README.md 'performance' (invoke() timed with millis() in arduino_trash_classification.ino)",
         conditions="Nano 33 BLE Sense 64 MHz, Arduino_TensorFlowLite 2.1.0-ALPHA, AllOpsResolver; "
                    "MobileNet v1 0.25, 96x96x3, 6 classes, int8; 'about 930ms per inference'. The Arduino "
                    "library bundles TFLM's cmsis-nn kernels (a build log in arduino/ArduinoTensorFlowLiteTutorials "
                    "issue 30 compiles kernels/cmsis-nn/conv.cpp), not verified for 2.1.0-ALPHA itself"),

    # context: Pi 4 CPU, same Coral CSV, the non-Edge-TPU models (2019 TFLite inside the Edge TPU
    # Python API: uint8 kernels, no XNNPACK; the simulator models LiteRT + XNNPACK)
    dict(board="rpi4", model="mobilenet_v1_1.0_224", ms=125.966, status="context",
         source="Coral bench rp4b.csv (CPU)", where=CORAL_CSV,
         conditions="Pi 4 CPU, mobilenet_v1_1.0_224_quant.tflite, edgetpu BasicEngine "
                    "(2019 TFLite, no XNNPACK), 20 runs"),
    dict(board="rpi4", model="mobilenet_v2_1.0_224", ms=115.070, status="context",
         source="Coral bench rp4b.csv (CPU)", where=CORAL_CSV,
         conditions="as above, mobilenet_v2_1.0_224_quant.tflite"),
    dict(board="rpi4", model="inception_v1_224", ms=260.970, status="context",
         source="Coral bench rp4b.csv (CPU)", where=CORAL_CSV, conditions="as above, inception_v1_224_quant.tflite"),
    dict(board="rpi4", model="inception_v4_299", ms=2002.75, status="context",
         source="Coral bench rp4b.csv (CPU)", where=CORAL_CSV, conditions="as above, inception_v4_299_quant.tflite"),
]

# held-out (kernel): ESP32-S3 rows of esp-nn's kernel table, "Optimized" ticks at 240 MHz.
# Only the rows whose shapes are unambiguous; "External" means the data sat in PSRAM.
for _model, _ticks, _mem in (("k_conv1x1_10x10x64_64", 331008, "External"),
                             ("k_conv1x1_8x8x16_16", 39022, "External"),
                             ("k_conv3x3_8x8x3_64_valid", 394842, "External"),
                             ("k_conv3x3s2_8x8x16_16_same", 46838, "Internal"),
                             ("k_dw3x3_18x18x16_valid", 184176, "External")):
    ROWS.append(dict(board="esp32s3", model=_model, ms=_ticks / 240e6 * 1e3, status="held-out (kernel)",
                     arena_in="psram" if _mem == "External" else None,
                     source="esp-nn README, kernel table", where=ESPNN,
                     conditions=f"ESP32-S3 240 MHz, {_ticks} ticks for the optimized kernel alone; data {_mem}"))


# -- building models ----------------------------------------------------------------------------
class Net:
    """Builds an IR Graph layer by layer with He-initialised random weights (BatchNorm folded away)."""

    def __init__(self, name: str, shape, seed: int = 0):
        self.g = Graph(name=name)
        self.rng = np.random.default_rng(seed)
        self.x = self.g.add_input("input", shape)
        self.ch = {self.x: shape[-1]}  # channels of every activation, for the next layer's weights
        self.n = 0

    def _name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def _wb(self, name, shape, fan_in, out):
        w = self.rng.normal(0, np.sqrt(2 / fan_in), shape)
        return self.g.add_const(f"{name}/w", w), self.g.add_const(f"{name}/b", self.rng.normal(0, 0.05, out))

    def conv(self, out, k=3, stride=1, act="relu", padding="SAME", x=None):
        x = x or self.x
        kh, kw = (k, k) if isinstance(k, int) else k
        cin = self.ch[x]
        name = self._name("conv")
        w, b = self._wb(name, (out, kh, kw, cin), kh * kw * cin, out)
        self.x = self.g.add_op("conv2d", [x, w, b], name, stride=(stride, stride), padding=padding, activation=act)
        self.ch[self.x] = out
        return self.x

    def dw(self, k=3, stride=1, act="relu6", padding="SAME", x=None):
        x = x or self.x
        c = self.ch[x]
        name = self._name("dw")
        w, b = self._wb(name, (1, k, k, c), k * k, c)
        self.x = self.g.add_op("depthwise_conv2d", [x, w, b], name, stride=(stride, stride),
                               padding=padding, multiplier=1, activation=act)
        self.ch[self.x] = c
        return self.x

    def fc(self, out, act=None, x=None):
        x = x or self.x
        cin = self.ch[x]
        name = self._name("fc")
        w, b = self._wb(name, (out, cin), cin, out)
        self.x = self.g.add_op("fully_connected", [x, w, b], name, activation=act)
        self.ch[self.x] = out
        return self.x

    def op(self, kind, inputs=None, channels=None, **attrs):
        inputs = inputs or [self.x]
        self.x = self.g.add_op(kind, inputs, self._name(kind), **attrs)
        self.ch[self.x] = channels if channels is not None else self.ch.get(inputs[0], 0)
        return self.x

    def const(self, value):
        return self.g.add_const(self._name("c"), np.float32(value))

    def maxpool(self, k, stride, padding="SAME", x=None):
        return self.op("max_pool2d", [x or self.x], kernel=(k, k), stride=(stride, stride), padding=padding)

    def avgpool(self, k, stride, padding="SAME", x=None):
        kh, kw = (k, k) if isinstance(k, int) else k
        return self.op("avg_pool2d", [x or self.x], kernel=(kh, kw), stride=(stride, stride), padding=padding)

    def concat(self, xs):
        return self.op("concat", xs, channels=sum(self.ch[t] for t in xs), axis=3)

    def classifier(self, classes, hw):
        """Global average pool, dense to `classes`, softmax (the ImageNet heads built here)."""
        self.avgpool(hw, 1, padding="VALID")
        self.op("reshape", shape=(1, self.ch[self.x]))
        self.fc(classes)
        return self.op("softmax")

    def done(self) -> Graph:
        self.g.outputs = [self.x]
        passes.optimize(self.g)
        return self.g.finalize()


def ad_autoencoder() -> Graph:
    """MLPerf Tiny anomaly detection: dense 640-128-128-128-128-8-128-128-128-128-640, relu between."""
    n = Net("ad_autoencoder", (1, 640))
    for width in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        n.fc(width, act="relu")
    n.fc(640)
    return n.done()


def resnet8() -> Graph:
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10, 32x32x3), when the reference file is missing."""
    n = Net("resnet8", (1, 32, 32, 3))
    x = n.conv(16)
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        y = n.conv(width, stride=stride, x=x)
        y = n.conv(width, act=None, x=y)
        short = x if stride == 1 else n.conv(width, k=1, stride=stride, act=None, x=x)
        x = n.op("add", [y, short], activation="relu")
    n.avgpool(8, 8, padding="VALID")
    n.op("reshape", shape=(1, 64))
    n.fc(10)
    n.op("softmax")
    return n.done()


def mobilenet_v2(size=224, classes=1001) -> Graph:
    """MobileNetV2 1.0 (Sandler et al. 2018, table 2): inverted residual blocks, relu6, linear bottlenecks."""
    n = Net("mobilenet_v2_1.0", (1, size, size, 3))
    x = n.conv(32, stride=2, act="relu6")
    for t, c, reps, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(reps):
            stride = s if i == 0 else 1
            cin = n.ch[x]
            y = n.conv(cin * t, k=1, act="relu6", x=x) if t != 1 else x
            y = n.dw(stride=stride, x=y)
            y = n.conv(c, k=1, act=None, x=y)
            x = n.op("add", [x, y]) if stride == 1 and cin == c else y
    n.conv(1280, k=1, act="relu6", x=x)
    n.classifier(classes, size // 32)
    return n.done()


def inception_v1(size=224, classes=1001) -> Graph:
    """GoogLeNet as TF-slim's inception_v1 (the Coral model): 3x3 kernels in the '5x5' branch."""
    n = Net("inception_v1", (1, size, size, 3))
    n.conv(64, k=7, stride=2)
    n.maxpool(3, 2)
    n.conv(64, k=1)
    n.conv(192)
    x = n.maxpool(3, 2)

    def mixed(x, b0, b1a, b1, b2a, b2, b3):
        p0 = n.conv(b0, k=1, x=x)
        p1 = n.conv(b1, x=n.conv(b1a, k=1, x=x))
        p2 = n.conv(b2, x=n.conv(b2a, k=1, x=x))
        p3 = n.conv(b3, k=1, x=n.maxpool(3, 1, x=x))
        return n.concat([p0, p1, p2, p3])

    x = mixed(x, 64, 96, 128, 16, 32, 32)
    x = mixed(x, 128, 128, 192, 32, 96, 64)
    x = n.maxpool(3, 2, x=x)
    for cfg in ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
                (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)):
        x = mixed(x, *cfg)
    x = n.maxpool(2, 2, x=x)
    x = mixed(x, 256, 160, 320, 32, 128, 128)
    mixed(x, 384, 192, 384, 48, 128, 128)
    n.classifier(classes, size // 32)
    return n.done()


def inception_v4(size=299, classes=1001) -> Graph:
    """Inception v4 (Szegedy et al. 2016, figures 3-9), about 42.7 M parameters and 12.3 G MACs."""
    n = Net("inception_v4", (1, size, size, 3))
    V = "VALID"
    n.conv(32, stride=2, padding=V)
    n.conv(32, padding=V)
    x = n.conv(64)
    x = n.concat([n.maxpool(3, 2, V, x=x), n.conv(96, stride=2, padding=V, x=x)])
    a = n.conv(96, padding=V, x=n.conv(64, k=1, x=x))
    b = n.conv(64, k=1, x=x)
    b = n.conv(96, padding=V, x=n.conv(64, k=(7, 1), x=n.conv(64, k=(1, 7), x=b)))
    x = n.concat([a, b])
    x = n.concat([n.conv(192, stride=2, padding=V, x=x), n.maxpool(3, 2, V, x=x)])
    for _ in range(4):  # Inception-A
        p0 = n.conv(96, k=1, x=x)
        p1 = n.conv(96, x=n.conv(64, k=1, x=x))
        p2 = n.conv(96, x=n.conv(96, x=n.conv(64, k=1, x=x)))
        p3 = n.conv(96, k=1, x=n.avgpool(3, 1, x=x))
        x = n.concat([p0, p1, p2, p3])
    p0 = n.conv(384, stride=2, padding=V, x=x)  # Reduction-A
    p1 = n.conv(256, stride=2, padding=V, x=n.conv(224, x=n.conv(192, k=1, x=x)))
    x = n.concat([p0, p1, n.maxpool(3, 2, V, x=x)])
    for _ in range(7):  # Inception-B
        p0 = n.conv(384, k=1, x=x)
        p1 = n.conv(256, k=(7, 1), x=n.conv(224, k=(1, 7), x=n.conv(192, k=1, x=x)))
        p2 = n.conv(192, k=1, x=x)
        for w, k in ((192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))):
            p2 = n.conv(w, k=k, x=p2)
        p3 = n.conv(128, k=1, x=n.avgpool(3, 1, x=x))
        x = n.concat([p0, p1, p2, p3])
    p0 = n.conv(192, stride=2, padding=V, x=n.conv(192, k=1, x=x))  # Reduction-B
    p1 = n.conv(320, k=(7, 1), x=n.conv(256, k=(1, 7), x=n.conv(256, k=1, x=x)))
    p1 = n.conv(320, stride=2, padding=V, x=p1)
    x = n.concat([p0, p1, n.maxpool(3, 2, V, x=x)])
    for _ in range(3):  # Inception-C
        p0 = n.conv(256, k=1, x=x)
        t = n.conv(384, k=1, x=x)
        p1 = [n.conv(256, k=(1, 3), x=t), n.conv(256, k=(3, 1), x=t)]
        t = n.conv(512, k=(1, 3), x=n.conv(448, k=(3, 1), x=n.conv(384, k=1, x=x)))
        p2 = [n.conv(256, k=(1, 3), x=t), n.conv(256, k=(3, 1), x=t)]
        p3 = n.conv(256, k=1, x=n.avgpool(3, 1, x=x))
        x = n.concat([p0, *p1, *p2, p3])
    n.classifier(classes, 8)
    return n.done()


def mobilenet_v3_small(size=224, classes=1000) -> Graph:
    """Keras MobileNetV3Small (alpha 1.0), as TFLite converts it: hard_swish is one HARD_SWISH op;
    the squeeze-excite gate's hard_sigmoid = relu6(x + 3) / 6 is ADD (fused RELU6) then MUL."""
    n = Net("mobilenet_v3_small", (1, size, size, 3))

    def hsig(x):
        return n.op("mul", [n.op("add", [x, n.const(3.0)], activation="relu6"), n.const(1 / 6)])

    def act(x, kind):
        return n.op("hard_swish", [x]) if kind == "hs" else x

    def depth(v):  # Keras' _depth: round to a multiple of 8, never below 90 %
        d = max(8, int(v + 4) // 8 * 8)
        return d + 8 if d < 0.9 * v else d

    def conv(out, k, stride, kind, x):
        return act(n.conv(out, k=k, stride=stride, act="relu" if kind == "re" else None, x=x), kind)

    x = conv(16, 3, 2, "hs", n.x)
    for i, (exp, out, k, s, se, kind) in enumerate(
            ((1, 16, 3, 2, True, "re"), (72 / 16, 24, 3, 2, False, "re"), (88 / 24, 24, 3, 1, False, "re"),
             (4, 40, 5, 2, True, "hs"), (6, 40, 5, 1, True, "hs"), (6, 40, 5, 1, True, "hs"),
             (3, 48, 5, 1, True, "hs"), (3, 48, 5, 1, True, "hs"), (6, 96, 5, 2, True, "hs"),
             (6, 96, 5, 1, True, "hs"), (6, 96, 5, 1, True, "hs"))):
        cin = n.ch[x]
        y = conv(depth(cin * exp), 1, 1, kind, x) if i else x
        y = act(n.dw(k=k, stride=s, act="relu" if kind == "re" else None, x=y), kind)
        if se:
            c = n.ch[y]
            g = n.op("mean", [y], axes=(1, 2), keepdims=True)
            g = n.conv(depth(c * 0.25), k=1, act="relu", x=g)
            g = hsig(n.conv(c, k=1, act=None, x=g))
            y = n.op("mul", [y, g])
        y = n.conv(out, k=1, act=None, x=y)
        x = n.op("add", [x, y]) if s == 1 and cin == out else y
    x = conv(576, 1, 1, "hs", x)
    x = n.op("mean", [x], axes=(1, 2), keepdims=True)
    x = conv(1024, 1, 1, "hs", x)
    n.conv(classes, k=1, act=None, x=x)
    n.op("reshape", shape=(1, classes))
    n.op("softmax")
    return n.done()


def kernel(model: str) -> Graph:
    """One op with the shapes of an esp-nn README kernel row."""
    spec = {"k_conv1x1_10x10x64_64": ((1, 10, 10, 64), "conv", 64, 1, 1, "VALID"),
            "k_conv1x1_8x8x16_16": ((1, 8, 8, 16), "conv", 16, 1, 1, "VALID"),
            "k_conv3x3_8x8x3_64_valid": ((1, 8, 8, 3), "conv", 64, 3, 1, "VALID"),
            "k_conv3x3s2_8x8x16_16_same": ((1, 8, 8, 16), "conv", 16, 3, 2, "SAME"),
            "k_dw3x3_18x18x16_valid": ((1, 18, 18, 16), "dw", 16, 3, 1, "VALID")}[model]
    shape, kind, out, k, s, pad = spec
    n = Net(model, shape)
    n.conv(out, k=k, stride=s, act=None, padding=pad) if kind == "conv" else n.dw(k=k, stride=s, act=None, padding=pad)
    return n.done()


def _int8(graph: Graph, samples: int) -> bytes:
    # Only the bytes are simulated; verifying (LiteRT, TFLite Micro) would cost more than the build.
    return edgekit.convert(graph, calibration=zoo.calibration_batch(graph, samples), verify=False).tflite


def _shared_or(file: str, build):
    """The reference .tflite from ../shared/models when present (exact), else our build of it."""
    path = SHARED / file
    if path.exists():
        return path.read_bytes(), f"../shared/models/{file}"
    return _int8(build(), 16), "built (reference file missing)"


# model key -> (how it is built, a function returning int8 .tflite bytes and where they came from)
MODELS = {
    "kws_dscnn": ("MLPerf Tiny DS-CNN", lambda: _shared_or("kws_ref_model.tflite", zoo.ds_cnn_kws)),
    "resnet8": ("MLPerf Tiny ResNet-8", lambda: _shared_or("pretrainedResnet_quant.tflite", resnet8)),
    "person_detect": ("TFLM person_detect (MobileNetV1 0.25, 96x96x1)", lambda: _shared_or(
        "person_detect.tflite", lambda: zoo.mobilenet_v1(0.25, 96, 1, 2))),
    "vww_mobilenet_v1_0.25_96x3": ("zoo.mobilenet_v1(0.25, 96, 3, 2)",
                                   lambda: (_int8(zoo.mobilenet_v1(0.25, 96, 3, 2), 16), "built")),
    "mobilenet_v1_0.25_96x3_6cls": ("zoo.mobilenet_v1(0.25, 96, 3, 6)",
                                    lambda: (_int8(zoo.mobilenet_v1(0.25, 96, 3, 6), 16), "built")),
    "ad_autoencoder": ("FC autoencoder 640-...-640", lambda: (_int8(ad_autoencoder(), 32), "built")),
    "mobilenet_v1_1.0_224": ("zoo.mobilenet_v1(1.0, 224, 3, 1001)",
                             lambda: (_int8(zoo.mobilenet_v1(1.0, 224, 3, 1001), 4), "built")),
    "mobilenet_v2_1.0_224": ("MobileNetV2 1.0, 224, 1001", lambda: (_int8(mobilenet_v2(), 4), "built")),
    "inception_v1_224": ("Inception v1 (slim), 224, 1001", lambda: (_int8(inception_v1(), 4), "built")),
    "inception_v4_299": ("Inception v4, 299, 1001", lambda: (_int8(inception_v4(), 2), "built")),
    "mobilenet_v3_small_224": ("MobileNetV3-Small 1.0, 224, 1000 (approx.)",
                               lambda: (_int8(mobilenet_v3_small(), 4), "built")),
}
for _row in ROWS:
    if _row["model"].startswith("k_"):
        MODELS[_row["model"]] = ("single esp-nn kernel", lambda m=_row["model"]: (_int8(kernel(m), 16), "built"))
HEAVY = {"inception_v4_299"}


# -- the two estimators -------------------------------------------------------------------------
def edgekit_ms(model: bytes, board: str, arena_in: str | None = None) -> float:
    from edgekit.sim.simulate import simulate  # late: the simulator may still be in the making
    return float(simulate(model, board, arena_in=arena_in).latency_ms)


def emulated_ms(model: bytes, board: str, name: str) -> float | None:
    """The emulated board's latency (instructions x fitted cycles per instruction), or None where
    the board cannot be emulated."""
    from edgekit.backends import open_backend
    from edgekit.targets import can_emulate, load_board
    from edgekit.tflite_file import TFLiteModel
    if not can_emulate(load_board(board)):
        return None
    with open_backend(board, force="emu") as b:
        b.load(TFLiteModel(model, name), runs=1)
        return float(b.profile().latency_ms)


def mlsysim_device(board: str):
    from mlsysim import Hardware
    from mlsysim.hardware.types import HardwareNode
    if board == "rpi4":
        return HardwareNode.model_validate({
            "name": "Raspberry Pi 4 (derived)", "release_year": 2019,
            "compute": {"peak_flops": "96 GFLOPs/s", "precision_flops": {"int8": "0.192 TOPS"},
                        "clock_rate": "1.5 GHz"},
            "memory": {"capacity": "4 GiB", "bandwidth": "12.8 GB/s"}})
    return {"nano33ble": Hardware.Tiny.nRF52840, "esp32s3": Hardware.Tiny.ESP32_S3,
            "stm32l4r5": Hardware.Tiny.STM32F4, "coral": Hardware.Edge.Coral}[board]


def mlsysim_ms(stats: dict, board: str) -> float:
    from mlsysim import Engine
    from mlsysim.core.units import Q_
    from mlsysim.models.types import CNNWorkload
    workload = CNNWorkload(name=stats["name"], architecture="CNN", parameters=Q_(stats["params"], "param"),
                           inference_flops=Q_(2 * stats["macs"], "flop"), layers=stats["mac_layers"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "int8 not in precision_flops": the documented fallback
        profile = Engine.solve(workload, mlsysim_device(board), batch_size=1, precision="int8", efficiency=0.5)
    return float(profile.latency.to("ms").magnitude)


def model_stats(name: str, data: bytes) -> dict:
    info = inspect_model(data, name)
    return {"name": name, "params": info["totals"]["params"], "macs": info["totals"]["macs"],
            "mac_layers": sum(1 for op in info["ops"] if op.get("macs"))}


# -- cross-check: the Edge TPU compiler's own cycle estimate --------------------------------------
# A compiled model's executable stores the compiler's estimate of the TPU cycles per call
# (edgekit.edgetpu.executable). It is not a measurement, but it is independent of the calibration
# set, and it tells whether the fitted efficiency (set on MobileNet v1 1.0 at 224, 569 M MACs) holds
# for a 40x smaller model with the same layers. Pairs (model, its compiled self) in ../shared/models.
COMPILED = [("mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v1_0.25_128_quant_edgetpu.tflite")]


def cross_check() -> list[dict]:
    from edgekit.edgetpu import from_compiled_model
    from edgekit.sim.simulate import simulate
    from edgekit.targets import load_board
    coral = load_board("coral")
    hz = coral.num("compute.peak_macs_per_s") / coral.num("compute.peak_macs_per_cycle")  # 500 MHz
    out = []
    for plain, compiled in COMPILED:
        if not (SHARED / plain).exists() or not (SHARED / compiled).exists():
            continue
        compiler = from_compiled_model(SHARED / compiled)["estimated_cycles"]
        r = simulate((SHARED / plain).read_bytes(), "coral")
        tpu_s = sum(l["compute_ms"] for l in r.layers if l["device"] == "edgetpu") / 1e3
        out.append({"model": plain, "compiled": compiled, "compiler_cycles": compiler,
                    "edgekit_cycles": round(tpu_s * hz), "clock_hz": hz,
                    "tpu_macs": sum(l["macs"] for l in r.layers if l["device"] == "edgetpu"),
                    "edgekit_err": err(tpu_s * hz, compiler) if compiler else None})
    return out


# -- the run --------------------------------------------------------------------------------------
def err(pred, published):
    return None if pred is None else 100.0 * (pred - published) / published


def run(boards, heavy: bool, log, verbose: bool = False, emulate: bool = True) -> list[dict]:
    built: dict[str, tuple] = {}
    out = []
    for row in ROWS:
        if boards and row["board"] not in boards:
            continue
        r = {k: row[k] for k in ("board", "model", "status", "source", "where", "conditions")}
        r["arena_in"] = row.get("arena_in")  # as published: "psram" where the source put the arena there
        r["published_ms"] = row["ms"]
        r.update(edgekit_ms=None, edgekit_err=None, emulated_ms=None, emulated_err=None, mlsysim_ms=None,
                 mlsysim_err=None, notes=[])
        key = row["model"]
        if key in HEAVY and not heavy:
            r["notes"].append("skipped (--no-heavy)")
            out.append(r)
            continue
        if key not in built:
            t0 = time.perf_counter()
            try:
                data, origin = MODELS[key][1]()
                built[key] = (data, origin, model_stats(key, data))
            except Exception as e:  # a model we cannot build is reported, not fatal
                built[key] = (None, f"build failed: {type(e).__name__}: {e}", None)
            log(f"built {key} in {time.perf_counter() - t0:.1f} s ({built[key][1]})")
        data, origin, stats = built[key]
        r["model_origin"], r["built_as"] = origin, MODELS[key][0]
        if data is None:
            r["notes"].append(origin)
            out.append(r)
            continue
        r.update(params=stats["params"], macs=stats["macs"])
        try:
            r["edgekit_ms"] = edgekit_ms(data, row["board"], row.get("arena_in"))
        except Exception as e:
            r["notes"].append(f"edgekit: {type(e).__name__}: {str(e)[:120]}")
            if verbose:
                traceback.print_exc()
        if emulate:
            try:
                t0 = time.perf_counter()
                r["emulated_ms"] = emulated_ms(data, row["board"], key)
                if r["emulated_ms"] is not None:
                    log(f"emulated {key} on {row['board']} in {time.perf_counter() - t0:.1f} s")
            except Exception as e:
                r["notes"].append(f"emulated: {type(e).__name__}: {str(e)[:120]}")
        try:
            r["mlsysim_ms"] = mlsysim_ms(stats, row["board"])
            r["mlsysim_device"] = mlsysim_device(row["board"]).name
        except Exception as e:
            r["notes"].append(f"mlsysim: {type(e).__name__}: {str(e)[:120]}")
        r["edgekit_err"] = err(r["edgekit_ms"], r["published_ms"])
        r["emulated_err"] = err(r["emulated_ms"], r["published_ms"])
        r["mlsysim_err"] = err(r["mlsysim_ms"], r["published_ms"])
        out.append(r)
    return out


def summarize(rows) -> dict:
    """Mean |% error| per status group, over the rows where both tools gave an estimate."""
    groups = {}
    for status in ("fitted", "held-out", "held-out (kernel)", "context"):
        both = [r for r in rows if r["status"] == status
                and r["edgekit_err"] is not None and r["mlsysim_err"] is not None]
        mape = lambda k: statistics.fmean(abs(r[k]) for r in both) if both else None
        e, m = mape("edgekit_err"), mape("mlsysim_err")
        groups[status] = {"rows": len(both), "of": sum(r["status"] == status for r in rows),
                          "edgekit_mape": e, "mlsysim_mape": m,
                          # on fitted rows edgekit's error is ~0 by construction: a ratio would say nothing
                          "mlsysim_over_edgekit": (m / e) if e and m is not None and status != "fitted" else None}
        emulated = [r for r in rows if r["status"] == status and r["emulated_err"] is not None]
        groups[status]["emulated"] = {  # the Cortex-M4 rows only: beside edgekit's simulation on the same rows
            "rows": len(emulated), "mape": statistics.fmean(abs(r["emulated_err"]) for r in emulated) if emulated else None,
            "simulated_mape_same_rows": statistics.fmean(abs(r["edgekit_err"]) for r in emulated
                                                         if r["edgekit_err"] is not None) if emulated else None}
    held = groups["held-out"]
    held["goal_met"] = (held["edgekit_mape"] is not None and held["edgekit_mape"] <= 15.0
                        and (held["mlsysim_over_edgekit"] or 0) >= 2.0)
    return groups


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{v:+.0f}%" if pct else (f"{v:.3g}" if v < 10 else f"{v:.1f}")


def render(rows, summary, checks, console: Console):
    t = Table(title="Simulator fidelity: published on-device latency vs edgekit and mlsysim", show_lines=False)
    for col, just in (("board", "left"), ("model", "left"), ("published ms", "right"), ("source", "left"),
                      ("status", "left"), ("edgekit ms", "right"), ("err", "right"), ("emulated ms", "right"),
                      ("err", "right"), ("mlsysim ms", "right"), ("err", "right")):
        t.add_column(col, justify=just, no_wrap=col in ("board", "published ms", "edgekit ms", "emulated ms",
                                                        "mlsysim ms"))
    for r in rows:
        t.add_row(r["board"], r["model"], _fmt(r["published_ms"]), r["source"], r["status"],
                  _fmt(r["edgekit_ms"]), _fmt(r["edgekit_err"], True),
                  _fmt(r["emulated_ms"]), _fmt(r["emulated_err"], True),
                  _fmt(r["mlsysim_ms"]), _fmt(r["mlsysim_err"], True))
    console.print(t)
    s = Table(title="Mean |error| (rows where both tools gave an estimate)")
    for col in ("rows", "edgekit", "mlsysim", "mlsysim / edgekit"):
        s.add_column(col, justify="right")
    s.add_column("group", justify="left")
    for status, g in summary.items():
        pct = lambda v: "-" if v is None else f"{v:.1f}%"
        s.add_row(f"{g['rows']}/{g['of']}", pct(g["edgekit_mape"]), pct(g["mlsysim_mape"]),
                  "-" if g["mlsysim_over_edgekit"] is None else f"{g['mlsysim_over_edgekit']:.1f}x", status)
    console.print(s)
    for status, g in summary.items():
        e = g["emulated"]
        if e["rows"]:
            console.print(f"emulated, {status} Cortex-M4 rows ({e['rows']}): mean |error| {e['mape']:.1f}% "
                          f"(the simulator on the same rows: {e['simulated_mape_same_rows']:.1f}%)")
    console.print(f"goal (held-out within 15 %, at least 2x closer than mlsysim): "
                  f"{'met' if summary['held-out']['goal_met'] else 'not met'}")
    if checks:
        c = Table(title="Cross-check: Edge TPU compute, edgekit's fitted efficiency vs the compiler's own estimate")
        for col in ("model", "TPU MACs", "compiler cycles", "edgekit cycles", "err"):
            c.add_column(col, justify="left" if col == "model" else "right")
        for x in checks:
            c.add_row(x["model"], f"{x['tpu_macs']:,}", f"{x['compiler_cycles']:,}" if x["compiler_cycles"] else "-",
                      f"{x['edgekit_cycles']:,}", _fmt(x["edgekit_err"], True))
        console.print(c)
    notes = [(r["board"], r["model"], n) for r in rows for n in r["notes"]]
    for board, model, note in notes:
        console.print(f"[dim]{board} {model}: {note}[/dim]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the rows and summary as JSON")
    ap.add_argument("--board", action="append", help="only this board (repeatable)")
    ap.add_argument("--no-heavy", action="store_true", help="skip Inception v4 (43 M parameters)")
    ap.add_argument("-v", action="store_true", help="print tracebacks of simulator errors")
    ap.add_argument("--no-emu", action="store_true", help="leave out the emulated column (QEMU builds and runs)")
    args = ap.parse_args(argv)
    err_console = Console(stderr=True)
    from edgekit import emulator
    ok, why = emulator.available()
    if not ok and not args.no_emu:
        err_console.print(f"[dim]no emulated column: {why}[/dim]")
    rows = run(args.board, not args.no_heavy, lambda m: err_console.print(f"[dim]{m}[/dim]"), args.v,
               emulate=ok and not args.no_emu)
    summary = summarize(rows)
    checks = cross_check() if not args.board or "coral" in args.board else []
    if args.json:
        try:
            import mlsysim
            version = mlsysim.__version__
        except ImportError:  # the mlsysim column then holds each row's note instead
            version = None
        print(json.dumps({"mlsysim_version": version, "rows": rows, "summary": summary,
                          "cross_check": checks}, indent=1))
    else:
        # a pipe or CI log gets rich's 80 columns by default: too narrow for nine columns
        console = Console()
        render(rows, summary, checks, console if console.is_terminal else Console(width=180))


if __name__ == "__main__":
    main()
