// esp32s3.ino: edgekit firmware for the Seeed XIAO ESP32S3 (Sense) (ESP32-S3, Xtensa LX7, 240 MHz).
//
// Speaks docs/protocol.md at 115200 baud over the USB serial port (the MLPerf Tiny host-device
// protocol plus edgekit's info, dbx, raw, layers and stream). The protocol itself lives in
// edgekit_protocol.cpp (plain C++, tested on the host); this sketch only wires it to Serial,
// micros() and TensorFlow Lite Micro with Espressif's ESP-NN kernels.
//
// Files the deployment step generates next to this sketch (there are no placeholder copies here):
//   model_data.h/.cc  alignas(16) const unsigned char g_model[]; const unsigned int g_model_len;
//   model_ops.h       #define EDGEKIT_OP_COUNT n and
//                     void edgekit_register_ops(tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT>&)
//   model_config.h    EDGEKIT_ARENA_BYTES, EDGEKIT_MODEL_SHA256 ("64 hex"), EDGEKIT_BOARD
//                     ("esp32s3"), EDGEKIT_FIRMWARE_VERSION ("..."); optional EDGEKIT_MODEL_TAG
//                     (profile%'s m-model-[...], default "edgekit") and EDGEKIT_ARENA_IN_PSRAM
//                     (allocate the arena in the 8 MB octal PSRAM: needs the board option PSRAM=opi).
// and the protocol core, firmware/common/edgekit_protocol.{h,cpp} and edgekit_tflm.h, either
// copied next to the sketch or given as a library (arduino-cli compile --library firmware/common).
//
// Build: arduino-cli compile --fqbn esp32:esp32:XIAO_ESP32S3:PSRAM=opi with arduino-esp32 3.x,
// whose prebuilt ESP-IDF libraries include Espressif's esp-tflite-micro component (TFLite Micro
// with ESP-NN kernels for the S3's SIMD instructions): the sketch then includes no TFLM library,
// and none should be added (a second TFLM would clash with the core's). On arduino-esp32 2.x, which
// has no TFLM, it includes the TensorFlowLite_ESP32 library (Library Manager; note that its sync
// script deletes the esp_nn kernels, so it runs TFLM's reference kernels). EDGEKIT_TFLM_HEADER
// (in model_config.h or the build flags), e.g. <Chirale_TensorFlowLite.h>, overrides the choice.
//
// Stream sensor: "adc" (A0, A1, A2 as 3 channels, 12-bit, up to 1000 Hz, one sample per frame).

#include <Arduino.h>
#include <esp_heap_caps.h>

#include "model_config.h"  // first: it may choose the TFLM library (EDGEKIT_TFLM_HEADER)

#if defined(EDGEKIT_TFLM_HEADER)
#include EDGEKIT_TFLM_HEADER
#elif defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR < 3
#include <TensorFlowLite_ESP32.h>
#endif

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"
#include "model_ops.h"

#include "edgekit_protocol.h"
#include "edgekit_tflm.h"

// (No namespaces around functions: the Arduino builder writes prototypes for the sketch's
// functions at file scope, which would clash with functions inside an anonymous namespace.)

#if !defined(EDGEKIT_ARENA_IN_PSRAM)
alignas(16) static uint8_t g_arena_internal[EDGEKIT_ARENA_BYTES];
#endif

static edgekit::SerialPlatform g_platform;
static edgekit::TflmModel g_model_adapter;
static edgekit::OpProfiler g_profiler;
static edgekit::Protocol g_proto(g_platform, g_model_adapter);

class AdcSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "adc"; }
  unsigned channels() override { return 3; }
  unsigned long max_rate_hz() override { return 1000; }
  bool read(int16_t* v) override {
    v[0] = static_cast<int16_t>(analogRead(A0));
    v[1] = static_cast<int16_t>(analogRead(A1));
    v[2] = static_cast<int16_t>(analogRead(A2));
    return true;
  }
};
static AdcSensor g_adc;

static uint8_t* allocate_arena() {
#if defined(EDGEKIT_ARENA_IN_PSRAM)
  // 16-byte aligned, as TFLM wants its arena (it would otherwise lose up to 15 bytes aligning it).
  return static_cast<uint8_t*>(
      heap_caps_aligned_alloc(16, EDGEKIT_ARENA_BYTES, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
#else
  return g_arena_internal;
#endif
}

static const char* setup_model() {
  uint8_t* arena = allocate_arena();
  if (!arena) return "no PSRAM for the tensor arena (board option PSRAM=opi?)";
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) return "model schema version not supported";
  static tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT> resolver;
  edgekit_register_ops(resolver);
  static tflite::MicroInterpreter interpreter(model, resolver, arena, EDGEKIT_ARENA_BYTES, nullptr,
                                              &g_profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) return "AllocateTensors() failed";
  return g_model_adapter.attach(&interpreter, &g_profiler);
}

void setup() {
  Serial.begin(115200);
  const unsigned long t = millis();
  while (!Serial && millis() - t < 3000) {
  }  // give the host a moment to open the port (USB CDC): the banner may still be missed
  analogReadResolution(12);
  g_model_adapter.set_board_info(EDGEKIT_ARENA_BYTES, ESP.getSketchSize(),
                                 static_cast<unsigned long>(getCpuFrequencyMhz()) * 1000000ul);
  const char* err = setup_model();
  if (err) g_proto.set_model_error(err);
  g_proto.add_sensor(&g_adc);
  g_proto.begin();
}

void loop() {
  while (Serial.available() > 0) g_proto.feed(static_cast<char>(Serial.read()));
  g_proto.poll();
}
