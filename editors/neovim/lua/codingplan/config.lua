-- Options: defaults, validation and the merged result that every other module reads.
local M = {}

-- The language server's settings (lsp/internal/config Settings) and their Lua types. The plugin
-- sends only what the user sets in opts.settings: the server owns the defaults. The block between
-- the markers is checked against the Go struct by lsp/internal/config/editors_test.go.
-- settings:begin
M.server_settings = {
  backendUrl = 'string',
  accountsUrl = 'string',
  apiKeyFile = 'string',
  allowInsecureBackend = 'boolean',
  caFile = 'string',
  token = 'string',
  enable = 'boolean|table',
  automatic = 'boolean',
  model = 'string',
  debounceMs = 'number',
  multiline = 'string',
  suggestions = 'number',
  maxTokens = 'number',
  prefixChars = 'number',
  suffixChars = 'number',
  snippetChars = 'number',
  ignore = 'table',
  trace = 'string',
}
-- settings:end

---@class codingplan.Keymaps
---@field accept string|false       accept the whole suggestion (falls through when none is shown)
---@field accept_word string|false  accept the next word
---@field accept_line string|false  accept the rest of the line
---@field next string|false         show the next suggestion
---@field prev string|false         show the previous suggestion
---@field dismiss string|false      hide the suggestion
---@field trigger string|false      ask for a suggestion now (manual mode: settings.automatic = false)

---@class codingplan.Options
---@field cmd string[]|nil          the server command; nil: { server_path or 'codingplan-lsp' }
---@field server_path string|nil    path of codingplan-lsp when not on PATH
---@field filetypes string[]|nil    filetypes to attach to; nil: every file buffer
---@field exclude_filetypes string[] filetypes never attached to (their text never reaches the server)
---@field root_markers string[]     files that mark a project's root
---@field settings table            server settings (see M.server_settings), sent as initializationOptions
---@field persist_token boolean     keep the token from :Codingplan signin in stdpath('data')/codingplan/token (0600)
---@field ghost { enabled: boolean, debounce_ms: integer, hl_group: string }
---@field keymaps codingplan.Keymaps

---@type codingplan.Options
M.defaults = {
  cmd = nil,
  server_path = nil,
  filetypes = nil,
  exclude_filetypes = {},
  root_markers = { '.git', 'go.mod', 'package.json', 'Cargo.toml', 'pyproject.toml', '.hg' },
  settings = {},
  persist_token = false,
  ghost = {
    enabled = true,
    -- Only for Neovim 0.10/0.11: 0.12's built-in inline completion debounces by itself.
    debounce_ms = 75,
    hl_group = 'CodingplanGhost',
  },
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-C-Right>',
    next = '<M-]>',
    prev = '<M-[>',
    dismiss = '<C-]>',
    trigger = '<M-\\>',
  },
}

---@type codingplan.Options
M.options = vim.deepcopy(M.defaults)

local function is_list_of_strings(v)
  if type(v) ~= 'table' or #v ~= vim.tbl_count(v) then
    return false
  end
  for _, s in ipairs(v) do
    if type(s) ~= 'string' then
      return false
    end
  end
  return true
end

local function key_or_false(v)
  return v == false or (type(v) == 'string' and v ~= '')
end

-- check raises an error naming the option when ok is false.
local function check(ok, name, want)
  if not ok then
    error(('codingplan: option %s must be %s'):format(name, want), 0)
  end
end

-- no_unknown raises an error for a key of t that defaults does not have.
local function no_unknown(t, defaults, prefix)
  for k in pairs(t) do
    if defaults[k] == nil and not (prefix == '' and (k == 'cmd' or k == 'server_path' or k == 'filetypes')) then
      error(('codingplan: unknown option %s%s'):format(prefix, tostring(k)), 0)
    end
  end
end

--- validate merges opts over the defaults and checks every value; it raises an error with a
--- message naming the first bad option.
---@param opts table|nil
---@return codingplan.Options
function M.validate(opts)
  opts = opts or {}
  check(type(opts) == 'table', 'opts', 'a table')
  no_unknown(opts, M.defaults, '')
  local o = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace, never merge by index.
  for _, k in ipairs({ 'root_markers', 'filetypes', 'exclude_filetypes', 'cmd' }) do
    if opts[k] ~= nil then
      o[k] = vim.deepcopy(opts[k])
    end
  end
  if opts.settings and opts.settings.ignore then
    o.settings.ignore = vim.deepcopy(opts.settings.ignore)
  end

  check(o.cmd == nil or (is_list_of_strings(o.cmd) and #o.cmd > 0), 'cmd', 'a non-empty list of strings')
  check(o.server_path == nil or type(o.server_path) == 'string', 'server_path', 'a string')
  check(o.filetypes == nil or is_list_of_strings(o.filetypes), 'filetypes', 'a list of strings')
  check(is_list_of_strings(o.exclude_filetypes), 'exclude_filetypes', 'a list of strings')
  check(is_list_of_strings(o.root_markers), 'root_markers', 'a list of strings')
  check(type(o.persist_token) == 'boolean', 'persist_token', 'a boolean')
  check(type(o.settings) == 'table', 'settings', 'a table')
  for k, v in pairs(o.settings) do
    local want = M.server_settings[k]
    if want == nil then
      error(('codingplan: unknown server setting settings.%s'):format(tostring(k)), 0)
    end
    check(vim.tbl_contains(vim.split(want, '|', { plain = true }), type(v)), 'settings.' .. k, 'a ' .. want:gsub('|', ' or a '))
  end
  if o.settings.ignore then
    check(is_list_of_strings(o.settings.ignore), 'settings.ignore', 'a list of strings')
  end

  check(type(opts.ghost or {}) == 'table', 'ghost', 'a table')
  no_unknown(opts.ghost or {}, M.defaults.ghost, 'ghost.')
  check(type(o.ghost.enabled) == 'boolean', 'ghost.enabled', 'a boolean')
  check(type(o.ghost.debounce_ms) == 'number' and o.ghost.debounce_ms >= 0, 'ghost.debounce_ms', 'a number >= 0')
  check(type(o.ghost.hl_group) == 'string', 'ghost.hl_group', 'a string')

  check(type(opts.keymaps or {}) == 'table', 'keymaps', 'a table')
  no_unknown(opts.keymaps or {}, M.defaults.keymaps, 'keymaps.')
  for k in pairs(M.defaults.keymaps) do
    check(key_or_false(o.keymaps[k]), 'keymaps.' .. k, 'a key (string) or false')
  end
  return o
end

--- server_cmd returns the command that starts the language server.
---@param o codingplan.Options
---@return string[]
function M.server_cmd(o)
  if o.cmd then
    return o.cmd
  end
  return { o.server_path or 'codingplan-lsp' }
end

return M
