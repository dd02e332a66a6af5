-- Ghost text: one suggestion per buffer, drawn as extmarks in the plugin's own namespace, and
-- accepting it (all of it, or the next word) or dismissing it. Knows nothing of LSP: a suggestion
-- is { row = 0-based, col = 0-based byte column, text = string }.
local M = {}

M.ns = vim.api.nvim_create_namespace("ghostline")
local state = {} -- bufnr -> { row, col, text, mark }
local has_inline = vim.fn.has("nvim-0.10") == 1
M.hl_group = "Comment"

function M.clear(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  state[buf] = nil
  if vim.api.nvim_buf_is_valid(buf) then vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1) end
end

function M.get(buf)
  return state[(buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf]
end

-- Shows text at (row, col) of buf, replacing any earlier suggestion there.
function M.show(buf, row, col, text)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  M.clear(buf)
  if text == nil or text == "" then return end
  local lines = vim.split(text, "\n", { plain = true })
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  local at_eol = col >= #line
  local opts = {
    virt_text = { { lines[1], M.hl_group } },
    virt_text_pos = has_inline and "inline" or (at_eol and "overlay" or "eol"),
    hl_mode = "combine",
  }
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do table.insert(opts.virt_lines, { { lines[i], M.hl_group } }) end
  end
  local mark = vim.api.nvim_buf_set_extmark(buf, M.ns, row, math.min(col, #line), opts)
  state[buf] = { row = row, col = col, text = text, mark = mark }
end

-- The next word of text: leading whitespace plus one run of word characters, or one other char.
local function next_word(text)
  local word = text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]") or text:match("^%s+")
  return word or text
end
M.next_word = next_word

-- Inserts part of the suggestion at its position and moves the cursor after it. Returns true when
-- there was a suggestion to accept.
local function insert(buf, s, piece)
  local lines = vim.split(piece, "\n", { plain = true })
  vim.api.nvim_buf_set_text(buf, s.row, s.col, s.row, s.col, lines)
  local end_row = s.row + #lines - 1
  local end_col = (#lines == 1 and s.col or 0) + #lines[#lines]
  local win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(win) == buf then vim.api.nvim_win_set_cursor(win, { end_row + 1, end_col }) end
  return end_row, end_col
end

function M.accept(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  local s = state[buf]
  if not s then return false end
  M.clear(buf)
  insert(buf, s, s.text)
  return true
end

function M.accept_word(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  local s = state[buf]
  if not s then return false end
  local word = next_word(s.text)
  local rest = s.text:sub(#word + 1)
  M.clear(buf)
  local row, col = insert(buf, s, word)
  if rest ~= "" then M.show(buf, row, col, rest) end
  return true
end

M.dismiss = M.clear

return M
