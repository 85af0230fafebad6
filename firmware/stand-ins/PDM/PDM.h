// Stand-in (declarations only) for <PDM.h>, the PDM library of the Arduino mbed core:
//   arduino/ArduinoCore-mbed libraries/PDM/src/PDM.h @e50ec8aa
#ifndef _PDM_H_INCLUDED
#define _PDM_H_INCLUDED

#include <Arduino.h>
#include <pinDefinitions.h>

#include "utility/PDMDoubleBuffer.h"

class PDMClass {
 public:
  PDMClass(int dinPin, int clkPin, int pwrPin);
  virtual ~PDMClass();

  int begin(int channels, int sampleRate);
  void end();

  virtual int available();
  virtual int read(void* buffer, size_t size);

  void onReceive(void (*)(void));

  void setGain(int gain);
  void setBufferSize(int bufferSize);
  size_t getBufferSize();

  void IrqHandler(bool halftranfer);

 private:
  int _dinPin;
  int _clkPin;
  int _pwrPin;
  int _channels;
  int _samplerate;
  int _gain;
  int _init;
  PDMDoubleBuffer _doubleBuffer;
  void (*_onReceive)(void);
};

extern PDMClass PDM;

#endif
