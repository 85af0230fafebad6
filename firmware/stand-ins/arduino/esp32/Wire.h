// Stand-in (declarations only) for <Wire.h> of arduino-esp32 3.x on the ESP32-S3, from
//   espressif/arduino-esp32 libraries/Wire/src/Wire.h @5d873c07 (class TwoWire, Wire, Wire1; the
//   S3 has two I2C controllers and slave support) and cores/esp32/HardwareI2C.h @ba0e094c (its base)
// Private and protected data members (buffers, FreeRTOS handles) are left out.
#ifndef TwoWire_h
#define TwoWire_h

#include "Arduino.h"

class HardwareI2C : public Stream {
 public:
  virtual bool begin() = 0;
  virtual bool begin(uint8_t address) = 0;
  virtual bool end() = 0;
  virtual bool setClock(uint32_t freq) = 0;
  virtual void beginTransmission(uint8_t address) = 0;
  virtual uint8_t endTransmission(bool stopBit) = 0;
  virtual uint8_t endTransmission(void) = 0;
  virtual size_t requestFrom(uint8_t address, size_t len, bool stopBit) = 0;
  virtual size_t requestFrom(uint8_t address, size_t len) = 0;
  virtual void onReceive(void (*)(int)) = 0;
  virtual void onRequest(void (*)(void)) = 0;
};

#define WIRE_HAS_BUFFER_SIZE 1
#define WIRE_HAS_END 1
#ifndef I2C_BUFFER_LENGTH
#define I2C_BUFFER_LENGTH 128
#endif
typedef void (*user_onRequest)(void);
typedef void (*user_onReceive)(uint8_t*, int);

class TwoWire : public HardwareI2C {
 public:
  TwoWire(uint8_t bus_num);
  ~TwoWire();

  bool begin() override final;
  bool begin(uint8_t address) override final;
  bool end() override;
  bool setClock(uint32_t freq) override;
  void beginTransmission(uint8_t address) override;
  uint8_t endTransmission(bool stopBit) override;
  uint8_t endTransmission() override;
  size_t requestFrom(uint8_t address, size_t len, bool stopBit) override;
  size_t requestFrom(uint8_t address, size_t len) override;
  void onReceive(void (*)(int)) override;
  void onRequest(void (*)(void)) override;

  bool setPins(int sda, int scl);
  bool begin(int sda, int scl, uint32_t frequency = 0);
  bool begin(uint8_t slaveAddr, int sda, int scl, uint32_t frequency);
  size_t setBufferSize(size_t bSize);
  void setTimeOut(uint16_t timeOutMillis);
  uint16_t getTimeOut();
  uint32_t getClock();

  size_t write(uint8_t) override;
  size_t write(const uint8_t*, size_t) override;
  int available() override;
  int read() override;
  int peek() override;
  void flush() override;
  size_t slaveWrite(const uint8_t*, size_t);
};

extern TwoWire Wire;
extern TwoWire Wire1;

#endif  // TwoWire_h
