"""Benchmark: edgekit's ONNX op coverage on the ONNX backend node tests shipped in the `onnx` package.

Corpus: <onnx package>/backend/test/data/node/test_*/ (model.onnx, test_data_set_0/input_*.pb and
output_*.pb TensorProtos), or --data DIR laid out the same way. PyPI's wheels ship that directory
empty; then the same cases come from onnx.backend.test.case.node, the generator of those files. A test is measured when every op in its model is one edgekit's importer
has a handler for (the op_<OpType> methods of onnx_import._Importer, read from the code); its
op is its model's one node, or for the multi-node `_expanded` variants the op of its sibling test.

Each measured test is imported with edgekit.importers.onnx_import.import_onnx(model bytes), run on
the stored inputs with edgekit.reference.run (NHWC: 4-D inputs go in NCHW -> NHWC unless the Graph's
source_layout is NHWC, 4-D outputs come back NHWC -> NCHW, as tests/test_onnx.py does) and compared
with the stored outputs (rtol = atol = 1e-4). Outcomes:

  ok        imports, every output matches
  mismatch  imports, but an output differs (max abs error shown) or has another shape
  refused   a one-line EdgekitError (its message is kept)
  crash     any other exception, at import or at run time: a bug

Node tests pass weights, pads and axes as graph inputs; exporters write them as initializers, which
edgekit needs. So each test with several inputs is measured twice: as shipped, and with every input
after the first made an initializer holding the test's value (columns marked ').

    python bench/onnx_coverage.py [--json] [--op Conv ...] [--data DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from rich.progress import Progress
from rich.table import Table

from edgekit.console import err, out
from edgekit.errors import EdgekitError
from edgekit.importers.onnx_import import _Importer, import_onnx
from edgekit.reference import run

TOL = 1e-4
OUTCOMES = ("ok", "refused", "mismatch", "crash")
# The ops edgekit claims to import: the importer's handlers (op_Dropout is op_Identity's alias).
SUPPORTED_OPS = sorted(name[3:] for name in dir(_Importer) if name.startswith("op_"))
NODE_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


def _array(t) -> np.ndarray:
    return numpy_helper.to_array(t) if isinstance(t, onnx.TensorProto) else np.asarray(t)


def _read_dir(d: Path):
    """A generated test directory: (model bytes, inputs, expected outputs)."""
    def tensors(kind):
        files = sorted((d / "test_data_set_0").glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        return [_array(onnx.TensorProto.FromString(f.read_bytes())) for f in files]
    return (d / "model.onnx").read_bytes(), tensors("input"), tensors("output")


def node_tests(data: Path | None):
    """(test name, ModelProto, loader of (model bytes, inputs, outputs)) for every node test.

    The files under data (or the installed package's node directory) when there are any; PyPI's
    onnx wheels ship that directory empty, so otherwise the same test cases are taken from the
    generator that writes those files (onnx.backend.test.case.node, as `backend-test-tools
    generate-data` does), in memory.
    """
    root = data or NODE_DIR
    dirs = sorted(p.parent for p in root.glob("test_*/model.onnx")) if root.is_dir() else []
    if data and not dirs:
        raise SystemExit(f"no test_*/model.onnx under {data}")
    if dirs:
        for d in dirs:
            yield d.name, onnx.load(str(d / "model.onnx"), load_external_data=False), lambda d=d: _read_dir(d)
        return
    from onnx.backend.test.case import node
    for case in node.collect_testcases(None):
        inputs, outputs = case.data_sets[0]
        yield case.name, case.model, lambda c=case, i=inputs, o=outputs: (
            c.model.SerializeToString(), [_array(t) for t in i], [_array(t) for t in o])


def corpus(data: Path | None, only: set[str] | None):
    """(op, test name, loader) for every node test made only of ops edgekit has handlers for."""
    tests = [(name, [n.op_type for n in model.graph.node], load) for name, model, load in node_tests(data)]
    single = {name: ops[0] for name, ops, _ in tests if len(ops) == 1}
    for name, ops, load in tests:
        if not ops or not set(ops) <= set(SUPPORTED_OPS):
            continue
        # an expanded test is a function body written out: it exercises its sibling's op
        op = single.get(name) or single.get(name.removesuffix("_expanded")) or "+".join(dict.fromkeys(ops))
        if only is None or op in only:
            yield op, name, load


def with_constant_inputs(data: bytes, inputs: list) -> tuple[bytes, list]:
    """The test with every input after the first made an initializer holding the test's value:
    how an exporter writes weights, pads, axes and shapes, which edgekit needs as constants."""
    model = onnx.load_from_string(data)
    inits = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in inits]
    for n, x in zip(names[1:], inputs[1:]):
        model.graph.initializer.append(numpy_helper.from_array(x, n))
    keep = [v for v in model.graph.input if v.name not in names[1:]]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model.SerializeToString(), inputs[:1]


def measure(name: str, data: bytes, inputs: list, expected: list) -> dict:
    """One test's outcome: {"outcome", "detail", "max_abs_err"}."""
    try:
        graph = import_onnx(data, name=name)
    except EdgekitError as e:
        return {"outcome": "refused", "detail": str(e)}
    except Exception as e:  # anything else is a bug in the importer
        return {"outcome": "crash", "detail": f"import: {type(e).__name__}: {e}".splitlines()[0]}
    model = onnx.load_from_string(data)
    inits = {t.name for t in model.graph.initializer}
    onnx_inputs = [v.name for v in model.graph.input if v.name not in inits]
    try:
        if len(onnx_inputs) != len(graph.inputs) or len(inputs) < len(onnx_inputs):
            raise RuntimeError(f"the Graph has {len(graph.inputs)} inputs, the model "
                               f"{len(onnx_inputs)}, the test data {len(inputs)}")
        nchw_in = graph.source_layout != "NHWC"
        feeds = {g: (x.transpose(0, 2, 3, 1) if x.ndim == 4 and nchw_in else x)
                 for g, x in zip(graph.inputs, inputs)}
        out = run(graph, feeds)
        got = [out[t].transpose(0, 3, 1, 2) if out[t].ndim == 4 else out[t] for t in graph.outputs]
    except EdgekitError as e:
        return {"outcome": "refused", "detail": f"run: {e}"}
    except Exception as e:
        return {"outcome": "crash", "detail": f"run: {type(e).__name__}: {e}".splitlines()[0]}
    if len(got) != len(expected):
        return {"outcome": "mismatch", "detail": f"{len(got)} outputs, expected {len(expected)}"}
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, expected)):
        if g.shape != w.shape:
            return {"outcome": "mismatch", "detail": f"output {i} has shape {list(g.shape)}, "
                                                     f"expected {list(w.shape)}"}
        w = w.astype(np.float32)
        err = float(np.max(np.abs(g - w), initial=0.0))
        if not np.allclose(g, w, rtol=TOL, atol=TOL, equal_nan=True):
            return {"outcome": "mismatch", "detail": f"output {i}: max abs error {err:.3g}",
                    "max_abs_err": err}
        worst = max(worst, err)
    return {"outcome": "ok", "detail": "", "max_abs_err": worst}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    ap.add_argument("--op", nargs="*", help="only these ops")
    ap.add_argument("--data", type=Path, help="a node test directory (default: the installed onnx package's)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    with err.status("collecting the node tests"), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the generator's own numpy warnings (casts to float8 etc.)
        tests = list(corpus(args.data, set(args.op) if args.op else None))
    results = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"{len(tests)} node tests", total=len(tests))
        for op, name, load in tests:
            progress.update(task, description=name)
            data, inputs, expected = load()
            shipped = measure(name, data, inputs, expected)
            const = measure(name, *with_constant_inputs(data, inputs), expected) if len(inputs) > 1 else shipped
            results.append({"op": op, "test": name, **shipped, "constant_inputs": const})
    seconds = time.perf_counter() - start

    views = {"shipped": lambda r: r, "constant_inputs": lambda r: r["constant_inputs"]}
    counts = {v: defaultdict(Counter) for v in views}
    for r in results:
        for v, get in views.items():
            counts[v][r["op"]][get(r)["outcome"]] += 1
            counts[v]["total"][get(r)["outcome"]] += 1
    untested = [op for op in SUPPORTED_OPS if op not in counts["shipped"]]
    if args.json:
        print(json.dumps({"onnx_version": onnx.__version__, "tolerance": TOL, "seconds": round(seconds, 1),
                          "supported_ops": SUPPORTED_OPS, "ops_without_tests": untested,
                          "totals": {v: {k: counts[v]["total"][k] for k in OUTCOMES} for v in views}
                          | {"tests": len(results)},
                          "tests": results}, indent=2))
        return 0

    table = Table(title=f"edgekit ONNX import on onnx {onnx.__version__}'s node tests "
                        f"(rtol = atol = {TOL:g}); as shipped | inputs after the first as initializers")
    table.add_column("op")
    table.add_column("tests", justify="right")
    for v in views:
        for k in OUTCOMES:
            table.add_column(k if v == "shipped" else f"{k}'", justify="right")
    ops = sorted(op for op in counts["shipped"] if op != "total") + ["total"]
    for op in ops:
        if op == "total":
            table.add_section()
        row = [str(sum(counts["shipped"][op].values()))]
        row += [str(counts[v][op][k]) for v in views for k in OUTCOMES]
        table.add_row(op, *row, style="bold" if op == "total" else None)
    out.print(table)
    if untested:
        out.print(f"ops with a handler but no node test made only of supported ops: {', '.join(untested)}")
    for v, get in views.items():
        for kind in ("crash", "mismatch"):
            for r in results:
                if get(r)["outcome"] == kind:
                    out.print(f"{kind} ({v}) {r['op']} {r['test']}: {get(r)['detail']}", markup=False,
                              highlight=False, soft_wrap=True)
        reasons = Counter((r["op"], get(r)["detail"].split("; supported:")[0]) for r in results
                          if get(r)["outcome"] == "refused")
        out.print(f"\nrefusals ({v}, {sum(reasons.values())}) by op and message:", markup=False, highlight=False)
        for (op, msg), n in sorted(reasons.items()):
            out.print(f"  {op} x{n}: {msg}", markup=False, highlight=False, soft_wrap=True)
    err.print(f"{len(results)} tests in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
