-- The server's cancellable work-done progress (code actions running): shown in the message
-- area with how to stop it, and cancelled with :Codingplan cancel.
local M = {}

--- running maps "<client id>:<token>" to a running action: { client_id, token, title }.
M.running = {}

local HINT = ' (:Codingplan cancel stops it)'

local function echo(msg)
  vim.api.nvim_echo({ { 'codingplan: ' .. msg } }, false, {})
end

--- track follows a $/progress notification of codingplan's client.
function M.track(result, ctx)
  if type(result) ~= 'table' or type(result.value) ~= 'table' then
    return
  end
  local v, key = result.value, ctx.client_id .. ':' .. tostring(result.token)
  if v.kind == 'begin' then
    M.running[key] = { client_id = ctx.client_id, token = result.token, title = v.title or 'codingplan', cancellable = v.cancellable }
    echo((v.title or ''):gsub('^codingplan: ', '') .. ': ' .. (v.message or 'working') .. (v.cancellable and HINT or ''))
  elseif v.kind == 'report' and M.running[key] then
    local r = M.running[key]
    echo(v.message and (v.message .. (r.cancellable and HINT or '')) or r.title)
  elseif v.kind == 'end' and M.running[key] then
    local r = M.running[key]
    M.running[key] = nil
    echo(r.title:gsub('^codingplan: ', '') .. (v.message and v.message ~= '' and (': ' .. v.message) or ''))
  end
end

--- handler wraps Neovim's $/progress handler (which statuslines read) to track codingplan's.
function M.handler(err, result, ctx, config)
  M.track(result, ctx)
  return vim.lsp.handlers['$/progress'](err, result, ctx, config)
end

--- cancel asks the server to stop every running action; it returns how many it asked about.
function M.cancel()
  local lsp = require('codingplan.lsp')
  local n = 0
  for key, r in pairs(M.running) do
    local client = vim.lsp.get_client_by_id(r.client_id)
    if client and r.cancellable then
      lsp.notify(client, 'window/workDoneProgress/cancel', { token = r.token })
      echo('cancelling ' .. r.title:gsub('^codingplan: ', ''))
      n = n + 1
    else
      M.running[key] = nil
    end
  end
  if n == 0 then
    echo('nothing is running')
  end
  return n
end

return M
