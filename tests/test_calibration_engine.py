"""The calibration and verification engine: LiteRT runs the float and int8 models one sample at a
time with every activation handed back; what it measures must equal what the numpy reference
computes, and its memory must not grow with the number of samples."""
import tracemalloc

import numpy as np
import pytest

from edgekit import reference, zoo
from edgekit.export.tflite_writer import write_tflite
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.scheme import quantize_graph
from edgekit.runtime import litert
from edgekit.verify import SQNR_SAMPLES, per_layer_sqnr, sqnr_samples, tflm_samples

import ir_models

BUILDS = [ir_models.cnn, ir_models.ds_block, ir_models.residual]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_ranges_are_the_numpy_references(build, method):
    graph = build()
    x = ir_models.calibration(graph, 48)
    ours = calibrate(graph, x, method)
    if method == "minmax":
        values = reference.run(graph, {graph.inputs[0]: x}, keep=True)
        want = {t: (float(values[t].min()), float(values[t].max())) for t in graph.activations()}
    else:  # the histogram methods clip inside the min/max, never outside
        want = calibrate(graph, x, "minmax")
    assert set(ours) == set(graph.activations())
    for t, (lo, hi) in want.items():
        tol = 1e-4 * max(1.0, abs(lo), abs(hi))
        if method == "minmax":
            assert ours[t] == pytest.approx((lo, hi), abs=tol), t
        else:
            assert lo - tol <= ours[t][0] <= ours[t][1] <= hi + tol, t


def _peak_calibrating(graph, samples) -> int:
    tracemalloc.start()
    try:
        calibrate(graph, samples)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_samples():
    graph = zoo.mobilenet_v1(alpha=0.25, size=96, channels=3)
    per_sample = sum(graph.nbytes(t) for t in graph.activations())  # ~1.3 MB of activations per sample
    few, many = zoo.calibration_batch(graph, 8), zoo.calibration_batch(graph, 160)
    _peak_calibrating(graph, few)  # first load (LiteRT, caches) outside the comparison
    grown = _peak_calibrating(graph, many) - _peak_calibrating(graph, few)
    # 152 more samples may add their outputs (8 bytes each here), never their activations
    assert grown < 2 * per_sample, f"calibration memory grew by {grown:,} bytes for 152 more samples"


def _sqnr(ref, test) -> float:
    ref = ref.astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - test) ** 2))


@pytest.mark.parametrize("build", BUILDS)
def test_per_layer_sqnr_is_the_direct_computation(build):
    """Streaming float32 sums over samples give what float64 arithmetic on every tensor of every
    sample at once gives, against the numpy reference: exactly for the int8 kernels the engine runs
    (XNNPACK), and within 2 dB for LiteRT's built-in kernels, which round some values differently."""
    graph = build()
    x = ir_models.calibration(graph, 16)
    quant = quantize_graph(graph, calibrate(graph, x))
    ours = {row["tensor"]: row["sqnr_db"] for row in per_layer_sqnr(graph, quant, x)}
    floats = reference.run(graph, {graph.inputs[0]: x}, keep=True)
    names = [op.outputs[0] for op in graph.ops]
    observed = [t for t in graph.outputs] + [t for t in names if t not in graph.outputs]  # the writer's order
    outputs, _ = litert.run(write_tflite(graph, quant, observe=True), x)
    for name, deq in zip(observed, outputs):
        assert ours[name] == pytest.approx(_sqnr(floats[name], deq), abs=0.05), name
    tflite = write_tflite(graph, quant)
    details = {d["name"]: d for d in litert.load(tflite, preserve_all=True).get_tensor_details()}
    _, inter = litert.run(tflite, x, tensors=[details[n]["index"] for n in names])
    for name in names:
        scale, zp = details[name]["quantization"]
        deq = (inter[details[name]["index"]].astype(np.float64) - zp) * scale
        assert ours[name] == pytest.approx(_sqnr(floats[name], deq), abs=2.0), name


def test_verification_work_is_bounded_on_big_models():
    small = ir_models.cnn()
    assert sqnr_samples(small, 100) == SQNR_SAMPLES
    assert sqnr_samples(small, 5) == 5
    big = zoo.mobilenet_v2()
    assert 1 <= sqnr_samples(big, 100) <= 4  # ~6.7M activation values per sample
    int8 = write_tflite(big, quantize_graph(big, calibrate(big, zoo.calibration_batch(big, 2))))
    assert tflm_samples(int8) == 1  # ~300M MACs: one sample in TFLite Micro's reference kernels
    assert tflm_samples(ir_models.int8(small)) == 8


def test_inputs_are_quantized_as_tflite_quantize_does():
    """x / scale rounded half away from zero, then the zero point added (TfLiteRound = std::round):
    on a tie numpy's rint would round to even and differ by one step."""
    detail = {"dtype": np.int8, "quantization": (0.5, -128)}
    x = np.array([0.25, -0.25, 0.75, 1.25, -1.25, 63.9, 200.0], np.float32)
    assert litert.quantize_input(x, detail).tolist() == [-127, -128, -126, -125, -128, 0, 127]
