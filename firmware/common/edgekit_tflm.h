// edgekit_tflm.h: the protocol core's Model and Platform on TensorFlow Lite Micro, for the Arduino
// sketches (firmware/nano33ble, firmware/esp32s3). Header only; include it after the TFLM headers
// and the generated model_config.h. Unlike the core, it uses Arduino (micros, Serial) and TFLM.
//
// Per-op timing: TFLM calls a MicroProfilerInterface around every op it invokes (the op's name is
// the tag, e.g. "CONV_2D"); OpProfiler keeps the ops of the last invoke with their micros().
// Timing every op adds two micros() calls per op to the timed runs. A TFLM built with
// TF_LITE_STRIP_ERROR_STRINGS calls no profiler: layers% then lists no ops (whole-invoke time
// from infer% still works).
//
// Input: `db`/`dbx` write into a staging buffer (input_bytes long) that invoke() copies into the
// input tensor before every Interpreter::Invoke(), because TFLM's memory planner may reuse the
// input tensor's memory for later tensors once the first op has read it: without the copy, the
// second and later runs of `infer N W` would see a clobbered input. The copy (memcpy of the input,
// e.g. 27 KB for 96x96x3) is inside the timed runs.
#ifndef EDGEKIT_TFLM_H_
#define EDGEKIT_TFLM_H_

#include <Arduino.h>
#include <stdlib.h>
#include <string.h>

#include "edgekit_protocol.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef EDGEKIT_MODEL_TAG
#define EDGEKIT_MODEL_TAG "edgekit"
#endif

namespace edgekit {

class SerialPlatform : public Platform {
 public:
  void write(const char* s, unsigned n) override {
    Serial.write(reinterpret_cast<const uint8_t*>(s), n);
  }
  unsigned long micros() override { return ::micros(); }
};

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  enum { kMaxOps = 256 };
  void clear() { n_ = 0; }
  uint32_t BeginEvent(const char* tag) override {
    if (n_ >= kMaxOps) return kMaxOps;  // beyond the table: not recorded
    tags_[n_] = tag;
    start_[n_] = ::micros();
    us_[n_] = 0;
    return n_++;
  }
  void EndEvent(uint32_t handle) override {
    if (handle < kMaxOps) us_[handle] = ::micros() - start_[handle];
  }
  unsigned count() const { return n_; }
  const char* tag(unsigned i) const { return i < n_ && tags_[i] ? tags_[i] : "OP"; }
  unsigned long us(unsigned i) const { return i < n_ ? us_[i] : 0; }

 private:
  unsigned n_ = 0;
  const char* tags_[kMaxOps];
  unsigned long start_[kMaxOps];
  unsigned long us_[kMaxOps];
};

inline DType dtype_of(const TfLiteTensor* t) {
  if (!t) return kOtherType;
  switch (t->type) {
    case kTfLiteInt8: return kInt8;
    case kTfLiteUInt8: return kUInt8;
    case kTfLiteInt16: return kInt16;
    case kTfLiteFloat32: return kFloat32;
    default: return kOtherType;
  }
}

class TflmModel : public Model {
 public:
  // Call once AllocateTensors() succeeded. Returns an error message, or nullptr.
  const char* attach(tflite::MicroInterpreter* interpreter, OpProfiler* profiler) {
    interpreter_ = interpreter;
    profiler_ = profiler;
    in_ = interpreter->input(0);
    out_ = interpreter->output(0);
    if (!in_ || !out_) return "the model has no input or no output tensor";
    staging_ = static_cast<uint8_t*>(malloc(in_->bytes));
    if (!staging_) return "no memory for the input staging buffer";
    memset(staging_, 0, in_->bytes);
    return nullptr;
  }
  // info% fields that only the sketch knows.
  void set_board_info(unsigned long arena_bytes, unsigned long flash_used, unsigned long clock_hz) {
    arena_bytes_ = arena_bytes;
    flash_used_ = flash_used;
    clock_hz_ = clock_hz;
  }

  uint8_t* input() override { return staging_; }
  unsigned input_capacity() override { return staging_ ? input_bytes() : 0; }
  unsigned input_bytes() override { return in_ ? static_cast<unsigned>(in_->bytes) : 0; }
  DType input_dtype() override { return dtype_of(in_); }
  bool invoke() override {
    if (!interpreter_ || !staging_) return false;
    memcpy(in_->data.raw, staging_, in_->bytes);
    if (profiler_) profiler_->clear();
    return interpreter_->Invoke() == kTfLiteOk;
  }
  const uint8_t* output() override {
    return out_ ? reinterpret_cast<const uint8_t*>(out_->data.raw) : nullptr;
  }
  unsigned output_bytes() override { return out_ ? static_cast<unsigned>(out_->bytes) : 0; }
  DType output_dtype() override { return dtype_of(out_); }
  float output_scale() override { return out_ ? out_->params.scale : 0.0f; }
  long output_zero_point() override { return out_ ? out_->params.zero_point : 0; }
  unsigned op_count() override { return profiler_ ? profiler_->count() : 0; }
  const char* op_name(unsigned i) override { return profiler_ ? profiler_->tag(i) : ""; }
  unsigned long op_us(unsigned i) override { return profiler_ ? profiler_->us(i) : 0; }
  void info(ModelInfo* o) override {
    o->board = EDGEKIT_BOARD;
    o->firmware = EDGEKIT_FIRMWARE_VERSION;
    o->model_tag = EDGEKIT_MODEL_TAG;
    o->sha256 = EDGEKIT_MODEL_SHA256;
    o->arena_bytes = arena_bytes_;
    o->arena_used = interpreter_ ? static_cast<unsigned long>(interpreter_->arena_used_bytes()) : 0;
    o->flash_used = flash_used_;
    o->clock_hz = clock_hz_;
  }

 private:
  tflite::MicroInterpreter* interpreter_ = nullptr;
  OpProfiler* profiler_ = nullptr;
  TfLiteTensor* in_ = nullptr;
  TfLiteTensor* out_ = nullptr;
  uint8_t* staging_ = nullptr;
  unsigned long arena_bytes_ = 0, flash_used_ = 0, clock_hz_ = 0;
};

// The interpreter for the model at `model_data`, over `arena`, with the ops `register_ops` adds
// (model_ops.h's edgekit_register_ops), allocated and attached to `adapter`. Returns an error
// message, or nullptr. Call once: the resolver and interpreter are static.
template <unsigned kOps, typename RegisterOps>
const char* start_interpreter(const unsigned char* model_data, uint8_t* arena, size_t arena_bytes,
                              RegisterOps register_ops, OpProfiler* profiler, TflmModel* adapter) {
  const tflite::Model* model = tflite::GetModel(model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return "model schema version not supported";
  static tflite::MicroMutableOpResolver<kOps> resolver;
  register_ops(resolver);
  static tflite::MicroInterpreter interpreter(model, resolver, arena, arena_bytes, nullptr, profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) return "AllocateTensors() failed";
  return adapter->attach(&interpreter, profiler);
}

}  // namespace edgekit

#endif  // EDGEKIT_TFLM_H_
