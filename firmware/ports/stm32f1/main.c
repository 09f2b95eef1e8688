// SPDX-License-Identifier: MIT
/* rigfw on the STM32F1 rig board: USART1 interrupt feeds the core, main loop runs it. */
#include "hal.h"
#include "regs.h"
#include "rigfw.h"

static struct rigfw fw;

void USART1_IRQHandler(void);

void USART1_IRQHandler(void)
{
	uint32_t sr = USART1_SR;

	if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
		uint8_t b = (uint8_t)USART1_DR; /* reading DR also clears ORE */

		if (sr & USART_SR_RXNE)
			rigfw_isr_rx(&fw, b);
	}
}

int main(void)
{
	hal_init();
	rigfw_init(&fw);
	for (;;) {
		rigfw_task(&fw);
		hal_idle();
	}
}
