// Stand-in (declarations only) for <Arduino_APDS9960.h>:
//   arduino-libraries/Arduino_APDS9960 src/Arduino_APDS9960.h @9f76c2bb (the private REG(...)
//   register accessors, inline code, are left out)
#ifndef ARDUINO_APDS9960
#define ARDUINO_APDS9960

#include <Arduino.h>
#include <Wire.h>

enum { GESTURE_NONE = -1, GESTURE_UP = 0, GESTURE_DOWN = 1, GESTURE_LEFT = 2, GESTURE_RIGHT = 3 };

class APDS9960 {
 public:
  APDS9960(TwoWire& wire, int intPin);
  virtual ~APDS9960();

  bool begin();
  void end();

  int gestureAvailable();
  int readGesture();

  int colorAvailable();
  bool readColor(int& r, int& g, int& b);
  bool readColor(int& r, int& g, int& b, int& c);

  int proximityAvailable();
  int readProximity();

  void setGestureSensitivity(uint8_t sensitivity);
  void setInterruptPin(int pin);
  bool setLEDBoost(uint8_t boost);

 private:
  bool setGestureIntEnable(bool en);
  bool setGestureMode(bool en);
  int gestureFIFOAvailable();
  int handleGesture();
  bool enablePower();
  bool disablePower();
  bool enableColor();
  bool disableColor();
  bool enableProximity();
  bool disableProximity();
  bool enableWait();
  bool disableWait();
  bool enableGesture();
  bool disableGesture();

  TwoWire& _wire;
  int _intPin;
  bool _gestureEnabled;
  bool _gestureIn;
  int _gestureDirectionX;
  int _gestureDirectionY;
  int _gestureDirInX;
  int _gestureDirInY;
  int _gestureSensitivity;
  int _detectedGesture;

  bool write(uint8_t val);
  bool write(uint8_t reg, uint8_t val);
  bool read(uint8_t reg, uint8_t* val);
  size_t readBlock(uint8_t reg, uint8_t* val, unsigned int len);
};

extern APDS9960 APDS;

#endif  // ARDUINO_APDS9960
