// Arduino.h for the emulated board: the few Arduino names that edgekit_tflm.h uses (Serial,
// micros), so that it compiles unchanged. board.cpp implements them on QEMU's mps2-an386.
#ifndef EDGEKIT_EMULATED_ARDUINO_H_
#define EDGEKIT_EMULATED_ARDUINO_H_

#include <stddef.h>
#include <stdint.h>

// Instructions executed since boot (QEMU -icount shift=0: one instruction per virtual ns; the
// 25 MHz timer ticks every 40 instructions). Every "us" the protocol reports is this count.
unsigned long micros();
unsigned long millis();  // micros() / 1000

// The CMSDK UART0, which QEMU connects to the host (-serial).
class EmulatedSerial {
 public:
  void begin(unsigned long baud);
  size_t write(const uint8_t* data, size_t n);
  int available();
  int read();  // -1 when nothing has arrived
  void wait();  // sleeps until a byte has arrived (not Arduino's: the emulated board's idle)
  explicit operator bool() const { return true; }
};
extern EmulatedSerial Serial;

#endif  // EDGEKIT_EMULATED_ARDUINO_H_
