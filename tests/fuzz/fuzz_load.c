// tests/fuzz/fuzz_load.c: libFuzzer target for the whole load path as a user calls it (make
// fuzz): tide.load, tide.load_npy, tide.checkpoint.load into a small model and an optimizer,
// model:load and data.csv, through a Lua state running the stdlib of this tree, on the fuzzed
// bytes written to a file. A Lua error with a message is the expected outcome of a bad file; a
// crash, a sanitizer report, a Lua runtime error escaping the stdlib ("attempt to index a nil
// value", a position inside a .lua file) or a failed load that changed the model or the
// optimizer is a finding (__builtin_trap, the message on stderr).
// Leaks are not checked per input (-detect_leaks=0): Lua frees garbage later, so every input
// looked like a leak and LSan ran on each, 10x slower; the C readers' own targets check leaks.
// fuzz-flags: -detect_leaks=0
// fuzz-seeds: tests/fixtures/*.safetensors
// fuzz-seeds: tests/fixtures/*.npy
// fuzz-seeds: tests/fuzz/seeds/*
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int luaopen_tide_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STR_(x) #x
#define STR(x) STR_(x)

// Returns a function(path) that raises only on a finding.
static const char harness[] =
    "local tide = require 'tide'\n"
    "tide.set_num_threads(1)\n" // no thread pool waking for tiny tensors on a busy machine
    "local nn, optim, data = require 'tide.nn', require 'tide.optim', require 'tide.data'\n"
    "local model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))\n"
    "local opt = optim.Adam(model:parameters(), {lr = 0.01})\n"
    "model:forward(tide.ones(4, 3)):sum():backward(); opt:step()\n"
    // a state dict as one string: tensors by their .npy bytes (dtype, shape and bits)
    "local function snap(v, out)\n"
    "  out = out or {}\n"
    "  if tide.is_tensor(v) then out[#out + 1] = tide._io.npy_serialize(v:contiguous())\n"
    "  elseif type(v) ~= 'table' then out[#out + 1] = type(v) .. ':' .. tostring(v)\n"
    "  else\n"
    "    local keys = {}\n"
    "    for k in pairs(v) do keys[#keys + 1] = tostring(k) end\n"
    "    table.sort(keys)\n"
    "    for _, k in ipairs(keys) do\n"
    "      out[#out + 1] = k\n"
    "      snap(v[k] == nil and v[tonumber(k)] or v[k], out)\n"
    "    end\n"
    "  end\n"
    "  return table.concat(out, '|')\n"
    "end\n"
    // a message from an unguarded spot: a Lua runtime error or a position inside the stdlib
    // (at the start: the rest may quote the file's bytes)
    "local INTERNAL = {'^attempt to ', '^bad argument', '^[^:]*%.lua:%d+:', '^stack overflow',\n"
    "                  '^C stack', '^not enough memory'}\n"
    "local function call(name, f, ...)\n"
    "  local ok, err = pcall(f, ...)\n"
    "  if ok then return true end\n"
    "  local bad = type(err) ~= 'string' or err == ''\n"
    "  for _, pat in ipairs(INTERNAL) do bad = bad or err:find(pat) ~= nil end\n"
    "  if bad then error('finding: ' .. name .. ' raised ' .. tostring(err), 0) end\n"
    "  return false\n"
    "end\n"
    "return function(path)\n"
    "  call('tide.load', tide.load, path)\n"
    "  call('tide.load', tide.load, path, {flat = true})\n"
    "  call('tide.load_npy', tide.load_npy, path)\n"
    "  local m, o = snap(model:state_dict()), snap(opt:state_dict())\n"
    "  if not call('checkpoint.load', tide.checkpoint.load, path, {model = model, optimizer = opt}) then\n"
    "    if m ~= snap(model:state_dict()) then error('finding: a failed checkpoint.load changed the model', 0) end\n"
    "    if o ~= snap(opt:state_dict()) then error('finding: a failed checkpoint.load changed the optimizer', 0) end\n"
    "  end\n"
    "  m = snap(model:state_dict())\n"
    "  if not call('model:load', model.load, model, path) and m ~= snap(model:state_dict()) then\n"
    "    error('finding: a failed model:load changed the model', 0)\n"
    "  end\n"
    "  call('data.csv', data.csv, path)\n"
    "  call('data.csv', data.csv, path, {header = true, sep = ';'})\n"
    "end\n";

static lua_State *L;
static char path[64];

// Lua coverage for libFuzzer: each (chunk, line) the stdlib runs bumps a counter in libFuzzer's
// extra-counters section, so inputs that reach new Lua lines (a checkpoint check, a CSV
// quoting rule) are kept as well as those reaching new C edges.
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_lines[1 << 15];

static void line_hook(lua_State *l, lua_Debug *ar) {
    if (!lua_getinfo(l, "S", ar)) return;
    uintptr_t h = (uintptr_t)ar->source * 2654435761u ^ (uintptr_t)ar->currentline * 40503u;
    uint8_t *c = &lua_lines[(h ^ h >> 15) % sizeof lua_lines];
    if (*c < 255) (*c)++;
}

static void setup(void) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_tide_core);
    lua_setfield(L, -2, "tide.core");
    lua_getglobal(L, "package");
    lua_pushstring(L, STR(TIDE_TREE) "/stdlib/?.lua;" STR(TIDE_TREE) "/stdlib/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_settop(L, 0);
    if (luaL_loadstring(L, harness) || lua_pcall(L, 0, 1, 0)) {
        fprintf(stderr, "fuzz_load: setup failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_load");
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/fuzz_load-%d", dir, (int)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) setup();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_load");
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        __builtin_trap();
    }
    static unsigned runs;
    if (++runs % 64 == 0) lua_gc(L, LUA_GCCOLLECT); // tensors are freed every few inputs
    unlink(path);
    return 0;
}
