// edgekit_protocol.h: the board side of edgekit's serial protocol (docs/protocol.md, version 1).
//
// Plain C++ (C++11 and later) with no Arduino, no TFLite Micro and no standard library: no heap,
// no exceptions, no RTTI, no <cstdio>; only fixed buffers. The only headers are the freestanding
// <stdint.h> and <stddef.h>. The sketch (or the host harness) implements three small interfaces:
//
//   Platform: writes bytes to the serial port, reads a microsecond clock;
//   Model:    the input buffer that `db`/`dbx` fill, invoke(), the output tensor, per-op timings
//             of the last invoke, and the fields that `info%` prints;
//   Sensor:   (optional, up to kMaxSensors) a source of int16 samples for `stream`.
//
// and drives the protocol with:
//
//   edgekit::Protocol proto(platform, model);
//   proto.add_sensor(&imu);            // optional
//   proto.begin();                     // the boot banner
//   loop: while (bytes available) proto.feed(byte);  proto.poll();   // poll() paces streams
//
// The interfaces have protected non-virtual destructors: nothing is ever deleted through them,
// and so the core needs no operator delete.
#ifndef EDGEKIT_PROTOCOL_H_
#define EDGEKIT_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

namespace edgekit {

enum { kProtocolVersion = 1 };

// Tensor element types as `info%` names them.
enum DType { kInt8 = 0, kUInt8 = 1, kInt16 = 2, kFloat32 = 3, kOtherType = 4 };
const char* dtype_name(DType t);

// CRC-32 (IEEE 802.3, reflected, as zlib.crc32). Pass the previous value to continue a CRC.
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

struct Platform {
  // Writes n bytes to the host. Called with whole lines (or pieces of a long line), never
  // more than Protocol::kOutBuffer bytes at a time.
  virtual void write(const char* s, unsigned n) = 0;
  // A free-running microsecond clock (wraps like Arduino's micros()).
  virtual unsigned long micros() = 0;

 protected:
  ~Platform() {}
};

// What `info%` (and `name%`, `profile%`) print. Strings must outlive the Protocol.
struct ModelInfo {
  const char* board;             // board key, "nano33ble"; also in m-name-dut-[edgekit <board>]
  const char* firmware;          // firmware version
  const char* model_tag;         // profile's m-model-[<tag>]
  const char* sha256;            // 64 lowercase hex digits of the .tflite file
  unsigned long arena_bytes;     // allocated arena
  unsigned long arena_used;      // TFLM's arena_used_bytes()
  unsigned long flash_used;      // program flash used by the firmware
  unsigned long clock_hz;        // CPU clock
};

struct Model {
  // The buffer `db`/`dbx` write into, and its size: `db load N` accepts N <= input_capacity().
  virtual uint8_t* input() = 0;
  virtual unsigned input_capacity() = 0;
  // The model's input tensor: size in bytes and type (for info%).
  virtual unsigned input_bytes() = 0;
  virtual DType input_dtype() = 0;
  // One inference on the current input buffer. false: the interpreter failed.
  virtual bool invoke() = 0;
  // The output tensor of the last invoke(): raw bytes, size, type and quantization.
  virtual const uint8_t* output() = 0;
  virtual unsigned output_bytes() = 0;
  virtual DType output_dtype() = 0;
  virtual float output_scale() = 0;
  virtual long output_zero_point() = 0;
  // Per-op timings of the last invoke(); op_count() 0 when the firmware cannot time ops.
  virtual unsigned op_count() = 0;
  virtual const char* op_name(unsigned i) = 0;
  virtual unsigned long op_us(unsigned i) = 0;
  // Fills the info% fields.
  virtual void info(ModelInfo* out) = 0;

 protected:
  ~Model() {}
};

struct Sensor {
  virtual const char* name() = 0;        // the <sensor> word of `stream`
  virtual unsigned channels() = 0;       // 1..Protocol::kMaxChannels
  virtual unsigned long max_rate_hz() = 0;
  // Samples per f- frame (clamped so that a frame holds at most kMaxFrameBytes bytes).
  virtual unsigned samples_per_frame() { return 1; }
  virtual bool start(unsigned long rate_hz) {
    (void)rate_hz;
    return true;
  }
  // Reads one sample: all channels() values (the core keeps those the host asked for).
  // false: no sample ready yet (poll() tries again).
  virtual bool read(int16_t* values) = 0;
  virtual void stop() {}

 protected:
  ~Sensor() {}
};

class Protocol {
 public:
  enum {
    kCmdMax = 256,         // longest command accepted, '%' excluded
    kMaxTokens = 8,
    kOutBuffer = 256,      // output is written in pieces of at most this many bytes
    kMaxChunkBytes = 96,   // dbx data bytes per command
    kMaxFrameBytes = 96,   // payload bytes per f- frame
    kMaxChannels = 9,      // the Nano 33 BLE Sense's 9-axis IMU
    kMaxSensors = 8,
  };

  Protocol(Platform& platform, Model& model);

  bool add_sensor(Sensor* sensor);
  // Marks the model as unusable (e.g. "AllocateTensors() failed"): infer, results, raw and
  // layers then answer e-[Model error: <message>]. The message must outlive the Protocol.
  void set_model_error(const char* message);

  // Boot banner: m-timestamp-mode-performance, m-lap-us-<now>, m-init-done, m-ready
  // (with an e-[Model error: ...] line before m-init-done when set_model_error was called).
  void begin();
  // One byte from the host. A complete command (ended by '%') is executed before feed returns.
  void feed(char c);
  // Call often: takes the next stream sample when it is due and sends frames.
  void poll();

  bool streaming() const { return streaming_; }
  // When the next stream sample is due (Platform::micros() time); meaningful while streaming.
  unsigned long next_sample_due_us() const { return due_; }

 private:
  // output
  void put(char c);
  void puts(const char* s);
  void put_uint(unsigned long v);
  void put_int(long v);
  void put_hex_byte(uint8_t b);
  void put_hex32(uint32_t v);
  void put_fixed3(float v);
  void endl();
  void flush();
  void line(const char* s);
  void error(const char* s);  // e-[s]
  void ready();

  // commands
  void execute();
  void cmd_help();
  void cmd_db(unsigned ntok);
  void cmd_dbx(unsigned ntok);
  void cmd_infer(unsigned ntok);
  void cmd_results();
  void cmd_raw();
  void cmd_layers();
  void cmd_info();
  void cmd_stream(unsigned ntok);
  void end_stream();
  bool model_usable();
  void print_results();
  bool output_is_8bit(DType t);

  unsigned tokenize();
  // Decodes hex into out (at most max bytes); prints the error and returns -1 on bad input.
  long decode_hex(const char* hex, uint8_t* out, unsigned long max_out, bool limit);

  Platform& platform_;
  Model& model_;
  const char* model_error_;

  char cmd_[kCmdMax + 1];
  unsigned cmd_len_;
  bool overflow_;
  char* tok_[kMaxTokens];

  char out_[kOutBuffer];
  unsigned out_len_;

  unsigned long load_size_;  // N of the last successful `db load N` (0: none)
  unsigned long load_pos_;   // bytes received by `db <hex>`
  bool have_results_;

  Sensor* sensors_[kMaxSensors];
  unsigned nsensors_;
  bool streaming_;
  Sensor* sensor_;
  unsigned channels_;        // channels sent (those of mask_)
  uint32_t mask_;            // bit i: the sensor's channel i is sent
  unsigned spf_;             // samples per frame
  unsigned long total_;      // samples requested
  unsigned long taken_;      // samples read
  unsigned long frames_;     // frames sent
  unsigned long due_;        // when the next sample is due
  unsigned long step_q_, step_r_, step_acc_, rate_;
  unsigned fill_;            // samples in the current frame
  unsigned long frame_t_;
  uint8_t frame_[kMaxFrameBytes];
  uint8_t chunk_[kMaxChunkBytes];
};

}  // namespace edgekit

#endif  // EDGEKIT_PROTOCOL_H_
