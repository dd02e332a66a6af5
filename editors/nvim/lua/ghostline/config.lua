-- Options of the Ghostline Neovim plugin: the defaults and the merge with the user's setup{} table.
local M = {}

M.defaults = {
  cmd = nil,               -- server command; default { "ghostline", "lsp" } plus the options below
  binary = "ghostline",    -- the ghostline executable (a path or a name on $PATH)
  model = nil,             -- --model DIR (nil: the embedded default)
  device = nil,            -- --device auto|cpu|cuda[:N]
  filetypes = { "python", "c", "cpp", "go", "rust", "javascript", "typescript", "lua", "java" },
  display = "auto",        -- "auto": Neovim's vim.lsp.inline_completion where present (0.12+), else
                           -- "extmark" (the plugin's own requests and ghost text); "native" to insist
  debounce_ms = 75,        -- extmark display: wait after the last keystroke before asking
  auto_trigger = true,     -- extmark display: ask while typing in insert mode (native always does)
  hl_group = "Comment",    -- extmark display: how the ghost text looks (native: ComplHint)
  init_options = {},       -- initializationOptions sent to the server
  keymaps = {              -- insert-mode keys; false to leave a key unmapped
    accept = "<M-l>",
    accept_word = "<M-w>",
    dismiss = "<M-e>",
    trigger = "<M-\\>",
    next = "<M-]>",        -- native display: next / previous candidate
    prev = "<M-[>",
  },
}

function M.merge(user)
  local merged = vim.tbl_deep_extend("force", {}, M.defaults, user or {})
  if not merged.cmd then
    merged.cmd = { merged.binary, "lsp" }
    if merged.model then vim.list_extend(merged.cmd, { "--model", merged.model }) end
    if merged.device then vim.list_extend(merged.cmd, { "--device", merged.device }) end
  end
  return merged
end

return M
