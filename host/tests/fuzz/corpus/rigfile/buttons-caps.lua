local base = os.getenv("RIGOR_NO_SUCH_VAR") or "sim"
rig {
	name = "fz-" .. string.format("%02d", 7), device_type = "raspberrypi4-64",
	description = [[a rig]], capabilities = { "hdmi", "usb", 3 },
	power = sim { min_off_ms = 100, inverted = true, timeout_ms = 1.5 },
	sdmux = sim { settle_ms = "x" },
	button = { boot = sim {}, reset = sim { press_ms = 50, active_low = false }, [1] = sim {} },
	console = sim { line_ms = 1, hostname = "dut" },
	storage = sim {}, usbboot = sim { msd_dir = "/tmp" },
	power2 = nosuch { a = {} }, extra = 12,
}
