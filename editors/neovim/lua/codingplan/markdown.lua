-- codingplan/showMarkdown: the server's whole answer (Explain's), shown in a float as Markdown.
local float = require('codingplan.float')

local M = {}

--- last is the most recent answer's buffer, for statuslines and tests.
M.last = nil

--- show opens params.markdown in a float; q or <Esc> closes it.
---@param params { title: string, markdown: string }
function M.show(params)
  if type(params) ~= 'table' or type(params.markdown) ~= 'string' then
    return
  end
  local lines = vim.split(params.markdown, '\n', { plain = true })
  if lines[#lines] == '' then
    table.remove(lines)
  end
  local close = function() end
  local _, buf = float.open(lines, {
    title = 'codingplan: ' .. (params.title or 'answer') .. ' (q closes)',
    filetype = 'markdown',
    keys = { q = close, ['<Esc>'] = close },
  })
  M.last = buf
end

--- handler is the codingplan/showMarkdown notification handler.
function M.handler(_, result)
  M.show(result)
end

return M
