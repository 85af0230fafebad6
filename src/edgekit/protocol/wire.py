"""The protocol's numbers and fixed texts, named once for the host client, the virtual board and
capture. They must equal the C++ protocol core's (firmware/common/edgekit_protocol.{h,cpp});
tests/test_wire_constants.py reads them from there."""

PROTOCOL_VERSION = 1        # kProtocolVersion: what info% reports as m-info-protocol-
PROFILE = "ULPMark for tinyML Firmware V0.0.1"   # profile%'s m-profile-[...]
MAX_COMMAND = 256           # kCmdMax: characters of a command, '%' excluded
MAX_TOKENS = 8              # kMaxTokens: words of a command looked at
DBX_CHUNK = 96              # kMaxChunkBytes: data bytes per dbx command
FRAME_BYTES = 96            # kMaxFrameBytes: payload bytes per f- frame
MAX_CHANNELS = 9            # kMaxChannels: channels of a stream sensor (a 9-axis IMU)
LEGACY_CHUNK = 31           # the MLPerf Tiny runner's db chunk (62 hex digits, under its 80 characters)
BAUD = 115200
WRAP = 2**32                # a board's micros() is a uint32_t: timestamps wrap every 71 minutes

HELP = ["name", "profile", "help", "timestamp", "db load <N>", "db <hex>", "db print", "infer <N> <W>",
        "results", "info", "dbx <offset> <crc32> <hex>", "raw", "layers",
        "stream <sensor> <rate_hz> <samples> [<channel_mask>]", "stop"]   # help%'s m-help- lines
VIRTUAL_FIRMWARE = "edgekit-virtual"  # what a virtual board's info% names as its firmware (a real board: "edgekit")
