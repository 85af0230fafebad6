// Stand-in for ESP-IDF's driver/ledc.h, which esp_camera.h includes for the XCLK timer and channel
// types: the two enums from espressif/esp-idf components/hal/include/hal/ledc_types.h @1966f00f.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  LEDC_TIMER_0 = 0,
  LEDC_TIMER_1,
  LEDC_TIMER_2,
  LEDC_TIMER_3,
  LEDC_TIMER_MAX,
} ledc_timer_t;

typedef enum {
  LEDC_CHANNEL_0 = 0,
  LEDC_CHANNEL_1,
  LEDC_CHANNEL_2,
  LEDC_CHANNEL_3,
  LEDC_CHANNEL_4,
  LEDC_CHANNEL_5,
  LEDC_CHANNEL_6,
  LEDC_CHANNEL_7,
  LEDC_CHANNEL_MAX,
} ledc_channel_t;

#ifdef __cplusplus
}
#endif
