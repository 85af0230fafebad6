// Stand-in for ESP-IDF 5's driver/i2s_std.h, which ESP_I2S.h includes: only the types ESP_I2S.h
// names, from espressif/esp-idf components/hal/include/hal/i2s_types.h (IDF 5: i2s_slot_mode_t,
// i2s_data_bit_width_t) and components/esp_driver_i2s/include/driver/i2s_types.h
// (i2s_chan_handle_t, an opaque handle).
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  I2S_SLOT_MODE_MONO = 1,
  I2S_SLOT_MODE_STEREO = 2,
} i2s_slot_mode_t;

typedef enum {
  I2S_DATA_BIT_WIDTH_8BIT = 8,
  I2S_DATA_BIT_WIDTH_16BIT = 16,
  I2S_DATA_BIT_WIDTH_24BIT = 24,
  I2S_DATA_BIT_WIDTH_32BIT = 32,
} i2s_data_bit_width_t;

typedef struct i2s_channel_obj_t* i2s_chan_handle_t;

#ifdef __cplusplus
}
#endif
