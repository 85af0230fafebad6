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
//                     (profile%'s m-model-[...], default "edgekit"); sensor flags below.
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
// Stream sensors (docs/protocol.md, "Stream sensors per board", gives channels, units and scales):
// "adc" (A0, A1, A2) always. The board's own sensors are compiled in by a flag (in model_config.h
// or the build flags, e.g. --build-property "compiler.cpp.extra_flags=-DEDGEKIT_NANO_REV2"), so that
// the sketch builds without their libraries when they are not wanted:
//   EDGEKIT_NANO_REV1   Rev1: imu (Arduino_LSM9DS1), microphone (PDM, part of the core),
//                       temperature (Arduino_HTS221), pressure (Arduino_LPS22HB), light (Arduino_APDS9960)
//   EDGEKIT_NANO_REV2   Rev2: imu (Arduino_BMI270_BMM150), temperature (Arduino_HS300x), the rest as Rev1
//   EDGEKIT_IMU_LSM9DS1 / EDGEKIT_IMU_BMI270   (older flags) the imu alone, of Rev1 / Rev2
//   EDGEKIT_NO_IMU, EDGEKIT_NO_MICROPHONE, EDGEKIT_NO_TEMPERATURE, EDGEKIT_NO_PRESSURE,
//   EDGEKIT_NO_LIGHT    leave one out (its library is missing, or to save flash and RAM)
// (`#if __has_include(...)` cannot pick them: arduino-cli finds a library only through an #include
// that fails, and __has_include hides that failure; arduino/arduino-cli issues 1650 and 1782.)

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

#if defined(EDGEKIT_NANO_REV1) && defined(EDGEKIT_NANO_REV2)
#error "define EDGEKIT_NANO_REV1 or EDGEKIT_NANO_REV2, not both"
#endif
#if defined(EDGEKIT_NANO_REV1) && !defined(EDGEKIT_IMU_LSM9DS1)
#define EDGEKIT_IMU_LSM9DS1 1
#endif
#if defined(EDGEKIT_NANO_REV2) && !defined(EDGEKIT_IMU_BMI270)
#define EDGEKIT_IMU_BMI270 1
#endif
#if defined(EDGEKIT_NANO_REV1) || defined(EDGEKIT_NANO_REV2)
#define EDGEKIT_NANO_SENSORS 1
#endif

#if (defined(EDGEKIT_IMU_LSM9DS1) || defined(EDGEKIT_IMU_BMI270)) && !defined(EDGEKIT_NO_IMU)
#define EDGEKIT_HAVE_IMU 1
#include <Wire.h>
#if defined(EDGEKIT_IMU_LSM9DS1)
#include <Arduino_LSM9DS1.h>
#else
#include <Arduino_BMI270_BMM150.h>
#endif
#endif
#if defined(EDGEKIT_NANO_SENSORS) && !defined(EDGEKIT_NO_MICROPHONE)
#define EDGEKIT_HAVE_MICROPHONE 1
#include <PDM.h>
#endif
#if defined(EDGEKIT_NANO_SENSORS) && !defined(EDGEKIT_NO_TEMPERATURE)
#define EDGEKIT_HAVE_TEMPERATURE 1
#if defined(EDGEKIT_NANO_REV1)
#include <Arduino_HTS221.h>
#else
#include <Arduino_HS300x.h>
#endif
#endif
#if defined(EDGEKIT_NANO_SENSORS) && !defined(EDGEKIT_NO_PRESSURE)
#define EDGEKIT_HAVE_PRESSURE 1
#include <Arduino_LPS22HB.h>
#endif
#if defined(EDGEKIT_NANO_SENSORS) && !defined(EDGEKIT_NO_LIGHT)
#define EDGEKIT_HAVE_LIGHT 1
#include <Arduino_APDS9960.h>
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

// A physical value in int16 steps of `per_lsb` (docs/protocol.md's scale), rounded and clamped.
static inline int16_t to_raw(float value, float per_lsb) {
  const float f = value / per_lsb;
  if (!(f > -32768.0f)) return f != f ? 0 : -32768;  // NaN reads as 0
  if (f >= 32767.0f) return 32767;
  return static_cast<int16_t>(f < 0.0f ? f - 0.5f : f + 0.5f);
}

class AdcSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "adc"; }
  unsigned channels() override { return 3; }
  unsigned long max_rate_hz() override { return 1000; }
  unsigned samples_per_frame() override { return 48; }  // as many as 96 bytes hold
  bool read(int16_t* v) override {
    v[0] = static_cast<int16_t>(analogRead(A0));
    v[1] = static_cast<int16_t>(analogRead(A1));
    v[2] = static_cast<int16_t>(analogRead(A2));
    return true;
  }
};
static AdcSensor g_adc;

#if defined(EDGEKIT_HAVE_IMU)
// Register access to the IMU on the internal I2C bus (Wire1), for what the libraries do not offer:
// the output data rate (both libraries fix it near 100 Hz).
static bool imu_update_register(uint8_t addr, uint8_t reg, uint8_t keep_mask, uint8_t bits) {
  Wire1.beginTransmission(addr);
  Wire1.write(reg);
  if (Wire1.endTransmission(false) != 0) return false;
  if (Wire1.requestFrom(addr, static_cast<size_t>(1)) != 1) return false;
  const uint8_t old = static_cast<uint8_t>(Wire1.read());
  Wire1.beginTransmission(addr);
  Wire1.write(reg);
  Wire1.write(static_cast<uint8_t>((old & keep_mask) | bits));
  return Wire1.endTransmission() == 0;
}

// ax, ay, az (g, 4/32768), gx, gy, gz (dps, 2000/32768), mx, my, mz (uT, 0.1): the libraries' own
// ranges (+-4 g, +-2000 dps). Accelerometer and gyroscope are read at every sample, from a chip
// rate at or above the stream's; the magnetometer only at its own rate, repeated in between.
// The read functions return 1 on success and 0 on a bus error (LSM9DS1 then gives NaN, the
// BMI270 library stale or uninitialised values): a failed read is no sample, poll() asks again.
class ImuSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "imu"; }
  unsigned channels() override { return 9; }
  unsigned long max_rate_hz() override { return 1000; }  // the firmware's polling limit
  unsigned samples_per_frame() override { return 48; }
  bool start(unsigned long rate_hz) override {
    if (!started_) started_ = IMU.begin();
    if (!started_) return false;
    Wire1.setClock(400000);  // three reads a sample at 1 kHz do not fit in 100 kHz I2C
    set_rate(rate_hz);
    mag_due_ = micros();
    return true;
  }
  bool read(int16_t* v) override {
    float x, y, z;
    if (!IMU.readAcceleration(x, y, z)) return false;
    v[0] = to_raw(x, 4.0f / 32768.0f);
    v[1] = to_raw(y, 4.0f / 32768.0f);
    v[2] = to_raw(z, 4.0f / 32768.0f);
    if (!IMU.readGyroscope(x, y, z)) return false;
    v[3] = to_raw(x, 2000.0f / 32768.0f);
    v[4] = to_raw(y, 2000.0f / 32768.0f);
    v[5] = to_raw(z, 2000.0f / 32768.0f);
    const unsigned long now = micros();
    if (static_cast<long>(now - mag_due_) >= 0 && IMU.readMagneticField(x, y, z)) {
      mag_[0] = to_raw(x, 0.1f);
      mag_[1] = to_raw(y, 0.1f);
      mag_[2] = to_raw(z, 0.1f);
      mag_due_ = now + kMagPeriodUs;
    }
    v[6] = mag_[0];
    v[7] = mag_[1];
    v[8] = mag_[2];
    return true;
  }

 private:
#if defined(EDGEKIT_IMU_LSM9DS1)
  static const unsigned long kMagPeriodUs = 50000;  // LSM9DS1 magnetometer: 20 Hz
  // LSM9DS1 accelerometer + gyroscope (I2C 0x6B): ODR in bits 7..5 of CTRL_REG1_G (0x10) and
  // CTRL_REG6_XL (0x20), codes 3..6 = 119, 238, 476, 952 Hz; the range bits are left alone.
  static void set_rate(unsigned long rate_hz) {
    const uint8_t code = rate_hz <= 119 ? 3 : rate_hz <= 238 ? 4 : rate_hz <= 476 ? 5 : 6;
    imu_update_register(0x6B, 0x10, 0x1F, static_cast<uint8_t>(code << 5));
    imu_update_register(0x6B, 0x20, 0x1F, static_cast<uint8_t>(code << 5));
  }
#else
  static const unsigned long kMagPeriodUs = 100000;  // BMM150 as the library sets it: 10 Hz
  // BMI270 (I2C 0x68): ODR in bits 3..0 of ACC_CONF (0x40) and GYR_CONF (0x42), codes 8..12 =
  // 100, 200, 400, 800, 1600 Hz; bandwidth and filter bits are left as the library set them.
  // The delays respect the BMI270's 450 us between writes while its power save may be on.
  static void set_rate(unsigned long rate_hz) {
    const uint8_t code =
        rate_hz <= 100 ? 8 : rate_hz <= 200 ? 9 : rate_hz <= 400 ? 10 : rate_hz <= 800 ? 11 : 12;
    imu_update_register(0x68, 0x40, 0xF0, code);
    delay(1);
    imu_update_register(0x68, 0x42, 0xF0, code);
    delay(1);
  }
#endif
  bool started_ = false;
  unsigned long mag_due_ = 0;
  int16_t mag_[3] = {0, 0, 0};
};
static ImuSensor g_imu;
#endif

#if defined(EDGEKIT_HAVE_MICROPHONE)
// The PDM library calls on_pdm() from its interrupt with each block of 16-bit samples; a ring
// buffer carries them to read() in the loop. One writer (the interrupt) moves the head, one reader
// (the loop) the tail: 32-bit loads and stores are atomic on the Cortex-M4, so no lock is needed.
// When the loop falls behind by more than the ring holds, the newest samples are dropped.
static const uint32_t kMicRing = 4096;  // samples, a power of two: 256 ms at 16 kHz
static int16_t g_mic_ring[kMicRing];
static volatile uint32_t g_mic_head = 0;
static volatile uint32_t g_mic_tail = 0;

static void on_pdm() {
  int16_t block[128];
  int bytes = PDM.available();
  while (bytes > 0) {
    const int want = bytes < static_cast<int>(sizeof block) ? bytes : static_cast<int>(sizeof block);
    const int got = PDM.read(block, want);
    if (got <= 0) break;
    bytes -= got;
    uint32_t head = g_mic_head;
    for (int i = 0; i < got / 2; ++i) {
      if (head - g_mic_tail >= kMicRing) break;  // full: drop the newest
      g_mic_ring[head & (kMicRing - 1)] = block[i];
      ++head;
    }
    g_mic_head = head;
  }
}

// audio (pcm16, 1/32768 of full scale), mono, exactly 16000 Hz.
class MicrophoneSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "microphone"; }
  unsigned channels() override { return 1; }
  unsigned long max_rate_hz() override { return 16000; }
  unsigned samples_per_frame() override { return 48; }
  bool start(unsigned long rate_hz) override {
    if (rate_hz != 16000) return false;  // the PDM clock is set for 16 kHz only
    g_mic_head = 0;
    g_mic_tail = 0;
    PDM.onReceive(on_pdm);
    return PDM.begin(1, 16000) != 0;
  }
  bool read(int16_t* v) override {
    const uint32_t tail = g_mic_tail;
    if (tail == g_mic_head) return false;  // the next sample has not arrived yet
    v[0] = g_mic_ring[tail & (kMicRing - 1)];
    g_mic_tail = tail + 1;
    return true;
  }
  void stop() override { PDM.end(); }
};
static MicrophoneSensor g_microphone;
#endif

#if defined(EDGEKIT_HAVE_TEMPERATURE)
// temperature (C, 0.01), humidity (%RH, 0.01): HTS221 on Rev1, HS3003 on Rev2, read one-shot.
// HTS.begin() checks the chip's WHO_AM_I; HS300x.begin() only starts Wire1 and always returns 1,
// so on Rev2 a first reading (NaN when the chip does not answer) tells whether it is there.
class TemperatureSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "temperature"; }
  unsigned channels() override { return 2; }
  unsigned long max_rate_hz() override { return 10; }
  bool start(unsigned long) override {
#if defined(EDGEKIT_NANO_REV1)
    if (!started_) started_ = HTS.begin() != 0;
#else
    if (!started_) {
      const float h = HS300x.begin() != 0 ? HS300x.readHumidity() : NAN;
      started_ = h == h;
    }
#endif
    return started_;
  }
  bool read(int16_t* v) override {
#if defined(EDGEKIT_NANO_REV1)
    v[0] = to_raw(HTS.readTemperature(), 0.01f);
    v[1] = to_raw(HTS.readHumidity(), 0.01f);
#else
    v[0] = to_raw(HS300x.readTemperature(), 0.01f);
    v[1] = to_raw(HS300x.readHumidity(), 0.01f);
#endif
    return true;
  }

 private:
  bool started_ = false;
};
static TemperatureSensor g_temperature;
#endif

#if defined(EDGEKIT_HAVE_PRESSURE)
// pressure (kPa, 0.01): LPS22HB, read one-shot.
class PressureSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "pressure"; }
  unsigned channels() override { return 1; }
  unsigned long max_rate_hz() override { return 50; }
  bool start(unsigned long) override {
    if (!started_) started_ = BARO.begin() != 0;
    return started_;
  }
  bool read(int16_t* v) override {
    v[0] = to_raw(BARO.readPressure(), 0.01f);  // the library's default unit is kPa
    return true;
  }

 private:
  bool started_ = false;
};
static PressureSensor g_pressure;
#endif

#if defined(EDGEKIT_HAVE_LIGHT)
// r, g, b, clear, proximity (counts, clamped to 32767): APDS9960; each reading repeats until the
// chip has a new one. The library's readColor(r, g, b, c) returns false on a bus error, and
// readProximity() gives 255 - PDATA (0 nearest, 255 nothing in range) or -1 on a bus error:
// failed reads keep the last values.
class LightSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "light"; }
  unsigned channels() override { return 5; }
  unsigned long max_rate_hz() override { return 10; }
  bool start(unsigned long) override {
    if (!started_) started_ = APDS.begin() != 0;
    return started_;
  }
  bool read(int16_t* v) override {
    int r = 0, g = 0, b = 0, c = 0;
    if (APDS.colorAvailable() && APDS.readColor(r, g, b, c)) {
      last_[0] = clamp_count(r);
      last_[1] = clamp_count(g);
      last_[2] = clamp_count(b);
      last_[3] = clamp_count(c);
    }
    if (APDS.proximityAvailable()) {
      const int p = APDS.readProximity();
      if (p >= 0) last_[4] = clamp_count(p);
    }
    for (int i = 0; i < 5; ++i) v[i] = last_[i];
    return true;
  }

 private:
  static int16_t clamp_count(int n) {
    return static_cast<int16_t>(n < 0 ? 0 : n > 32767 ? 32767 : n);
  }
  bool started_ = false;
  int16_t last_[5] = {0, 0, 0, 0, 0};
};
static LightSensor g_light;
#endif

static const char* setup_model() {
  return edgekit::start_interpreter<EDGEKIT_OP_COUNT>(g_model, g_arena, EDGEKIT_ARENA_BYTES, edgekit_register_ops,
                                                      &g_profiler, &g_model_adapter);
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
#if defined(EDGEKIT_HAVE_MICROPHONE)
  g_proto.add_sensor(&g_microphone);
#endif
#if defined(EDGEKIT_HAVE_TEMPERATURE)
  g_proto.add_sensor(&g_temperature);
#endif
#if defined(EDGEKIT_HAVE_PRESSURE)
  g_proto.add_sensor(&g_pressure);
#endif
#if defined(EDGEKIT_HAVE_LIGHT)
  g_proto.add_sensor(&g_light);
#endif
  g_proto.begin();
}

void loop() {
  while (Serial.available() > 0) g_proto.feed(static_cast<char>(Serial.read()));
  g_proto.poll();
}
