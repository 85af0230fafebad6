// Stand-in (declarations only) for <Arduino.h> of arduino-esp32 3.x (board XIAO_ESP32S3), for
// tests/test_sketches_compile.py: the names, types and signatures the sketch, edgekit_tflm.h and
// Wire/ESP_I2S use, transcribed from espressif/arduino-esp32:
//   cores/esp32/Arduino.h @f67ef9fb, esp32-hal.h @4e96bffe (micros, millis, delay),
//   esp32-hal-adc.h @0501831c, esp32-hal-cpu.h @0501831c, esp32-hal-psram.h @4b3f5c8e,
//   esp32-hal-gpio.h (pin modes), Print.h @7218d6b9, Stream.h @00e9c785, HWCDC.h @6adeca44,
//   HardwareSerial.h (3.x: Serial is HWCDCSerial when ARDUINO_USB_MODE and ARDUINO_USB_CDC_ON_BOOT,
//   the XIAO_ESP32S3's default board options), Esp.h @c18d50cb (EspClass, a subset),
//   variants/XIAO_ESP32S3/pins_arduino.h @366ee54d
// No definitions: compiling against this checks names and types, nothing links.
#ifndef Arduino_h
#define Arduino_h

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_arduino_version.h"

// ---- esp32-hal.h and the esp32-hal-*.h it includes ----
#ifdef __cplusplus
extern "C" {
#endif
void yield(void);
unsigned long micros();
unsigned long millis();
void delay(uint32_t);
void delayMicroseconds(uint32_t us);
float temperatureRead();

// esp32-hal-gpio.h
#define LOW 0x0
#define HIGH 0x1
#define INPUT 0x01
#define OUTPUT 0x03
#define PULLUP 0x04
#define INPUT_PULLUP 0x05
#define PULLDOWN 0x08
#define INPUT_PULLDOWN 0x09
#define OPEN_DRAIN 0x10
#define OUTPUT_OPEN_DRAIN 0x13
#define ANALOG 0xC0
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t val);
int digitalRead(uint8_t pin);

// esp32-hal-adc.h
typedef enum { ADC_0db, ADC_2_5db, ADC_6db, ADC_11db } adc_attenuation_t;
uint16_t analogRead(uint8_t pin);
uint32_t analogReadMilliVolts(uint8_t pin);
void analogReadResolution(uint8_t bits);
void analogSetAttenuation(adc_attenuation_t attenuation);
void analogSetPinAttenuation(uint8_t pin, adc_attenuation_t attenuation);

// esp32-hal-cpu.h
bool setCpuFrequencyMhz(uint32_t cpu_freq_mhz);
uint32_t getCpuFrequencyMhz();
uint32_t getXtalFrequencyMhz();
uint32_t getApbFrequency();

// esp32-hal-psram.h
bool psramInit();
bool psramFound();
void* ps_malloc(size_t size);
void* ps_calloc(size_t n, size_t size);
void* ps_realloc(void* ptr, size_t size);
#ifdef __cplusplus
}
#endif

// ---- Arduino.h ----
#define PI 3.1415926535897932384626433832795
#define HALF_PI 1.5707963267948966192313216916398
#define TWO_PI 6.283185307179586476925286766559
#define DEG_TO_RAD 0.017453292519943295769236907684886
#define RAD_TO_DEG 57.295779513082320876798154814105
#define LSBFIRST 0
#define MSBFIRST 1
#define RISING 0x01
#define FALLING 0x02
#define CHANGE 0x03
#define _min(a, b) ((a) < (b) ? (a) : (b))
#define _max(a, b) ((a) > (b) ? (a) : (b))
#define constrain(amt, low, high) ((amt) < (low) ? (low) : ((amt) > (high) ? (high) : (amt)))
#define bit(b) (1UL << (b))
#define NOT_A_PIN -1
typedef bool boolean;
typedef uint8_t byte;
typedef unsigned int word;

#ifdef __cplusplus
void setup(void);
void loop(void);
long random(long, long);
#endif
void randomSeed(unsigned long);
long map(long, long, long, long, long);

#ifdef __cplusplus
#include <algorithm>
#include <cmath>

// ---- Print.h, Stream.h ----
#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2
class __FlashStringHelper;
class String;
class Printable;

class Print {
 private:
  int write_error;
  size_t printNumber(unsigned long, uint8_t);
  size_t printNumber(unsigned long long, uint8_t);
  size_t printFloat(double, uint8_t);

 protected:
  void setWriteError(int err = 1);

 public:
  Print();
  virtual ~Print();
  int getWriteError();
  void clearWriteError();
  virtual size_t write(uint8_t) = 0;
  size_t write(const char* str);
  virtual size_t write(const uint8_t* buffer, size_t size);
  size_t write(const char* buffer, size_t size);
  size_t vprintf(const char* format, va_list arg);
  size_t printf(const char* format, ...) __attribute__((format(printf, 2, 3)));
  virtual int availableForWrite();
  size_t print(const String&);
  size_t print(const char[]);
  size_t print(char);
  size_t print(unsigned char, int = DEC);
  size_t print(int, int = DEC);
  size_t print(unsigned int, int = DEC);
  size_t print(long, int = DEC);
  size_t print(unsigned long, int = DEC);
  size_t print(long long, int = DEC);
  size_t print(unsigned long long, int = DEC);
  size_t print(double, int = 2);
  size_t print(const Printable&);
  size_t println(const String& s);
  size_t println(const char[]);
  size_t println(char);
  size_t println(unsigned char, int = DEC);
  size_t println(int, int = DEC);
  size_t println(unsigned int, int = DEC);
  size_t println(long, int = DEC);
  size_t println(unsigned long, int = DEC);
  size_t println(long long, int = DEC);
  size_t println(unsigned long long, int = DEC);
  size_t println(double, int = 2);
  size_t println(const Printable&);
  size_t println(void);
  virtual void flush();
};

enum LookaheadMode { SKIP_ALL, SKIP_NONE, SKIP_WHITESPACE };

class Stream : public Print {
 protected:
  unsigned long _timeout;
  unsigned long _startMillis;
  int timedRead();
  int timedPeek();
  int peekNextDigit(LookaheadMode lookahead, bool detectDecimal);

 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
  Stream();
  virtual ~Stream();
  void setTimeout(unsigned long timeout);
  unsigned long getTimeout(void);
  bool find(const char* target);
  bool find(const uint8_t* target);
  bool find(const char* target, size_t length);
  bool find(const uint8_t* target, size_t length);
  bool find(char target);
  bool findUntil(const char* target, const char* terminator);
  bool findUntil(const uint8_t* target, const char* terminator);
  bool findUntil(const char* target, size_t targetLen, const char* terminate, size_t termLen);
  bool findUntil(const uint8_t* target, size_t targetLen, const char* terminate, size_t termLen);
  long parseInt(LookaheadMode lookahead = SKIP_ALL, char ignore = '\x01');
  float parseFloat(LookaheadMode lookahead = SKIP_ALL, char ignore = '\x01');
  virtual size_t readBytes(char* buffer, size_t length);
  virtual size_t readBytes(uint8_t* buffer, size_t length);
  size_t readBytesUntil(char terminator, char* buffer, size_t length);
  size_t readBytesUntil(char terminator, uint8_t* buffer, size_t length);
  virtual String readString();
  String readStringUntil(char terminator);

 protected:
  long parseInt(char ignore);
  float parseFloat(char ignore);
};

// ---- HWCDC.h: the S3's USB Serial/JTAG port ----
class HWCDC : public Stream {
 public:
  HWCDC();
  ~HWCDC();
  size_t setRxBufferSize(size_t);
  size_t setTxBufferSize(size_t);
  void setTxTimeoutMs(uint32_t timeout);
  void begin(unsigned long baud = 0);
  void end();
  int available(void);
  int availableForWrite(void);
  int peek(void);
  int read(void);
  size_t read(uint8_t* buffer, size_t size);
  size_t write(uint8_t);
  size_t write(const uint8_t* buffer, size_t size);
  void flush(void);
  static bool isPlugged(void);
  static bool isConnected(void);
  size_t read(char* buffer, size_t size);
  size_t write(const char* buffer, size_t size);
  size_t write(const char* s);
  size_t write(unsigned long n);
  size_t write(long n);
  size_t write(unsigned int n);
  size_t write(int n);
  operator bool() const;
  void setDebugOutput(bool);
  uint32_t baudRate();
};
#if ARDUINO_USB_MODE && ARDUINO_USB_CDC_ON_BOOT
extern HWCDC HWCDCSerial;
#endif

// ---- HardwareSerial.h (the UARTs, and which object Serial names); SERIAL_8N1 from esp32-hal-uart.h ----
#define SERIAL_8N1 0x800001c
class HardwareSerial : public Stream {
 public:
  HardwareSerial(int uart_nr);
  ~HardwareSerial();
  void begin(unsigned long baud, uint32_t config = SERIAL_8N1, int8_t rxPin = -1, int8_t txPin = -1,
             bool invert = false, unsigned long timeout_ms = 20000UL, uint8_t rxfifo_full_thrhd = 112);
  void end(bool fullyTerminate = true);
  int available(void);
  int availableForWrite(void);
  int peek(void);
  int read(void);
  size_t read(uint8_t* buffer, size_t size);
  void flush(void);
  size_t write(uint8_t);
  size_t write(const uint8_t* buffer, size_t size);
  uint32_t baudRate();
  operator bool() const;
};
extern HardwareSerial Serial0;
extern HardwareSerial Serial1;
#ifndef ARDUINO_USB_CDC_ON_BOOT
#define ARDUINO_USB_CDC_ON_BOOT 0
#endif
#if ARDUINO_USB_CDC_ON_BOOT
#if ARDUINO_USB_MODE
#define Serial HWCDCSerial
#else
#define Serial USBSerial  // (TinyUSB CDC: not declared in this stand-in)
#endif
#else
#define Serial Serial0
#endif

// ---- Esp.h (a subset of EspClass) ----
class EspClass {
 public:
  EspClass() {}
  ~EspClass() {}
  void restart();
  uint32_t getHeapSize();
  uint32_t getFreeHeap();
  uint32_t getPsramSize();
  uint32_t getFreePsram();
  uint8_t getChipRevision();
  const char* getChipModel();
  uint8_t getChipCores();
  uint32_t getCpuFreqMHz();
  const char* getSdkVersion();
  uint32_t getFlashChipSize();
  uint32_t getSketchSize();
  uint32_t getFreeSketchSpace();
  uint64_t getEfuseMac();
};
extern EspClass ESP;

using std::abs;
using std::isinf;
using std::isnan;
using std::max;
using std::min;
using std::round;
#endif  // __cplusplus

// ---- variants/XIAO_ESP32S3/pins_arduino.h ----
static const uint8_t LED_BUILTIN = 21;
static const uint8_t TX = 43;
static const uint8_t RX = 44;
static const uint8_t SDA = 5;
static const uint8_t SCL = 6;
static const uint8_t SS = 44;
static const uint8_t MOSI = 9;
static const uint8_t MISO = 8;
static const uint8_t SCK = 7;
static const uint8_t A0 = 1;
static const uint8_t A1 = 2;
static const uint8_t A2 = 3;
static const uint8_t A3 = 4;
static const uint8_t A4 = 5;
static const uint8_t A5 = 6;
static const uint8_t A8 = 7;
static const uint8_t A9 = 8;
static const uint8_t A10 = 9;
static const uint8_t D0 = 1;
static const uint8_t D1 = 2;
static const uint8_t D2 = 3;
static const uint8_t D3 = 4;
static const uint8_t D4 = 5;
static const uint8_t D5 = 6;
static const uint8_t D6 = 43;
static const uint8_t D7 = 44;
static const uint8_t D8 = 7;
static const uint8_t D9 = 8;
static const uint8_t D10 = 9;

#endif  // Arduino_h
