-- A tiny test runner for headless Neovim 0.7+: T.test(name, fn) collects cases, T.run() runs them
-- and exits Neovim with status 0 when all pass, 1 otherwise (printing each failure). Cases run in a
-- coroutine, and T.wait yields to Neovim's main loop, so keys fed with nvim_feedkeys (no "x") are
-- typed for real (insert mode, autocommands) while a case waits.
local T = { cases = {} }

function T.test(name, fn) table.insert(T.cases, { name = name, fn = fn }) end

function T.eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    error(string.format("%s: expected %s, got %s", what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

-- "0.7.2": the running Neovim's version (vim.version() has no tostring before 0.9).
function T.nvim_version()
  local v = vim.version()
  return string.format("%d.%d.%d", v.major, v.minor, v.patch)
end

-- The server binary from GHOSTLINE_BINARY (default build/ghostline); exits 77 (skipped) when it
-- is not built.
function T.binary_or_skip()
  local binary = os.getenv("GHOSTLINE_BINARY") or "build/ghostline"
  if vim.fn.executable(binary) ~= 1 then
    io.stdout:write("skipped: no ghostline binary at " .. binary .. "\n")
    vim.cmd("77cquit")
  end
  return binary
end

function T.truthy(v, what) if not v then error((what or "condition") .. " is false", 2) end end

-- Waits up to ms for cond() while Neovim runs its main loop; returns whether it became true.
function T.wait(ms, cond)
  local co = coroutine.running()
  local deadline = vim.loop.now() + ms
  while not cond() do
    if vim.loop.now() >= deadline then return false end
    vim.defer_fn(function() coroutine.resume(co) end, 20)
    coroutine.yield()
  end
  return true
end

local function out(s) io.stdout:write(s .. "\n") end

function T.run()
  coroutine.wrap(function()
    local failed = 0
    for _, c in ipairs(T.cases) do
      vim.cmd("stopinsert")
      vim.cmd("silent! %bwipeout!")
      local ok, err = xpcall(c.fn, debug.traceback)
      if ok then out("ok   " .. c.name) else failed = failed + 1; out("FAIL " .. c.name .. "\n" .. err) end
    end
    out(string.format("%d passed, %d failed", #T.cases - failed, failed))
    vim.cmd((failed == 0) and "qall!" or "cquit 1")
  end)()
end

return T
