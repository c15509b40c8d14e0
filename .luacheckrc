-- luacheck config for stdlib/, tests/, examples/ (Debian lua-check)
std = "lua54"
max_line_length = 110
files["tests/lua"] = { std = "+busted", max_line_length = 140 }  -- one-line check rows
globals = { "tide", "nn", "optim", "data", "plot", "models", "help" }
