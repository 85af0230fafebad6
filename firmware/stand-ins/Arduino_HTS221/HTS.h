// Stand-in (declarations only) for HTS.h of Arduino_HTS221:
//   arduino-libraries/Arduino_HTS221 src/HTS.h @74437d7c (1.0.0)
#ifndef _HTS_H_
#define _HTS_H_

#include <Arduino.h>
#include <Wire.h>

enum { FAHRENHEIT, CELSIUS };

class HTS221Class {
 public:
  HTS221Class(TwoWire& wire);

  int begin();
  void end();

  float readTemperature(int units = CELSIUS);
  float readHumidity();

 private:
  int i2cRead(uint8_t reg);
  int i2cRead16(uint8_t reg);
  int i2cWrite(uint8_t reg, uint8_t val);
  void readHTS221Calibration();

  TwoWire* _wire;
  float _hts221HumiditySlope;
  float _hts221HumidityZero;
  float _hts221TemperatureSlope;
  float _hts221TemperatureZero;
};

extern HTS221Class HTS;

#endif
