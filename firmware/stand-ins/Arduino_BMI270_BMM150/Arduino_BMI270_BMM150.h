// Stand-in for <Arduino_BMI270_BMM150.h>: arduino-libraries/Arduino_BMI270_BMM150
// src/Arduino_BMI270_BMM150.h @417f0641 (1.1.1), which includes BoschSensorClass.h.
#ifndef _BoschSensorClass_H_
#define _BoschSensorClass_H_

#include "BoschSensorClass.h"

#endif
