"""onnxruntime's static quantization as a peer: QDQ int8 (weights per channel) on an .onnx model.

    python ort_convert.py FLOAT.onnx CALIB.npy OUT.onnx

CALIB.npy is in the Graph's layout (NHWC); edgekit's ONNX export is NCHW, so 4-D samples are
transposed here. Min/max calibration over every sample, batch 1, activations and weights int8
(per channel, as the TFLite converters quantize conv weights). Prints one JSON line with times.
"""
import json
import sys
import time

t0 = time.perf_counter()
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

t_import = time.perf_counter()


class Samples(CalibrationDataReader):
    def __init__(self, name, x):
        self.items = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def main(model, calib, out):
    x = np.load(calib).astype(np.float32)
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    name = onnx.load(model, load_external_data=False).graph.input[0].name
    quantize_static(model, out, Samples(name, x), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    end = time.perf_counter()
    print(json.dumps({"import_s": t_import - t0, "quantize_s": end - t_import}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
