/* SPDX-License-Identifier: MIT */
/**
 * @file regs.h
 * @brief The few STM32F103 / Cortex-M3 registers the rig board uses (RM0008 addresses).
 *        Written out by hand: no vendor SDK.
 */
#ifndef RIGOR_FIRMWARE_PORTS_STM32F1_REGS_H
#define RIGOR_FIRMWARE_PORTS_STM32F1_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* RCC */
#define RCC_BASE 0x40021000u
#define RCC_CR REG32(RCC_BASE + 0x00)
#define RCC_APB2ENR REG32(RCC_BASE + 0x18)
#define RCC_APB1ENR REG32(RCC_BASE + 0x1C)
#define RCC_CSR REG32(RCC_BASE + 0x24)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_APB2ENR_AFIOEN (1u << 0)
#define RCC_APB2ENR_IOPAEN (1u << 2)
#define RCC_APB2ENR_IOPBEN (1u << 3)
#define RCC_APB2ENR_IOPCEN (1u << 4)
#define RCC_APB2ENR_USART1EN (1u << 14)
#define RCC_APB1ENR_I2C1EN (1u << 21)
#define RCC_CSR_RMVF (1u << 24)
#define RCC_CSR_PINRSTF (1u << 26)
#define RCC_CSR_PORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define RCC_CSR_WWDGRSTF (1u << 30)
#define RCC_CSR_LPWRRSTF (1u << 31)

/* GPIO (F1 layout: CRL/CRH nibbles MODE[1:0] CNF[1:0]) */
#define GPIOA_BASE 0x40010800u
#define GPIOB_BASE 0x40010C00u
#define GPIOC_BASE 0x40011000u
#define GPIO_CRL(base) REG32((base) + 0x00)
#define GPIO_CRH(base) REG32((base) + 0x04)
#define GPIO_BSRR(base) REG32((base) + 0x10)
#define GPIO_MODE_OUT_PP 0x2u  /* output 2 MHz, push-pull */
#define GPIO_MODE_OUT_OD 0x6u  /* output 2 MHz, open-drain */
#define GPIO_MODE_AF_PP 0xAu   /* alternate function 2 MHz, push-pull */
#define GPIO_MODE_AF_OD 0xEu   /* alternate function 2 MHz, open-drain */
#define GPIO_MODE_IN_FLOAT 0x4u

/* USART1 */
#define USART1_BASE 0x40013800u
#define USART1_SR REG32(USART1_BASE + 0x00)
#define USART1_DR REG32(USART1_BASE + 0x04)
#define USART1_BRR REG32(USART1_BASE + 0x08)
#define USART1_CR1 REG32(USART1_BASE + 0x0C)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)
#define USART1_IRQN 37

/* I2C1 */
#define I2C1_BASE 0x40005400u
#define I2C1_CR1 REG32(I2C1_BASE + 0x00)
#define I2C1_CR2 REG32(I2C1_BASE + 0x04)
#define I2C1_DR REG32(I2C1_BASE + 0x10)
#define I2C1_SR1 REG32(I2C1_BASE + 0x14)
#define I2C1_SR2 REG32(I2C1_BASE + 0x18)
#define I2C1_CCR REG32(I2C1_BASE + 0x1C)
#define I2C1_TRISE REG32(I2C1_BASE + 0x20)
#define I2C_CR1_PE (1u << 0)
#define I2C_CR1_START (1u << 8)
#define I2C_CR1_STOP (1u << 9)
#define I2C_CR1_ACK (1u << 10)
#define I2C_CR1_POS (1u << 11)
#define I2C_CR1_SWRST (1u << 15)
#define I2C_SR1_SB (1u << 0)
#define I2C_SR1_ADDR (1u << 1)
#define I2C_SR1_BTF (1u << 2)
#define I2C_SR1_RXNE (1u << 6)
#define I2C_SR1_TXE (1u << 7)
#define I2C_SR1_BERR (1u << 8)
#define I2C_SR1_ARLO (1u << 9)
#define I2C_SR1_AF (1u << 10)
#define I2C_SR2_BUSY (1u << 1)

/* IWDG */
#define IWDG_BASE 0x40003000u
#define IWDG_KR REG32(IWDG_BASE + 0x00)
#define IWDG_PR REG32(IWDG_BASE + 0x04)
#define IWDG_RLR REG32(IWDG_BASE + 0x08)

/* Cortex-M3 core */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define SCB_AIRCR REG32(0xE000ED0Cu)

#endif /* RIGOR_FIRMWARE_PORTS_STM32F1_REGS_H */
