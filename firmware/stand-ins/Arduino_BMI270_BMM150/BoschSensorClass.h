// Stand-in (declarations only) for BoschSensorClass.h of Arduino_BMI270_BMM150:
//   arduino-libraries/Arduino_BMI270_BMM150 src/BoschSensorClass.h @2b397040 (IMU is a macro for
//   IMU_BMI270_BMM150). Bosch's sensor API structs (struct bmi2_dev, struct bmm150_dev, from the
//   bundled utilities/BMI270-Sensor-API and BMM150-Sensor-API) are only declared, so the private
//   members of those types are left out; the protected configure_sensor() overloads keep them by
//   pointer.
#include <Arduino.h>
#include <Wire.h>

struct bmi2_dev;
struct bmm150_dev;

struct dev_info {
  TwoWire* _wire;
  uint8_t dev_addr;
};

class BoschSensorClass {
 public:
  BoschSensorClass(TwoWire& wire = Wire);
  ~BoschSensorClass() {}

  void setContinuousMode();
  void oneShotMode();

  int begin();
  void end();

  void debug(Stream&);
#ifdef __MBED__
  void onInterrupt(mbed::Callback<void()>);
  void setInterruptPin(PinName irq_pin);
  void setInterruptPin(pin_size_t irq_pin);
  PinName BMI270_INT1 = NC;
#endif
  virtual int readAcceleration(float& x, float& y, float& z);  // g
  virtual int accelerationAvailable();
  virtual float accelerationSampleRate();

  virtual int readGyroscope(float& x, float& y, float& z);  // degrees/second
  virtual int gyroscopeAvailable();
  virtual float gyroscopeSampleRate();

  virtual int readMagneticField(float& x, float& y, float& z);  // uT
  virtual int magneticFieldAvailable();
  virtual float magneticFieldSampleRate();

 protected:
  virtual int8_t configure_sensor(struct bmm150_dev* dev);
  virtual int8_t configure_sensor(struct bmi2_dev* dev);

 private:
  static int8_t bmi2_i2c_read(uint8_t reg_addr, uint8_t* reg_data, uint32_t len, void* intf_ptr);
  static int8_t bmi2_i2c_write(uint8_t reg_addr, const uint8_t* reg_data, uint32_t len, void* intf_ptr);
  static void bmi2_delay_us(uint32_t period, void* intf_ptr);
  void interrupt_handler();
  void print_rslt(int8_t rslt);

  TwoWire* _wire;
  Stream* _debug = nullptr;
#ifdef __MBED__
  mbed::Callback<void(void)> _cb;
#endif
  bool _initialized = false;
  int _interrupts = 0;
  struct dev_info accel_gyro_dev_info;
  struct dev_info mag_dev_info;
  uint16_t _int_status;
  bool continuousMode;
};

extern BoschSensorClass IMU_BMI270_BMM150;
#undef IMU
#define IMU IMU_BMI270_BMM150
