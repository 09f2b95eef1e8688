rig { name = "twice" }
rig { name = "again" }
