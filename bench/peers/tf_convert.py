"""TensorFlow's converter as a peer: rebuild an edgekit Graph in TF, then full-integer quantize it.

    python tf_convert.py SPEC.json WEIGHTS.npz CALIB.npy OUT.tflite        int8 TFLite (timed child)
    python tf_convert.py SPEC.json WEIGHTS.npz --float X.npy OUT.npy       the TF float outputs on X

SPEC.json and WEIGHTS.npz are written by bench/peers.py (save_spec) from the Graph: ops with their
attrs, constants as arrays named c0, c1, ... Layouts are the Graph's (see edgekit/graph.py); this
script imports only numpy and TensorFlow, so its start-up is TensorFlow's alone. Prints one JSON line
with the phases' times.
"""
import json
import sys
import time

t0 = time.perf_counter()
import numpy as np
import tensorflow as tf

t_import = time.perf_counter()


def _act(y, activation):
    if activation == "relu":
        return tf.nn.relu(y)
    if activation == "relu6":
        return tf.nn.relu6(y)
    return y


def _op(op, x, consts):
    """One Graph op in TF; x are its inputs (tensors or constants)."""
    k, a = op["kind"], op["attrs"]
    if k == "conv2d":  # [O, kh, kw, I] -> HWIO
        w = tf.constant(np.transpose(x[1], (1, 2, 3, 0)))
        return _act(tf.nn.conv2d(x[0], w, a["stride"], a["padding"]) + x[2], a.get("activation"))
    if k == "depthwise_conv2d":  # [1, kh, kw, C*M] -> [kh, kw, C, M]; output channel c*M + m in both
        m = a.get("multiplier", 1)
        w = x[1][0].reshape(x[1].shape[1], x[1].shape[2], -1, m)
        y = tf.nn.depthwise_conv2d(x[0], tf.constant(w), [1, *a["stride"], 1], a["padding"])
        return _act(y + x[2], a.get("activation"))
    if k == "fully_connected":
        flat = tf.reshape(x[0], [-1, x[1].shape[1]])
        return _act(tf.matmul(flat, tf.constant(x[1].T)) + x[2], a.get("activation"))
    if k == "max_pool2d":
        return tf.nn.max_pool2d(x[0], a["kernel"], a["stride"], a["padding"])
    if k == "avg_pool2d":  # TF's SAME average excludes the padding, as TFLite's does
        return tf.nn.avg_pool2d(x[0], a["kernel"], a["stride"], a["padding"])
    if k == "mean":
        return tf.reduce_mean(x[0], axis=a["axes"], keepdims=a.get("keepdims", True))
    if k == "add":
        return _act(tf.add(x[0], x[1]), a.get("activation"))
    if k == "mul":
        return _act(tf.multiply(x[0], x[1]), a.get("activation"))
    if k == "concat":
        return tf.concat(x, axis=a["axis"])
    if k == "pad":
        return tf.pad(x[0], a["pads"])
    if k == "reshape":
        return tf.reshape(x[0], [-1, *a["shape"][1:]])
    if k == "softmax":
        return tf.nn.softmax(x[0] * a.get("beta", 1.0))
    if k == "relu":
        return tf.nn.relu(x[0])
    if k == "relu6":
        return tf.nn.relu6(x[0])
    if k == "sigmoid":
        return tf.sigmoid(x[0])
    if k == "tanh":
        return tf.tanh(x[0])
    if k == "hard_swish":
        return x[0] * tf.nn.relu6(x[0] + 3) / 6
    raise SystemExit(f"tf_convert: no TF mapping for op kind '{k}'")


def build(spec_path, weights_path):
    """A tf.function computing the Graph, batch 1 (the shape every converter here is given)."""
    spec = json.load(open(spec_path))
    w = np.load(weights_path)
    consts = {name: w[key] for name, key in spec["consts"].items()}
    shape = spec["input_shape"]

    @tf.function(input_signature=[tf.TensorSpec([1, *shape[1:]], tf.float32, name="input")])
    def model(inp):
        values = {spec["inputs"][0]: inp}
        for op in spec["ops"]:
            args = [values[t] if t in values else consts[t] for t in op["inputs"]]
            values[op["outputs"][0]] = _op(op, args, consts)
        return values[spec["outputs"][0]]

    return model


def main(argv):
    model = build(argv[0], argv[1])
    t_build = time.perf_counter()
    if argv[2] == "--float":
        x = np.load(argv[3]).astype(np.float32)
        np.save(argv[4], np.concatenate([model(x[i:i + 1]).numpy() for i in range(len(x))]))
        return
    calib = np.load(argv[2]).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    with open(argv[3], "wb") as f:
        f.write(data)
    end = time.perf_counter()
    print(json.dumps({"import_s": t_import - t0, "build_s": t_build - t_import, "convert_s": end - t_build}))


if __name__ == "__main__":
    main(sys.argv[1:])
