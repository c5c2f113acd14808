-- The server's codingplan/status notification and the statusline component built from it.
local M = {}

-- Last status per client id: { state, message, reason?, retryAfterMs?, plan?, enabled, model?,
-- unavailable? }.
local by_client = {}

-- The state+reason pairs the user was told about, per client id (see tell).
local told = {}

local labels = {
  signedOut = 'signed out',
  connecting = 'connecting',
  loading = 'model loading',
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
  M.tell(ctx.client_id, result)
  vim.api.nvim_exec_autocmds('User', { pattern = 'CodingplanStatus', modeline = false, data = result })
  pcall(vim.cmd.redrawstatus)
end

-- What the user can do about a reason, appended to its notification.
local advice = {
  signedOut = 'run :Codingplan signin',
  tokenRejected = 'run :Codingplan signin',
  tokenExpired = 'run :Codingplan signin',
  noBackendUrl = 'set settings.backendUrl in setup()',
  subscriptionInactive = 'check your subscription on the account page',
}

--- reasons that mean the token is not (or no longer) good: the user is signed out.
M.signed_out_reasons = { signedOut = true, tokenRejected = true, tokenExpired = true }

--- retry_text says when the next attempt is: ' (retry in 3s)', '' when there is none or the
--- message says it already.
function M.retry_text(s)
  if not s.retryAfterMs or (s.message or ''):find('retrying in', 1, true) then
    return ''
  end
  return (' (retry in %ds)'):format(math.ceil(s.retryAfterMs / 1000))
end

--- tell notifies the user (vim.notify) of a state that needs them, once per state and reason
--- until the server is ready again; a rate limit is told once per session.
function M.tell(client_id, s)
  local seen = told[client_id] or {}
  told[client_id] = seen
  if s.state == 'ready' or s.state == 'busy' then
    for key in pairs(seen) do
      if not key:find('^rateLimited:') then
        seen[key] = nil
      end
    end
    return
  end
  if type(s.reason) ~= 'string' or s.reason == '' then
    return
  end
  local key = s.state .. ':' .. s.reason
  if seen[key] then
    return
  end
  seen[key] = true
  local text = 'codingplan: ' .. (s.message or M.label(s.state)) .. M.retry_text(s)
  if advice[s.reason] then
    text = text .. ' (' .. advice[s.reason] .. ')'
  end
  local level = vim.log.levels.WARN
  if s.state == 'error' then
    level = vim.log.levels.ERROR
  elseif s.state == 'loading' then
    level = vim.log.levels.INFO
  end
  vim.schedule(function()
    vim.notify(text, level, { title = 'codingplan' })
  end)
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
  if (s.state == 'rateLimited' or s.state == 'error') and s.retryAfterMs then
    text = text .. (' (%ds)'):format(math.ceil(s.retryAfterMs / 1000))
  elseif s.state == 'ready' and s.enabled == false then
    text = 'codingplan: off'
  end
  return text
end

function M.forget(client_id)
  by_client[client_id] = nil
  told[client_id] = nil
end

function M.teardown()
  by_client = {}
  told = {}
end

return M
