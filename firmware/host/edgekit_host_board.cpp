// edgekit_host_board.cpp: the edgekit protocol core (firmware/common) on a PC, behind a serial
// port, a pseudo-terminal or stdin/stdout, with a deterministic stand-in model. It lets the
// protocol core be tested without a board, and the Python virtual board (src/edgekit/board/) offer
// the very same stand-in, so that both give byte-identical replies to the same commands.
//
// Build (one command):
//   g++ -std=c++17 -O2 -Wall -Wextra -Werror firmware/common/edgekit_protocol.cpp
//       firmware/host/edgekit_host_board.cpp -o edgekit_host_board
//
// Run:    edgekit_host_board                 serve stdin/stdout
//         edgekit_host_board --port PATH     open PATH (O_RDWR|O_NOCTTY), e.g. a pty slave
//         edgekit_host_board --fd N          serve an inherited descriptor (e.g. a pty master)
//         edgekit_host_board --pty           make a pty pair, print "pty <slave path>" on stdout,
//                                            serve the master until killed
//   Options: --sha256 HEX64 (default 64 zeros)   --board KEY (default host)
//            --firmware VER (default 0.1.0)      --model-tag TAG (default edgekit)
//            --arena-bytes N (default 131072)    --arena-used N (default 98304)
//            --flash-used N (default 262144)     --clock-hz N (default 64000000)
//   With --port, --fd and --pty the terminal is put in raw mode (cfmakeraw, 115200 baud, VMIN 1,
//   VTIME 0) before the banner; stdin/stdout are left as they are.
//
// ================================ THE STAND-IN MODEL (exactly) =================================
// Input:  int8, 27648 bytes (96*96*3); `db load N` accepts N <= 27648. The buffer starts all zero
//         and is never cleared (db load does not clear it); db/dbx write into it from offset 0.
// Invoke: output[i] = (sum of input[j] for all j with j % 4 == i, bytes taken as unsigned 0..255)
//         mod 256, stored as a byte; i = 0..3. The output tensor is int8: raw% prints that byte as
//         a signed value (-128..127).
// Output: 4 bytes, int8, scale 1/256 = 0.00390625, zero point -128, so
//         results% value = (q + 128) / 256, printed with the core's 3-decimal rule (float32:
//         m = trunc(float32(float32(|v| * 1000) + 0.5)); "0.500", and 16/256 = 0.0625 -> "0.063").
// Ops:    layers% after an infer (per-op times of one invoke, they sum to 1000 us):
//         m-layer-0-CONV_2D-us-400, m-layer-1-DEPTHWISE_CONV_2D-us-300,
//         m-layer-2-FULLY_CONNECTED-us-200, m-layer-3-SOFTMAX-us-100
// Info:   board/firmware/model tag/sha256/arena/flash/clock from the options above;
//         m-info-input-27648-int8, m-info-output-4-int8.
// Clock:  micros() is a fake clock that starts at 0 and moves only:
//           +10 us for every '%' byte received, added before the byte reaches the core
//             (so the command it ends sees the new time; empty, overlong and ignored commands
//             count too);
//           +1000 us for every invoke (warm-up runs included);
//           while streaming, it jumps to the next sample's due time when the harness has waited
//             for it (the harness also waits that long in real time, so that a host can stop a
//             stream; real waiting never shows in the timestamps).
//         So the banner says m-lap-us-0, and `infer 10 1%` as the first command answers
//         m-lap-us-1010 and m-lap-us-11010 (10 us for its '%', 1000 for the warm-up run).
// Sensor: "counter": 3 channels, at most 10000 Hz, 4 samples per frame. Sample k (k = 0, 1, ...
//         from the start of each stream), channel c: int16 value ((3*k + c) * 1000) mod 65536,
//         read as two's complement. Frame f holds samples 4f..4f+3 (the last frame fewer when
//         <samples> is not a multiple of 4) and t_us = t0 + floor(4f * 1000000 / rate_hz), where
//         t0 is the clock when the stream command ran (after its '%' added 10 us).
//         "wide": 9 channels (as the Nano's 9-axis IMU, to test channel masks), at most 2000 Hz,
//         asks for 16 samples per frame (the core sends fewer when they would not fit in 96 bytes:
//         5 with all 9 channels). Sample k, channel c: int16 value ((9*k + c) * 300) mod 65536,
//         read as two's complement; a channel mask selects which of them are sent.
// ================================================================================================

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "../common/edgekit_protocol.h"

namespace {

constexpr unsigned kInputBytes = 96 * 96 * 3;
constexpr unsigned kOutputs = 4;
constexpr unsigned long kInvokeUs = 1000;
constexpr unsigned long kCommandUs = 10;

unsigned long g_clock_us = 0;  // the fake clock

class FdPlatform : public edgekit::Platform {
 public:
  explicit FdPlatform(int fd) : fd_(fd) {}
  void write(const char* s, unsigned n) override {
    while (n > 0) {
      ssize_t k = ::write(fd_, s, n);
      if (k < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          struct pollfd p = {fd_, POLLOUT, 0};
          ::poll(&p, 1, 100);
          continue;
        }
        _exit(0);  // the host went away
      }
      s += k;
      n -= static_cast<unsigned>(k);
    }
  }
  unsigned long micros() override { return g_clock_us; }

 private:
  int fd_;
};

struct Options {
  std::string sha256 = std::string(64, '0');
  std::string board = "host";
  std::string firmware = "0.1.0";
  std::string model_tag = "edgekit";
  unsigned long arena_bytes = 131072;
  unsigned long arena_used = 98304;
  unsigned long flash_used = 262144;
  unsigned long clock_hz = 64000000;
};

class StandInModel : public edgekit::Model {
 public:
  explicit StandInModel(const Options& o) : o_(o) {
    memset(input_, 0, sizeof input_);
    memset(output_, 0, sizeof output_);
  }
  uint8_t* input() override { return input_; }
  unsigned input_capacity() override { return kInputBytes; }
  unsigned input_bytes() override { return kInputBytes; }
  edgekit::DType input_dtype() override { return edgekit::kInt8; }
  bool invoke() override {
    unsigned sums[kOutputs] = {0, 0, 0, 0};
    for (unsigned j = 0; j < kInputBytes; ++j) sums[j % kOutputs] += input_[j];
    for (unsigned i = 0; i < kOutputs; ++i) output_[i] = static_cast<uint8_t>(sums[i] & 0xFFu);
    g_clock_us += kInvokeUs;
    return true;
  }
  const uint8_t* output() override { return output_; }
  unsigned output_bytes() override { return kOutputs; }
  edgekit::DType output_dtype() override { return edgekit::kInt8; }
  float output_scale() override { return 1.0f / 256.0f; }
  long output_zero_point() override { return -128; }
  unsigned op_count() override { return 4; }
  const char* op_name(unsigned i) override {
    static const char* const kNames[4] = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                          "SOFTMAX"};
    return i < 4 ? kNames[i] : "";
  }
  unsigned long op_us(unsigned i) override {
    static const unsigned long kUs[4] = {400, 300, 200, 100};
    return i < 4 ? kUs[i] : 0;
  }
  void info(edgekit::ModelInfo* out) override {
    out->board = o_.board.c_str();
    out->firmware = o_.firmware.c_str();
    out->model_tag = o_.model_tag.c_str();
    out->sha256 = o_.sha256.c_str();
    out->arena_bytes = o_.arena_bytes;
    out->arena_used = o_.arena_used;
    out->flash_used = o_.flash_used;
    out->clock_hz = o_.clock_hz;
  }

 private:
  const Options& o_;
  uint8_t input_[kInputBytes];
  uint8_t output_[kOutputs];
};

// Test sensors: sample k, channel c is (channels*k + c) * step, as int16 (wrapping). "counter" has
// 3 channels, "wide" 9 (the Nano IMU's count, for channel masks); src/edgekit/board/stand_in.py mirrors both.
class CountingSensor : public edgekit::Sensor {
 public:
  CountingSensor(const char* name, unsigned channels, unsigned long max_rate_hz, unsigned per_frame, uint32_t step)
      : name_(name), channels_(channels), max_rate_hz_(max_rate_hz), per_frame_(per_frame), step_(step) {}
  const char* name() override { return name_; }
  unsigned channels() override { return channels_; }
  unsigned long max_rate_hz() override { return max_rate_hz_; }
  unsigned samples_per_frame() override { return per_frame_; }
  bool start(unsigned long) override {
    k_ = 0;
    return true;
  }
  bool read(int16_t* values) override {
    for (unsigned c = 0; c < channels_; ++c) {
      const uint32_t v = static_cast<uint32_t>((channels_ * k_ + c) * step_) & 0xFFFFu;
      values[c] = static_cast<int16_t>(v >= 0x8000u ? static_cast<int32_t>(v) - 0x10000
                                                    : static_cast<int32_t>(v));
    }
    ++k_;
    return true;
  }

 private:
  const char* name_;
  unsigned channels_;
  unsigned long max_rate_hz_;
  unsigned per_frame_;
  uint32_t step_;
  uint32_t k_ = 0;
};

void make_raw(int fd) {
  if (!isatty(fd)) return;
  struct termios t;
  if (tcgetattr(fd, &t) != 0) return;
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  tcsetattr(fd, TCSANOW, &t);
}

void sleep_us(unsigned long us) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(us / 1000000ul);
  ts.tv_nsec = static_cast<long>((us % 1000000ul) * 1000ul);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "edgekit_host_board: %s\n"
               "usage: edgekit_host_board [--port PATH | --fd N | --pty] [--sha256 HEX64] "
               "[--board KEY] [--firmware VER] [--model-tag TAG] [--arena-bytes N] "
               "[--arena-used N] [--flash-used N] [--clock-hz N]\n",
               msg);
  std::exit(2);
}

unsigned long to_ulong(const char* s, const char* flag) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (!*s || *end || errno) usage((std::string("bad number for ") + flag).c_str());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string port;
  int in_fd = 0, out_fd = 1;
  bool use_fd = false, use_pty = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--port") {
      port = value();
    } else if (a == "--fd") {
      in_fd = out_fd = static_cast<int>(to_ulong(value(), "--fd"));
      use_fd = true;
    } else if (a == "--pty") {
      use_pty = true;
    } else if (a == "--sha256") {
      o.sha256 = value();
      if (o.sha256.size() != 64 ||
          o.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
        usage("--sha256 needs 64 lowercase hex digits");
    } else if (a == "--board") {
      o.board = value();
    } else if (a == "--firmware") {
      o.firmware = value();
    } else if (a == "--model-tag") {
      o.model_tag = value();
    } else if (a == "--arena-bytes") {
      o.arena_bytes = to_ulong(value(), "--arena-bytes");
    } else if (a == "--arena-used") {
      o.arena_used = to_ulong(value(), "--arena-used");
    } else if (a == "--flash-used") {
      o.flash_used = to_ulong(value(), "--flash-used");
    } else if (a == "--clock-hz") {
      o.clock_hz = to_ulong(value(), "--clock-hz");
    } else if (a == "-h" || a == "--help") {
      usage("the edgekit protocol core with a deterministic stand-in model");
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if ((!port.empty()) + use_fd + use_pty > 1) usage("give at most one of --port, --fd, --pty");

  signal(SIGPIPE, SIG_IGN);
  int keep_slave = -1;  // --pty: our own slave descriptor, so that clients may come and go
  if (!port.empty()) {
    in_fd = out_fd = open(port.c_str(), O_RDWR | O_NOCTTY);
    if (in_fd < 0) {
      std::perror(port.c_str());
      return 1;
    }
  } else if (use_pty) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
      std::perror("posix_openpt");
      return 1;
    }
    const char* slave = ptsname(m);
    keep_slave = open(slave, O_RDWR | O_NOCTTY);
    make_raw(keep_slave);
    in_fd = out_fd = m;
    std::printf("pty %s\n", slave);
    std::fflush(stdout);
  }
  if (!port.empty() || use_fd || use_pty) make_raw(in_fd);  // stdin/stdout stay as they are

  FdPlatform platform(out_fd);
  StandInModel model(o);
  CountingSensor counter("counter", 3, 10000, 4, 1000);
  CountingSensor wide("wide", 9, 2000, 16, 300);
  edgekit::Protocol proto(platform, model);
  proto.add_sensor(&counter);
  proto.add_sensor(&wide);
  proto.begin();

  bool input_open = true;
  char buf[512];
  for (;;) {
    int timeout_ms = -1;
    unsigned long wait_us = 0;
    if (proto.streaming()) {
      const unsigned long due = proto.next_sample_due_us();
      if (static_cast<long>(due - g_clock_us) <= 0) {
        proto.poll();
        continue;
      }
      wait_us = due - g_clock_us;
      if (!input_open) {  // nothing more can arrive: just let the time pass
        sleep_us(wait_us);
        g_clock_us = due;
        proto.poll();
        continue;
      }
      timeout_ms = static_cast<int>((wait_us + 999) / 1000);
    } else if (!input_open) {
      return 0;
    }
    struct pollfd p = {in_fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (r == 0) {  // the sample is due
      g_clock_us = proto.next_sample_due_us();
      proto.poll();
      continue;
    }
    ssize_t n = read(in_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (use_pty) {  // cannot happen while we hold the slave; be safe
        sleep_us(10000);
        continue;
      }
      if (n < 0) return 0;  // EIO: the pty's other side closed, the host is gone
      input_open = false;   // EOF on stdin: finish a running stream, then exit
      continue;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '%') g_clock_us += kCommandUs;
      proto.feed(buf[i]);
    }
  }
  (void)keep_slave;
}
