// Stand-in (declarations only) for sensor.h of the esp32-camera component:
//   espressif/esp32-camera driver/include/sensor.h @5fe22665 (the pixel formats and frame sizes;
//   sensor_t, the sensor control block, is only declared)
#ifndef __SENSOR_H__
#define __SENSOR_H__

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  PIXFORMAT_RGB565,
  PIXFORMAT_YUV422,
  PIXFORMAT_YUV420,
  PIXFORMAT_GRAYSCALE,
  PIXFORMAT_JPEG,
  PIXFORMAT_RGB888,
  PIXFORMAT_RAW,
  PIXFORMAT_RGB444,
  PIXFORMAT_RGB555,
  PIXFORMAT_RAW8,
} pixformat_t;

typedef enum {
  FRAMESIZE_96X96,    // 96x96
  FRAMESIZE_QQVGA,    // 160x120
  FRAMESIZE_128X128,  // 128x128
  FRAMESIZE_QCIF,     // 176x144
  FRAMESIZE_HQVGA,    // 240x176
  FRAMESIZE_240X240,  // 240x240
  FRAMESIZE_QVGA,     // 320x240
  FRAMESIZE_320X320,  // 320x320
  FRAMESIZE_CIF,      // 400x296
  FRAMESIZE_HVGA,     // 480x320
  FRAMESIZE_VGA,      // 640x480
  FRAMESIZE_SVGA,     // 800x600
  FRAMESIZE_XGA,      // 1024x768
  FRAMESIZE_HD,       // 1280x720
  FRAMESIZE_SXGA,     // 1280x1024
  FRAMESIZE_UXGA,     // 1600x1200
  FRAMESIZE_FHD,
  FRAMESIZE_P_HD,
  FRAMESIZE_P_3MP,
  FRAMESIZE_QXGA,
  FRAMESIZE_QHD,
  FRAMESIZE_WQXGA,
  FRAMESIZE_P_FHD,
  FRAMESIZE_QSXGA,
  FRAMESIZE_5MP,
  FRAMESIZE_INVALID
} framesize_t;

typedef struct _sensor sensor_t;  // (opaque here: the sketch never looks inside)

#ifdef __cplusplus
}
#endif

#endif /* __SENSOR_H__ */
