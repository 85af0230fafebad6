// Stand-in (declarations only) for HS300x.h of Arduino_HS300x:
//   arduino-libraries/Arduino_HS300x src/HS300x.h @7d15a9fc
// (Upstream reuses Arduino_HTS221's include guards, _HTS_H_ and _ARUDINO_HTS221_H_, as kept here:
// the two libraries cannot both be included in one file. The sketch includes one or the other.)
#ifndef _HTS_H_
#define _HTS_H_

#include <Arduino.h>
#include <Wire.h>

enum { FAHRENHEIT, CELSIUS };

class HS300xClass {
 public:
  HS300xClass(TwoWire& wire);

  int begin();
  void end();

  float readTemperature(int units = CELSIUS);
  float readHumidity();

 private:
  TwoWire* _wire;
  float _humidity;
  float _temperature;
  uint8_t _status;
  uint8_t _readSensor();
  int8_t _measurementReq();
};

extern HS300xClass HS300x;

#endif
