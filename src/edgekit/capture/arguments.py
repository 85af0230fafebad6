"""`edgekit capture`, `sensors` and `plot`: their command-line options (imports nothing, so the CLI
starts quickly)."""


def add_cli(sub) -> None:
    c = sub.add_parser("capture", help="record labelled sensor data from a board (or its simulation) into a data set")
    c.add_argument("--target", required=True, help="nano33ble or esp32s3")
    c.add_argument("--sensor", required=True, help="imu, microphone, temperature, pressure, light, camera, adc "
                   "(edgekit sensors --target T lists them)")
    c.add_argument("--rate", type=float, help="samples per second (camera: stills per second); default: the "
                   "microphone's 16000, 100 for the IMU, the fastest for slow sensors")
    c.add_argument("--seconds", type=float, default=2.0, help="length of each recording (default 2)")
    c.add_argument("--label", required=True, help="what is recorded, e.g. wave; names the folder and files")
    c.add_argument("--count", type=int, default=1, help="number of recordings (default 1)")
    c.add_argument("-o", "--output", default="data", help="data set folder (default data/)")
    c.add_argument("--channels", help="comma-separated channels to record, e.g. ax,ay,az,gx,gy,gz (default all)")
    c.add_argument("--format", choices=("ei-json",), help="also write Edge Impulse data-acquisition JSON")
    c.add_argument("--jpeg", action="store_true", help="camera stills as JPEG (default PNG)")
    c.add_argument("--plot", action="store_true", help="also draw each recording into <folder>/plots/")
    c.add_argument("--seed", type=int, default=0, help="seed of the simulated signals (default 0)")
    c.add_argument("--revision", help="nano33ble board revision, Rev1 or Rev2: simulated (default Rev1), or the "
                   "board to --flash (required there)")
    c.add_argument("--countdown", type=float, help="seconds of countdown before each recording (default 3 on a "
                   "board, 0 simulated)")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--hw", action="store_true", help="use the connected board, fail if there is none")
    how.add_argument("--sim", action="store_true", help="simulate the board even if one is connected")
    c.add_argument("--port", help="a serial port or sim:// URL to capture from (instead of finding the board)")
    c.add_argument("--flash", action="store_true", help="first build and flash edgekit's firmware with the board's "
                   "sensors (arduino-cli; the Nano needs --revision)")
    c.add_argument("--json", action="store_true", help="print the recordings' manifest entries as JSON")

    s = sub.add_parser("sensors", help="a board's sensors: channels, units, scales and stream rates")
    s.add_argument("--target", required=True, help="nano33ble or esp32s3")
    s.add_argument("--json", action="store_true")

    p = sub.add_parser("plot", help="draw a recording (CSV or WAV) as a PNG")
    p.add_argument("recording", help="e.g. data/wave/wave.1.csv")
    p.add_argument("-o", "--output", help="PNG to write (default: the recording's name with .png)")
    p.add_argument("--json", action="store_true", help="print the PNG written and the recording's summary as JSON")
