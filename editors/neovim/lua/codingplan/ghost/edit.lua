-- What both ghost-text renderers do to the buffer and tell the server when a suggestion, or a
-- part of it, is accepted.
local lsp = require('codingplan.lsp')

local M = {}

local api = vim.api

-- utf16_len is the length of s in UTF-16 code units, the unit of acceptedLength.
local function utf16_len(s)
  if lsp.has_011 then
    return vim.str_utfindex(s, 'utf-16')
  end
  local _, n16 = vim.str_utfindex(s)
  return n16
end

--- insert_at_cursor puts text at the cursor of the current window, replacing up to byte column
--- end_col of the cursor's line, and leaves the cursor after it.
---@param buf integer
---@param text string
---@param end_col integer|nil
function M.insert_at_cursor(buf, text, end_col)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_text(buf, row, col, row, math.max(col, end_col or col), lines)
  api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
end

--- notify_partial tells the server that accepted, the start of the item raw, was accepted.
---@param client vim.lsp.Client|nil
---@param raw table|nil  the lsp.InlineCompletionItem
---@param accepted string
function M.notify_partial(client, raw, accepted)
  if client and raw then
    lsp.notify(client, 'textDocument/didPartiallyAcceptCompletion', {
      item = raw,
      acceptedLength = utf16_len(accepted),
    })
  end
end

return M
