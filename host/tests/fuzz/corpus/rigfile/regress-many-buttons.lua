local b = {}
for i = 1, 1000 do b["b" .. i] = sim {} end
rig { name = "x", button = b }
