-- The language-server side of the plugin: starts `ghostline lsp` through vim.lsp (one client,
-- attached to each buffer of an enabled filetype), and asks it for inline completions at the
-- cursor. A new request cancels the one before it ($/cancelRequest), and a reply that arrives after
-- the buffer or cursor moved on is dropped. Works on Neovim 0.7 (vim.lsp.start_client) and newer
-- (vim.lsp.start and client:method() calls from 0.11 on, where the older forms are deprecated).
-- With the native display (Neovim 0.12+, see native.lua) Neovim sends the requests itself and only
-- start, attach and stop are used.
local ghost = require("ghostline.ghost")

local M = {}
local client_id = nil
local pending = {} -- bufnr -> { id = request id, timer = uv timer }
M.stats = { requests = 0, cancelled = 0, replies = 0, shown = 0, stale = 0, errors = 0 }
M.last_error = nil

local modern = vim.fn.has("nvim-0.11") == 1

-- Calls a method of an LSP client object: client:name(...) from 0.11, client.name(...) before.
local function call(c, name, ...)
  if modern then return c[name](c, ...) end
  return c[name](...)
end
M.call = call

function M.client()
  return client_id and vim.lsp.get_client_by_id(client_id) or nil
end

function M.start(cfg)
  local c = M.client()
  if c and not call(c, "is_stopped") then return client_id end
  local config = {
    name = "ghostline",
    cmd = cfg.cmd,
    root_dir = vim.loop.cwd(),
    init_options = cfg.init_options,
    on_exit = function() client_id = nil end,
  }
  if modern then
    client_id = vim.lsp.start(config, { attach = false, reuse_client = function() return false end })
  else
    client_id = vim.lsp.start_client(config)
  end
  return client_id
end

function M.attach(buf)
  if client_id and not vim.lsp.buf_is_attached(buf, client_id) then
    vim.lsp.buf_attach_client(buf, client_id)
  end
end

function M.cancel(buf)
  local p = pending[buf]
  if not p then return end
  if p.timer then p.timer:stop(); p.timer:close() end
  local c = M.client()
  if p.id and c then
    call(c, "cancel_request", p.id)
    M.stats.cancelled = M.stats.cancelled + 1
  end
  pending[buf] = nil
end

-- The text the item would insert at the cursor: insertText less what its range already covers
-- before the cursor on the cursor's line (servers may replace the word being typed).
local function text_at_cursor(item, line, col, encoding)
  local text = item.insertText
  if type(text) == "table" then text = text.value end -- a snippet string
  if type(text) ~= "string" then return nil end
  local range = item.range
  if range and range.start and range.start.line == nil then range = nil end
  if range then
    local start_col = vim.lsp.util._str_byteindex_enc
        and vim.lsp.util._str_byteindex_enc(line, range.start.character, encoding)
        or range.start.character
    local typed = line:sub(start_col + 1, col)
    if typed ~= "" and text:sub(1, #typed) == typed then text = text:sub(#typed + 1) end
  end
  return text
end

-- Asks for a completion at the cursor of the current window now; the reply is drawn as ghost text.
function M.request(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  M.cancel(buf)
  ghost.clear(buf)
  local c = M.client()
  if not c then return false end
  local win = vim.api.nvim_get_current_win()
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  local params = vim.lsp.util.make_position_params(win, c.offset_encoding)
  params.context = { triggerKind = 2 }
  local ok, id = call(c, "request", "textDocument/inlineCompletion", params, function(err, result)
    if pending[buf] and pending[buf].id == id then pending[buf] = nil end
    M.stats.replies = M.stats.replies + 1
    if err then
      M.stats.errors = M.stats.errors + 1
      M.last_error = err.message or vim.inspect(err)
      return
    end
    local now = vim.api.nvim_win_get_cursor(0)
    if vim.api.nvim_buf_get_changedtick(buf) ~= tick or now[1] - 1 ~= row or now[2] ~= col then
      M.stats.stale = M.stats.stale + 1
      return
    end
    local items = result and (result.items or result) or {}
    local item = items[1]
    if not item then return end
    local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
    local text = text_at_cursor(item, line, col, c.offset_encoding)
    if text and text ~= "" then
      ghost.show(buf, row, col, text)
      M.stats.shown = M.stats.shown + 1
    end
  end, buf)
  if ok then
    M.stats.requests = M.stats.requests + 1
    pending[buf] = { id = id }
  end
  return ok
end

-- Schedules a request after debounce_ms; each keystroke restarts the wait and cancels a request
-- already sent.
function M.request_debounced(buf, debounce_ms)
  M.cancel(buf)
  ghost.clear(buf)
  local timer = vim.loop.new_timer()
  pending[buf] = { timer = timer }
  timer:start(debounce_ms, 0, vim.schedule_wrap(function()
    if pending[buf] and pending[buf].timer == timer then
      timer:close()
      pending[buf] = nil
      if vim.api.nvim_get_current_buf() == buf and vim.fn.mode():sub(1, 1) == "i" then M.request(buf) end
    end
  end))
end

function M.stop()
  local c = M.client()
  if c then call(c, "stop") end
  client_id = nil
end

return M
