// board.cpp: the emulated board's support layer, on QEMU's mps2-an386 (Arm MPS2 with a Cortex-M4F):
// vector table and reset, Serial on the CMSDK UART0, micros() on the CMSDK timer 0, TFLite
// Micro's DebugLog and clock, and the newlib system calls that malloc and the C++ runtime need.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "Arduino.h"
#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_time.h"

namespace {

struct CmsdkUart {
  volatile uint32_t data, state, ctrl, intstatus, bauddiv;
};
struct CmsdkTimer {
  volatile uint32_t ctrl, value, reload, intstatus;
};
enum { kTxFull = 1, kRxFull = 2 };                // UART STATE bits
const uint32_t kSysClkHz = 25000000;              // the APB clock of UART and timer
const uint32_t kInstructionsPerTick = 1000000000u / kSysClkHz;  // -icount shift=0: 1 ns each

inline CmsdkUart& uart() { return *reinterpret_cast<CmsdkUart*>(0x40004000); }
inline CmsdkTimer& timer() { return *reinterpret_cast<CmsdkTimer*>(0x40000000); }

// Semihosting SYS_EXIT (QEMU runs with -semihosting-config enable=on): QEMU itself exits.
[[noreturn]] void semihosting_exit(bool ok) {
  register uint32_t op __asm__("r0") = 0x18;
  register uint32_t reason __asm__("r1") = ok ? 0x20026 : 0x20024;  // ApplicationExit / RunTimeError
  __asm__ volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
  for (;;) {
  }
}

void uart_puts(const char* s) {
  while (*s) Serial.write(reinterpret_cast<const uint8_t*>(s++), 1);
}

}  // namespace

EmulatedSerial Serial;

void EmulatedSerial::begin(unsigned long baud) {
  uart().bauddiv = kSysClkHz / (baud ? baud : 115200);  // QEMU wants >= 16; it does not pace bytes
  uart().ctrl = 1 | 2 | 8;                               // TX, RX and the RX interrupt enabled
  *reinterpret_cast<volatile uint32_t*>(0xE000E100) = 1u << 0;  // NVIC: UART0 RX is IRQ 0
}

// Sleeps until a byte arrives, so that an idle board does not keep a host core busy (with the
// interrupts masked, a byte that came just before the WFI still wakes it).
void EmulatedSerial::wait() {
  __asm__ volatile("cpsid i" ::: "memory");
  if (!available()) __asm__ volatile("dsb\n\twfi" ::: "memory");
  __asm__ volatile("cpsie i" ::: "memory");
}

size_t EmulatedSerial::write(const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while (uart().state & kTxFull) {
    }
    uart().data = data[i];
  }
  return n;
}

int EmulatedSerial::available() { return (uart().state & kRxFull) ? 1 : 0; }

int EmulatedSerial::read() { return (uart().state & kRxFull) ? static_cast<int>(uart().data & 0xff) : -1; }

// The timer counts down from 0xFFFFFFFF and reloads there, so elapsed ticks = ~value; the
// product wraps modulo 2^32 like Arduino's micros().
unsigned long micros() { return static_cast<unsigned long>(~timer().value) * kInstructionsPerTick; }

unsigned long millis() { return micros() / 1000; }

extern "C" void DebugLog(const char* s) { uart_puts(s); }

namespace tflite {
uint32_t ticks_per_second() { return 1000000; }  // as the Arduino library's: micros() ticks
uint32_t GetCurrentTimeTicks() { return micros(); }
}  // namespace tflite

// ---------------------------------------------------------------------------------------------
// Start-up and faults

extern "C" {
extern uint32_t __etext[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern char __HeapBase[], __HeapLimit[];
extern uint32_t __StackTop[];
void __libc_init_array();
int main();
void* __dso_handle = nullptr;

[[noreturn]] void Reset_Handler() {
  for (uint32_t *src = __etext, *dst = __data_start__; dst < __data_end__;) *dst++ = *src++;
  for (uint32_t* dst = __bss_start__; dst < __bss_end__;) *dst++ = 0;
  // CP10 and CP11 (the FPU) full access, before any floating-point instruction runs.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  timer().reload = 0xFFFFFFFFu;
  timer().value = 0xFFFFFFFFu;
  timer().ctrl = 1;
  __libc_init_array();
  main();
  semihosting_exit(true);
}

void Uart0Rx_Handler() { uart().intstatus = kRxFull; }  // the byte itself stays in DATA for read()

// Any fault ends the emulation with a line the host can show (the protocol's error form).
[[noreturn]] void Fault_Handler() {
  uart_puts("\r\ne-[the emulated board crashed: a Cortex-M fault]\r\n");
  semihosting_exit(false);
}

// newlib: malloc's heap runs from the end of .bss up to the stack's reserve (linker script).
void* _sbrk(ptrdiff_t incr) {
  static char* brk = __HeapBase;
  if (incr > __HeapLimit - brk) {
    errno = ENOMEM;
    return reinterpret_cast<void*>(-1);
  }
  char* old = brk;
  brk += incr;
  return old;
}

void _exit(int code) { semihosting_exit(code == 0); }

// __libc_init_array calls _init (crti.o's, left out with -nostartfiles): nothing to do here.
void _init() {}
void _fini() {}

typedef void (*Handler)();
__attribute__((section(".isr_vector"), used)) const Handler g_vectors[17] = {
    reinterpret_cast<Handler>(__StackTop), Reset_Handler,
    Fault_Handler,  // NMI
    Fault_Handler,  // HardFault
    Fault_Handler,  // MemManage
    Fault_Handler,  // BusFault
    Fault_Handler,  // UsageFault
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
    Uart0Rx_Handler,  // IRQ 0
};
}  // extern "C"
