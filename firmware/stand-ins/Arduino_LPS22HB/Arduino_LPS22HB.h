// Stand-in for <Arduino_LPS22HB.h> (arduino-libraries/Arduino_LPS22HB, library.properties
// includes=Arduino_LPS22HB.h): the library's top header includes BARO.h.
#ifndef _ARDUINO_LPS22HB_H_
#define _ARDUINO_LPS22HB_H_

#include "BARO.h"

#endif
