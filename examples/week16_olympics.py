"""Week 16, the AI Olympics, end to end: your submission against two rivals on all three boards.

1. the demo track (8x8 digits shipped with edgekit: no download, no scikit-learn) is written to OUT/tracks/;
2. you train a digits MLP, export it to ONNX and write submission.json (OUT/submissions/you/);
3. `edgekit olympics check` says whether it is valid and fits each board;
4. `edgekit olympics run` runs every submission on the Nano 33 BLE Sense, the XIAO ESP32S3 and the
   Coral (each board when connected, else its simulator, labelled);
5. `edgekit olympics board` ranks them and writes OUT/leaderboard.html.

    python examples/week16_olympics.py [--out out/week16] [--hidden 24] [--json]

Run it again with another --hidden (or your own model in OUT/submissions/you/) and the leaderboard's
history shows both runs.
"""
import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

from edgekit import cli
from edgekit.export.onnx_export import export_onnx_graph
from edgekit.olympics import demo
from edgekit.zoo import digits_mlp


def edgekit(*args: str, quiet: bool = False) -> tuple[int, str]:
    """An `edgekit` command in this process; its stdout (shown unless quiet)."""
    if not quiet:
        print(f"\n$ edgekit {' '.join(args)}", flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(list(args))
    if not quiet:
        print(buf.getvalue(), end="")
    return code, buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/week16", help="folder for the track, submissions and results")
    ap.add_argument("--hidden", type=int, default=24, help="hidden units of your MLP (default 24)")
    ap.add_argument("--json", action="store_true", help="print the leaderboard data as JSON")
    args = ap.parse_args(argv)
    out = Path(args.out)
    track = demo.write_track(out)
    subs = out / "submissions"

    # your team: a model trained in numpy (as in TinyTorch), exported to ONNX; edgekit converts it
    graph, data = digits_mlp(hidden=args.hidden)
    (subs / "you").mkdir(parents=True, exist_ok=True)
    export_onnx_graph(graph, subs / "you" / "model.onnx")
    demo.write_submission(subs / "you", "you", ["int8 by edgekit", f"one hidden layer of {args.hidden}"],
                          baseline={"accuracy": round(data["float_accuracy"], 4)})
    # two rivals: a small int8 model, and a wide one too slow for the Nano
    calib = data["x_train"][:200]
    for team, graph, fmt in (("owls", demo.trained_mlp(32), "int8"), ("bears", demo.trained_mlp(2048, epochs=5), "onnx")):
        if not (subs / team).exists():
            demo.model_file(graph, fmt, subs / team, calib)
            demo.write_submission(subs / team, team, ["int8 PTQ"])

    db = str(out / "results.sqlite")
    edgekit("olympics", "check", str(subs / "you"), "--track", str(track), quiet=args.json)
    code, _ = edgekit("olympics", "run", str(subs), "--track", str(track), "--db", db, quiet=args.json)
    if code:
        return code
    code, text = edgekit("olympics", "board", "--db", db, "--json" if args.json else "--track=demo",
                         quiet=args.json)
    if args.json and code == 0:
        print(json.dumps(json.loads(text), indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
