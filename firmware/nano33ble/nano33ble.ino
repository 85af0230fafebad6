// nano33ble.ino: edgekit firmware for the Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F, 64 MHz).
//
// Speaks docs/protocol.md at 115200 baud over the USB serial port (the MLPerf Tiny host-device
// protocol plus edgekit's info, dbx, raw, layers and stream). The protocol itself lives in
// edgekit_protocol.cpp (plain C++, tested on the host); this sketch only wires it to Serial,
// micros() and TensorFlow Lite Micro with CMSIS-NN kernels.
//
// Files the deployment step generates next to this sketch (there are no placeholder copies here):
//   model_data.h/.cc  alignas(16) const unsigned char g_model[]; const unsigned int g_model_len;
//   model_ops.h       #define EDGEKIT_OP_COUNT n and
//                     void edgekit_register_ops(tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT>&)
//   model_config.h    EDGEKIT_ARENA_BYTES, EDGEKIT_MODEL_SHA256 ("64 hex"), EDGEKIT_BOARD
//                     ("nano33ble"), EDGEKIT_FIRMWARE_VERSION ("..."); optional EDGEKIT_MODEL_TAG
//                     (profile%'s m-model-[...], default "edgekit"), EDGEKIT_IMU_LSM9DS1 (Rev1) or
//                     EDGEKIT_IMU_BMI270 (Rev2) to offer the "imu" stream sensor.
// and the protocol core, firmware/common/edgekit_protocol.{h,cpp} and edgekit_tflm.h, either
// copied next to the sketch or given as a library (arduino-cli compile --library firmware/common).
//
// Build: arduino-cli compile --fqbn arduino:mbed_nano:nano33ble with a TFLite Micro library that
// has CMSIS-NN kernels and TFLM's current API (no ErrorReporter): tflite-micro-arduino-examples'
// Arduino_TensorFlowLite (installed from git; header TensorFlowLite.h, the default here) or
// Chirale_TensorFLowLite (Library Manager): for the latter define, in model_config.h or the build
// flags, EDGEKIT_TFLM_HEADER <Chirale_TensorFlowLite.h>. (arduino-cli finds a library only through
// a header at the top of its source folder, so the sketch must include the library's own header.)
//
// Stream sensors: "adc" (A0, A1, A2 as 3 channels, up to 1000 Hz, one sample per frame) always;
// "imu" (6 channels: acceleration in mg, rotation in 0.1 deg/s; up to 100 Hz) with an IMU define.

#include <Arduino.h>

#include "model_config.h"  // first: it may choose the TFLM library (EDGEKIT_TFLM_HEADER)

#if defined(EDGEKIT_TFLM_HEADER)
#include EDGEKIT_TFLM_HEADER
#else
#include <TensorFlowLite.h>
#endif

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"
#include "model_ops.h"

#include "edgekit_protocol.h"
#include "edgekit_tflm.h"

#if defined(EDGEKIT_IMU_LSM9DS1)
#include <Arduino_LSM9DS1.h>
#define EDGEKIT_HAVE_IMU 1
#elif defined(EDGEKIT_IMU_BMI270)
#include <Arduino_BMI270_BMM150.h>
#define EDGEKIT_HAVE_IMU 1
#endif

// Linker and CMSIS symbols, under names of our own so that no header's declaration can clash.
// Flash used = (end of code and constants - start of the sketch) + initialised data, as
// arduino-cli's "Sketch uses N bytes" counts it. The sketch starts at the vector table (__Vectors in
// mbed's startup code); if the symbol is missing, at 0x10000, after the Arduino bootloader.
extern "C" {
extern const char edgekit_etext[] __asm__("__etext");
extern char edgekit_data_start[] __asm__("__data_start__");
extern char edgekit_data_end[] __asm__("__data_end__");
extern const char edgekit_vectors[] __asm__("__Vectors") __attribute__((weak));
extern uint32_t edgekit_core_clock __asm__("SystemCoreClock");
}

// (No namespaces around functions: the Arduino builder writes prototypes for the sketch's
// functions at file scope, which would clash with functions inside an anonymous namespace.)
static unsigned long flash_used_bytes() {
  const unsigned long start =
      edgekit_vectors ? reinterpret_cast<unsigned long>(edgekit_vectors) : 0x10000ul;
  return reinterpret_cast<unsigned long>(edgekit_etext) - start +
         static_cast<unsigned long>(edgekit_data_end - edgekit_data_start);
}

alignas(16) static uint8_t g_arena[EDGEKIT_ARENA_BYTES];

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

#if defined(EDGEKIT_HAVE_IMU)
class ImuSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "imu"; }
  unsigned channels() override { return 6; }
  unsigned long max_rate_hz() override { return 100; }
  bool start(unsigned long) override {
    if (!started_) started_ = IMU.begin();
    return started_;
  }
  bool read(int16_t* v) override {
    if (!IMU.accelerationAvailable()) return false;  // wait for a fresh sample
    float x, y, z;
    IMU.readAcceleration(x, y, z);  // g
    a_[0] = clamp16(x * 1000.0f);
    a_[1] = clamp16(y * 1000.0f);
    a_[2] = clamp16(z * 1000.0f);
    if (IMU.gyroscopeAvailable()) {
      IMU.readGyroscope(x, y, z);  // degrees per second
      g_[0] = clamp16(x * 10.0f);
      g_[1] = clamp16(y * 10.0f);
      g_[2] = clamp16(z * 10.0f);
    }
    for (int i = 0; i < 3; ++i) {
      v[i] = a_[i];
      v[3 + i] = g_[i];
    }
    return true;
  }

 private:
  static int16_t clamp16(float f) {
    if (f > 32767.0f) return 32767;
    if (f < -32768.0f) return -32768;
    return static_cast<int16_t>(f);
  }
  bool started_ = false;
  int16_t a_[3] = {0, 0, 0};
  int16_t g_[3] = {0, 0, 0};
};
static ImuSensor g_imu;
#endif

static const char* setup_model() {
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) return "model schema version not supported";
  static tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT> resolver;
  edgekit_register_ops(resolver);
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, EDGEKIT_ARENA_BYTES,
                                              nullptr, &g_profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) return "AllocateTensors() failed";
  return g_model_adapter.attach(&interpreter, &g_profiler);
}

void setup() {
  Serial.begin(115200);
  const unsigned long t = millis();
  while (!Serial && millis() - t < 3000) {
  }  // give the host a moment to open the port (USB CDC): the banner may still be missed
  g_model_adapter.set_board_info(EDGEKIT_ARENA_BYTES, flash_used_bytes(), edgekit_core_clock);
  const char* err = setup_model();
  if (err) g_proto.set_model_error(err);
  g_proto.add_sensor(&g_adc);
#if defined(EDGEKIT_HAVE_IMU)
  g_proto.add_sensor(&g_imu);
#endif
  g_proto.begin();
}

void loop() {
  while (Serial.available() > 0) g_proto.feed(static_cast<char>(Serial.read()));
  g_proto.poll();
}
