local t = setmetatable
rig(t)
