// Stand-in (declarations only) for <Arduino.h> of the Arduino mbed core for the Nano 33 BLE (Sense),
// for tests/test_sketches_compile.py: the names, types and signatures the sketches, edgekit_tflm.h,
// the sensor libraries and Arduino_TensorFlowLite's headers use, transcribed from:
//   arduino/ArduinoCore-mbed  cores/arduino/Arduino.h @0e57d7b7 (using namespace arduino, abs macro,
//                             analogReadResolution), cores/arduino/Serial.h @dc43790b (class UART,
//                             _UART_USB_), variants/ARDUINO_NANO33BLE/pins_arduino.h @7a8d3ee4,
//                             cores/arduino/mbed/targets/.../TARGET_ARDUINO_NANO33BLE/PinNames.h
//                             @581328fb (PinName), cores/arduino/mbed/platform/include/platform/
//                             Callback.h @1a7859c0 (mbed::Callback, a subset)
//   arduino/ArduinoCore-API   api/Common.h @b453a05c, api/Print.h @7d30be74, api/Stream.h @16a22bab,
//                             api/HardwareSerial.h @5c264a8c
// No definitions: compiling against this checks names and types, nothing links.
#ifndef EDGEKIT_STANDIN_MBED_ARDUINO_H_
#define EDGEKIT_STANDIN_MBED_ARDUINO_H_

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- mbed PinNames.h (nRF52840, Nano 33 BLE): Px_y = 32 * x + y, pN = N, NC ----
#ifdef __cplusplus
extern "C" {
#endif
typedef enum {
  P0_0 = 0, P0_1, P0_2, P0_3, P0_4, P0_5, P0_6, P0_7, P0_8, P0_9, P0_10, P0_11, P0_12, P0_13, P0_14,
  P0_15, P0_16, P0_17, P0_18, P0_19, P0_20, P0_21, P0_22, P0_23, P0_24, P0_25, P0_26, P0_27, P0_28,
  P0_29, P0_30, P0_31,
  P1_0 = 32, P1_1, P1_2, P1_3, P1_4, P1_5, P1_6, P1_7, P1_8, P1_9, P1_10, P1_11, P1_12, P1_13, P1_14,
  P1_15,
  p0 = P0_0, p1 = P0_1, p2 = P0_2, p3 = P0_3, p4 = P0_4, p5 = P0_5, p6 = P0_6, p7 = P0_7, p8 = P0_8,
  p9 = P0_9, p10 = P0_10, p11 = P0_11, p12 = P0_12, p13 = P0_13, p14 = P0_14, p15 = P0_15, p16 = P0_16,
  p17 = P0_17, p18 = P0_18, p19 = P0_19, p20 = P0_20, p21 = P0_21, p22 = P0_22, p23 = P0_23,
  p24 = P0_24, p25 = P0_25, p26 = P0_26, p27 = P0_27, p28 = P0_28, p29 = P0_29, p30 = P0_30,
  p31 = P0_31, p32 = P1_0, p33 = P1_1, p34 = P1_2, p35 = P1_3, p36 = P1_4, p37 = P1_5, p38 = P1_6,
  p39 = P1_7, p40 = P1_8, p41 = P1_9, p42 = P1_10, p43 = P1_11, p44 = P1_12, p45 = P1_13, p46 = P1_14,
  p47 = P1_15,
  NC = (int)0xFFFFFFFF
} PinName;
#ifdef __cplusplus
}
#endif

// ---- ArduinoCore-API api/Common.h ----
#ifdef __cplusplus
extern "C" {
#endif
#ifdef __cplusplus
#define ARD_CHAR_ENUM_XWEZPiBoACuGnH : char
#else
#define ARD_CHAR_ENUM_XWEZPiBoACuGnH __attribute__((__packed__))
#endif
void yield(void);
typedef enum ARD_CHAR_ENUM_XWEZPiBoACuGnH { LOW = 0, HIGH = 1, CHANGE = 2, FALLING = 3, RISING = 4 } PinStatus;
typedef enum ARD_CHAR_ENUM_XWEZPiBoACuGnH {
  INPUT = 0x0, OUTPUT = 0x1, INPUT_PULLUP = 0x2, INPUT_PULLDOWN = 0x3, OUTPUT_OPENDRAIN = 0x4
} PinMode;
typedef enum ARD_CHAR_ENUM_XWEZPiBoACuGnH { LSBFIRST = 0, MSBFIRST = 1 } BitOrder;
typedef void (*voidFuncPtr)(void);
typedef void (*voidFuncPtrParam)(void*);
typedef bool boolean;
typedef uint8_t byte;
typedef uint16_t word;
void init(void);
void initVariant(void);
#ifdef EXTENDED_PIN_MODE
typedef uint32_t pin_size_t;
#else
typedef uint8_t pin_size_t;
#endif
void pinMode(pin_size_t pinNumber, PinMode pinMode);
void digitalWrite(pin_size_t pinNumber, PinStatus status);
PinStatus digitalRead(pin_size_t pinNumber);
int analogRead(pin_size_t pinNumber);
void analogReference(uint8_t mode);
void analogWrite(pin_size_t pinNumber, int value);
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long);
void delayMicroseconds(unsigned int us);
void attachInterrupt(pin_size_t interruptNumber, voidFuncPtr callback, PinStatus mode);
void detachInterrupt(pin_size_t interruptNumber);
void setup(void);
void loop(void);
#ifdef __cplusplus
}  // extern "C"
template <class T, class L>
auto min(const T& a, const L& b) -> decltype((b < a) ? b : a);
template <class T, class L>
auto max(const T& a, const L& b) -> decltype((b < a) ? b : a);
#endif

#ifdef __cplusplus
// ---- mbed platform/Callback.h (the part libraries name: a callable holder) ----
namespace mbed {
template <typename Signature>
class Callback;
template <typename R, typename... ArgTs>
class Callback<R(ArgTs...)> {
 public:
  Callback() noexcept;
  Callback(decltype(nullptr)) noexcept;
  Callback(R (*func)(ArgTs...));
  R call(ArgTs... args) const;
  R operator()(ArgTs... args) const;
  explicit operator bool() const noexcept;

 private:
  void* storage_[3];
};
class FileHandle;
}  // namespace mbed

// ---- ArduinoCore-API api/Print.h, Stream.h, HardwareSerial.h ----
#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2
namespace arduino {
class __FlashStringHelper;
class String;
class Printable;

class Print {
 private:
  int write_error;
  size_t printNumber(unsigned long, uint8_t);
  size_t printULLNumber(unsigned long long, uint8_t);
  size_t printFloat(double, int);

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
  virtual int availableForWrite();
  size_t print(const __FlashStringHelper*);
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
  size_t println(const __FlashStringHelper*);
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
  size_t readBytes(char* buffer, size_t length);
  size_t readBytes(uint8_t* buffer, size_t length);
  size_t readBytesUntil(char terminator, char* buffer, size_t length);
  size_t readBytesUntil(char terminator, uint8_t* buffer, size_t length);
  String readString();
  String readStringUntil(char terminator);

 protected:
  long parseInt(char ignore);
  float parseFloat(char ignore);
};

class HardwareSerial : public Stream {
 public:
  virtual void begin(unsigned long) = 0;
  virtual void begin(unsigned long baudrate, uint16_t config) = 0;
  virtual void end() = 0;
  virtual int available(void) = 0;
  virtual int peek(void) = 0;
  virtual int read(void) = 0;
  virtual void flush(void) = 0;
  virtual size_t write(uint8_t) = 0;
  using Print::write;
  virtual operator bool() = 0;
};

// ---- ArduinoCore-mbed cores/arduino/Serial.h: class UART (the USB CDC port is one too) ----
class UART : public HardwareSerial {
 public:
  UART(int tx, int rx, int rts = -1, int cts = -1);
  UART(PinName tx, PinName rx, PinName rts = NC, PinName cts = NC);
  UART();
  void begin(unsigned long);
  void begin(unsigned long baudrate, uint16_t config);
  void end();
  int available(void);
  int peek(void);
  int read(void);
  void flush(void);
  size_t write(uint8_t c);
  size_t write(const uint8_t*, size_t);
  using Print::write;
  operator bool();
  operator mbed::FileHandle*();
  uint32_t baud();  // (SERIAL_CDC, as on the Nano)
  uint8_t stopbits();
  uint8_t paritytype();
  uint8_t numbits();
  bool dtr();
  bool rts();
};
}  // namespace arduino
using arduino::Print;
using arduino::Stream;

extern arduino::UART _UART1_;
extern arduino::UART _UART2_;
extern arduino::UART _UART3_;
extern arduino::UART _UART4_;
extern arduino::UART _UART_USB_;
#endif  // __cplusplus

// ---- ArduinoCore-mbed cores/arduino/Arduino.h ----
#ifdef __cplusplus
using namespace arduino;
extern "C" {
#endif
#define NOT_A_PIN 255
#define NOT_A_PORT 255
#define NOT_AN_INTERRUPT 255
#ifdef abs
#undef abs
#endif
#define abs(x) ((x) > 0 ? (x) : -(x))
void analogReadResolution(int bits);
void analogWriteResolution(int bits);
#ifdef __cplusplus
}
#endif

// ---- variants/ARDUINO_NANO33BLE/pins_arduino.h ----
#ifdef __cplusplus
extern "C" unsigned int PINCOUNT_fn();
PinName digitalPinToPinName(pin_size_t P);
#endif
#define PINS_COUNT (PINCOUNT_fn())
#define NUM_DIGITAL_PINS (21u)
#define NUM_ANALOG_INPUTS (8u)
#define PIN_LED (13u)
#define LED_BUILTIN PIN_LED
#define LEDR (22u)
#define LEDG (23u)
#define LEDB (24u)
#define LED_PWR (25u)
#define PIN_A0 (14u)
#define PIN_A1 (15u)
#define PIN_A2 (16u)
#define PIN_A3 (17u)
#define PIN_A4 (18u)
#define PIN_A5 (19u)
#define PIN_A6 (20u)
#define PIN_A7 (21u)
static const uint8_t A0 = PIN_A0;
static const uint8_t A1 = PIN_A1;
static const uint8_t A2 = PIN_A2;
static const uint8_t A3 = PIN_A3;
static const uint8_t A4 = PIN_A4;
static const uint8_t A5 = PIN_A5;
static const uint8_t A6 = PIN_A6;
static const uint8_t A7 = PIN_A7;
#define ADC_RESOLUTION 12
#define D0 (0u)
#define D1 (1u)
#define D2 (2u)
#define D3 (3u)
#define D4 (4u)
#define D5 (5u)
#define D6 (6u)
#define D7 (7u)
#define D8 (8u)
#define D9 (9u)
#define D10 (10u)
#define D11 (11u)
#define D12 (12u)
#define D13 (13u)
#define PIN_WIRE_SDA (18u)
#define PIN_WIRE_SCL (19u)
#define PIN_WIRE_SDA1 (30u)
#define PIN_WIRE_SCL1 (31u)
#define PIN_INT_APDS (26u)
#define PIN_PDM_PWR (27)
#define PIN_PDM_CLK (28)
#define PIN_PDM_DIN (29)
#define SERIAL_HOWMANY 1
#define SERIAL_CDC 1
#define WIRE_HOWMANY 2
#define SPI_HOWMANY 1

// Serial is the USB CDC port (SERIAL_CDC)
#define Serial _UART_USB_
#define SerialUSB _UART_USB_
#define Serial1 _UART1_

#endif  // EDGEKIT_STANDIN_MBED_ARDUINO_H_
