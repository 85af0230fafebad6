"""edgekit.edgetpu.predict: where parameters go and what counts as "all zeros", on models built by hand
(tests/edgetpu_builders.py), with byte counts worked out from the layer shapes."""
import numpy as np

import edgetpu_builders as eb
from edgekit.edgetpu import predict
from edgekit.edgetpu.rules import MAPPED, UNSPECIFIED
from tflite_builders import OP, _options, fb


def conv_bytes(cout, k, cin):
    return cout * k * k * cin + 4 * cout  # int8 weights, int32 biases


def three_convs() -> bytes:
    """input [1,8,8,4] -> conv1 3x3 to 4 channels -> conv2 3x3 to 16 -> conv3 1x1 to 2."""
    b = eb.Builder()
    x = b.tensor("input", [1, 8, 8, 4])
    c1 = b.conv(x, "conv1", 4)
    c2 = b.conv(c1, "conv2", 16)
    return b.finish([x], [b.conv(c2, "conv3", 2, k=1)])


def test_after_a_spill_a_smaller_op_is_streamed_too():
    """The cache fills in op order until one op's parameters do not fit; from there on everything is
    streamed, even a later op small enough for the room left (coral.ai compiler page; rules.py rule 4)."""
    conv1, conv2, conv3 = conv_bytes(4, 3, 4), conv_bytes(16, 3, 4), conv_bytes(2, 1, 16)
    assert (conv1, conv2, conv3) == (160, 640, 40)
    cache = 300  # conv1 fits; conv2 does not; conv3 would fit beside conv1 (200 <= 300), but comes after the spill
    p = predict(three_convs(), cache_bytes=cache)
    assert [o.param_bytes for o in p.ops] == [conv1, conv2, conv3]
    assert [o.on_chip for o in p.ops] == [True, False, False]
    assert (p.on_chip_bytes, p.off_chip_bytes) == (conv1, conv2 + conv3)
    assert any(f"({conv2 + conv3:,} B) are streamed" in n for n in p.notes)
    # with room for all three, all are cached and nothing is streamed
    q = predict(three_convs(), cache_bytes=conv1 + conv2 + conv3)
    assert [o.on_chip for o in q.ops] == [True, True, True] and (q.on_chip_bytes, q.off_chip_bytes) == (840, 0)
    assert not any("streamed" in n for n in q.notes)


def test_a_constant_two_ops_share_is_cached_once():
    """conv -> ADD w -> ADD w: the one constant tensor w is one copy of parameters, not two."""
    b = eb.Builder()
    x = b.tensor("input", [1, 8, 8, 8])
    c = b.conv(x, "conv", 8)
    w = b.tensor("w", [1, 8, 8, 8], np.int8, np.ones((1, 8, 8, 8)), 0.05)
    y1 = b.tensor("add1", [1, 8, 8, 8])
    b.op(OP.ADD, [c, w], [y1], _options(fb.AddOptionsT))
    y2 = b.tensor("add2", [1, 8, 8, 8])
    b.op(OP.ADD, [y1, w], [y2], _options(fb.AddOptionsT))
    p = predict(b.finish([x], [y2]))
    assert [o.param_bytes for o in p.ops] == [conv_bytes(8, 3, 8), 8 * 8 * 8, 0]
    assert p.on_chip_bytes == conv_bytes(8, 3, 8) + 512 and p.off_chip_bytes == 0


def _concat_const(zero_point, fill) -> bytes:
    """conv -> CONCATENATION with a constant [1,8,8,8] input quantized with `zero_point`, holding `fill`."""
    b = eb.Builder()
    x = b.tensor("input", [1, 8, 8, 8])
    c = b.conv(x, "conv", 8)
    const = b.tensor("pad_channels", [1, 8, 8, 8], np.int8, np.full((1, 8, 8, 8), fill), 0.05, zero_point=zero_point)
    y = b.tensor("concat", [1, 8, 8, 16])
    b.op(OP.CONCATENATION, [c, const], [y], _options(fb.ConcatenationOptionsT, axis=3))
    return b.finish([x], [y])


def test_a_constant_concat_input_of_real_zeros_maps_whatever_its_zero_point():
    """"All zeros" means the real values: an int8 constant with zero point -128 holding -128 everywhere
    is zeros and maps; one holding 0 everywhere is 6.4 everywhere and does not."""
    zeros = predict(_concat_const(-128, -128))
    assert zeros.ops[-1].status == MAPPED and zeros.mapped_ops == 2
    sixes = predict(_concat_const(-128, 0))
    assert sixes.ops[-1].status == UNSPECIFIED and sixes.ops[-1].rule == "concat-constant"
    assert "not all zeros" in sixes.ops[-1].reason


def test_fully_connected_maps_only_with_a_1d_output():
    """FullyConnected keeping a [1, 8, 4] output (keep_num_dims) is refused; the same layer flattened
    first, to [1, 4], maps."""
    def model(shape):
        b = eb.Builder()
        x = b.tensor("input", [1, 8, 8, 8])
        flat = b.reshape(b.conv(x, "conv", 8), "flatten", shape)
        return b.finish([x], [b.dense(flat, "fc", 4, keep_dims=len(shape) > 2)])
    two_d = predict(model([1, 8, 64]))
    assert two_d.ops[-1].status == UNSPECIFIED and two_d.ops[-1].rule == "fc-output"
    assert "output [1, 8, 4] is not 1-D" in two_d.ops[-1].reason and two_d.cpu_ops == ["FULLY_CONNECTED"]
    one_d = predict(model([1, 512]))
    assert one_d.ops[-1].status == MAPPED and one_d.cpu_ops == []
