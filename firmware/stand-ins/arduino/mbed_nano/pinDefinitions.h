// Stand-in (declarations only) for <pinDefinitions.h> of the Arduino mbed core, which PDM.h includes:
//   arduino/ArduinoCore-mbed cores/arduino/pinDefinitions.h @26b6c021 (USE_ARDUINO_PINOUT part;
//   the lookup macros and the inline digitalPinToPinName, which are code, are left out).
#pragma once

#include "Arduino.h"

namespace mbed {
class InterruptIn;
class PwmOut;
class DigitalInOut;
class AnalogIn;
}  // namespace mbed

struct _PinDescription {
  PinName name;
  mbed::InterruptIn* irq;
  mbed::PwmOut* pwm;
  mbed::DigitalInOut* gpio;
};

struct _AnalogPinDescription {
  PinName name;
  mbed::AnalogIn* adc;
};

int PinNameToIndex(PinName P);
