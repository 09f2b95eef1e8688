rig { name = "x", button = sim { }, power = sim "s" }
