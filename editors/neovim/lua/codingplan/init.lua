-- codingplan for Neovim: AI ghost text and code actions from the codingplan language server.
--
--   require('codingplan').setup({ ... })   -- see lua/codingplan/config.lua for the options
--   require('codingplan').statusline()     -- a statusline component
--   require('codingplan').teardown()       -- undo setup()
local M = {}

local group = nil
local options_seen = nil

function M.is_setup()
  return group ~= nil
end

local function on_attach(ev, o)
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  if not client or client.name ~= require('codingplan.lsp').name then
    return
  end
  require('codingplan.ghost').attach(ev.buf, client)
  require('codingplan.keymaps').attach(ev.buf, o)
end

local function on_detach(ev)
  local lsp = require('codingplan.lsp')
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  if not client or client.name ~= lsp.name then
    return
  end
  require('codingplan.ghost').detach(ev.buf)
  require('codingplan.keymaps').detach(ev.buf)
end

--- setup validates opts and starts the plugin. Calling it again with the same options does
--- nothing; with other options it tears the old setup down first.
---@param opts codingplan.Options|table|nil
function M.setup(opts)
  local config = require('codingplan.config')
  local o = config.validate(opts)
  if group and vim.deep_equal(o, options_seen) then
    return
  end
  M.teardown()
  config.options = o
  options_seen = vim.deepcopy(o)

  local lsp = require('codingplan.lsp')
  if o.persist_token and not lsp.token then
    lsp.token = require('codingplan.commands').read_token()
  end
  require('codingplan.ghost').setup(o)

  group = vim.api.nvim_create_augroup('codingplan', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    desc = 'codingplan: ghost text and keymaps for the buffer',
    callback = function(ev)
      on_attach(ev, o)
    end,
  })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = group,
    desc = 'codingplan: remove ghost text and keymaps from the buffer',
    callback = on_detach,
  })
  for name, handler in pairs(require('codingplan.commands').client_commands) do
    vim.lsp.commands[name] = handler
  end
  lsp.start(o)
end

--- teardown undoes setup(): stops the server, removes autocommands, keymaps and ghost text.
function M.teardown()
  if group then
    pcall(vim.api.nvim_del_augroup_by_id, group)
    group = nil
  end
  options_seen = nil
  for name, handler in pairs(require('codingplan.commands').client_commands) do
    if vim.lsp.commands[name] == handler then
      vim.lsp.commands[name] = nil
    end
  end
  require('codingplan.keymaps').teardown()
  require('codingplan.ghost').teardown()
  require('codingplan.lsp').teardown()
  require('codingplan.status').teardown()
end

--- statusline returns e.g. "codingplan: ready", '' when no server runs.
function M.statusline()
  return require('codingplan.status').statusline()
end

return M
