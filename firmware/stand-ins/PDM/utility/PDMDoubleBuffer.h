// Stand-in (declarations only) for the PDM library's utility/PDMDoubleBuffer.h:
//   arduino/ArduinoCore-mbed libraries/PDM/src/utility/PDMDoubleBuffer.h @d11ce671
#ifndef _PDM_DOUBLE_BUFFER_H_INCLUDED
#define _PDM_DOUBLE_BUFFER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define DEFAULT_PDM_BUFFER_SIZE 512

class PDMDoubleBuffer {
 public:
  PDMDoubleBuffer();
  virtual ~PDMDoubleBuffer();
  void setSize(int size);
  void reset();
  size_t availableForWrite();
  size_t write(const void* buffer, size_t size);
  size_t read(void* buffer, size_t size);
  size_t peek(void* buffer, size_t size);
  void* data();
  size_t available();
  void swap(int length = 0);

 private:
  uint8_t* _buffer[2] __attribute__((aligned(16)));
  int _size;
  volatile int _length[2];
  volatile int _readOffset[2];
  volatile int _index;
};

#endif
