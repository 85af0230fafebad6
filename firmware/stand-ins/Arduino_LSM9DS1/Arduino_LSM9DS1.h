// Stand-in for <Arduino_LSM9DS1.h> (arduino-libraries/Arduino_LSM9DS1 1.1.1, library.properties
// includes=Arduino_LSM9DS1.h): the library's top header includes LSM9DS1.h.
#ifndef _ARDUINO_LSM9DS1_H_
#define _ARDUINO_LSM9DS1_H_

#include "LSM9DS1.h"

#endif
