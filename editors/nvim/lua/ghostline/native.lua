-- Neovim's own inline completion (vim.lsp.inline_completion, Neovim 0.12+): where the running Neovim
-- has it, the plugin lets Neovim ask `ghostline lsp` while typing and draw the suggestion, and its
-- keymaps call the documented API: enable() per buffer, get() to accept (with on_accept for the
-- next word only, or for nothing at all to dismiss), select() to cycle through the candidates.
-- Elsewhere (Neovim 0.7 to 0.11) the plugin draws its own extmarks (client.lua + ghost.lua).
local ghost = require("ghostline.ghost")

local M = {}

-- vim.lsp.inline_completion when it has the functions the plugin calls, else nil. A feature check,
-- not a version check: Neovim builds without the module (0.7 to 0.11) take the extmark path.
function M.api()
  local ok, ic = pcall(function() return vim.lsp.inline_completion end)
  if not ok or type(ic) ~= "table" then return nil end
  for _, f in ipairs({ "enable", "is_enabled", "get", "select" }) do
    if type(ic[f]) ~= "function" then return nil end
  end
  return ic
end

function M.available() return M.api() ~= nil end

-- The display for the `display` option: "native" or "extmark". "auto" (the default) is native where
-- available; "native" where it is not falls back to the extmarks with a warning.
function M.choose(display)
  display = display or "auto"
  if display == "extmark" then return "extmark" end
  if M.available() then return "native" end
  if display == "native" then
    vim.notify("ghostline: this Neovim has no vim.lsp.inline_completion (0.12+); using extmark ghost text",
      vim.log.levels.WARN)
  end
  return "extmark"
end

-- Turns Neovim's inline completion on for buf (for the clients attached to it that offer
-- textDocument/inlineCompletion, and for those that attach later).
function M.enable(buf) M.api().enable(true, { bufnr = buf }) end

function M.is_enabled(buf) return M.api().is_enabled({ bufnr = buf }) end

-- Accepts the suggestion shown in buf; false when there is none. Neovim applies it on the next
-- turn of the main loop.
function M.accept(buf) return M.api().get({ bufnr = buf }) end

-- The text the item would add at the cursor: insert_text less the part of it its range covers
-- before the cursor on the cursor's line (what was typed already). nil for a snippet.
local function text_at_cursor(item, buf)
  local text = item.insert_text
  if type(text) ~= "string" then return nil end
  local win = vim.fn.bufwinid(buf)
  if win == -1 then return nil end
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  if item.range then
    local start_row, start_col = item.range:to_extmark()
    if start_row == row and start_col <= col then
      local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
      local typed = line:sub(start_col + 1, col)
      if text:sub(1, #typed) == typed then text = text:sub(#typed + 1) end
    end
  end
  return text, win, row, col
end

-- Accepts the next word of the suggestion (ghost.next_word) at the cursor; Neovim then asks again
-- for the rest as the cursor moved. False when there is no suggestion.
function M.accept_word(buf)
  return M.api().get({ bufnr = buf, on_accept = function(item)
    local text, win, row, col = text_at_cursor(item, buf)
    if text == nil then return item end -- a snippet: accept all of it
    local word = ghost.next_word(text)
    if word == "" then return nil end
    local lines = vim.split(word, "\n", { plain = true })
    vim.api.nvim_buf_set_text(buf, row, col, row, col, lines)
    vim.api.nvim_win_set_cursor(win, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
    return nil -- applied here
  end })
end

-- Hides the suggestion and cancels what is pending: get() with an on_accept that applies nothing
-- (Neovim's own abort runs first). With no suggestion shown, cancels our client's pending requests.
function M.dismiss(buf, c)
  if M.api().get({ bufnr = buf, on_accept = function() return nil end }) then return end
  if not c then return end
  for id, r in pairs(c.requests or {}) do
    if r.type == "pending" and r.bufnr == buf and r.method == "textDocument/inlineCompletion" then
      c:cancel_request(id)
    end
  end
end

-- Shows the next (count > 0) or previous candidate.
function M.select(buf, count) M.api().select({ bufnr = buf, count = count }) end

-- Asks now: Neovim's inline completion asks on CursorMovedI (after its own short wait).
function M.trigger(buf)
  vim.api.nvim_exec_autocmds("CursorMovedI", { buffer = buf, modeline = false })
  return true
end

return M
