-- Ghostline for Neovim: `require("ghostline").setup{}` starts `ghostline lsp` for the configured
-- filetypes and shows its inline completions while typing; keymaps accept all of it, the next
-- word, or dismiss it. Two displays (option `display`): Neovim's own vim.lsp.inline_completion
-- where the running Neovim has it (0.12+, native.lua), else the plugin's requests and extmark ghost
-- text (client.lua + ghost.lua, Neovim 0.7+). Quick fixes come through vim.lsp.buf.code_action().
-- Modules: config (options), client (server + requests), ghost (extmarks), native (0.12+), this
-- file (wiring).
local config = require("ghostline.config")
local client = require("ghostline.client")
local ghost = require("ghostline.ghost")
local native = require("ghostline.native")

-- display: "native" or "extmark", chosen by setup() from the `display` option and a feature check.
local M = { config = nil, client = client, ghost = ghost, native = native, display = nil }
local accepting = false -- the edit an accept makes must not ask again at once

function M.accept()
  if M.display == "native" then return native.accept(0) end
  accepting = true
  local done = ghost.accept(0)
  vim.schedule(function() accepting = false end)
  return done
end

function M.accept_word()
  if M.display == "native" then return native.accept_word(vim.api.nvim_get_current_buf()) end
  accepting = true
  local done = ghost.accept_word(0)
  vim.schedule(function() accepting = false end)
  return done
end

function M.dismiss()
  local buf = vim.api.nvim_get_current_buf()
  if M.display == "native" then return native.dismiss(buf, client.client()) end
  client.cancel(buf)
  ghost.dismiss(0)
end

function M.trigger()
  if M.display == "native" then return native.trigger(vim.api.nvim_get_current_buf()) end
  return client.request(0)
end

-- The next / previous candidate (native display only: the extmark path shows the first one).
function M.next() if M.display == "native" then native.select(0, 1) end end
function M.prev() if M.display == "native" then native.select(0, -1) end end

function M.quick_fix() vim.lsp.buf.code_action({ only = { "quickfix" } }) end

local function map_keys(buf, keys)
  local function map(key, fn, desc)
    if key then vim.keymap.set("i", key, fn, { buffer = buf, silent = true, desc = desc }) end
  end
  map(keys.accept, M.accept, "Ghostline: accept suggestion")
  map(keys.accept_word, M.accept_word, "Ghostline: accept next word")
  map(keys.dismiss, M.dismiss, "Ghostline: dismiss suggestion")
  map(keys.trigger, M.trigger, "Ghostline: ask for a suggestion")
  if M.display == "native" then
    map(keys.next, M.next, "Ghostline: next suggestion")
    map(keys.prev, M.prev, "Ghostline: previous suggestion")
  end
end

function M.attach(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  if not client.start(M.config) then return false end
  client.attach(buf)
  map_keys(buf, M.config.keymaps)
  local group = vim.api.nvim_create_augroup("ghostline_buf_" .. buf, { clear = true })
  if M.display == "native" then
    native.enable(buf) -- Neovim asks while typing and draws the suggestion
    return true
  end
  if M.config.auto_trigger then
    vim.api.nvim_create_autocmd("TextChangedI", { group = group, buffer = buf, callback = function()
      if not accepting then client.request_debounced(buf, M.config.debounce_ms) end
    end })
  end
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, buffer = buf, callback = function()
    client.cancel(buf)
    ghost.clear(buf)
  end })
  return true
end

function M.setup(opts)
  M.config = config.merge(opts)
  M.display = native.choose(M.config.display)
  ghost.hl_group = M.config.hl_group
  local group = vim.api.nvim_create_augroup("ghostline", { clear = true })
  vim.api.nvim_create_autocmd("FileType", { group = group, pattern = M.config.filetypes, callback = function(ev)
    M.attach(ev.buf)
  end })
  -- buffers already open when setup runs
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(M.config.filetypes, vim.bo[buf].filetype) then
      M.attach(buf)
    end
  end
  return M
end

return M
