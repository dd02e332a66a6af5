-- Ghostline for Neovim: `require("ghostline").setup{}` starts `ghostline lsp` for the configured
-- filetypes, asks for inline completions while typing and shows them as ghost text; keymaps accept
-- all of it, the next word, or dismiss it. Quick fixes come through vim.lsp.buf.code_action().
-- Modules: config (options), client (server + requests), ghost (extmarks), this file (wiring).
local config = require("ghostline.config")
local client = require("ghostline.client")
local ghost = require("ghostline.ghost")

local M = { config = nil, client = client, ghost = ghost }
local accepting = false -- the edit an accept makes must not ask again at once

function M.accept()
  accepting = true
  local done = ghost.accept(0)
  vim.schedule(function() accepting = false end)
  return done
end

function M.accept_word()
  accepting = true
  local done = ghost.accept_word(0)
  vim.schedule(function() accepting = false end)
  return done
end

function M.dismiss()
  client.cancel(vim.api.nvim_get_current_buf())
  ghost.dismiss(0)
end

function M.trigger() return client.request(0) end

function M.quick_fix() vim.lsp.buf.code_action({ only = { "quickfix" } }) end

local function map_keys(buf, keys)
  local function map(key, fn, desc)
    if key then vim.keymap.set("i", key, fn, { buffer = buf, silent = true, desc = desc }) end
  end
  map(keys.accept, M.accept, "Ghostline: accept suggestion")
  map(keys.accept_word, M.accept_word, "Ghostline: accept next word")
  map(keys.dismiss, M.dismiss, "Ghostline: dismiss suggestion")
  map(keys.trigger, M.trigger, "Ghostline: ask for a suggestion")
end

function M.attach(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  if not client.start(M.config) then return false end
  client.attach(buf)
  map_keys(buf, M.config.keymaps)
  local group = vim.api.nvim_create_augroup("ghostline_buf_" .. buf, { clear = true })
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
