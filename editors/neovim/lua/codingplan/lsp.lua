-- Starting the language server and attaching it to buffers, plus the request helpers that differ
-- between Neovim 0.10 (client.request(...)) and 0.11+ (client:request(...)).
--
-- 0.12+: vim.lsp.config + vim.lsp.enable. 0.10/0.11: vim.lsp.start on FileType.
local config = require('codingplan.config')

local M = {}

M.name = 'codingplan'
M.has_011 = vim.fn.has('nvim-0.11') == 1
M.has_012 = vim.fn.has('nvim-0.12') == 1

-- The token from :Codingplan token (or the persisted file), in memory only.
M.token = nil

local group = nil
local notified_missing = false

-- Compatibility ----------------------------------------------------------------------------------

function M.request(client, method, params, handler, bufnr)
  if M.has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if M.has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.notify(client, method, params)
  if M.has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if M.has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.stop(client)
  if M.has_011 then
    return client:stop()
  end
  return client.stop()
end

--- clients returns the running codingplan clients, those attached to bufnr when given.
---@param bufnr integer|nil
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
end

--- client returns the client attached to bufnr, else any running one.
---@param bufnr integer|nil
---@return vim.lsp.Client|nil
function M.client(bufnr)
  return M.clients(bufnr)[1] or M.clients()[1]
end

--- exec runs a server command (workspace/executeCommand) on the first client; callback(err, result).
---@param command string
---@param args table|nil
---@param callback fun(err: table|nil, result: any)|nil
---@return boolean sent
function M.exec(command, args, callback)
  local client = M.client(vim.api.nvim_get_current_buf())
  if not client then
    if callback then
      callback({ message = 'codingplan: the language server is not running' }, nil)
    end
    return false
  end
  M.request(client, 'workspace/executeCommand', { command = command, arguments = args }, function(err, result)
    if callback then
      callback(err, result)
    end
  end)
  return true
end

-- Configuration ----------------------------------------------------------------------------------

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  -- 0.10/0.11 do not know LSP 3.18 inline completion: the plugin renders it itself.
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  -- Code action edits come with a change annotation asking for confirmation: the plugin shows
  -- them as a diff first (codingplan.preview), on 0.10 too. Neovim applies versioned
  -- documentChanges (and the create operation "Write tests" uses) without saying so.
  caps.workspace = caps.workspace or {}
  local we = vim.tbl_extend('keep', caps.workspace.workspaceEdit or {}, { resourceOperations = { 'rename', 'create', 'delete' } })
  we.documentChanges = true
  we.changeAnnotationSupport = we.changeAnnotationSupport or { groupsOnLabel = false }
  caps.workspace.workspaceEdit = we
  -- Explain's answer comes as codingplan/showMarkdown (codingplan.markdown).
  caps.experimental = vim.tbl_deep_extend('force', caps.experimental or {}, { codingplan = { showMarkdown = true } })
  return caps
end

--- settings returns the server settings to send: the user's, plus the token when there is one.
---@param o codingplan.Options
---@return table
function M.settings(o)
  local s = vim.deepcopy(o.settings)
  if M.token and s.token == nil then
    s.token = M.token
  end
  return s
end

--- client_config builds the vim.lsp client configuration.
---@param o codingplan.Options
---@return table
function M.client_config(o)
  local s = M.settings(o)
  return {
    name = M.name,
    cmd = config.server_cmd(o),
    init_options = { codingplan = s },
    settings = { codingplan = s },
    capabilities = capabilities(),
    handlers = {
      ['codingplan/status'] = function(err, result, ctx)
        require('codingplan.status').handler(err, result, ctx)
      end,
      ['codingplan/showMarkdown'] = function(err, result, ctx)
        require('codingplan.markdown').handler(err, result, ctx)
      end,
      ['workspace/applyEdit'] = function(err, result, ctx)
        return require('codingplan.preview').handler(err, result, ctx)
      end,
      ['$/progress'] = function(err, result, ctx, cfg)
        return require('codingplan.progress').handler(err, result, ctx, cfg)
      end,
      ['window/showMessageRequest'] = function(err, result, ctx, cfg)
        return require('codingplan.signin').handler(err, result, ctx, cfg)
      end,
    },
  }
end

--- refresh_settings hands the current settings (after sign-in or sign-out) to the running clients
--- and to the configuration used for the next start.
---@param o codingplan.Options
function M.refresh_settings(o)
  local s = M.settings(o)
  for _, client in ipairs(M.clients()) do
    client.settings = client.settings or {}
    client.settings.codingplan = vim.deepcopy(s)
  end
  if M.has_012 and group then
    vim.lsp.config(M.name, { init_options = { codingplan = s }, settings = { codingplan = s } })
  end
end

-- Starting ---------------------------------------------------------------------------------------

local function executable(o)
  local cmd = config.server_cmd(o)
  if vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  if not notified_missing then
    notified_missing = true
    vim.notify(
      ('codingplan: %s not found or not executable; set server_path in setup() (see :checkhealth codingplan)'):format(
        cmd[1]
      ),
      vim.log.levels.ERROR
    )
  end
  return false
end

--- wanted tells whether the plugin attaches to bufnr: a named file buffer of a filetype in
--- o.filetypes (any when nil) and not in o.exclude_filetypes.
---@param o codingplan.Options
---@param bufnr integer
---@return boolean
function M.wanted(o, bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  if vim.api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  return (o.filetypes == nil or vim.tbl_contains(o.filetypes, ft)) and not vim.tbl_contains(o.exclude_filetypes, ft)
end

--- attach starts (or reuses) a client for bufnr: 0.10/0.11 only.
---@param o codingplan.Options
---@param bufnr integer
function M.attach(o, bufnr)
  if not M.wanted(o, bufnr) or not executable(o) then
    return
  end
  local cfg = M.client_config(o)
  cfg.root_dir = vim.fs.root(bufnr, o.root_markers) or vim.fn.getcwd()
  vim.lsp.start(cfg, { bufnr = bufnr })
end

--- start begins attaching the server to buffers, now and from now on.
---@param o codingplan.Options
function M.start(o)
  group = vim.api.nvim_create_augroup('codingplan.lsp', { clear = true })
  notified_missing = false
  if M.has_012 then
    if not executable(o) then
      return
    end
    local cfg = M.client_config(o)
    cfg.root_markers = o.root_markers
    cfg.filetypes = o.filetypes
    if #o.exclude_filetypes > 0 then
      -- vim.lsp.enable attaches where root_dir calls on_dir: never for an excluded filetype.
      cfg.root_dir = function(bufnr, on_dir)
        if not vim.tbl_contains(o.exclude_filetypes, vim.bo[bufnr].filetype) then
          on_dir(vim.fs.root(bufnr, o.root_markers) or vim.fn.getcwd())
        end
      end
    end
    vim.lsp.config(M.name, cfg)
    vim.lsp.enable(M.name)
    return
  end
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = o.filetypes or '*',
    desc = 'codingplan: start or attach the language server',
    callback = function(ev)
      M.attach(o, ev.buf)
    end,
  })
  -- Buffers opened before setup() (lazy loading).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].filetype ~= '' then
      M.attach(o, bufnr)
    end
  end
end

--- teardown stops the clients and removes the autocommands.
function M.teardown()
  if group then
    pcall(vim.api.nvim_del_augroup_by_id, group)
    group = nil
  end
  if M.has_012 then
    pcall(vim.lsp.enable, M.name, false)
  end
  for _, client in ipairs(M.clients()) do
    M.stop(client)
  end
end

return M
