"""TinyTorch's Embedding (module 11) on the model's input deploys as an int8 GATHER whose indices are
the model's int32 input (token ids): LiteRT and TFLite Micro run it, it agrees with the float model,
and it deploys to the simulated boards with ids kept inside the table."""
import numpy as np
import pytest

import edgekit
import tinytorch_api as tt
from edgekit.errors import UnsupportedError
from edgekit.importers.tinytorch import import_tinytorch
from edgekit.runtime import litert
from edgekit.tflite_file import builtin_name, model_of, tensor_type_name
from edgekit.verify import random_inputs
from platforms import needs_tflm

VOCAB, DIM, SEQ, CLASSES = 50, 8, 6, 4


class TokenClassifier:
    """Embedding(50, 8) -> flatten -> Linear -> Softmax, with seeded weights."""

    def __init__(self):
        np.random.seed(30)
        self.emb = tt.Embedding(VOCAB, DIM)
        self.emb.weight.data = np.random.normal(0, 1, (VOCAB, DIM)).astype(np.float32)
        self.fc = tt.Linear(SEQ * DIM, CLASSES)
        self.softmax = tt.Softmax()

    def forward(self, ids):
        x = self.emb(ids)
        return self.softmax(self.fc(x.reshape(x.shape[0], -1)))

    __call__ = forward


def token_ids(n=300, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (n, SEQ))


@pytest.fixture(scope="module")
def converted():
    model, ids = TokenClassifier(), token_ids()
    return model, ids, edgekit.convert(model, example_input=ids[:1], calibration=ids)


def test_embedding_becomes_an_int8_gather_on_int32_token_ids(converted):
    model, ids, q = converted
    parsed = model_of(q.tflite).parsed
    sub = parsed.subgraphs[0]
    ops = [builtin_name(parsed, op.opcodeIndex) for op in sub.operators]
    assert ops[0] == "GATHER"
    gather = sub.operators[0]
    assert tensor_type_name(sub.tensors[sub.inputs[0]].type) == "int32"
    assert gather.inputs[1] == sub.inputs[0]  # the model's input is the indices
    table, out = sub.tensors[gather.inputs[0]], sub.tensors[gather.outputs[0]]
    assert tensor_type_name(table.type) == tensor_type_name(out.type) == "int8"
    # GATHER copies bytes: its output must mean what the table means
    assert list(table.quantization.scale) == list(out.quantization.scale)
    assert list(table.quantization.zeroPoint) == list(out.quantization.zeroPoint)
    code = parsed.operatorCodes[gather.opcodeIndex]
    assert code.version == 2  # what TFLite's converter writes for int8 GATHER


def test_rows_calibration_never_looked_up_keep_their_values():
    """The gather's output means what the table means, whichever ids calibration happened to use."""
    model = TokenClassifier()
    model.emb.weight.data[VOCAB - 1] = 4.0  # the table's largest values, in a row calibration never reads
    calib = token_ids() % (VOCAB - 1)
    q = edgekit.convert(model, example_input=calib[:1], calibration=calib)
    sub = model_of(q.tflite).parsed.subgraphs[0]
    gather = sub.operators[0]
    table, out = sub.tensors[gather.inputs[0]], sub.tensors[gather.outputs[0]]
    assert list(table.quantization.scale) == list(out.quantization.scale)
    assert list(table.quantization.zeroPoint) == list(out.quantization.zeroPoint)
    assert abs((127 - out.quantization.zeroPoint[0]) * out.quantization.scale[0] - 4.0) < 0.02  # 4.0 is held


@needs_tflm  # its checks include TFLite Micro's run (x86-64 Linux wheels only)
def test_litert_and_tflite_micro_run_it_and_int8_agrees_with_float(converted):
    model, ids, q = converted
    info = q.to_dict()
    assert info["input"]["dtype"] == "int32" and info["input"]["scale"] == 0
    assert info["tflm"]["ran"] and info["tflm"]["max_lsb_vs_litert"] <= 1
    assert info["agreement"]["top1_agreement"] >= 0.95
    test = token_ids(200, seed=1)
    want = model(tt.Tensor(test)).data
    got = q.predict(test)
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95
    assert np.abs(got - want).max() < 0.1


def test_ids_are_fed_as_integers_not_divided_by_a_scale(converted):
    _, ids, q = converted
    it = litert.load(q.tflite)
    detail = it.get_input_details()[0]
    fed = litert.quantize_input(ids[:3].astype(np.float32), detail)
    assert fed.dtype == np.int32 and np.array_equal(fed, ids[:3])


def test_random_test_inputs_stay_inside_the_table(converted):
    x = random_inputs(converted[2].tflite)
    assert x.dtype == np.int32 and x.min() >= 0 and x.max() < VOCAB and len(np.unique(x)) > 10


@pytest.mark.parametrize("board", ["nano33ble", "esp32s3"])
def test_it_deploys_to_the_simulated_boards(converted, board):
    model, ids, q = converted
    if board == "nano33ble":  # its older TFLite Micro applies one scale per dense layer
        q = edgekit.convert(model, example_input=ids[:1], calibration=ids, per_tensor_dense=True)
    report = edgekit.deploy(q, board, force="sim")
    assert report.mode == "simulated" and report.fits
    assert report.outputs_check["max_lsb"] <= 1


def test_an_embedding_elsewhere_keeps_the_refusal():
    class Scaled:
        def __init__(self):
            np.random.seed(30)
            self.emb = tt.Embedding(VOCAB, DIM)
            self.fc = tt.Linear(SEQ * DIM, CLASSES)

        def forward(self, ids):
            x = self.emb(ids * 1)  # the ids are computed, not the model's input
            return self.fc(x.reshape(x.shape[0], -1))

    with pytest.raises(UnsupportedError, match=r"unsupported Embedding applied to something other than the model's "
                                               r"input .*look the vectors up before the model.* in layer 'emb'"):
        import_tinytorch(Scaled(), tt.Tensor(np.arange(SEQ).reshape(1, SEQ)))


def test_token_ids_read_as_numbers_as_well_are_refused():
    class Both:
        def __init__(self):
            np.random.seed(30)
            self.emb = tt.Embedding(VOCAB, DIM)
            self.fc, self.raw = tt.Linear(SEQ * DIM, CLASSES), tt.Linear(SEQ, CLASSES)

        def forward(self, ids):
            x = self.emb(ids)
            return self.fc(x.reshape(x.shape[0], -1)) + self.raw(ids)  # ids as numbers too

    with pytest.raises(UnsupportedError, match=r"unsupported use of the token ids an Embedding looks up as numbers "
                                               r".* in layer 'raw'"):
        import_tinytorch(Both(), tt.Tensor(np.arange(SEQ).reshape(1, SEQ)))


def test_example_ids_outside_the_table_are_refused():
    with pytest.raises(edgekit.EdgekitError, match=r"layer 'emb' \(Embedding\) looks up ids .* from 0 to 49"):
        import_tinytorch(TokenClassifier(), tt.Tensor(np.full((1, SEQ), 0.5)))
