// SPDX-License-Identifier: MIT
/*
 * Vector table and reset handler for the STM32F103 (Cortex-M3, 60 external interrupts).
 * Only the handlers rigfw uses are named; every other vector points at Default_Handler,
 * which parks the core so the independent watchdog resets it.
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void USART1_IRQHandler(void);

void Default_Handler(void)
{
	for (;;)
		;
}

void Reset_Handler(void)
{
	uint32_t *src = &_sidata, *dst = &_sdata;

	while (dst < &_edata)
		*dst++ = *src++;
	for (dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	main();
	for (;;)
		;
}

#define N_VECTORS (16 + 60)

/* the range default is meant to be overridden by the named entries */
#pragma GCC diagnostic ignored "-Woverride-init"

__attribute__((section(".isr_vector"), used)) static void (*const vectors[N_VECTORS])(void) = {
	[0] = (void (*)(void))(uintptr_t)&_estack,
	[1] = Reset_Handler,
	[2 ... N_VECTORS - 1] = Default_Handler,
	[15] = SysTick_Handler,
	[16 + 37] = USART1_IRQHandler,
};
