// Stand-in for <Arduino_HS300x.h>: arduino-libraries/Arduino_HS300x src/Arduino_HS300x.h @7d15a9fc,
// which includes HS300x.h.
#ifndef _ARUDINO_HTS221_H_
#define _ARUDINO_HTS221_H_

#include "HS300x.h"

#endif
