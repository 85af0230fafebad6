// Stand-in (declarations only) for LSM9DS1.h of Arduino_LSM9DS1:
//   arduino-libraries/Arduino_LSM9DS1 src/LSM9DS1.h @e65a3878 (IMU is a macro for IMU_LSM9DS1)
#include <Arduino.h>
#include <Wire.h>

class LSM9DS1Class {
 public:
  LSM9DS1Class(TwoWire& wire);
  virtual ~LSM9DS1Class();

  int begin();
  void end();

  void setContinuousMode();
  void setOneShotMode();

  virtual int readAcceleration(float& x, float& y, float& z);  // g
  virtual int accelerationAvailable();
  virtual float accelerationSampleRate();

  virtual int readGyroscope(float& x, float& y, float& z);  // degrees/second
  virtual int gyroscopeAvailable();
  virtual float gyroscopeSampleRate();

  virtual int readMagneticField(float& x, float& y, float& z);  // uT
  virtual int magneticFieldAvailable();
  virtual float magneticFieldSampleRate();

 private:
  bool continuousMode;
  int readRegister(uint8_t slaveAddress, uint8_t address);
  int readRegisters(uint8_t slaveAddress, uint8_t address, uint8_t* data, size_t length);
  int writeRegister(uint8_t slaveAddress, uint8_t address, uint8_t value);
  TwoWire* _wire;
};

extern LSM9DS1Class IMU_LSM9DS1;
#undef IMU
#define IMU IMU_LSM9DS1
