-- Buffer-local insert-mode keymaps for the ghost text. Each one can be turned off with false.
--
-- The accept key (Tab by default) accepts only while ghost text is shown and no completion menu
-- (the built-in popup, nvim-cmp, blink.cmp) is open; otherwise it does what the key did before
-- this plugin mapped it (an existing buffer or global mapping, or the key itself).
local ghost = require('codingplan.ghost')

local M = {}

local api = vim.api
local keys = {} -- keys[buf] = { lhs, ... } that this module mapped

--- menu_open tells whether a completion menu is open: the built-in popup (complete_info works
--- without a UI, where pumvisible() stays 0), nvim-cmp or blink.cmp.
---@return boolean
function M.menu_open()
  if vim.fn.pumvisible() == 1 or vim.fn.complete_info({ 'mode' }).mode ~= '' then
    return true
  end
  local cmp = package.loaded['cmp']
  if cmp and type(cmp.visible) == 'function' and cmp.visible() then
    return true
  end
  local blink = package.loaded['blink.cmp']
  if blink then
    local f = blink.is_menu_visible or blink.is_visible
    if type(f) == 'function' and f() then
      return true
    end
  end
  return false
end

local function termcodes(s)
  return api.nvim_replace_termcodes(s, true, true, true)
end

-- fallback returns the keys that the mapping map (a maparg() dict, possibly empty) would produce
-- for lhs, for use as the result of an expr mapping.
local function fallback(lhs, map)
  if not map or vim.tbl_isempty(map) then
    return termcodes(lhs)
  end
  if map.callback then
    local result = map.callback()
    if map.expr == 1 then
      if type(result) ~= 'string' then
        return ''
      end
      return map.replace_keycodes == 1 and termcodes(result) or result
    end
    return ''
  end
  local rhs = map.rhs or ''
  if map.sid and map.sid > 0 then
    rhs = rhs:gsub('<[Ss][Ii][Dd]>', ('<SNR>%d_'):format(map.sid))
  end
  if map.expr == 1 then
    local ok, result = pcall(api.nvim_eval, rhs)
    return ok and type(result) == 'string' and result or ''
  end
  return termcodes(rhs)
end

--- attach maps the keys of o.keymaps in buf (insert mode).
---@param buf integer
---@param o codingplan.Options
function M.attach(buf, o)
  if keys[buf] then
    return
  end
  keys[buf] = {}
  local km = o.keymaps
  local function map(lhs, rhs, desc, extra)
    if not lhs then
      return
    end
    local opts = vim.tbl_extend('force', { buffer = buf, desc = 'codingplan: ' .. desc, silent = true }, extra or {})
    vim.keymap.set('i', lhs, rhs, opts)
    table.insert(keys[buf], lhs)
  end

  if km.accept then
    local lhs = km.accept
    -- What the key did before: a buffer-local mapping first, else a global one.
    local previous = api.nvim_buf_call(buf, function()
      return vim.fn.maparg(lhs, 'i', false, true)
    end)
    map(lhs, function()
      if ghost.visible(buf) and not M.menu_open() then
        -- <Cmd> runs after the expr mapping returns, outside its text lock.
        return termcodes('<Cmd>lua require("codingplan.ghost").accept()<CR>')
      end
      return fallback(lhs, previous)
    end, 'accept the suggestion', { expr = true, replace_keycodes = false, remap = true })
  end
  map(km.accept_word, ghost.accept_word, 'accept the next word of the suggestion')
  map(km.accept_line, ghost.accept_line, 'accept the next line of the suggestion')
  map(km.next, function()
    ghost.cycle(1)
  end, 'next suggestion')
  map(km.prev, function()
    ghost.cycle(-1)
  end, 'previous suggestion')
  map(km.dismiss, ghost.dismiss, 'dismiss the suggestion')
  map(km.trigger, ghost.trigger, 'ask for a suggestion now')
end

--- detach removes this module's mappings from buf.
---@param buf integer
function M.detach(buf)
  for _, lhs in ipairs(keys[buf] or {}) do
    if api.nvim_buf_is_valid(buf) then
      pcall(vim.keymap.del, 'i', lhs, { buffer = buf })
    end
  end
  keys[buf] = nil
end

function M.teardown()
  for buf in pairs(keys) do
    M.detach(buf)
  end
end

return M
