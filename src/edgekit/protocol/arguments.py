"""`edgekit board ...`: its command-line options (imports nothing, so the CLI starts quickly)."""


def add_cli(subparsers) -> None:
    """Adds `edgekit board ...` to the CLI's subparsers; dispatch with run_board(args)."""
    b = subparsers.add_parser("board", help="talk to boards over the serial protocol, or serve a virtual one")
    sub = b.add_subparsers(dest="board_command", required=True, metavar="SUBCOMMAND")
    s = sub.add_parser("serve", help="serve a virtual board on a pseudo-terminal or over RFC 2217 (prints "
                       "the path or URL to open)")
    s.add_argument("--target", required=True, help="nano33ble, esp32s3, rpi4, coral or stm32l4r5")
    s.add_argument("--model", help="int8 .tflite the board runs (default: the stand-in model)")
    s.add_argument("--stand-in", action="store_true", help="run the C++ host harness's stand-in model")
    s.add_argument("--faults", default="", help="fault injection as URL query options, e.g. "
                   "'split=1&drop=0.001&seed=3' (see edgekit/protocol/faults.py)")
    s.add_argument("--label", help="what the simulated sensors show, e.g. wave (edgekit.sim.sensors)")
    s.add_argument("--revision", help="board revision whose sensors to simulate (nano33ble: Rev1 or Rev2)")
    s.add_argument("--rfc2217", type=int, metavar="PORT", help="serve over TCP as an RFC 2217 port instead of "
                   "a pseudo-terminal (0: a free port); open it as rfc2217://HOST:PORT")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on with --rfc2217 (default 127.0.0.1; "
                   "0.0.0.0 serves every network, with no authentication)")
    s.add_argument("--emu", action="store_true", help="serve the emulated board instead (the real firmware and "
                   "TFLite Micro kernels on QEMU's Cortex-M4; needs --model): prints its socket:// URL")
