// main.cpp: edgekit firmware on the emulated board (QEMU mps2-an386, Cortex-M4F).
//
// What firmware/nano33ble/nano33ble.ino does for the model, with the same protocol core
// (edgekit_protocol), the same TFLite Micro wiring (edgekit_tflm.h) and the same generated
// model_data / model_ops / model_config files, built against the same Arduino_TensorFlowLite
// library with the board's own compiler flags. board.cpp and Arduino.h stand in for the
// Arduino core. Differences from the sketch:
// - info%'s firmware is "edgekit-emulated <version>", so the host knows every "us" it reports
//   is an instruction count (micros() counts instructions, see Arduino.h);
// - clock-hz is the board's chip clock (model_config.h), as on the board;
// - no stream sensors: QEMU's machine has no analog inputs or sensors.
#include "Arduino.h"
#include "model_config.h"

// edgekit_tflm.h fills info%'s firmware field from this macro.
static const char kFirmware[] = "edgekit-emulated " EDGEKIT_FIRMWARE_VERSION;
#undef EDGEKIT_FIRMWARE_VERSION
#define EDGEKIT_FIRMWARE_VERSION kFirmware

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"
#include "model_ops.h"

#include "edgekit_protocol.h"
#include "edgekit_tflm.h"

// Flash used, counted as arduino-cli counts a sketch: code and constants from the vector table
// on, plus initialised data (symbols of the linker script, mps2_an386.ld).
extern "C" {
extern const char __Vectors[], __etext[];
extern char __data_start__[], __data_end__[];
}
static unsigned long flash_used_bytes() {
  return static_cast<unsigned long>(__etext - __Vectors) + static_cast<unsigned long>(__data_end__ - __data_start__);
}

alignas(16) static uint8_t g_arena[EDGEKIT_ARENA_BYTES];

static edgekit::SerialPlatform g_platform;
static edgekit::TflmModel g_model_adapter;
static edgekit::OpProfiler g_profiler;
static edgekit::Protocol g_proto(g_platform, g_model_adapter);

static const char* setup_model() {
  return edgekit::start_interpreter<EDGEKIT_OP_COUNT>(g_model, g_arena, EDGEKIT_ARENA_BYTES, edgekit_register_ops,
                                                      &g_profiler, &g_model_adapter);
}

int main() {
  Serial.begin(115200);
  g_model_adapter.set_board_info(EDGEKIT_ARENA_BYTES, flash_used_bytes(), EDGEKIT_CLOCK_HZ);
  const char* err = setup_model();
  if (err) g_proto.set_model_error(err);
  g_proto.begin();
  for (;;) {
    while (Serial.available() > 0) g_proto.feed(static_cast<char>(Serial.read()));
    g_proto.poll();
    if (!g_proto.streaming()) Serial.wait();
  }
}
