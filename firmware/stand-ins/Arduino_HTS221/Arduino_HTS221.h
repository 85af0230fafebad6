// Stand-in for <Arduino_HTS221.h>: arduino-libraries/Arduino_HTS221 src/Arduino_HTS221.h @74437d7c
// (1.0.0), which includes HTS.h.
#ifndef _ARUDINO_HTS221_H_
#define _ARUDINO_HTS221_H_

#include "HTS.h"

#endif
