-- The plugin's native display against the real `ghostline lsp`, in a Neovim that has
-- vim.lsp.inline_completion (0.12+; tools/setup.sh installs one): setup{} picks it, enables it for a
-- Python buffer, Neovim itself asks while typing and draws the server's suggestion, and the
-- plugin's keymaps accept it (vim.lsp.inline_completion.get), accept the next word (get with
-- on_accept), cycle (select) and dismiss it; the plugin sends no request of its own. Exits 77
-- (skipped) when the binary is not built or this Neovim lacks the module.
local T = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/harness.lua")
local binary = T.binary_or_skip()
if vim.fn.has("nvim-0.12") ~= 1 then
  io.stdout:write("skipped: Neovim " .. T.nvim_version() .. " has no vim.lsp.inline_completion\n")
  vim.cmd("77cquit")
end
io.stdout:write("Neovim " .. T.nvim_version() .. "\n")

local ghostline = require("ghostline").setup({ binary = binary })
local client = ghostline.client
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, "p")
local ns = vim.api.nvim_create_namespace("nvim.lsp.inline_completion") -- Neovim's own (existing) one

-- Neovim's inline-completion requests, seen through the LspRequest autocmd.
local sent = 0
vim.api.nvim_create_autocmd("LspRequest", { callback = function(ev)
  local r = ev.data and ev.data.request
  if r and r.type == "pending" and r.method == "textDocument/inlineCompletion" then sent = sent + 1 end
end })

-- The suggestion Neovim draws: the virtual text on the line, then the virtual lines below it.
local function shown(buf)
  local marks = vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })
  if #marks == 0 then return nil end
  local d = marks[1][4]
  local first, hint = {}, nil
  for _, chunk in ipairs(d.virt_text or {}) do
    if chunk[2] == "ComplHintMore" then hint = chunk[1] else table.insert(first, chunk[1]) end
  end
  local lines = { table.concat(first) }
  for _, vl in ipairs(d.virt_lines or {}) do
    local parts = {}
    for _, chunk in ipairs(vl) do
      if chunk[2] == "ComplHintMore" then hint = chunk[1] else table.insert(parts, chunk[1]) end
    end
    table.insert(lines, table.concat(parts))
  end
  return { text = table.concat(lines, "\n"), hint = hint, count = #marks }
end

local function open(name)
  vim.cmd("edit " .. dir .. "/" .. name)
  local buf = vim.api.nvim_get_current_buf()
  T.truthy(T.wait(10000, function()
    local c = client.client()
    return c and c.initialized and vim.lsp.buf_is_attached(buf, c.id)
  end), "client initialized and attached within 10 s")
  return buf
end

-- Types keys (insert mode, for real) and waits until the cursor's line reads `line`.
local function type_keys(keys, line)
  vim.api.nvim_feedkeys(keys, "t", false)
  T.truthy(T.wait(5000, function() return vim.fn.mode() == "i" and vim.api.nvim_get_current_line() == line end),
    "typed " .. vim.inspect(line) .. " in insert mode")
end

local function wait_shown(buf, what)
  T.truthy(T.wait(20000, function() return shown(buf) ~= nil end), what .. " within 20 s")
  return shown(buf)
end

T.test("the feature check picks Neovim's inline completion and enables it for the buffer", function()
  T.eq(ghostline.native.available(), true, "vim.lsp.inline_completion found")
  T.eq(ghostline.display, "native", "display")
  T.eq(ghostline.native.choose("extmark"), "extmark", "display = 'extmark' still forces the extmarks")
  local buf = open("attach.py")
  T.truthy(vim.lsp.inline_completion.is_enabled({ bufnr = buf }), "inline completion enabled for the buffer")
  T.truthy(client.client().server_capabilities.inlineCompletionProvider, "server offers inline completions")
  local ours = vim.api.nvim_get_autocmds({ group = "ghostline_buf_" .. buf, event = "TextChangedI" })
  T.eq(#ours, 0, "no TextChangedI autocmd of the plugin's own")
end)

T.test("Neovim asks while typing, draws the suggestion, and accept inserts it", function()
  local buf = open("typing.py")
  local before_sent, before_ours = sent, client.stats.requests
  type_keys("idef add(a, b):\n    return ", "    return ")
  local s = wait_shown(buf, "Neovim's ghost text")
  io.stdout:write("suggestion: " .. vim.inspect(s.text) .. "\n")
  T.truthy(sent > before_sent, "Neovim sent textDocument/inlineCompletion")
  T.eq(client.stats.requests, before_ours, "the plugin sent no request of its own")
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "def add(a, b):", "    return " }, "ghost text is not text")
  T.truthy(s.text ~= "", "non-empty suggestion")
  T.truthy(ghostline.accept(), "accept found a suggestion")
  local want = "def add(a, b):\n    return " .. s.text
  T.truthy(T.wait(5000, function() return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") == want end),
    "buffer is the typed text plus the suggestion: " .. vim.inspect(want) .. ", got " ..
    vim.inspect(table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")))
  local cursor = vim.api.nvim_win_get_cursor(0)
  local last = vim.api.nvim_buf_get_lines(buf, -2, -1, false)[1]
  T.eq({ cursor[1], cursor[2] }, { vim.api.nvim_buf_line_count(buf), #last }, "cursor after the inserted text")
  T.eq(shown(buf), nil, "ghost text gone after accept")
end)

T.test("accept word inserts only the next word of the suggestion", function()
  local buf = open("word.py")
  type_keys("idef scale(values, k):\n    return [", "    return [")
  local s = wait_shown(buf, "a suggestion")
  io.stdout:write("suggestion: " .. vim.inspect(s.text) .. "\n")
  local word = ghostline.ghost.next_word(s.text)
  T.truthy(ghostline.accept_word(), "accept word found a suggestion")
  local want = "    return [" .. word
  local lines = vim.split(want, "\n", { plain = true })
  T.truthy(T.wait(5000, function()
    return table.concat(vim.api.nvim_buf_get_lines(buf, 1, 1 + #lines, false), "\n") == want
  end), "the line gains exactly the next word " .. vim.inspect(word) .. ", got " ..
    vim.inspect(vim.api.nvim_buf_get_lines(buf, 1, -1, false)))
  T.eq(vim.api.nvim_buf_line_count(buf), 1 + #lines, "nothing more inserted")
  local cursor = vim.api.nvim_win_get_cursor(0)
  T.eq({ cursor[1], cursor[2] }, { 1 + #lines, #lines[#lines] }, "cursor after the word")
end)

T.test("select cycles through the candidates, dismiss hides them and accept then does nothing", function()
  local buf = open("cycle.py")
  type_keys("idef area(w, h):\n    return ", "    return ")
  local s = wait_shown(buf, "a suggestion")
  ghostline.next()
  T.truthy(T.wait(2000, function() local n = shown(buf); return n and n.hint end), "select shows the index hint")
  local hint = shown(buf).hint
  local i, n = hint:match("%((%d+)/(%d+)%)")
  T.truthy(i and n, "hint " .. vim.inspect(hint) .. " reads (i/n)")
  T.eq(tonumber(i), 2 % tonumber(n) == 0 and tonumber(n) or 2 % tonumber(n), "the next candidate (wrapping)")
  if tonumber(n) == 1 then T.eq(shown(buf).text, s.text, "the only candidate again") end
  ghostline.dismiss()
  T.truthy(T.wait(2000, function() return shown(buf) == nil end), "ghost text gone after dismiss")
  T.eq(ghostline.accept(), false, "nothing left to accept")
  T.wait(200, function() return false end) -- a reply or a scheduled accept would land meanwhile
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "def area(w, h):", "    return " }, "buffer unchanged")
end)

T.run()
