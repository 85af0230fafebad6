// Stand-in (declarations only) for <Wire.h> of the Arduino mbed core, from
//   arduino/ArduinoCore-mbed libraries/Wire/Wire.h @f733042a (class MbedI2C, Wire, Wire1, TwoWire)
//   arduino/ArduinoCore-API  api/HardwareI2C.h @a553fae1 (its base class)
// Private members (mbed::I2C*, RingBufferN, rtos::Thread) are left out: nothing outside the class
// can name them. See firmware/stand-ins/README.md.
#pragma once

#include "Arduino.h"

typedef void (*voidFuncPtrParamInt)(int);

namespace arduino {

class HardwareI2C : public Stream {
 public:
  virtual void begin() = 0;
  virtual void begin(uint8_t address) = 0;
  virtual void end() = 0;
  virtual void setClock(uint32_t freq) = 0;
  virtual void beginTransmission(uint8_t address) = 0;
  virtual uint8_t endTransmission(bool stopBit) = 0;
  virtual uint8_t endTransmission(void) = 0;
  virtual size_t requestFrom(uint8_t address, size_t len, bool stopBit) = 0;
  virtual size_t requestFrom(uint8_t address, size_t len) = 0;
  virtual void onReceive(void (*)(int)) = 0;
  virtual void onRequest(void (*)(void)) = 0;
};

class MbedI2C : public HardwareI2C {
 public:
  MbedI2C(int sda, int scl);
  MbedI2C(PinName sda, PinName scl);
  virtual void begin();
#ifndef DEVICE_I2CSLAVE
  virtual void __attribute__((error("I2C Slave mode is not supported"))) begin(uint8_t address);
#else
  virtual void begin(uint8_t address);
#endif
  virtual void end();
  virtual void setClock(uint32_t freq);
  virtual void beginTransmission(uint8_t address);
  virtual uint8_t endTransmission(bool stopBit);
  virtual uint8_t endTransmission(void);
  virtual size_t requestFrom(uint8_t address, size_t len, bool stopBit);
  virtual size_t requestFrom(uint8_t address, size_t len);
  virtual void onReceive(void (*)(int));
  virtual void onRequest(void (*)(void));
  virtual size_t write(uint8_t data);
  virtual size_t write(int data);
  virtual size_t write(const uint8_t* data, int len);
  using Print::write;
  virtual int read();
  virtual int peek();
  virtual void flush();
  virtual int available();
};

}  // namespace arduino

#if WIRE_HOWMANY > 0
extern arduino::MbedI2C Wire;
#endif
#if WIRE_HOWMANY > 1
extern arduino::MbedI2C Wire1;
#endif

typedef arduino::MbedI2C TwoWire;
