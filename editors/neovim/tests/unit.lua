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
  { { settings = { enable = 'yes' } }, 'option settings.enable must be a boolean or a table' },
  { { exclude_filetypes = 'markdown' }, 'option exclude_filetypes must be a list of strings' },
  { { keymaps = { trigger = true } }, 'option keymaps.trigger must be a key (string) or false' },
  { { serverpath = 'x' }, 'unknown option serverpath' },
}) do
  case('rejects ' .. vim.inspect(c[1], { newline = ' ', indent = '' }), function()
    fails(function()
      config.validate(c[1])
    end, c[2])
  end)
end

case('enable per language and manual mode pass validation', function()
  local o = config.validate({ settings = { enable = { ['*'] = true, markdown = false }, automatic = false } })
  eq(o.settings.enable, { ['*'] = true, markdown = false })
  eq(config.validate({ settings = { enable = false } }).settings.enable, false)
  eq(config.defaults.keymaps.trigger, '<M-\\>')
end)

case('filetypes and exclude_filetypes choose the buffers', function()
  local lsp = require('codingplan.lsp')
  local function buf(name, ft)
    local b = vim.api.nvim_create_buf(true, false)
    vim.api.nvim_buf_set_name(b, vim.fn.tempname() .. name)
    vim.bo[b].filetype = ft
    return b
  end
  local go, md = buf('a.go', 'gotest'), buf('a.md', 'notes')
  local all = config.validate({})
  eq({ lsp.wanted(all, go), lsp.wanted(all, md) }, { true, true })
  local excl = config.validate({ exclude_filetypes = { 'notes' } })
  eq({ lsp.wanted(excl, go), lsp.wanted(excl, md) }, { true, false })
  local both = config.validate({ filetypes = { 'gotest', 'notes' }, exclude_filetypes = { 'gotest' } })
  eq({ lsp.wanted(both, go), lsp.wanted(both, md) }, { false, true })
  eq(lsp.wanted(config.validate({ filetypes = { 'lua' } }), go), false)
end)

case(':help codingplan opens the help of the plugin', function()
  -- The tags are generated in a copy, as a plugin manager (or :helptags ALL) does.
  local plugin = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir .. '/doc', 'p')
  vim.fn.writefile(vim.fn.readfile(plugin .. '/doc/codingplan.txt'), dir .. '/doc/codingplan.txt')
  vim.cmd('helptags ' .. vim.fn.fnameescape(dir .. '/doc'))
  vim.opt.rtp:prepend(dir)
  -- The help filetype's plugin needs the vimdoc parser, which the test's Neovim may lack.
  vim.cmd('filetype plugin off')
  for _, tag in ipairs({ 'codingplan', ':Codingplan', 'codingplan-setup', 'codingplan-commands', 'codingplan-keymaps',
    'codingplan-options', 'codingplan-settings', 'codingplan-health', 'codingplan-option-exclude_filetypes' }) do
    vim.cmd('help ' .. tag)
    eq(vim.bo.buftype, 'help')
    eq(vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ':t'), 'codingplan.txt')
    vim.cmd('helpclose')
  end
end)

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

case('a state that needs the user is told once per state and reason', function()
  local status = require('codingplan.status')
  local notify = vim.notify
  local got = {}
  vim.notify = function(msg, level)
    table.insert(got, { msg, level })
  end
  local function push(s)
    status.handler(nil, s, { client_id = 99 })
  end
  push({ state = 'error', reason = 'unreachable', message = 'cannot reach the backend (refused); retrying in 250ms', retryAfterMs = 250 })
  push({ state = 'connecting', message = 'connecting to the backend' })
  push({ state = 'error', reason = 'unreachable', message = 'cannot reach the backend (refused); retrying in 500ms', retryAfterMs = 500 })
  push({ state = 'signedOut', reason = 'tokenRejected', message = 'signed out: bad signature' })
  push({ state = 'rateLimited', reason = 'rateLimited', message = 'rate limited', retryAfterMs = 2500 })
  push({ state = 'ready', message = 'connected' })
  push({ state = 'rateLimited', reason = 'rateLimited', message = 'rate limited', retryAfterMs = 2500 })
  push({ state = 'error', reason = 'unreachable', message = 'cannot reach the backend (refused); retrying in 1s', retryAfterMs = 1000 })
  vim.wait(1000, function()
    return #got >= 4
  end)
  vim.notify = notify
  status.teardown()
  eq(got, {
    { 'codingplan: cannot reach the backend (refused); retrying in 250ms', vim.log.levels.ERROR },
    { 'codingplan: signed out: bad signature (run :Codingplan signin)', vim.log.levels.WARN },
    { 'codingplan: rate limited (retry in 3s)', vim.log.levels.WARN },
    { 'codingplan: cannot reach the backend (refused); retrying in 1s', vim.log.levels.ERROR },
  })
end)

case(':Codingplan completes its subcommands', function()
  vim.cmd('runtime plugin/codingplan.lua')
  eq(vim.fn.getcompletion('Codingplan s', 'cmdline'), { 'signin', 'signout', 'status' })
end)

case(':Codingplan cancel is a subcommand', function()
  eq(vim.fn.getcompletion('Codingplan c', 'cmdline'), { 'cancel' })
end)

case('the preview diffs an edit, a new file included, and applies it without annotations', function()
  local preview = require('codingplan.preview')
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  local src = dir .. '/a.go'
  vim.fn.writefile({ 'package a', '', 'func f() {}' }, src)
  local ann = { annotationId = preview.ANNOTATION }
  local edit = {
    documentChanges = {
      { textDocument = { uri = vim.uri_from_fname(src), version = vim.NIL }, edits = {
        vim.tbl_extend('force', ann, { range = { start = { line = 2, character = 0 }, ['end'] = { line = 2, character = 0 } }, newText = '// f does nothing.\n' }),
      } },
      vim.tbl_extend('force', ann, { kind = 'create', uri = vim.uri_from_fname(dir .. '/a_test.go'), options = { ignoreIfExists = true } }),
      { textDocument = { uri = vim.uri_from_fname(dir .. '/a_test.go'), version = vim.NIL }, edits = {
        vim.tbl_extend('force', ann, { range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } }, newText = 'package a\n' }),
      } },
    },
    changeAnnotations = { [preview.ANNOTATION] = { label = 'L', needsConfirmation = true } },
  }
  local lines = preview.diff_lines(edit, 'utf-16')
  local text = table.concat(lines, '\n')
  assert(text:find('+// f does nothing.', 1, true), text)
  assert(text:find('--- /dev/null (new file)', 1, true), text)
  assert(text:find('+package a', 1, true), text)
  eq(vim.fn.filereadable(dir .. '/a_test.go'), 0) -- a preview creates nothing
  local plain = preview.plain(edit)
  eq(plain.changeAnnotations, nil)
  eq(plain.documentChanges[1].edits[1].annotationId, nil)
  eq(plain.documentChanges[2].annotationId, nil)
  eq(edit.documentChanges[1].edits[1].annotationId, preview.ANNOTATION) -- the original is untouched
  vim.fn.delete(dir, 'rf')
end)

case('progress says how to cancel, and cancel asks the server', function()
  local progress = require('codingplan.progress')
  local lsp = require('codingplan.lsp')
  local sent, echoed = {}, {}
  local get, notify, echo = vim.lsp.get_client_by_id, lsp.notify, vim.api.nvim_echo
  vim.lsp.get_client_by_id = function(id)
    return id == 7 and {} or nil
  end
  lsp.notify = function(_, method, params)
    table.insert(sent, { method, params.token })
  end
  vim.api.nvim_echo = function(chunks)
    table.insert(echoed, chunks[1][1])
  end
  local ctx = { client_id = 7 }
  progress.track({ token = 'codingplan-1', value = { kind = 'begin', title = 'codingplan: Write tests', cancellable = true,
    message = 'asking the model' } }, ctx)
  progress.track({ token = 'codingplan-1', value = { kind = 'report', message = 'writing tests… 12 lines so far' } }, ctx)
  eq(echoed[2], 'codingplan: writing tests… 12 lines so far (:Codingplan cancel stops it)')
  eq(progress.cancel(), 1)
  eq(sent, { { 'window/workDoneProgress/cancel', 'codingplan-1' } })
  progress.track({ token = 'codingplan-1', value = { kind = 'end', message = 'cancelled' } }, ctx)
  eq(echoed[#echoed], 'codingplan: Write tests: cancelled')
  eq(progress.cancel(), 0)
  eq(echoed[#echoed], 'codingplan: nothing is running')
  vim.lsp.get_client_by_id, lsp.notify, vim.api.nvim_echo = get, notify, echo
end)

io.stdout:write(('%d passed, %d failed\n'):format(passed, failed))
if failed > 0 then
  os.exit(1)
end
