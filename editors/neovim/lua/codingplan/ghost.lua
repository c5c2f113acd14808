-- Ghost text: the suggestion shown after the cursor while typing, and the keys' actions on it.
--
-- One renderer per Neovim generation does the work, both with the same functions:
--   ghost/native.lua   0.12+: the built-in vim.lsp.inline_completion, turned on per buffer
--   ghost/extmark.lua  0.10/0.11: the plugin's own requests, rendered with extmarks
-- This module picks one, and owns what does not depend on it: the options, the highlight, and
-- which part of a suggestion accept word and accept line take.
local lsp = require('codingplan.lsp')

local M = {}

--- native tells whether the built-in inline completion shows the ghost text (Neovim 0.12+).
M.native = lsp.has_012 and vim.lsp.inline_completion ~= nil

local renderer = require(M.native and 'codingplan.ghost.native' or 'codingplan.ghost.extmark')

local api = vim.api
local opts = { enabled = true, debounce_ms = 75, hl_group = 'CodingplanGhost' }

--- first_word returns the start of ghost up to the end of its first word (leading space
--- included), or its first run of punctuation.
---@param ghost string
---@return string
function M.first_word(ghost)
  return ghost:match('^%s*[%w_]+') or ghost:match('^%s*[^%w_%s]+') or ghost:match('^%s+') or ghost
end

--- first_line returns the rest of the current line of ghost, or, when ghost starts with a line
--- break, that break and the next line.
---@param ghost string
---@return string
function M.first_line(ghost)
  local nl = ghost:find('\n', 1, true)
  if not nl then
    return ghost
  end
  if nl == 1 then
    return '\n' .. ghost:sub(2):match('^[^\n]*')
  end
  return ghost:sub(1, nl - 1)
end

---@param o codingplan.Options
function M.setup(o)
  opts = o.ghost
  renderer.setup(opts)
  api.nvim_set_hl(0, 'CodingplanGhost', { link = M.native and 'ComplHint' or 'Comment', default = true })
end

--- attach turns ghost text on for buf, served by client.
function M.attach(buf, client)
  if opts.enabled then
    renderer.attach(buf, client)
  end
end

--- detach turns ghost text off for buf.
function M.detach(buf)
  renderer.detach(buf)
end

--- teardown turns ghost text off everywhere.
function M.teardown()
  renderer.teardown()
end

--- visible tells whether a suggestion is shown in buf (default: current).
---@param buf integer|nil
---@return boolean
function M.visible(buf)
  return renderer.visible(buf or api.nvim_get_current_buf())
end

--- text returns the suggestion shown in buf as it would be inserted (nil when none).
---@param buf integer|nil
---@return string|nil
function M.text(buf)
  return renderer.text(buf or api.nvim_get_current_buf())
end

--- accept inserts the whole suggestion; false when none is shown.
---@return boolean
function M.accept()
  return renderer.accept(api.nvim_get_current_buf())
end

--- accept_word inserts the suggestion's next word.
---@return boolean
function M.accept_word()
  return renderer.accept_part(api.nvim_get_current_buf(), M.first_word)
end

--- accept_line inserts the rest of the suggestion's current line.
---@return boolean
function M.accept_line()
  return renderer.accept_part(api.nvim_get_current_buf(), M.first_line)
end

--- cycle shows the next (delta 1) or previous (-1) suggestion, asking for more when only one
--- is known.
---@param delta integer
function M.cycle(delta)
  renderer.cycle(api.nvim_get_current_buf(), delta)
end

--- trigger asks the server for a suggestion now, an invoked inline completion: with the
--- automatic setting off (manual mode) the only way to get one, besides next/prev.
function M.trigger()
  renderer.trigger(api.nvim_get_current_buf())
end

--- index returns which of the known suggestions is shown in buf (default: current) and how
--- many there are, e.g. 2, 3; nil when none is shown. For a statusline's "2/3".
---@param buf integer|nil
---@return integer|nil index, integer|nil count
function M.index(buf)
  return renderer.index(buf or api.nvim_get_current_buf())
end

--- dismiss hides the suggestion until the next keystroke.
function M.dismiss()
  renderer.dismiss(api.nvim_get_current_buf())
end

return M
