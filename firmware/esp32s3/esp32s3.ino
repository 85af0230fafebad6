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
// Stream sensors (docs/protocol.md, "Stream sensors per board", gives channels, units and scales):
// "adc" (A0, A1, A2, 12-bit) always. The others are compiled in by a flag (in model_config.h or the
// build flags, e.g. --build-property "compiler.cpp.extra_flags=-DEDGEKIT_XIAO_SENSE"); they need
// no library beyond the esp32 core:
//   EDGEKIT_XIAO_SENSE     the Sense expansion board: microphone (I2S PDM on GPIO42/41, ESP_I2S of
//                          arduino-esp32 3.x; left out on 2.x) and camera (OV2640, esp_camera)
//   EDGEKIT_IMU_LSM6DS3    imu: an LSM6DS3TR-C on the expansion board's Grove I2C (Wire, 0x6A)
//   EDGEKIT_NO_MICROPHONE, EDGEKIT_NO_CAMERA   leave one of the Sense's out

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

#if defined(EDGEKIT_XIAO_SENSE) && !defined(EDGEKIT_NO_MICROPHONE) && \
    defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR >= 3
#define EDGEKIT_HAVE_MICROPHONE 1
#include <ESP_I2S.h>
#endif
#if defined(EDGEKIT_XIAO_SENSE) && !defined(EDGEKIT_NO_CAMERA)
#define EDGEKIT_HAVE_CAMERA 1
#include <esp_camera.h>
#endif
#if defined(EDGEKIT_IMU_LSM6DS3)
#define EDGEKIT_HAVE_IMU 1
#include <Wire.h>
#endif

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
  unsigned samples_per_frame() override { return 48; }  // as many as 96 bytes hold
  bool read(int16_t* v) override {
    v[0] = static_cast<int16_t>(analogRead(A0));
    v[1] = static_cast<int16_t>(analogRead(A1));
    v[2] = static_cast<int16_t>(analogRead(A2));
    return true;
  }
};
static AdcSensor g_adc;

#if defined(EDGEKIT_HAVE_MICROPHONE)
// audio (pcm16, 1/32768 of full scale), mono, exactly 16000 Hz, from the Sense's PDM microphone.
// The I2S driver's DMA buffers (about 90 ms) hold the samples until read() takes them, 48 at a
// time: reading blocks only until the next 48 have arrived (3 ms), which keeps the stream in step
// with the microphone's own clock.
class MicrophoneSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "microphone"; }
  unsigned channels() override { return 1; }
  unsigned long max_rate_hz() override { return 16000; }
  unsigned samples_per_frame() override { return 48; }
  bool start(unsigned long rate_hz) override {
    if (rate_hz != 16000) return false;  // the PDM clock is set for 16 kHz only
    i2s_.setPinsPdmRx(42, 41);           // CLK GPIO42, DATA GPIO41
    n_ = pos_ = 0;
    return i2s_.begin(I2S_MODE_PDM_RX, 16000, I2S_DATA_BIT_WIDTH_16BIT, I2S_SLOT_MODE_MONO);
  }
  bool read(int16_t* v) override {
    if (pos_ == n_) {
      const size_t got = i2s_.readBytes(reinterpret_cast<char*>(block_), sizeof block_);
      n_ = static_cast<unsigned>(got / 2);
      pos_ = 0;
      if (n_ == 0) return false;
    }
    v[0] = block_[pos_++];
    return true;
  }
  void stop() override { i2s_.end(); }

 private:
  I2SClass i2s_;
  int16_t block_[48];
  unsigned n_ = 0, pos_ = 0;
};
static MicrophoneSensor g_microphone;
#endif

#if defined(EDGEKIT_HAVE_CAMERA)
// rgb565: one channel, each pixel's RGB565 value as the int16 bit pattern; stills of 96x96 sent
// row by row, the rate in pixels per second (docs/protocol.md). A still is grabbed when its first
// pixel is due. The OV2640 delivers RGB565 high byte first.
class CameraSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "camera"; }
  unsigned channels() override { return 1; }
  unsigned long max_rate_hz() override { return 18432; }  // 2 stills a second over the protocol
  unsigned samples_per_frame() override { return 48; }
  bool start(unsigned long) override {
    if (!ready_) ready_ = init();
    release();
    return ready_;
  }
  bool read(int16_t* v) override {
    if (!fb_) {
      // With one frame buffer the driver fills it as soon as it is returned: the frame waiting
      // there may be old, so it is handed back and the next one, taken now, is used.
      camera_fb_t* stale = esp_camera_fb_get();
      if (stale) esp_camera_fb_return(stale);
      fb_ = esp_camera_fb_get();
      if (!fb_) return false;  // no frame (yet): poll() asks again
      if (fb_->width != 96 || fb_->height != 96 || fb_->len < kPixels * 2u) {
        release();
        return false;
      }
      pixel_ = 0;
    }
    const uint8_t* p = fb_->buf + 2u * pixel_;
    v[0] = static_cast<int16_t>(static_cast<uint16_t>((p[0] << 8) | p[1]));
    if (++pixel_ == kPixels) release();
    return true;
  }
  void stop() override { release(); }

 private:
  static const unsigned kPixels = 96 * 96;
  void release() {
    if (fb_) esp_camera_fb_return(fb_);
    fb_ = nullptr;
  }
  // The XIAO ESP32S3 Sense's camera connector (Seeed's pin map).
  static bool init() {
    camera_config_t c = {};
    c.pin_pwdn = -1;
    c.pin_reset = -1;
    c.pin_xclk = 10;
    c.pin_sccb_sda = 40;
    c.pin_sccb_scl = 39;
    c.pin_d7 = 48;
    c.pin_d6 = 11;
    c.pin_d5 = 12;
    c.pin_d4 = 14;
    c.pin_d3 = 16;
    c.pin_d2 = 18;
    c.pin_d1 = 17;
    c.pin_d0 = 15;
    c.pin_vsync = 38;
    c.pin_href = 47;
    c.pin_pclk = 13;
    c.xclk_freq_hz = 20000000;
    c.ledc_timer = LEDC_TIMER_0;
    c.ledc_channel = LEDC_CHANNEL_0;
    c.pixel_format = PIXFORMAT_RGB565;
    c.frame_size = FRAMESIZE_96X96;
    c.jpeg_quality = 12;
    c.fb_count = 1;
    c.fb_location = psramFound() ? CAMERA_FB_IN_PSRAM : CAMERA_FB_IN_DRAM;
    c.grab_mode = CAMERA_GRAB_WHEN_EMPTY;
    return esp_camera_init(&c) == ESP_OK;
  }
  bool ready_ = false;
  camera_fb_t* fb_ = nullptr;
  unsigned pixel_ = 0;
};
static CameraSensor g_camera;
#endif

#if defined(EDGEKIT_HAVE_IMU)
// ax, ay, az (g, 4/32768), gx, gy, gz (dps, 2000/32768) from an LSM6DS3TR-C at 0x6A on Wire (the
// XIAO expansion board's Grove I2C), by its registers: CTRL1_XL (0x10) and CTRL2_G (0x11) hold
// the output data rate (bits 7..4) and range (+-4 g: 0x08; +-2000 dps: 0x0C); CTRL3_C (0x12) 0x44
// = block data update + address auto-increment; OUTX_L_G (0x22) starts 12 bytes: gyroscope x, y, z
// then accelerometer x, y, z, little-endian.
class ImuSensor : public edgekit::Sensor {
 public:
  const char* name() override { return "imu"; }
  unsigned channels() override { return 6; }
  unsigned long max_rate_hz() override { return 1000; }  // the firmware's polling limit
  unsigned samples_per_frame() override { return 48; }
  bool start(unsigned long rate_hz) override {
    Wire.begin();
    Wire.setClock(400000);  // a 12-byte read every millisecond needs fast-mode I2C
    uint8_t who = 0;
    if (!read_regs(0x0F, &who, 1) || (who != 0x6A && who != 0x69)) return false;  // WHO_AM_I
    // ODR codes 1..8 = 12.5, 26, 52, 104, 208, 416, 833, 1660 Hz: the lowest at or above the rate
    static const unsigned kOdr[8] = {13, 26, 52, 104, 208, 416, 833, 1660};
    uint8_t code = 8;
    for (uint8_t i = 0; i < 8; ++i) {
      if (rate_hz <= kOdr[i]) {
        code = static_cast<uint8_t>(i + 1);
        break;
      }
    }
    return write_reg(0x12, 0x44) && write_reg(0x10, static_cast<uint8_t>((code << 4) | 0x08)) &&
           write_reg(0x11, static_cast<uint8_t>((code << 4) | 0x0C));
  }
  bool read(int16_t* v) override {
    uint8_t b[12];
    if (!read_regs(0x22, b, sizeof b)) return false;  // a bus error: poll() tries again
    for (int i = 0; i < 3; ++i) {
      const int16_t g = static_cast<int16_t>(b[2 * i] | (b[2 * i + 1] << 8));
      const int16_t a = static_cast<int16_t>(b[6 + 2 * i] | (b[6 + 2 * i + 1] << 8));
      v[i] = a;  // 0.122 mg per LSB at +-4 g: the protocol's 4/32768 g
      // 70 mdps per LSB at +-2000 dps; the protocol's LSB is 2000/32768 dps = 61.04 mdps:
      // x 70 * 32768 / 2000000 = 3584 / 3125 (reduced, so the product fits the S3's 32-bit long)
      const long s = (static_cast<long>(g) * 3584L) / 3125L;
      v[3 + i] = static_cast<int16_t>(s > 32767 ? 32767 : s < -32768 ? -32768 : s);
    }
    return true;
  }
  void stop() override {  // power both down
    write_reg(0x10, 0);
    write_reg(0x11, 0);
  }

 private:
  static bool write_reg(uint8_t reg, uint8_t value) {
    Wire.beginTransmission(0x6A);
    Wire.write(reg);
    Wire.write(value);
    return Wire.endTransmission() == 0;
  }
  static bool read_regs(uint8_t reg, uint8_t* out, uint8_t n) {
    Wire.beginTransmission(0x6A);
    Wire.write(reg);
    if (Wire.endTransmission(false) != 0) return false;
    if (Wire.requestFrom(static_cast<uint8_t>(0x6A), n) != n) return false;
    for (uint8_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(Wire.read());
    return true;
  }
};
static ImuSensor g_imu;
#endif

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
  return edgekit::start_interpreter<EDGEKIT_OP_COUNT>(g_model, arena, EDGEKIT_ARENA_BYTES, edgekit_register_ops,
                                                      &g_profiler, &g_model_adapter);
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
#if defined(EDGEKIT_HAVE_MICROPHONE)
  g_proto.add_sensor(&g_microphone);
#endif
#if defined(EDGEKIT_HAVE_IMU)
  g_proto.add_sensor(&g_imu);
#endif
#if defined(EDGEKIT_HAVE_CAMERA)
  g_proto.add_sensor(&g_camera);
#endif
  g_proto.begin();
}

void loop() {
  while (Serial.available() > 0) g_proto.feed(static_cast<char>(Serial.read()));
  g_proto.poll();
}
