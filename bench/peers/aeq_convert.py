"""ai-edge-quantizer as a peer: static int8 weights and activations on a float .tflite.

    python aeq_convert.py FLOAT.tflite CALIB.npy OUT.tflite

Calibrates on every sample of CALIB.npy (one at a time, batch 1, the model's input shape) through
the model's serving_default signature, then exports the quantized model. Prints one JSON line
with the phases' times. Quantizer.calibrate keeps AEQ's default range statistic, a moving average
(0.95) of each sample's min/max, not the min/max over all samples that TF, onnxruntime and edgekit
use: ranges come out narrower and outliers clip, which is most of why its output SQNR is lower here.
"""
import json
import sys
import time

t0 = time.perf_counter()
import numpy as np
from ai_edge_litert import interpreter
from ai_edge_quantizer import quantizer, recipe

t_import = time.perf_counter()


def main(model, calib, out):
    x = np.load(calib).astype(np.float32)
    key = list(interpreter.Interpreter(model_path=model).get_signature_runner().get_input_details())[0]
    qt = quantizer.Quantizer(model)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    t_load = time.perf_counter()
    result = qt.calibrate({"serving_default": [{key: x[i:i + 1]} for i in range(len(x))]})
    t_calib = time.perf_counter()
    qt.quantize(result).export_model(out, overwrite=True)
    end = time.perf_counter()
    print(json.dumps({"import_s": t_import - t0, "load_s": t_load - t_import,
                      "calibrate_s": t_calib - t_load, "quantize_s": end - t_calib}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
