"""Peer benchmark: edgekit's int8 converter against TensorFlow's, ai-edge-quantizer's and onnxruntime's.

    python bench/peers.py [--models a,b] [--peers tf,aeq,ort] [--repeats 3] [--calib 100]
                          [--work DIR] [--tf-python PATH] [--check] [--json]

Every tool converts the SAME float model with the SAME calibration samples (zoo.calibration_batch,
seed 0, N=--calib):
  edgekit  `python -m edgekit convert FLOAT.tflite --calib calib.npy --val test.npy -o out.tflite`
           (verification on, agreement on the held-out test samples)
  tf       bench/peers/tf_convert.py: the Graph rebuilt in TF, TFLiteConverter full-integer (int8 I/O)
  aeq      bench/peers/aeq_convert.py: ai-edge-quantizer static_wi8_ai8 on FLOAT.tflite
  ort      bench/peers/ort_convert.py: onnxruntime quantize_static, QDQ int8, on edgekit's ONNX export

Measured, per conversion, on a fresh child process (Python start-up and imports included): wall time
from fork to os.wait4, the child's own peak RSS (ru_maxrss) and CPU time (user + system). The child
is forked by bench/peers/launch.py, a tiny interpreter this script starts with Popen and reaps with
os.wait4: a child forked straight from this (large) process would report this process's peak RSS
as its own (Linux carries it over exec); the floor, a child that does nothing, is printed.
Rounds are paired: in each round every tool converts a model back to back (order rotated per
round), and edgekit/peer ratios are taken within the round; the table shows the median over rounds of each tool's time and memory and
the median [min-max] of the per-round ratios. Output fidelity: SQNR (dB) of each int8 model's
dequantized output against the float .tflite's, both run in LiteRT (ORT's QDQ model in
onnxruntime), over held-out samples (seed 1). Growth exponents: log-log least-squares slopes of
time vs the model's MACs and of peak memory vs its activation bytes (float, per sample), across the
models run. Preparation (graphs, float .tflite, .onnx, .npy, the TF spec, and the checks that the
ONNX and TF float models compute what the float .tflite computes) is not timed.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

HERE = Path(__file__).resolve().parent / "peers"
MODELS = ("mobilenet_v1_0.25_96", "ds_cnn_kws", "mobilenet_v2_1.0_224", "vww")
PEERS = ("tf", "aeq", "ort")
PEER_MODULE = {"tf": "tensorflow", "aeq": "ai_edge_quantizer", "ort": "onnxruntime"}
PEER_PACKAGE = {"tf": "tensorflow-cpu", "aeq": "ai-edge-quantizer", "ort": "onnxruntime"}
FLOAT_TOL = 1e-4  # largest |difference| allowed between the ONNX/TF float models and the float .tflite
console = Console(stderr=True)


def build_graph(name: str):
    from edgekit import zoo
    return {"mobilenet_v1_0.25_96": lambda: zoo.mobilenet_v1(alpha=0.25, size=96, channels=3, classes=1000),
            "ds_cnn_kws": zoo.ds_cnn_kws,
            "mobilenet_v2_1.0_224": zoo.mobilenet_v2,
            "vww": lambda: zoo.mobilenet_v1(alpha=0.25, size=96, channels=3, classes=2)}[name]()


# -- preparation (not timed) ----------------------------------------------------------------------
def save_spec(graph, spec_path: Path, weights_path: Path) -> None:
    """The Graph's ops, attrs and constants, for tf_convert.py (which must not import edgekit)."""
    consts = {n: f"c{i}" for i, n in enumerate(n for n, t in graph.tensors.items() if t.is_const)}
    spec = {"inputs": graph.inputs, "outputs": graph.outputs, "input_shape": list(graph.tensors[graph.inputs[0]].shape),
            "consts": consts, "ops": [{"kind": op.kind, "name": op.name, "inputs": op.inputs, "outputs": op.outputs,
                                       "attrs": op.attrs} for op in graph.ops]}
    spec_path.write_text(json.dumps(spec))
    np.savez(weights_path, **{key: graph.tensors[n].data for n, key in consts.items()})


def prepare(name: str, work: Path, n: int, peers: list[str], tf_python: str) -> dict:
    """Write (or reuse from `work`) the model's files and its MACs and activation bytes."""
    p = {k: work / f"{name}{suffix}" for k, suffix in (
        ("float", ".tflite"), ("onnx", ".onnx"), ("calib", "_calib.npy"), ("test", "_test.npy"),
        ("spec", "_spec.json"), ("weights", "_weights.npz"), ("meta", "_meta.json"))}
    meta = json.loads(p["meta"].read_text()) if p["meta"].exists() else {}
    if meta.get("samples") != n:
        from edgekit import zoo
        from edgekit.export.tflite_writer import write_tflite
        from edgekit.sim.layers import layers
        graph = build_graph(name)
        data = write_tflite(graph)
        p["float"].write_bytes(data)
        np.save(p["calib"], zoo.calibration_batch(graph, n, seed=0))
        np.save(p["test"], zoo.calibration_batch(graph, n, seed=1))
        save_spec(graph, p["spec"], p["weights"])
        if importlib.util.find_spec("onnx"):
            from edgekit.export.onnx_export import export_onnx_graph
            export_onnx_graph(graph, p["onnx"])
        meta = {"samples": n, "macs": sum(layer.macs for layer in layers(data)),
                "activation_bytes": sum(graph.nbytes(t) for t in graph.activations()),
                "params": sum(t.data.size for t in graph.tensors.values() if t.is_const), "checks": {}}
    ref = None
    for peer, check in (("ort", check_onnx), ("tf", check_tf)):
        if peer in peers and peer not in meta["checks"]:
            ref = litert_outputs(p["float"], np.load(p["test"])) if ref is None else ref
            meta["checks"][peer] = check(p, ref, tf_python)
    p["meta"].write_text(json.dumps(meta))
    for peer, diff in meta["checks"].items():
        if diff > FLOAT_TOL:
            sys.exit(f"{name}: the {peer} float model differs from the float .tflite by {diff:.3g} "
                     f"(> {FLOAT_TOL}); its conversion would not be comparable; fix bench/peers first")
    return {"paths": p, **meta}


def check_onnx(p: dict, ref: np.ndarray, tf_python: str) -> float:
    """Largest |difference| between the exported ONNX model in onnxruntime and the float .tflite."""
    return float(np.abs(ort_outputs(p["onnx"], np.load(p["test"])) - ref).max())


def check_tf(p: dict, ref: np.ndarray, tf_python: str) -> float:
    """Largest |difference| between tf_convert.py's TF float model and the float .tflite."""
    out = p["test"].with_name(p["test"].stem + "_tf_float.npy")
    subprocess.run([tf_python, str(HERE / "tf_convert.py"), str(p["spec"]), str(p["weights"]), "--float",
                    str(p["test"]), str(out)], check=True, capture_output=True)
    return float(np.abs(np.load(out) - ref).max())


# -- running the converted models -----------------------------------------------------------------
def litert_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's first output on each sample, as float (int8 inputs/outputs (de)quantized)."""
    from ai_edge_litert.interpreter import Interpreter
    from edgekit.runtime.litert import dequantize, quantize_input  # as TFLite's QUANTIZE/DEQUANTIZE do
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for sample in x:
        it.set_tensor(i["index"], quantize_input(sample[None], i))
        it.invoke()
        outs.append(dequantize(it.get_tensor(o["index"]), o))
    return np.concatenate(outs)


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """An ONNX model's (NCHW, as edgekit exports) first output on each NHWC sample, in onnxruntime."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
    return np.concatenate([sess.run(None, {name: np.ascontiguousarray(s[None], np.float32)})[0] for s in x])


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - test)^2) over all samples and outputs."""
    ref, test = ref.astype(np.float64), test.astype(np.float64)
    noise = np.sum((ref - test) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


# -- one command per tool, and measuring a child --------------------------------------------------
def edgekit_cmd(p: dict, out: Path, _tf_python: str) -> list[str]:
    # --val: agreement on the held-out test samples, so edgekit calibrates on all the samples the
    # peers get (without it, it keeps 20% of them out of calibration to measure agreement on)
    return [sys.executable, "-m", "edgekit", "convert", str(p["float"]), "--calib", str(p["calib"]),
            "--val", str(p["test"]), "-o", str(out)]


def tf_cmd(p: dict, out: Path, tf_python: str) -> list[str]:
    return [tf_python, str(HERE / "tf_convert.py"), str(p["spec"]), str(p["weights"]), str(p["calib"]), str(out)]


def aeq_cmd(p: dict, out: Path, _tf_python: str) -> list[str]:
    return [sys.executable, str(HERE / "aeq_convert.py"), str(p["float"]), str(p["calib"]), str(out)]


def ort_cmd(p: dict, out: Path, _tf_python: str) -> list[str]:
    return [sys.executable, str(HERE / "ort_convert.py"), str(p["onnx"]), str(p["calib"]), str(out)]


COMMANDS = {"edgekit": edgekit_cmd, "tf": tf_cmd, "aeq": aeq_cmd, "ort": ort_cmd}
SUFFIX = {"edgekit": ".tflite", "tf": ".tflite", "aeq": ".tflite", "ort": ".onnx"}


def measure(cmd: list[str], log: Path) -> dict:
    """Run cmd as a fresh process; its wall time, its own peak RSS and CPU time (os.wait4).

    The command is forked from launch.py, a tiny interpreter, not from this process: a child's
    ru_maxrss includes the RSS of the process it was forked from (see launch.py), which here is
    hundreds of MB. launch.py is itself started with Popen and reaped with os.wait4.
    """
    result = log.with_suffix(".json")
    result.unlink(missing_ok=True)
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(HERE / "launch.py"), str(result), *cmd],
                                stdout=f, stderr=subprocess.STDOUT)
        _, status, _ = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if not result.exists():
        return {"wall_s": None, "peak_rss_mb": None, "cpu_s": None, "returncode": proc.returncode or -1}
    return json.loads(result.read_text())


def installed(peer: str, tf_python: str) -> bool:
    if peer == "tf" and tf_python != sys.executable:
        return subprocess.run([tf_python, "-c", "import importlib.util as u, sys; "
                               "sys.exit(u.find_spec('tensorflow') is None)"]).returncode == 0
    return importlib.util.find_spec(PEER_MODULE[peer]) is not None


def tool_versions(peers: list[str], tf_python: str) -> dict:
    def v(pkg, python=sys.executable):
        if python != sys.executable:
            r = subprocess.run([python, "-c", f"from importlib.metadata import version; print(version('{pkg}'))"],
                               capture_output=True, text=True)
            return r.stdout.strip() or None
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None
    out = {"edgekit": v("edgekit"), "ai-edge-litert": v("ai-edge-litert"), "numpy": v("numpy")}
    for peer in peers:
        out[PEER_PACKAGE[peer]] = v(PEER_PACKAGE[peer], tf_python if peer == "tf" else sys.executable)
    return out


# -- the benchmark --------------------------------------------------------------------------------
def run_rounds(prepared: dict, tools: list[str], repeats: int, work: Path, tf_python: str) -> list[dict]:
    runs = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("converting", total=repeats * len(prepared) * len(tools))
        for r in range(repeats):
            for model, p in prepared.items():
                order = tools[r % len(tools):] + tools[:r % len(tools)]
                for tool in order:
                    progress.update(task, description=f"round {r + 1}: {model} / {tool}")
                    out = work / f"{model}_{tool}_int8{SUFFIX[tool]}"
                    out.unlink(missing_ok=True)
                    log = work / f"{model}_{tool}_round{r + 1}.log"
                    m = measure(COMMANDS[tool](p["paths"], out, tf_python), log)
                    if m["returncode"] != 0 or not out.exists():
                        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                        console.print(f"[red]{tool} failed on {model} (round {r + 1}, exit {m['returncode']}):[/] "
                                      + " | ".join(tail))
                    else:
                        m["output_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
                    runs.append({"model": model, "tool": tool, "round": r + 1, "position": order.index(tool), **m})
                    progress.advance(task)
    return runs


def fidelity(prepared: dict, tools: list[str], work: Path) -> dict:
    """SQNR (dB) of each tool's last int8 output against the float .tflite, on the held-out samples."""
    out = {}
    for model, p in prepared.items():
        x = np.load(p["paths"]["test"])
        ref = litert_outputs(p["paths"]["float"], x)
        for tool in tools:
            path = work / f"{model}_{tool}_int8{SUFFIX[tool]}"
            if path.exists():
                test = ort_outputs(path, x) if tool == "ort" else litert_outputs(path, x)
                top1 = float((ref.argmax(-1) == test.argmax(-1)).mean())
                out[(model, tool)] = {"sqnr_db": sqnr_db(ref, test), "top1_agreement": top1}
    return out


def slope(x, y) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two distinct x)."""
    if len(set(x)) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def summarize(runs: list[dict], sqnr: dict, prepared: dict, tools: list[str]) -> dict:
    ok = [r for r in runs if r["returncode"] == 0 and "output_sha256" in r]
    rows, exps = [], {}
    for model in prepared:
        for tool in tools:
            mine = [r for r in ok if r["model"] == model and r["tool"] == tool]
            if not mine:
                continue
            row = {"model": model, "tool": tool, "rounds": len(mine),
                   "wall_s": float(np.median([r["wall_s"] for r in mine])),
                   "peak_rss_mb": float(np.median([r["peak_rss_mb"] for r in mine])),
                   "cpu_s": float(np.median([r["cpu_s"] for r in mine])),
                   "deterministic": len({r["output_sha256"] for r in mine}) == 1,
                   **sqnr.get((model, tool), {})}
            if tool != "edgekit":  # edgekit / peer, within each round both succeeded in
                ek = {r["round"]: r for r in ok if r["model"] == model and r["tool"] == "edgekit"}
                for key in ("wall_s", "peak_rss_mb"):
                    ratios = [ek[r["round"]][key] / r[key] for r in mine if r["round"] in ek]
                    if ratios:
                        row[f"{key}_ratio"] = {"median": float(np.median(ratios)), "min": min(ratios), "max": max(ratios)}
                if (model, "edgekit") in sqnr and (model, tool) in sqnr:
                    row["sqnr_db_minus_peer"] = sqnr[(model, "edgekit")]["sqnr_db"] - sqnr[(model, tool)]["sqnr_db"]
            rows.append(row)
    for tool in tools:
        mine = [r for r in rows if r["tool"] == tool]
        exps[tool] = {
            "time_vs_macs": slope([prepared[r["model"]]["macs"] for r in mine], [r["wall_s"] for r in mine]),
            "memory_vs_activation_bytes": slope([prepared[r["model"]]["activation_bytes"] for r in mine],
                                                [r["peak_rss_mb"] for r in mine]),
            "models": [r["model"] for r in mine]}
    return {"rows": rows, "exponents": exps}


def edgekit_check(prepared: dict, work: Path, summary: dict) -> list[dict]:
    """edgekit's own report (--json) next to what this bench measured on the same files."""
    out = []
    for model, p in prepared.items():
        timed = work / f"{model}_edgekit_int8.tflite"
        again = work / f"{model}_edgekit_check.tflite"
        r = subprocess.run(edgekit_cmd(p["paths"], again, "") + ["--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            out.append({"model": model, "error": r.stderr.strip().splitlines()[-1:]})
            continue
        rep = json.loads(r.stdout)
        calib = np.load(p["paths"]["calib"])
        ref, test = litert_outputs(p["paths"]["float"], calib), litert_outputs(again, calib)
        row = next((x for x in summary["rows"] if x["model"] == model and x["tool"] == "edgekit"), {})
        from edgekit import verify  # how many samples its per-layer SQNR used (a budget, by model size)
        n = verify.sqnr_samples(build_graph(model), len(calib)) if hasattr(verify, "sqnr_samples") else 32
        out.append({"model": model,
                    "same_model_as_timed": timed.exists() and
                    hashlib.sha256(timed.read_bytes()).hexdigest() == rep["model_sha256"],
                    "reported_total_s": rep["timings"]["total_s"], "measured_wall_s": row.get("wall_s"),
                    "reported_max_abs_error": rep["agreement"]["max_abs_error"],
                    "measured_max_abs_error": float(np.abs(ref - test).max()),
                    "reported_top1": rep["agreement"].get("top1_agreement"),
                    "measured_top1": float((ref.argmax(-1) == test.argmax(-1)).mean()),
                    "sqnr_samples": n,
                    "reported_output_sqnr_db": rep["layers"][-1]["sqnr_db"] if rep.get("layers") else None,
                    "measured_output_sqnr_db": sqnr_db(ref[:n], test[:n])})
    return out


def _ratio(d: dict | None) -> str:
    return "" if not d else f"{d['median']:.2f} [{d['min']:.2f}-{d['max']:.2f}]"


def show(summary: dict, prepared: dict, skipped: dict, checks: list[dict] | None) -> None:
    out = Console() if Console().is_terminal else Console(width=150)  # piped: don't wrap the table at 80
    t = Table(title="edgekit vs peers (medians over rounds; ratios edgekit/peer: median \\[min-max] of per-round ratios)")
    for col in ("model", "tool", "time s", "cpu s", "peak MB", "SQNR dB", "top-1", "time ratio", "mem ratio", "ΔSQNR dB"):
        t.add_column(col, justify="left" if col in ("model", "tool") else "right")
    for r in summary["rows"]:
        d = r.get("sqnr_db_minus_peer")
        t.add_row(r["model"], r["tool"] + ("" if r["deterministic"] else "*"), f"{r['wall_s']:.2f}",
                  f"{r['cpu_s']:.2f}", f"{r['peak_rss_mb']:.0f}", f"{r['sqnr_db']:.1f}" if "sqnr_db" in r else "",
                  f"{r['top1_agreement']:.2f}" if "top1_agreement" in r else "",
                  _ratio(r.get("wall_s_ratio")), _ratio(r.get("peak_rss_mb_ratio")), "" if d is None else f"{d:+.1f}")
    out.print(t)
    m = Table(title="models")
    for col in ("model", "MACs", "params", "activation KB/sample", "float |ONNX - tflite|", "float |TF - tflite|"):
        m.add_column(col, justify="left" if col == "model" else "right")
    for name, p in prepared.items():
        diffs = [f"{p['checks'][k]:.1e}" if k in p["checks"] else "" for k in ("ort", "tf")]
        m.add_row(name, f"{p['macs']:,}", f"{p['params']:,}", f"{p['activation_bytes'] / 1024:,.0f}", *diffs)
    out.print(m)
    e = Table(title="growth exponents (log-log slopes across models)")
    for col in ("tool", "time vs MACs", "memory vs activation bytes"):
        e.add_column(col, justify="left" if col == "tool" else "right")
    for tool, x in summary["exponents"].items():
        e.add_row(tool, *("" if x[k] is None else f"{x[k]:.2f}" for k in ("time_vs_macs", "memory_vs_activation_bytes")))
    out.print(e)
    out.print(f"peak RSS floor (a child that does nothing, /bin/true): {summary['peak_rss_floor_mb']:.1f} MB")
    for peer, why in skipped.items():
        out.print(f"{peer}: {why}", markup=False)
    if any(not r["deterministic"] for r in summary["rows"]):
        out.print("* the tool's output differed between rounds; SQNR is the last round's")
    for c in checks or []:
        out.print(f"edgekit --json check {c['model']}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                              for k, v in c.items() if k != "model"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, from tf, aeq, ort")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--calib", type=int, default=100, help="calibration samples, also the held-out test samples")
    ap.add_argument("--work", help="folder for prepared files and outputs, kept (default: a temporary folder)")
    ap.add_argument("--tf-python", default=sys.executable, help="interpreter with TensorFlow for the tf child")
    ap.add_argument("--check", action="store_true", help="also run `edgekit convert --json` and compare its report")
    ap.add_argument("--json", action="store_true", help="print all raw numbers and summaries as JSON")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    peers = [p for p in args.peers.split(",") if p]
    bad = [m for m in models if m not in MODELS] + [p for p in peers if p not in PEERS]
    if bad or args.repeats < 1:
        ap.error(f"unknown models/peers {bad}" if bad else "--repeats must be at least 1")
    skipped = {p: "not installed: pip install -e .[peers]" for p in peers if not installed(p, args.tf_python)}
    peers = [p for p in peers if p not in skipped]
    tools = ["edgekit"] + peers
    with tempfile.TemporaryDirectory(prefix="edgekit-peers-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepared = {}
        with console.status("preparing models (not timed) ..."):
            for m in models:
                prepared[m] = prepare(m, work, args.calib, peers, args.tf_python)
        runs = run_rounds(prepared, tools, args.repeats, work, args.tf_python)
        with console.status("SQNR on held-out samples ..."):
            sqnr = fidelity(prepared, tools, work)
        summary = summarize(runs, sqnr, prepared, tools)
        summary["peak_rss_floor_mb"] = measure(["true"], work / "floor.log")["peak_rss_mb"]  # what /bin/true reports
        checks = edgekit_check(prepared, work, summary) if args.check else None
        if args.json:
            print(json.dumps({"versions": tool_versions(peers, args.tf_python), "skipped": skipped,
                              "models": {m: {k: v for k, v in p.items() if k != "paths"} for m, p in prepared.items()},
                              "runs": runs, "summary": summary, "edgekit_check": checks}, indent=2))
        else:
            show(summary, prepared, skipped, checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
