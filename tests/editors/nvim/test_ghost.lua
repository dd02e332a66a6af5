-- Ghost text without a server: drawing as extmarks in the plugin's namespace, accept, accept
-- word, dismiss, the options merge, and the feature check that picks the display (the extmarks on
-- Neovim 0.7 to 0.11, vim.lsp.inline_completion on 0.12+). Run: nvim --headless -u NONE -i NONE
--   --cmd "set rtp+=editors/nvim" -c "luafile tests/editors/nvim/test_ghost.lua"
local T = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/harness.lua")
local ghost = require("ghostline.ghost")
local config = require("ghostline.config")
local native = require("ghostline.native")

local function buffer(lines)
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  return buf
end

local function marks(buf)
  return vim.api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })
end

T.test("show draws one extmark in the ghostline namespace, without touching the text", function()
  local buf = buffer({ "def add(a, b):", "    return " })
  ghost.show(buf, 1, 11, "a + b\n# done")
  local m = marks(buf)
  T.eq(#m, 1, "extmarks")
  T.eq({ m[1][2], m[1][3] }, { 1, 11 }, "mark position")
  T.eq(m[1][4].virt_text[1][1], "a + b", "first line as virtual text")
  T.eq(m[1][4].virt_lines[1][1][1], "# done", "further lines as virtual lines")
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "def add(a, b):", "    return " }, "buffer")
  T.eq(#vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace(""), 0, -1, {}), 0, "other namespaces")
end)

T.test("accept inserts the whole suggestion and moves the cursor after it", function()
  local buf = buffer({ "def add(a, b):", "    return " })
  vim.api.nvim_win_set_cursor(0, { 2, 11 })
  ghost.show(buf, 1, 11, "a + b\n\nprint(add(1, 2))")
  T.truthy(ghost.accept(buf), "accepted")
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false),
    { "def add(a, b):", "    return a + b", "", "print(add(1, 2))" }, "buffer")
  -- after the inserted text; in normal mode (as here) Neovim keeps it on the last character
  T.eq(vim.api.nvim_win_get_cursor(0), { 4, 15 }, "cursor")
  T.eq(#marks(buf), 0, "ghost text gone")
  T.eq(ghost.accept(buf), false, "nothing left to accept")
end)

T.test("accept in the middle of a line keeps the text after the cursor", function()
  local buf = buffer({ "x = foo()" })
  ghost.show(buf, 0, 8, "1, 2")
  ghost.accept(buf)
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "x = foo(1, 2)" }, "buffer")
end)

T.test("accept word takes one word at a time and keeps showing the rest", function()
  local buf = buffer({ "result = " })
  ghost.show(buf, 0, 9, "compute_total(items)")
  ghost.accept_word(buf)
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "result = compute_total" }, "after one word")
  T.eq(ghost.get(buf).text, "(items)", "rest still suggested")
  T.eq(marks(buf)[1][3], 22, "rest drawn after the accepted word")
  ghost.accept_word(buf)
  ghost.accept_word(buf)
  ghost.accept_word(buf)
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "result = compute_total(items)" }, "all words")
  T.eq(ghost.get(buf), nil, "nothing left")
end)

T.test("next word keeps leading whitespace with the word", function()
  T.eq(ghost.next_word("  for x in y"), "  for", "word")
  T.eq(ghost.next_word(".append(1)"), ".", "punctuation")
  T.eq(ghost.next_word("   "), "   ", "only spaces")
end)

T.test("dismiss removes the ghost text and leaves the buffer alone", function()
  local buf = buffer({ "print(" })
  ghost.show(buf, 0, 6, "'hi')")
  ghost.dismiss(buf)
  T.eq(#marks(buf), 0, "extmarks")
  T.eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { "print(" }, "buffer")
end)

T.test("an empty suggestion draws nothing", function()
  local buf = buffer({ "x" })
  ghost.show(buf, 0, 1, "")
  T.eq(#marks(buf), 0, "extmarks")
end)

T.test("config builds the server command from binary, model and device", function()
  local c = config.merge({ binary = "/opt/gl", model = "/m", device = "cpu", keymaps = { accept = "<Tab>" } })
  T.eq(c.cmd, { "/opt/gl", "lsp", "--model", "/m", "--device", "cpu" }, "cmd")
  T.eq(c.keymaps.accept, "<Tab>", "overridden key")
  T.eq(c.keymaps.dismiss, config.defaults.keymaps.dismiss, "default key kept")
end)

T.test("the feature check picks the display this Neovim supports", function()
  -- Neovim's inline completion came with 0.12: has() is the independent witness here.
  local has_module = vim.fn.has("nvim-0.12") == 1
  io.stdout:write("Neovim " .. T.nvim_version() .. ": vim.lsp.inline_completion " ..
    (has_module and "expected" or "not expected") .. "\n")
  T.eq(native.available(), has_module, "vim.lsp.inline_completion found")
  T.eq(native.choose("auto"), has_module and "native" or "extmark", "display for 'auto'")
  T.eq(native.choose(nil), has_module and "native" or "extmark", "display by default")
  T.eq(native.choose("extmark"), "extmark", "display for 'extmark'")
  local warned = nil
  local notify = vim.notify
  vim.notify = function(msg) warned = msg end
  local chosen = native.choose("native")
  vim.notify = notify
  T.eq(chosen, has_module and "native" or "extmark", "display for 'native'")
  T.eq(warned ~= nil, not has_module, "a warning when 'native' cannot be had (" .. tostring(warned) .. ")")
  T.eq(config.merge({}).display, "auto", "default option")
end)

T.run()
