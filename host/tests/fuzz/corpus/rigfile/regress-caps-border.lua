local c = {}
for i = 1, 5 do c[i] = "x" end
c[9] = "x"
for i = 3, 40 do c[1 << i] = "x" end
rig { name = "x", capabilities = c }
