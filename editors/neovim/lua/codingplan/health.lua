-- :checkhealth codingplan: the binary, its version, sign-in and the backend connection.
local M = {}

local health = vim.health

function M.check()
  local cp = require('codingplan')
  local config = require('codingplan.config')
  local lsp = require('codingplan.lsp')

  health.start('codingplan: setup')
  if cp.is_setup() then
    health.ok('setup() called')
  else
    health.warn("setup() not called", { "Add require('codingplan').setup({}) to your config" })
  end
  health.info(('Neovim %s: %s'):format(
    tostring(vim.version()),
    require('codingplan.ghost').native and 'built-in inline completion (vim.lsp.inline_completion)'
      or 'ghost text rendered by the plugin'
  ))

  health.start('codingplan: language server')
  local cmd = config.server_cmd(config.options)
  local exe = vim.fn.exepath(cmd[1])
  if exe == '' then
    health.error(('%s not found or not executable'):format(cmd[1]), {
      'Build it with `make build` (bin/codingplan-lsp) and put it on PATH, or set server_path in setup()',
    })
    return
  end
  health.ok('binary: ' .. exe)
  local ok, res = pcall(function()
    return vim.system({ exe, '--version' }, { text = true }):wait(5000)
  end)
  if ok and res.code == 0 then
    health.ok('version: ' .. vim.trim(res.stdout ~= '' and res.stdout or res.stderr))
  else
    health.error(('%s --version failed'):format(exe), { ok and vim.trim(res.stderr or '') or tostring(res) })
  end

  local client = lsp.client()
  if not client then
    health.warn('no running client: open a file to start the server')
    return
  end
  health.ok(('client %d running (position encoding %s)'):format(client.id, client.offset_encoding))
  local resp = lsp.request_sync(client, 'workspace/executeCommand', { command = 'codingplan.status' }, 3000)
  local s = resp and resp.result
  if type(s) ~= 'table' then
    health.error('codingplan.status did not answer: ' .. vim.inspect(resp and resp.err))
    return
  end
  -- One verdict per fact, taken from the state and its reason, so that the report never says
  -- "signed in" next to "not connected: token expired".
  local status = require('codingplan.status')
  local detail = (s.message or '') .. status.retry_text(s)
  local connected = { ready = true, busy = true, rateLimited = true, quotaExceeded = true, loading = true }
  if s.state == 'signedOut' or status.signed_out_reasons[s.reason] then
    health.error('signed out: ' .. detail, { 'Run :Codingplan signin, or set CODINGPLAN_TOKEN before starting Neovim' })
  elseif connected[s.state] then
    health.ok('signed in (the backend accepted the token)')
    health.ok(('connected: %s%s'):format(status.label(s.state), detail ~= '' and (' (' .. detail .. ')') or ''))
  elseif s.state == 'disabled' then
    health.info('completions are turned off, so the connection is not reported (:Codingplan toggle)')
  else
    health.info('a token is set; the backend has not accepted it yet')
    local advice = {}
    if s.reason == 'unreachable' then
      advice = { 'Check settings.backendUrl and that the backend runs; the server retries by itself' }
    elseif s.reason == 'noBackendUrl' then
      advice = { 'Set settings.backendUrl to a ws:// or wss:// URL' }
    end
    health.error(('not connected: %s: %s'):format(status.label(s.state), detail), advice)
  end
  if type(s.model) == 'string' and s.model ~= '' then
    health.info('model: ' .. s.model)
  end
  if type(s.unavailable) == 'string' and s.unavailable ~= '' then
    health.warn(s.unavailable)
  end
  if type(s.plan) == 'table' then
    health.info(('plan %s: %d of %d streams in use'):format(s.plan.name, s.plan.inUse or 0, s.plan.concurrency or 0))
  end
  if s.enabled == false then
    health.warn('completions are turned off (:Codingplan toggle)')
  end
end

return M
