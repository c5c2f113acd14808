-- The server's codingplan/status notification and the statusline component built from it.
local M = {}

-- Last status per client id: { state, message, retryAfterMs?, plan?, enabled }.
local by_client = {}

local labels = {
  signedOut = 'signed out',
  connecting = 'connecting',
  ready = 'ready',
  busy = 'busy',
  rateLimited = 'rate limited',
  quotaExceeded = 'quota exceeded',
  disabled = 'disabled',
  error = 'error',
}

--- handler is the client's handler for codingplan/status.
function M.handler(_, result, ctx)
  if type(result) ~= 'table' or not ctx or not ctx.client_id then
    return
  end
  by_client[ctx.client_id] = result
  vim.api.nvim_exec_autocmds('User', { pattern = 'CodingplanStatus', modeline = false, data = result })
  pcall(vim.cmd.redrawstatus)
end

--- set records a status obtained otherwise (the result of a command).
function M.set(client_id, status)
  if type(status) == 'table' and status.state then
    M.handler(nil, status, { client_id = client_id })
  end
end

--- get returns the status of the client attached to bufnr (default: current), else of any
--- client; nil when no server has reported one.
---@param bufnr integer|nil
---@return table|nil
function M.get(bufnr)
  local lsp = require('codingplan.lsp')
  for _, client in ipairs(lsp.clients(bufnr or vim.api.nvim_get_current_buf())) do
    if by_client[client.id] then
      return by_client[client.id]
    end
  end
  for _, client in ipairs(lsp.clients()) do
    if by_client[client.id] then
      return by_client[client.id]
    end
  end
  return nil
end

--- label turns a state into words.
function M.label(state)
  return labels[state] or tostring(state)
end

--- statusline returns a short text for the statusline, '' when no server runs.
---@return string
function M.statusline()
  local s = M.get()
  if not s then
    return ''
  end
  local text = 'codingplan: ' .. M.label(s.state)
  if s.state == 'rateLimited' and s.retryAfterMs then
    text = text .. (' (%ds)'):format(math.ceil(s.retryAfterMs / 1000))
  elseif s.state == 'ready' and s.enabled == false then
    text = 'codingplan: off'
  end
  return text
end

function M.forget(client_id)
  by_client[client_id] = nil
end

function M.teardown()
  by_client = {}
end

return M
