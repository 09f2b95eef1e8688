// SPDX-License-Identifier: MIT
/*
 * hal.h for the rig board (STM32F103C8, HSI 8 MHz, no PLL). Pin map and wiring:
 * docs/hardware/rig-board.md.
 *
 * Every wait on a hardware flag is bounded by an iteration count, because QEMU's
 * stm32vldiscovery models only the USART, so RCC, GPIO, I2C and IWDG read as zero there.
 */
#include <errno.h>
#include <stdbool.h>

#include "hal.h"
#include "regs.h"
#include "rigproto.h"

/* USART TXE wait: one byte at 115200 Bd is ~700 cycles at 8 MHz */
#define UART_SPIN 20000u
/* I2C flag wait: one byte at 100 kHz is ~720 cycles at 8 MHz */
#define I2C_SPIN 4000u
/* reload the IWDG at most this often, to keep QEMU's unimp log short */
#define WDT_KICK_MS 100u

struct pin {
	uint32_t port;
	uint8_t bit;
	bool active_low; /* logical "on" drives the pin low */
};

static const struct pin pins[HAL_OUT_COUNT] = {
	[HAL_OUT_DUT_POWER] = { GPIOB_BASE, 0, false },
	[HAL_OUT_MUX_HOST] = { GPIOB_BASE, 1, false },
	[HAL_OUT_MUX_ENABLE] = { GPIOB_BASE, 12, true },  /* mux OE# */
	[HAL_OUT_SD_POWER] = { GPIOB_BASE, 13, false },
	[HAL_OUT_BUTTON0] = { GPIOA_BASE, 0, true },      /* open-drain: pressed = low */
	[HAL_OUT_BUTTON1] = { GPIOA_BASE, 1, true },
	[HAL_OUT_BUTTON2] = { GPIOA_BASE, 2, true },
	[HAL_OUT_BUTTON3] = { GPIOA_BASE, 3, true },
	[HAL_OUT_LED] = { GPIOC_BASE, 13, true },         /* LED to 3V3 */
};

static bool out_state[HAL_OUT_COUNT];
static volatile uint32_t ticks;
static uint32_t last_kick;
static uint8_t reset_reason;

void SysTick_Handler(void);

void SysTick_Handler(void)
{
	ticks++;
}

static void pin_write(const struct pin *p, bool on)
{
	bool high = on != p->active_low;

	GPIO_BSRR(p->port) = high ? (1u << p->bit) : (1u << (p->bit + 16));
}

static void pin_mode(uint32_t port, unsigned int bit, uint32_t mode)
{
	volatile uint32_t *cr = bit < 8 ? &GPIO_CRL(port) : &GPIO_CRH(port);
	unsigned int shift = (bit & 7) * 4;

	*cr = (*cr & ~(0xFu << shift)) | (mode << shift);
}

static uint8_t read_reset_reason(void)
{
	uint32_t csr = RCC_CSR;
	uint8_t r = RIGPROTO_RESET_UNKNOWN;

	if (csr & (RCC_CSR_IWDGRSTF | RCC_CSR_WWDGRSTF))
		r = RIGPROTO_RESET_WATCHDOG;
	else if (csr & RCC_CSR_SFTRSTF)
		r = RIGPROTO_RESET_SOFTWARE;
	else if (csr & RCC_CSR_LPWRRSTF)
		r = RIGPROTO_RESET_LOW_POWER;
	else if (csr & RCC_CSR_PORRSTF)
		r = RIGPROTO_RESET_POWER_ON; /* the F1 has no separate brown-out flag */
	else if (csr & RCC_CSR_PINRSTF)
		r = RIGPROTO_RESET_PIN;
	RCC_CSR = csr | RCC_CSR_RMVF;
	return r;
}

static void i2c_init(void)
{
	pin_mode(GPIOB_BASE, 6, GPIO_MODE_AF_OD); /* SCL */
	pin_mode(GPIOB_BASE, 7, GPIO_MODE_AF_OD); /* SDA */
	I2C1_CR1 = I2C_CR1_SWRST;
	I2C1_CR1 = 0;
	I2C1_CR2 = 8;     /* PCLK1 = 8 MHz */
	I2C1_CCR = 40;    /* 100 kHz standard mode: 8 MHz / (2 * 100 kHz) */
	I2C1_TRISE = 9;   /* 1000 ns / 125 ns + 1 */
	I2C1_CR1 = I2C_CR1_PE;
}

void hal_init(void)
{
	uint32_t sysclk;
	unsigned int i;

	reset_reason = read_reset_reason();
	RCC_APB2ENR |= RCC_APB2ENR_AFIOEN | RCC_APB2ENR_IOPAEN | RCC_APB2ENR_IOPBEN |
		       RCC_APB2ENR_IOPCEN | RCC_APB2ENR_USART1EN;
	RCC_APB1ENR |= RCC_APB1ENR_I2C1EN;

	/* latch the safe levels first, then turn the pins into outputs */
	for (i = 0; i < HAL_OUT_COUNT; i++)
		pin_write(&pins[i], false);
	for (i = 0; i < HAL_OUT_COUNT; i++)
		pin_mode(pins[i].port, pins[i].bit,
			 i >= HAL_OUT_BUTTON0 && i <= HAL_OUT_BUTTON3 ? GPIO_MODE_OUT_OD :
									GPIO_MODE_OUT_PP);

	/* The F103 runs from HSI at 8 MHz (no PLL, so nothing to wait for). The real chip
	 * always reads HSIRDY as set; QEMU's stm32vldiscovery reads RCC as zero and clocks the
	 * core at 24 MHz, so use that for the tick when HSIRDY is clear. */
	sysclk = (RCC_CR & RCC_CR_HSIRDY) ? 8000000u : 24000000u;

	pin_mode(GPIOA_BASE, 9, GPIO_MODE_AF_PP);     /* USART1 TX */
	pin_mode(GPIOA_BASE, 10, GPIO_MODE_IN_FLOAT); /* USART1 RX */
	USART1_BRR = (8000000u + 115200u / 2) / 115200u; /* PCLK2 = HSI */
	USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
	NVIC_ISER(USART1_IRQN / 32) = 1u << (USART1_IRQN % 32);

	SYST_RVR = sysclk / 1000u - 1u;
	SYST_CVR = 0;
	SYST_CSR = 0x7; /* processor clock, interrupt, enable */

	i2c_init();
}

void hal_gpio_set(enum hal_out out, bool on)
{
	out_state[out] = on;
	pin_write(&pins[out], on);
}

bool hal_gpio_get(enum hal_out out)
{
	return out_state[out];
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint32_t spin = 0;

		while (!(USART1_SR & USART_SR_TXE))
			if (++spin >= UART_SPIN)
				return; /* transmitter stuck: drop the rest */
		USART1_DR = buf[i];
	}
}

uint32_t hal_time_ms(void)
{
	return ticks;
}

static int i2c_wait(uint32_t flag)
{
	uint32_t spin;

	for (spin = 0; spin < I2C_SPIN; spin++) {
		uint32_t sr1 = I2C1_SR1;

		if (sr1 & (I2C_SR1_AF | I2C_SR1_BERR | I2C_SR1_ARLO))
			return -ENXIO;
		if (sr1 & flag)
			return 0;
	}
	return -ETIMEDOUT;
}

static int i2c_fail(int rc)
{
	I2C1_CR1 |= I2C_CR1_STOP;
	I2C1_SR1 = 0; /* clear AF/BERR/ARLO */
	I2C1_CR1 &= ~(I2C_CR1_POS | I2C_CR1_ACK);
	return rc;
}

int hal_i2c_xfer(uint8_t addr, const uint8_t *w, size_t wlen, uint8_t *r, size_t rlen)
{
	size_t i;
	int rc;

	if (rlen > 2)
		return -EINVAL;
	/* a peripheral that does not read back as enabled is absent (or emulated away) */
	if (!(I2C1_CR1 & I2C_CR1_PE))
		return -ENODEV;
	if (I2C1_SR2 & I2C_SR2_BUSY) {
		i2c_init(); /* bus stuck from an earlier abort: reset the peripheral */
		return -EBUSY;
	}
	if (wlen) {
		I2C1_CR1 |= I2C_CR1_START;
		if ((rc = i2c_wait(I2C_SR1_SB)) < 0)
			return i2c_fail(rc);
		I2C1_DR = (uint32_t)addr << 1;
		if ((rc = i2c_wait(I2C_SR1_ADDR)) < 0)
			return i2c_fail(rc);
		(void)I2C1_SR2;
		for (i = 0; i < wlen; i++) {
			if ((rc = i2c_wait(I2C_SR1_TXE)) < 0)
				return i2c_fail(rc);
			I2C1_DR = w[i];
		}
		if ((rc = i2c_wait(I2C_SR1_BTF)) < 0)
			return i2c_fail(rc);
	}
	if (!rlen) {
		I2C1_CR1 |= I2C_CR1_STOP;
		return 0;
	}
	I2C1_CR1 |= I2C_CR1_START; /* repeated start */
	if ((rc = i2c_wait(I2C_SR1_SB)) < 0)
		return i2c_fail(rc);
	I2C1_DR = ((uint32_t)addr << 1) | 1u;
	if (rlen == 2) {
		/* RM0008 two-byte reception: POS+ACK before ADDR clears, NACK, wait BTF */
		I2C1_CR1 |= I2C_CR1_POS | I2C_CR1_ACK;
		if ((rc = i2c_wait(I2C_SR1_ADDR)) < 0)
			return i2c_fail(rc);
		(void)I2C1_SR2;
		I2C1_CR1 &= ~I2C_CR1_ACK;
		if ((rc = i2c_wait(I2C_SR1_BTF)) < 0)
			return i2c_fail(rc);
		I2C1_CR1 |= I2C_CR1_STOP;
		r[0] = (uint8_t)I2C1_DR;
		r[1] = (uint8_t)I2C1_DR;
		I2C1_CR1 &= ~I2C_CR1_POS;
		return 0;
	}
	I2C1_CR1 &= ~I2C_CR1_ACK;
	if ((rc = i2c_wait(I2C_SR1_ADDR)) < 0)
		return i2c_fail(rc);
	(void)I2C1_SR2;
	I2C1_CR1 |= I2C_CR1_STOP;
	if ((rc = i2c_wait(I2C_SR1_RXNE)) < 0)
		return i2c_fail(rc);
	r[0] = (uint8_t)I2C1_DR;
	return 0;
}

void hal_wdt_start(uint32_t ms)
{
	uint32_t rl = ms * 625u / 1000u; /* LSI 40 kHz / 64 = 625 Hz */

	if (rl > 0xFFF)
		rl = 0xFFF;
	IWDG_KR = 0x5555; /* unlock PR/RLR */
	IWDG_PR = 4;      /* /64 */
	IWDG_RLR = rl;
	IWDG_KR = 0xAAAA;
	IWDG_KR = 0xCCCC; /* start; cannot be stopped */
	last_kick = ticks;
}

void hal_wdt_kick(void)
{
	uint32_t now = ticks;

	if (now - last_kick >= WDT_KICK_MS) {
		IWDG_KR = 0xAAAA;
		last_kick = now;
	}
}

uint8_t hal_reset_reason(void)
{
	return reset_reason;
}

void hal_reset(void)
{
	uint32_t spin = 0;

	/* let the last reply byte leave the shift register (bounded) */
	while (!(USART1_SR & USART_SR_TC) && ++spin < UART_SPIN)
		;
	__asm volatile("dsb" ::: "memory");
	SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
	__asm volatile("dsb" ::: "memory");
	for (;;)
		;
}

void hal_idle(void)
{
	__asm volatile("wfi");
}

/* assert() failures in the core or codec: make the outputs safe and reset. */
void __assert_func(const char *file, int line, const char *func, const char *expr);

void __assert_func(const char *file, int line, const char *func, const char *expr)
{
	unsigned int i;

	(void)file;
	(void)line;
	(void)func;
	(void)expr;
	__asm volatile("cpsid i");
	for (i = 0; i < HAL_OUT_COUNT; i++)
		pin_write(&pins[i], false);
	hal_reset();
	for (;;)
		;
}
