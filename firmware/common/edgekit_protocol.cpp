// edgekit_protocol.cpp: the board side of edgekit's serial protocol (docs/protocol.md).
// Freestanding C++: no standard library, no heap, no exceptions, no RTTI (see the header).
#include "edgekit_protocol.h"

namespace edgekit {

namespace {

// CRC-32 (reflected polynomial 0xEDB88320), four bits at a time: a 64-byte table.
const uint32_t kCrcNibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

const char kHexDigits[] = "0123456789abcdef";

bool str_eq(const char* a, const char* b) {
  while (*a && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

unsigned long str_len(const char* s) {
  unsigned long n = 0;
  while (s[n]) ++n;
  return n;
}

// Hex digit value, or -1.
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decimal digits only (no sign), at least one. Values above 0xFFFFFFFF saturate there, so that
// every board (32-bit unsigned long) and the 64-bit host harness agree.
bool parse_uint(const char* s, unsigned long* out) {
  if (!*s) return false;
  unsigned long v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
    if (v > (0xFFFFFFFFul - 9ul) / 10ul) {
      v = 0xFFFFFFFFul;
    } else {
      v = v * 10ul + (unsigned long)(*s - '0');
    }
  }
  *out = v;
  return true;
}

// 1 to 8 hex digits, either case.
bool parse_hex32(const char* s, uint32_t* out) {
  uint32_t v = 0;
  unsigned n = 0;
  for (; *s; ++s, ++n) {
    int d = hex_value(*s);
    if (d < 0 || n >= 8) return false;
    v = (v << 4) | (uint32_t)d;
  }
  if (n == 0) return false;
  *out = v;
  return true;
}

// A stream's channel mask: 1-8 hex digits (parse_hex32), bit i selecting the sensor's channel i;
// not 0 and no bit at or beyond the sensor's channel count (at most kMaxChannels, so < 32).
bool parse_channel_mask(const char* s, unsigned channels, uint32_t* mask) {
  uint32_t m = 0;
  if (!parse_hex32(s, &m) || m == 0 || (m >> channels) != 0) return false;
  *mask = m;
  return true;
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case kInt8: return "int8";
    case kUInt8: return "uint8";
    case kInt16: return "int16";
    case kFloat32: return "float32";
    default: return "other";
  }
}

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    crc = (crc >> 4) ^ kCrcNibble[crc & 15u];
    crc = (crc >> 4) ^ kCrcNibble[crc & 15u];
  }
  return ~crc;
}

Protocol::Protocol(Platform& platform, Model& model)
    : platform_(platform),
      model_(model),
      model_error_(0),
      cmd_len_(0),
      overflow_(false),
      out_len_(0),
      load_size_(0),
      load_pos_(0),
      have_results_(false),
      nsensors_(0),
      streaming_(false),
      sensor_(0),
      channels_(0),
      mask_(0),
      spf_(1),
      total_(0),
      taken_(0),
      frames_(0),
      due_(0),
      step_q_(0),
      step_r_(0),
      step_acc_(0),
      rate_(1),
      fill_(0),
      frame_t_(0) {
  cmd_[0] = 0;
  for (unsigned i = 0; i < kMaxTokens; ++i) tok_[i] = 0;
  for (unsigned i = 0; i < kMaxSensors; ++i) sensors_[i] = 0;
}

bool Protocol::add_sensor(Sensor* sensor) {
  if (!sensor || nsensors_ >= kMaxSensors) return false;
  unsigned ch = sensor->channels();
  if (ch == 0 || ch > kMaxChannels) return false;
  sensors_[nsensors_++] = sensor;
  return true;
}

void Protocol::set_model_error(const char* message) { model_error_ = message ? message : "?"; }

// ---------------------------------------------------------------------------------------------
// Output: one buffer, flushed at the end of every line or when full.

void Protocol::flush() {
  if (out_len_) platform_.write(out_, out_len_);
  out_len_ = 0;
}

void Protocol::put(char c) {
  if (out_len_ >= kOutBuffer) flush();
  out_[out_len_++] = c;
}

void Protocol::puts(const char* s) {
  if (!s) return;
  while (*s) put(*s++);
}

void Protocol::put_uint(unsigned long v) {
  char digits[24];
  unsigned n = 0;
  do {
    digits[n++] = (char)('0' + (int)(v % 10ul));
    v /= 10ul;
  } while (v);
  while (n) put(digits[--n]);
}

void Protocol::put_int(long v) {
  if (v < 0) {
    put('-');
    put_uint(0ul - (unsigned long)v);
  } else {
    put_uint((unsigned long)v);
  }
}

void Protocol::put_hex_byte(uint8_t b) {
  put(kHexDigits[b >> 4]);
  put(kHexDigits[b & 15]);
}

void Protocol::put_hex32(uint32_t v) {
  for (int shift = 28; shift >= 0; shift -= 4) put(kHexDigits[(v >> shift) & 15u]);
}

// Three decimals, digit by digit (small printf implementations lack %f). The rounding rule, which
// the Python virtual board reproduces with numpy float32:
//   m = trunc(float32(float32(|v| * 1000) + 0.5))      (round half away from zero, in float32)
//   print m / 1000, '.', m % 1000 as three digits; '-' only when v < 0 and m > 0;
//   NaN prints "nan"; |v| * 1000 above 4294967040 prints "inf" / "-inf".
// The volatile keeps the product rounded to float before the addition (no fused multiply-add).
void Protocol::put_fixed3(float v) {
  if (v != v) {
    puts("nan");
    return;
  }
  const bool neg = v < 0.0f;
  const float a = neg ? -v : v;
  volatile float scaled = a * 1000.0f;
  const float t = scaled;
  if (!(t <= 4294967040.0f)) {
    puts(neg ? "-inf" : "inf");
    return;
  }
  volatile float rounded = t + 0.5f;
  const unsigned long m = (unsigned long)(uint32_t)(float)rounded;
  if (neg && m > 0) put('-');
  put_uint(m / 1000ul);
  put('.');
  const unsigned long frac = m % 1000ul;
  put((char)('0' + (int)(frac / 100ul)));
  put((char)('0' + (int)((frac / 10ul) % 10ul)));
  put((char)('0' + (int)(frac % 10ul)));
}

void Protocol::endl() {
  put('\r');
  put('\n');
  flush();
}

void Protocol::line(const char* s) {
  puts(s);
  endl();
}

void Protocol::error(const char* s) {
  puts("e-[");
  puts(s);
  put(']');
  endl();
}

void Protocol::ready() { line("m-ready"); }

// ---------------------------------------------------------------------------------------------
// Input

void Protocol::begin() {
  line("m-timestamp-mode-performance");
  puts("m-lap-us-");
  put_uint(platform_.micros());
  endl();
  if (model_error_) {
    puts("e-[Model error: ");
    puts(model_error_);
    put(']');
    endl();
  }
  line("m-init-done");
  ready();
}

void Protocol::feed(char c) {
  if (c == '%') {
    const bool too_long = overflow_;
    cmd_[cmd_len_] = 0;
    cmd_len_ = 0;
    overflow_ = false;
    if (too_long) {
      // While streaming, everything but stop% is ignored, overlong garbage included.
      if (!streaming_) {
        error("Command too long");
        ready();
      }
      return;
    }
    execute();
    return;
  }
  if (c == '\r' || c == '\n') return;  // line ends between (or inside) commands are ignored
  if (overflow_) return;                // discard up to the next '%'
  if (cmd_len_ >= kCmdMax) {
    overflow_ = true;
    return;
  }
  cmd_[cmd_len_++] = c;
}

// Splits cmd_ in place at spaces (runs of spaces count as one, as strtok does).
unsigned Protocol::tokenize() {
  unsigned n = 0;
  char* p = cmd_;
  while (*p && n < kMaxTokens) {
    while (*p == ' ') *p++ = 0;
    if (!*p) break;
    tok_[n++] = p;
    while (*p && *p != ' ') ++p;
  }
  return n;
}

void Protocol::execute() {
  const unsigned n = tokenize();
  const char* w = n ? tok_[0] : "";

  if (streaming_) {  // the device answers no other command while streaming
    if (str_eq(w, "stop")) {
      sensor_->stop();
      end_stream();
    }
    return;
  }

  if (str_eq(w, "name")) {
    ModelInfo info = ModelInfo();
    model_.info(&info);
    puts("m-name-dut-[edgekit ");
    puts(info.board);
    put(']');
    endl();
  } else if (str_eq(w, "profile")) {
    ModelInfo info = ModelInfo();
    model_.info(&info);
    line("m-profile-[ULPMark for tinyML Firmware V0.0.1]");
    puts("m-model-[");
    puts(info.model_tag);
    put(']');
    endl();
  } else if (str_eq(w, "help")) {
    cmd_help();
  } else if (str_eq(w, "timestamp")) {
    puts("m-lap-us-");
    put_uint(platform_.micros());
    endl();
  } else if (str_eq(w, "db")) {
    cmd_db(n);
  } else if (str_eq(w, "dbx")) {
    cmd_dbx(n);
  } else if (str_eq(w, "infer")) {
    cmd_infer(n);
  } else if (str_eq(w, "results")) {
    cmd_results();
  } else if (str_eq(w, "raw")) {
    cmd_raw();
  } else if (str_eq(w, "layers")) {
    cmd_layers();
  } else if (str_eq(w, "info")) {
    cmd_info();
  } else if (str_eq(w, "stream")) {
    cmd_stream(n);
    if (streaming_) return;  // m-ready comes after m-stream-done
  } else if (str_eq(w, "stop")) {
    error("No stream running");
  } else {
    puts("e-[Unknown command: ");
    puts(w);
    put(']');
    endl();
  }
  ready();
}

void Protocol::cmd_help() {
  static const char* const kLines[] = {
      "m-help-name",
      "m-help-profile",
      "m-help-help",
      "m-help-timestamp",
      "m-help-db load <N>",
      "m-help-db <hex>",
      "m-help-db print",
      "m-help-infer <N> <W>",
      "m-help-results",
      "m-help-info",
      "m-help-dbx <offset> <crc32> <hex>",
      "m-help-raw",
      "m-help-layers",
      "m-help-stream <sensor> <rate_hz> <samples> [<channel_mask>]",
      "m-help-stop",
  };
  for (unsigned i = 0; i < sizeof(kLines) / sizeof(kLines[0]); ++i) line(kLines[i]);
}

void Protocol::cmd_db(unsigned ntok) {
  if (ntok < 2) {
    error("Command 'db' requires a subcommand");
    return;
  }
  const char* sub = tok_[1];
  if (str_eq(sub, "load")) {
    if (ntok < 3) {
      error("Command 'db load' requires the # of bytes");
      return;
    }
    unsigned long n = 0;
    if (!parse_uint(tok_[2], &n) || n == 0) {
      error("Command 'db load' must be >0 bytes");
      return;
    }
    load_pos_ = 0;
    if (n > (unsigned long)model_.input_capacity()) {
      load_size_ = 0;
      line("m-[Error: Input size exceeds maximum]");
      return;
    }
    load_size_ = n;
    puts("m-[Expecting ");
    put_uint(n);
    puts(" bytes]");
    endl();
    return;
  }
  if (str_eq(sub, "print")) {
    const uint8_t* buf = model_.input();
    for (unsigned long i = 0; i < load_size_; ++i) {
      if (i % 8 == 0) puts("m-buffer-");
      put_hex_byte(buf[i]);
      if (i % 8 == 7 || i + 1 == load_size_) {
        endl();
      } else {
        put('-');
      }
    }
    return;
  }
  // db <hex>: appends to the load; the whole token is checked before any byte is stored.
  if (load_size_ == 0 || load_pos_ >= load_size_) {
    error("No db load in progress");
    return;
  }
  const long decoded = decode_hex(sub, 0, 0, false);
  if (decoded < 0) return;
  const unsigned long nbytes = (unsigned long)decoded;
  uint8_t* buf = model_.input();
  unsigned long i = 0;
  for (; i < nbytes && load_pos_ < load_size_; ++i) {
    buf[load_pos_++] = (uint8_t)((hex_value(sub[2 * i]) << 4) | hex_value(sub[2 * i + 1]));
  }
  // Digits beyond the N bytes are disregarded, as in MLPerf Tiny.
  if (load_pos_ == load_size_) line("m-load-done");
}

// Checks hex (even count, valid digits); decodes into out when given. Returns the byte count, or
// -1 after printing the error. With limit, more than max_out bytes is an error.
long Protocol::decode_hex(const char* hex, uint8_t* out, unsigned long max_out, bool limit) {
  const unsigned long len = str_len(hex);
  if (len & 1ul) {
    error("Insufficent number of hex digits");  // (sic), as MLPerf Tiny
    return -1;
  }
  for (unsigned long i = 0; i < len; ++i) {
    if (hex_value(hex[i]) < 0) {
      puts("e-[Invalid hex digit '");
      put(hex[i]);
      puts("']");
      endl();
      return -1;
    }
  }
  const unsigned long nbytes = len / 2;
  if (limit && nbytes > max_out) {
    puts("e-[Chunk too long: at most ");
    put_uint(max_out);
    puts(" bytes]");
    endl();
    return -1;
  }
  if (out) {
    for (unsigned long i = 0; i < nbytes; ++i) {
      out[i] = (uint8_t)((hex_value(hex[2 * i]) << 4) | hex_value(hex[2 * i + 1]));
    }
  }
  return (long)nbytes;
}

void Protocol::cmd_dbx(unsigned ntok) {
  unsigned long offset = 0;
  uint32_t crc = 0;
  if (ntok < 4 || !parse_uint(tok_[1], &offset) || !parse_hex32(tok_[2], &crc)) {
    error("Usage: dbx <offset> <crc32> <hex>");
    return;
  }
  if (load_size_ == 0) {
    error("No db load in progress");
    return;
  }
  const long n = decode_hex(tok_[3], chunk_, kMaxChunkBytes, true);
  if (n < 0) return;
  if (crc32(chunk_, (size_t)n) != crc) {
    puts("e-[CRC mismatch at ");
    put_uint(offset);
    put(']');
    endl();
    return;
  }
  const unsigned long end = offset + (unsigned long)n;
  if (offset > load_size_ || end > load_size_) {
    puts("e-[Chunk beyond the load of ");
    put_uint(load_size_);
    puts(" bytes]");
    endl();
    return;
  }
  uint8_t* buf = model_.input();
  for (long i = 0; i < n; ++i) buf[offset + (unsigned long)i] = chunk_[i];
  puts("m-dbx-ok-");
  put_uint(end);
  endl();
}

bool Protocol::model_usable() {
  if (!model_error_) return true;
  puts("e-[Model error: ");
  puts(model_error_);
  put(']');
  endl();
  return false;
}

void Protocol::cmd_infer(unsigned ntok) {
  unsigned long n = 1, w = 10;  // MLPerf Tiny's defaults; hosts always send both
  if (ntok >= 2 && (!parse_uint(tok_[1], &n) || n == 0)) {
    error("Inference iterations must be >0");
    return;
  }
  if (ntok >= 3 && !parse_uint(tok_[2], &w)) {
    error("Inference warmup must be >=0");
    return;
  }
  if (!model_usable()) return;
  have_results_ = false;
  puts("m-warmup-start-");
  put_uint(w);
  endl();
  for (unsigned long i = 0; i < w; ++i) {
    if (!model_.invoke()) {
      error("Invoke failed");
      return;
    }
  }
  line("m-warmup-done");
  puts("m-infer-start-");
  put_uint(n);
  endl();
  // Both laps are printed after the timed runs, so that writing T0 is not timed.
  const unsigned long t0 = platform_.micros();
  for (unsigned long i = 0; i < n; ++i) {
    if (!model_.invoke()) {
      error("Invoke failed");
      return;
    }
  }
  const unsigned long t1 = platform_.micros();
  puts("m-lap-us-");
  put_uint(t0);
  endl();
  puts("m-lap-us-");
  put_uint(t1);
  endl();
  line("m-infer-done");
  have_results_ = true;
  print_results();
}

// results and raw print 8-bit outputs only; anything else gets one error line.
bool Protocol::output_is_8bit(DType t) {
  if (t == kInt8 || t == kUInt8) return true;
  puts("e-[Unsupported output type: ");
  puts(dtype_name(t));
  put(']');
  endl();
  return false;
}

void Protocol::print_results() {
  const DType t = model_.output_dtype();
  if (!output_is_8bit(t)) return;
  const uint8_t* out = model_.output();
  const unsigned n = model_.output_bytes();
  const float scale = model_.output_scale();
  const long zp = model_.output_zero_point();
  puts("m-results-[");
  for (unsigned i = 0; i < n; ++i) {
    const long q = t == kInt8 ? (long)(int8_t)out[i] : (long)out[i];
    const float v = (float)(q - zp) * scale;
    if (i) put(',');
    put_fixed3(v);
  }
  put(']');
  endl();
}

void Protocol::cmd_results() {
  if (!model_usable()) return;
  if (!have_results_) {
    error("No inference yet");
    return;
  }
  print_results();
}

void Protocol::cmd_raw() {
  if (!model_usable()) return;
  if (!have_results_) {
    error("No inference yet");
    return;
  }
  const DType t = model_.output_dtype();
  if (!output_is_8bit(t)) return;
  const uint8_t* out = model_.output();
  const unsigned n = model_.output_bytes();
  puts("m-raw-[");
  for (unsigned i = 0; i < n; ++i) {
    if (i) put(',');
    if (t == kInt8) {
      put_int((long)(int8_t)out[i]);
    } else {
      put_uint((unsigned long)out[i]);
    }
  }
  put(']');
  endl();
}

void Protocol::cmd_layers() {
  if (!model_usable()) return;
  if (!have_results_) {
    error("No inference yet");
    return;
  }
  const unsigned n = model_.op_count();
  for (unsigned i = 0; i < n; ++i) {
    puts("m-layer-");
    put_uint(i);
    put('-');
    puts(model_.op_name(i));
    puts("-us-");
    put_uint(model_.op_us(i));
    endl();
  }
}

void Protocol::cmd_info() {
  ModelInfo info = ModelInfo();
  model_.info(&info);
  puts("m-info-board-");
  puts(info.board);
  endl();
  puts("m-info-firmware-");
  puts(info.firmware);
  endl();
  puts("m-info-protocol-");
  put_uint(kProtocolVersion);
  endl();
  puts("m-info-model-sha256-");
  puts(info.sha256);
  endl();
  puts("m-info-arena-bytes-");
  put_uint(info.arena_bytes);
  endl();
  puts("m-info-arena-used-");
  put_uint(info.arena_used);
  endl();
  puts("m-info-flash-used-");
  put_uint(info.flash_used);
  endl();
  puts("m-info-clock-hz-");
  put_uint(info.clock_hz);
  endl();
  puts("m-info-input-");
  put_uint(model_.input_bytes());
  put('-');
  puts(dtype_name(model_.input_dtype()));
  endl();
  puts("m-info-output-");
  put_uint(model_.output_bytes());
  put('-');
  puts(dtype_name(model_.output_dtype()));
  endl();
}

// ---------------------------------------------------------------------------------------------
// Streams

void Protocol::cmd_stream(unsigned ntok) {
  unsigned long rate = 0, samples = 0;
  if (ntok < 4 || !parse_uint(tok_[2], &rate) || !parse_uint(tok_[3], &samples) ||
      samples == 0) {
    error("Usage: stream <sensor> <rate_hz> <samples>");
    return;
  }
  Sensor* s = 0;
  for (unsigned i = 0; i < nsensors_; ++i) {
    if (str_eq(sensors_[i]->name(), tok_[1])) s = sensors_[i];
  }
  if (!s) {
    puts("e-[Unknown sensor: ");
    puts(tok_[1]);
    put(']');
    endl();
    return;
  }
  if (rate == 0 || rate > s->max_rate_hz()) {
    puts("e-[Invalid rate: ");
    put_uint(rate);
    puts(" (1 to ");
    put_uint(s->max_rate_hz());
    puts(" Hz)]");
    endl();
    return;
  }
  // The mask comes after the rate check (arguments left to right); absent: all channels.
  const unsigned all = s->channels();  // 1..kMaxChannels (add_sensor checks)
  uint32_t mask = (uint32_t)((1ul << all) - 1ul);
  if (ntok >= 5 && !parse_channel_mask(tok_[4], all, &mask)) {
    puts("e-[Invalid channel mask: ");
    puts(tok_[4]);
    put(']');
    endl();
    return;
  }
  if (!s->start(rate)) {
    puts("e-[Sensor failed to start: ");
    puts(s->name());
    put(']');
    endl();
    return;
  }
  sensor_ = s;
  mask_ = mask;
  channels_ = 0;
  for (unsigned c = 0; c < all; ++c) channels_ += (mask >> c) & 1u;
  // Frames are as full as the sensor wants, within kMaxFrameBytes of the channels actually sent.
  const unsigned max_spf = kMaxFrameBytes / (2u * channels_);
  spf_ = s->samples_per_frame();
  if (spf_ == 0) spf_ = 1;
  if (spf_ > max_spf) spf_ = max_spf;
  total_ = samples;
  taken_ = 0;
  frames_ = 0;
  fill_ = 0;
  rate_ = rate;
  step_q_ = 1000000ul / rate;
  step_r_ = 1000000ul % rate;
  step_acc_ = 0;
  puts("m-stream-start-");
  puts(s->name());
  put('-');
  put_uint(rate);
  put('-');
  put_uint(channels_);
  endl();
  due_ = platform_.micros();  // sample k is due at start + floor(k * 1e6 / rate)
  streaming_ = true;
}

void Protocol::poll() {
  if (!streaming_) return;
  const unsigned long now = platform_.micros();
  if ((long)(now - due_) < 0) return;
  int16_t values[kMaxChannels];
  if (!sensor_->read(values)) return;  // not ready: try again on the next poll
  if (fill_ == 0) frame_t_ = now;
  uint8_t* p = frame_ + fill_ * channels_ * 2u;
  const unsigned all = sensor_->channels();
  for (unsigned c = 0; c < all; ++c) {
    if (!((mask_ >> c) & 1u)) continue;
    const uint16_t u = (uint16_t)values[c];
    *p++ = (uint8_t)(u & 0xFFu);
    *p++ = (uint8_t)(u >> 8);
  }
  ++fill_;
  ++taken_;
  due_ += step_q_;
  step_acc_ += step_r_;
  if (step_acc_ >= rate_) {
    step_acc_ -= rate_;
    due_ += 1;
  }
  if (fill_ == spf_ || taken_ == total_) {
    const unsigned nbytes = fill_ * channels_ * 2u;
    puts("f-");
    put_uint(frames_);
    put('-');
    put_uint(frame_t_);
    put('-');
    for (unsigned i = 0; i < nbytes; ++i) put_hex_byte(frame_[i]);
    put('-');
    put_hex32(crc32(frame_, nbytes));
    endl();
    ++frames_;
    fill_ = 0;
  }
  if (taken_ == total_) {
    sensor_->stop();
    end_stream();
  }
}

// A partly filled frame is dropped: only whole frames are sent and counted.
void Protocol::end_stream() {
  streaming_ = false;
  fill_ = 0;
  puts("m-stream-done-");
  put_uint(frames_);
  endl();
  ready();
}

}  // namespace edgekit
