-- Unit tests of the plugin's pure parts, run by e2e_test.go (TestLua) in each Neovim:
--   nvim --clean -l tests/unit.lua
-- Prints one line per failure and "N passed, N failed"; exits non-zero on a failure.
vim.opt.rtp:prepend(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h'))

local passed, failed = 0, 0
local function case(name, f)
  local ok, err = pcall(f)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    io.stdout:write(('FAIL %s: %s\n'):format(name, err))
  end
end
local function eq(got, want)
  if not vim.deep_equal(got, want) then
    error(('got %s, want %s'):format(vim.inspect(got), vim.inspect(want)), 2)
  end
end
local function fails(f, pattern)
  local ok, err = pcall(f)
  if ok then
    error('no error, want one matching ' .. pattern, 2)
  end
  if not tostring(err):find(pattern, 1, true) then
    error(('error %q does not contain %q'):format(tostring(err), pattern), 2)
  end
end

local config = require('codingplan.config')

case('defaults validate', function()
  eq(config.validate(nil), config.defaults)
  eq(config.validate({}), config.defaults)
end)

case('options merge over the defaults', function()
  local o = config.validate({ keymaps = { accept = false, next = '<C-n>' }, settings = { model = 'fast' } })
  eq(o.keymaps.accept, false)
  eq(o.keymaps.next, '<C-n>')
  eq(o.keymaps.prev, config.defaults.keymaps.prev)
  eq(o.settings, { model = 'fast' })
end)

case('lists replace the default', function()
  eq(config.validate({ root_markers = { 'x' } }).root_markers, { 'x' })
  eq(config.validate({ settings = { ignore = { '*.secret' } } }).settings.ignore, { '*.secret' })
end)

for _, c in ipairs({
  { { persist_token = 'yes' }, 'option persist_token must be a boolean' },
  { { cmd = {} }, 'option cmd must be a non-empty list of strings' },
  { { cmd = 'codingplan-lsp' }, 'option cmd must be a non-empty list of strings' },
  { { filetypes = { 1 } }, 'option filetypes must be a list of strings' },
  { { keymaps = { accept = true } }, 'option keymaps.accept must be a key (string) or false' },
  { { keymaps = { accept_all = '<Tab>' } }, 'unknown option keymaps.accept_all' },
  { { ghost = { debounce_ms = -1 } }, 'option ghost.debounce_ms must be a number >= 0' },
  { { settings = { backendURL = 'ws://x' } }, 'unknown server setting settings.backendURL' },
  { { settings = { maxTokens = '10' } }, 'option settings.maxTokens must be a number' },
  { { settings = { ignore = { 1 } } }, 'option settings.ignore must be a list of strings' },
  { { serverpath = 'x' }, 'unknown option serverpath' },
}) do
  case('rejects ' .. vim.inspect(c[1], { newline = ' ', indent = '' }), function()
    fails(function()
      config.validate(c[1])
    end, c[2])
  end)
end

case('server command', function()
  eq(config.server_cmd(config.validate({})), { 'codingplan-lsp' })
  eq(config.server_cmd(config.validate({ server_path = '/x/lsp' })), { '/x/lsp' })
  eq(config.server_cmd(config.validate({ cmd = { 'a', '--b' } })), { 'a', '--b' })
end)

local ghost = require('codingplan.ghost')
for _, c in ipairs({
  { 'intln("hi")', 'intln', '' },
  { ' := foo()', ' :=', '' },
  { '("hi")\n\treturn', '("', '' },
  { '\n\treturn nil', '\n\treturn', '' },
  { '   ', '   ', '' },
}) do
  case('first_word ' .. vim.inspect(c[1]), function()
    eq(ghost.first_word(c[1]), c[2])
  end)
end
for _, c in ipairs({
  { 'x := 1\ny := 2', 'x := 1' },
  { '\n\ty := 2\nz', '\n\ty := 2' },
  { 'no newline', 'no newline' },
}) do
  case('first_line ' .. vim.inspect(c[1]), function()
    eq(ghost.first_line(c[1]), c[2])
  end)
end

case('setup is idempotent and teardown undoes it', function()
  local cp = require('codingplan')
  local opts = { server_path = '/nonexistent/codingplan-lsp', keymaps = { dismiss = false } }
  local notify = vim.notify
  vim.notify = function() end -- the missing binary is reported once; not the point here
  cp.setup(opts)
  local n1 = #vim.api.nvim_get_autocmds({ group = 'codingplan' })
  cp.setup(opts)
  eq(#vim.api.nvim_get_autocmds({ group = 'codingplan' }), n1)
  eq(cp.is_setup(), true)
  cp.teardown()
  eq(cp.is_setup(), false)
  eq(pcall(vim.api.nvim_get_autocmds, { group = 'codingplan' }), false)
  vim.notify = notify
end)

case('persist_token keeps the token in a 0600 file, signout removes it', function()
  local cp = require('codingplan')
  local commands = require('codingplan.commands')
  local notify = vim.notify
  vim.notify = function() end -- no server runs here: the commands report that
  cp.setup({ server_path = '/nonexistent/codingplan-lsp', persist_token = true })
  commands.token('tok-123')
  local path = commands.token_path()
  eq(commands.read_token(), 'tok-123')
  eq(vim.uv.fs_stat(path).mode % 512, tonumber('600', 8))
  eq(require('codingplan.lsp').token, 'tok-123')
  commands.signout()
  eq(vim.uv.fs_stat(path), nil)
  eq(require('codingplan.lsp').token, nil)
  cp.teardown()
  vim.notify = notify
end)

case('without persist_token nothing is written', function()
  local cp = require('codingplan')
  local commands = require('codingplan.commands')
  local notify = vim.notify
  vim.notify = function() end
  cp.setup({ server_path = '/nonexistent/codingplan-lsp' })
  commands.token('tok-456')
  eq(vim.uv.fs_stat(commands.token_path()), nil)
  require('codingplan.lsp').token = nil
  cp.teardown()
  vim.notify = notify
end)

case('statusline without a server', function()
  eq(require('codingplan').statusline(), '')
end)

case(':Codingplan completes its subcommands', function()
  vim.cmd('runtime plugin/codingplan.lua')
  eq(vim.fn.getcompletion('Codingplan s', 'cmdline'), { 'signin', 'signout', 'status' })
end)

io.stdout:write(('%d passed, %d failed\n'):format(passed, failed))
if failed > 0 then
  os.exit(1)
end
