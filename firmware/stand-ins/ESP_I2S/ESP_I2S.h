// Stand-in (declarations only) for <ESP_I2S.h>, arduino-esp32 3.x's I2S library:
//   espressif/arduino-esp32 libraries/ESP_I2S/src/ESP_I2S.h @66424270, with the ESP32-S3's
//   SOC_I2S_SUPPORTS_TDM, _PDM_TX and _PDM_RX all set (private members left out)
#pragma once

#include "Arduino.h"
#include "esp_err.h"
#include "driver/i2s_std.h"

typedef esp_err_t (*i2s_channel_read_fn)(i2s_chan_handle_t handle, char* tmp_buf, void* dest, size_t size,
                                         size_t* bytes_read, uint32_t timeout_ms);

typedef enum {
  I2S_MODE_STD,
  I2S_MODE_TDM,
  I2S_MODE_PDM_TX,
  I2S_MODE_PDM_RX,
  I2S_MODE_MAX
} i2s_mode_t;

typedef enum {
  I2S_RX_TRANSFORM_NONE,
  I2S_RX_TRANSFORM_32_TO_16,
  I2S_RX_TRANSFORM_16_STEREO_TO_MONO,
  I2S_RX_TRANSFORM_MAX
} i2s_rx_transform_t;

class I2SClass : public Stream {
 public:
  I2SClass();
  ~I2SClass();

  void setPins(int8_t bclk, int8_t ws, int8_t dout, int8_t din = -1, int8_t mclk = -1);
  void setInverted(bool bclk, bool ws, bool mclk = false);

  void setPinsPdmTx(int8_t clk, int8_t dout0, int8_t dout1 = -1);
  void setPinsPdmRx(int8_t clk, int8_t din0, int8_t din1 = -1, int8_t din2 = -1, int8_t din3 = -1);
  void setInvertedPdm(bool clk);

  bool begin(i2s_mode_t mode, uint32_t rate, i2s_data_bit_width_t bits_cfg, i2s_slot_mode_t ch,
             int8_t slot_mask = -1);
  bool configureTX(uint32_t rate, i2s_data_bit_width_t bits_cfg, i2s_slot_mode_t ch, int8_t slot_mask = -1);
  bool configureRX(uint32_t rate, i2s_data_bit_width_t bits_cfg, i2s_slot_mode_t ch,
                   i2s_rx_transform_t transform = I2S_RX_TRANSFORM_NONE);
  bool end();

  size_t readBytes(char* buffer, size_t size);
  size_t write(uint8_t* buffer, size_t size);

  i2s_chan_handle_t txChan();
  uint32_t txSampleRate();
  i2s_data_bit_width_t txDataWidth();
  i2s_slot_mode_t txSlotMode();

  i2s_chan_handle_t rxChan();
  uint32_t rxSampleRate();
  i2s_data_bit_width_t rxDataWidth();
  i2s_slot_mode_t rxSlotMode();

  int lastError();

  int available();
  int peek();
  int read();
  size_t write(uint8_t d);

  uint8_t* recordWAV(size_t rec_seconds, size_t* out_size);
  void playWAV(uint8_t* data, size_t len);
  bool playMP3(uint8_t* src, size_t src_len);
};
