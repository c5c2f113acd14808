-- What :Codingplan signin|token|signout|status|toggle do.
local lsp = require('codingplan.lsp')
local status = require('codingplan.status')

local M = {}

local function notify(msg, level)
  vim.notify('codingplan: ' .. msg, level or vim.log.levels.INFO)
end

local function options()
  return require('codingplan.config').options
end

--- token_path is where the token is kept when opts.persist_token is true.
function M.token_path()
  return vim.fs.joinpath(vim.fn.stdpath('data'), 'codingplan', 'token')
end

--- read_token returns the persisted token, or nil.
function M.read_token()
  local f = io.open(M.token_path(), 'r')
  if not f then
    return nil
  end
  local token = vim.trim(f:read('*a') or '')
  f:close()
  return token ~= '' and token or nil
end

local function write_token(token)
  local path = M.token_path()
  vim.fn.mkdir(vim.fs.dirname(path), 'p', tonumber('700', 8))
  local mode = tonumber('600', 8)
  local fd = assert(vim.uv.fs_open(path, 'w', mode))
  vim.uv.fs_fchmod(fd, mode) -- an existing file keeps its mode otherwise
  vim.uv.fs_write(fd, token)
  vim.uv.fs_close(fd)
end

local function exec(command, args, on_result)
  local client = lsp.client(vim.api.nvim_get_current_buf())
  local sent = lsp.exec(command, args, function(err, result)
    if err then
      notify(('%s failed: %s'):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    if client then
      status.set(client.id, result)
    end
    if on_result then
      on_result(result)
    end
  end)
  if not sent then
    notify('the language server is not running (see :checkhealth codingplan)', vim.log.levels.ERROR)
  end
end

--- signin runs the device sign-in: the server gets a code, the plugin shows it in a float,
--- copies it and opens the page (codingplan.signin); the server polls until the browser approved
--- it, then keeps the sign-in (renewed by itself) for the next start too.
function M.signin()
  notify('signing in: approve the code in your browser')
  exec('codingplan.signIn', nil, function(result)
    require('codingplan.signin').close()
    notify(type(result) == 'table' and result.message or 'signed in')
  end)
end

--- token hands a token to the server; with no token it asks for one.
---@param token string|nil
function M.token(token)
  local function apply(value)
    value = value and vim.trim(value) or ''
    if value == '' then
      return
    end
    lsp.token = value
    lsp.refresh_settings(options())
    if options().persist_token then
      write_token(value)
    end
    exec('codingplan.signIn', { value }, function(result)
      notify(type(result) == 'table' and result.message or 'signed in')
    end)
  end
  if token then
    return apply(token)
  end
  vim.ui.input({ prompt = 'codingplan token: ' }, apply)
end

function M.signout()
  require('codingplan.signin').close()
  lsp.token = nil
  lsp.refresh_settings(options())
  os.remove(M.token_path())
  exec('codingplan.signOut', nil, function()
    notify('signed out')
  end)
end

function M.status()
  exec('codingplan.status', nil, function(s)
    if type(s) ~= 'table' then
      return
    end
    local parts = { status.label(s.state) }
    if s.message and s.message ~= '' then
      table.insert(parts, s.message .. status.retry_text(s))
    end
    if type(s.model) == 'string' and s.model ~= '' then
      table.insert(parts, 'model ' .. s.model)
    end
    if type(s.unavailable) == 'string' and s.unavailable ~= '' then
      table.insert(parts, s.unavailable)
    end
    if type(s.plan) == 'table' then
      table.insert(parts, ('plan %s, %d/%d streams in use'):format(s.plan.name, s.plan.inUse or 0, s.plan.concurrency or 0))
    end
    table.insert(parts, s.enabled == false and 'completions off' or 'completions on')
    notify(table.concat(parts, ' · '))
  end)
end

function M.toggle()
  exec('codingplan.toggle', nil, function(r)
    notify(type(r) == 'table' and r.enabled == false and 'completions off' or 'completions on')
  end)
end

--- rewrite runs the server's Rewrite on args.range of args.uri with an instruction from the user
--- (args.instruction, else asked with vim.ui.input). The "Rewrite…" code action lands here.
---@param args { uri: string, range: table, instruction: string|nil }
function M.rewrite(args)
  local function run(instruction)
    instruction = instruction and vim.trim(instruction) or ''
    if instruction == '' then
      return
    end
    exec('codingplan.rewrite', { { uri = args.uri, range = args.range, instruction = instruction } })
  end
  if args.instruction and vim.trim(args.instruction) ~= '' then
    return run(args.instruction)
  end
  vim.ui.input({ prompt = 'codingplan: how should the code change? ' }, run)
end

--- client_commands are the client-side handlers of server commands (vim.lsp.commands): those that
--- need the user first.
M.client_commands = {
  ['codingplan.rewrite'] = function(command)
    local args = command.arguments and command.arguments[1]
    if type(args) == 'table' then
      M.rewrite(args)
    end
  end,
}

M.subcommands = { 'signin', 'token', 'signout', 'status', 'toggle', 'cancel' }

--- run dispatches :Codingplan {sub}.
function M.run(sub)
  if not require('codingplan').is_setup() then
    notify("call require('codingplan').setup() first", vim.log.levels.ERROR)
    return
  end
  if sub == 'signin' then
    M.signin()
  elseif sub == 'token' then
    M.token()
  elseif sub == 'signout' then
    M.signout()
  elseif sub == 'status' or sub == nil or sub == '' then
    M.status()
  elseif sub == 'toggle' then
    M.toggle()
  elseif sub == 'cancel' then
    require('codingplan.progress').cancel()
  else
    notify(('unknown subcommand %q (want %s)'):format(sub, table.concat(M.subcommands, '|')), vim.log.levels.ERROR)
  end
end

return M
