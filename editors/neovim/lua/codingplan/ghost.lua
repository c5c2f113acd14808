-- Ghost text: the suggestion shown after the cursor while typing.
--
-- Neovim 0.12+: the built-in vim.lsp.inline_completion shows it; this module only turns it on per
-- buffer and adds accept word/line on top of vim.lsp.inline_completion.get().
-- Neovim 0.10/0.11: this module does it all: it asks textDocument/inlineCompletion after a short
-- debounce on TextChangedI/CursorMovedI, cancels the request a newer keystroke supersedes, keeps
-- showing a suggestion while what is typed matches it, and renders it with extmarks (inline
-- virt_text for the first line, virt_lines for the rest).
local lsp = require('codingplan.lsp')

local M = {}

M.native = lsp.has_012 and vim.lsp.inline_completion ~= nil
M.ns = vim.api.nvim_create_namespace('codingplan.ghost')

local api = vim.api
local opts = { enabled = true, debounce_ms = 75, hl_group = 'CodingplanGhost' }

local TRIGGER_INVOKED = 1
local TRIGGER_AUTOMATIC = 2

-- Per-buffer state (0.10/0.11): augroup, timer, client_id, request_id, items, index, shown.
local state = {}

-- Helpers ------------------------------------------------------------------------------------------

-- byte_col converts a position's character offset in encoding enc to a byte column of line.
local function byte_col(line, character, enc)
  if enc == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col
  if lsp.has_011 then
    ok, col = pcall(vim.str_byteindex, line, enc, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, enc == 'utf-16')
  end
  return ok and col or #line
end

-- utf16_len is the length of s in UTF-16 code units, the unit of acceptedLength.
local function utf16_len(s)
  if lsp.has_011 then
    return vim.str_utfindex(s, 'utf-16')
  end
  local _, n16 = vim.str_utfindex(s)
  return n16
end

local function insert_text(item)
  local t = item.insertText
  if type(t) == 'table' then
    -- A snippet: keep the placeholders' text, drop tab stops.
    t = (t.value or ''):gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', '')
  end
  return type(t) == 'string' and t or nil
end

--- first_word returns the start of ghost up to the end of its first word (leading space
--- included), or its first run of punctuation.
---@param ghost string
---@return string
function M.first_word(ghost)
  return ghost:match('^%s*[%w_]+') or ghost:match('^%s*[^%w_%s]+') or ghost:match('^%s+') or ghost
end

--- first_line returns the rest of the current line of ghost, or, when ghost starts with a line
--- break, that break and the next line.
---@param ghost string
---@return string
function M.first_line(ghost)
  local nl = ghost:find('\n', 1, true)
  if not nl then
    return ghost
  end
  if nl == 1 then
    return '\n' .. ghost:sub(2):match('^[^\n]*')
  end
  return ghost:sub(1, nl - 1)
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

-- insert puts text at the cursor of the current window, replacing up to byte column end_col of
-- the cursor's line, and leaves the cursor after it.
local function insert_at_cursor(buf, text, end_col)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_text(buf, row, col, row, math.max(col, end_col or col), lines)
  api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
end

local function notify_partial(client, raw, accepted)
  if client and raw then
    lsp.notify(client, 'textDocument/didPartiallyAcceptCompletion', {
      item = raw,
      acceptedLength = utf16_len(accepted),
    })
  end
end

-- Own rendering (0.10/0.11) ------------------------------------------------------------------------

local function hide(buf)
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  end
  if state[buf] then
    state[buf].shown = nil
  end
end

local function drop(buf)
  hide(buf)
  if state[buf] then
    state[buf].items = nil
  end
end

local function current_item(s)
  return s and s.items and s.items[s.index]
end

-- render shows the current item at the cursor when what was typed since the request still
-- matches it; otherwise it drops the suggestion.
local function render(buf)
  local s = state[buf]
  hide(buf)
  local item = current_item(s)
  if not item or buf ~= api.nvim_get_current_buf() or not in_insert() then
    return
  end
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  if item.row ~= row or col < item.col then
    return drop(buf)
  end
  local typed = line:sub(item.col + 1, col)
  if item.text:sub(1, #typed) ~= typed then
    return drop(buf)
  end
  local ghost = item.text:sub(#typed + 1)
  if ghost == '' then
    return drop(buf)
  end
  local lines = vim.split(ghost, '\n', { plain = true })
  local extmark = { virt_text_pos = 'inline', hl_mode = 'combine' }
  if lines[1] ~= '' then
    extmark.virt_text = { { lines[1], opts.hl_group } }
  end
  if #lines > 1 then
    extmark.virt_lines = {}
    for i = 2, #lines do
      table.insert(extmark.virt_lines, { { lines[i], opts.hl_group } })
    end
  end
  api.nvim_buf_set_extmark(buf, M.ns, row, col, extmark)
  s.shown = {
    ghost = ghost,
    typed = typed,
    -- The end of the range the item replaces, moved by what was typed since the request.
    end_col = math.max(col, #line - item.tail),
  }
  if not item.did_show then
    item.did_show = true
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      lsp.notify(client, 'textDocument/didShowCompletion', { item = item.raw })
    end
  end
end

local function normalize(raw, buf, enc, req_row, req_col)
  local text = insert_text(raw)
  if not text then
    return nil
  end
  local row, col, end_col = req_row, req_col, req_col
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  if raw.range and raw.range.start and raw.range.start.line == row and raw.range['end'].line == row then
    col = byte_col(line, raw.range.start.character, enc)
    end_col = byte_col(line, raw.range['end'].character, enc)
  elseif raw.range then
    return nil -- multi-line ranges are not rendered here
  end
  return { raw = raw, text = text, row = row, col = col, tail = #line - math.max(end_col, req_col) }
end

local function cancel(buf)
  local s = state[buf]
  if s and s.request_id then
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      lsp.cancel(client, s.request_id)
    end
    s.request_id = nil
  end
end

local function request(buf, kind)
  local s = state[buf]
  if not s or buf ~= api.nvim_get_current_buf() or not in_insert() then
    return
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not client then
    return
  end
  cancel(buf)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = kind }
  local enc = client.offset_encoding
  local id
  local ok, rid = lsp.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if state[buf] ~= s or s.request_id ~= id then
      return -- detached or superseded
    end
    s.request_id = nil
    if err or not result then
      return
    end
    local items = {}
    for _, raw in ipairs(result.items or result) do
      local item = normalize(raw, buf, enc, row, col)
      if item then
        table.insert(items, item)
      end
    end
    if #items == 0 then
      if kind == TRIGGER_AUTOMATIC then
        drop(buf)
      end
      return
    end
    s.items, s.index = items, 1
    render(buf)
  end, buf)
  if ok then
    id = rid
    s.request_id = rid
  end
end

local function schedule_request(buf)
  local s = state[buf]
  if not s then
    return
  end
  s.timer:stop()
  s.timer:start(
    opts.debounce_ms,
    0,
    vim.schedule_wrap(function()
      request(buf, TRIGGER_AUTOMATIC)
    end)
  )
end

-- Public -----------------------------------------------------------------------------------------

---@param o codingplan.Options
function M.setup(o)
  opts = o.ghost
  api.nvim_set_hl(0, 'CodingplanGhost', { link = M.native and 'ComplHint' or 'Comment', default = true })
end

--- attach turns ghost text on for buf, served by client.
function M.attach(buf, client)
  if not opts.enabled then
    return
  end
  if M.native then
    vim.lsp.inline_completion.enable(true, { bufnr = buf })
    return
  end
  if state[buf] then
    return
  end
  local s = {
    client_id = client.id,
    timer = vim.uv.new_timer(),
    augroup = api.nvim_create_augroup('codingplan.ghost.' .. buf, { clear = true }),
  }
  state[buf] = s
  api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI', 'InsertEnter' }, {
    group = s.augroup,
    buffer = buf,
    desc = 'codingplan: ask for ghost text',
    callback = function()
      cancel(buf)
      render(buf) -- keeps a suggestion the typing matches
      schedule_request(buf)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = s.augroup,
    buffer = buf,
    desc = 'codingplan: hide ghost text',
    callback = function()
      s.timer:stop()
      cancel(buf)
      drop(buf)
    end,
  })
end

--- detach turns ghost text off for buf.
function M.detach(buf)
  if M.native then
    if api.nvim_buf_is_valid(buf) then
      pcall(vim.lsp.inline_completion.enable, false, { bufnr = buf })
    end
    return
  end
  local s = state[buf]
  if not s then
    return
  end
  cancel(buf)
  drop(buf)
  s.timer:stop()
  s.timer:close()
  pcall(api.nvim_del_augroup_by_id, s.augroup)
  state[buf] = nil
end

--- teardown turns ghost text off everywhere.
function M.teardown()
  for buf in pairs(state) do
    M.detach(buf)
  end
end

local function native_ns()
  return api.nvim_get_namespaces()['nvim.lsp.inline_completion']
end

--- visible tells whether a suggestion is shown in buf (default: current).
---@param buf integer|nil
---@return boolean
function M.visible(buf)
  buf = buf or api.nvim_get_current_buf()
  if M.native then
    local ns = native_ns()
    return ns ~= nil and #api.nvim_buf_get_extmarks(buf, ns, 0, -1, { limit = 1 }) > 0
  end
  return state[buf] ~= nil and state[buf].shown ~= nil
end

--- text returns the suggestion shown in buf as it would be inserted (nil when none).
---@param buf integer|nil
---@return string|nil
function M.text(buf)
  buf = buf or api.nvim_get_current_buf()
  if M.native then
    local ns = native_ns()
    if not ns then
      return nil
    end
    local marks = api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })
    if #marks == 0 then
      return nil
    end
    local d = marks[1][4]
    local parts = {}
    for _, chunk in ipairs(d.virt_text or {}) do
      table.insert(parts, chunk[1])
    end
    local lines = { table.concat(parts) }
    for _, vl in ipairs(d.virt_lines or {}) do
      local l = {}
      for _, chunk in ipairs(vl) do
        table.insert(l, chunk[1])
      end
      table.insert(lines, table.concat(l))
    end
    return table.concat(lines, '\n')
  end
  local s = state[buf]
  return s and s.shown and s.shown.ghost or nil
end

-- native_partial accepts part of the built-in suggestion: pick(ghost) says how much.
local function native_partial(buf, pick)
  return vim.lsp.inline_completion.get({
    bufnr = buf,
    on_accept = function(item)
      local text = type(item.insert_text) == 'string' and item.insert_text or item.insert_text.value
      local cursor = api.nvim_win_get_cursor(0)
      local row, col = cursor[1] - 1, cursor[2]
      local srow, scol = row, col
      if item.range then
        srow, scol = item.range:to_extmark()
      end
      local typed = ''
      if srow == row and scol <= col then
        typed = (api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''):sub(scol + 1, col)
      end
      if text:sub(1, #typed) ~= typed then
        return nil
      end
      local piece = pick(text:sub(#typed + 1))
      insert_at_cursor(buf, piece)
      local client = vim.lsp.get_client_by_id(item.client_id)
      notify_partial(client, { insertText = text, command = item.command }, typed .. piece)
      -- Returning nil: the buffer was changed here, and the item's command (accepting the
      -- whole suggestion) must not run for a part of it.
      return nil
    end,
  })
end

-- own_accept accepts the shown suggestion (0.10/0.11): all of it, or pick(ghost) of it.
local function own_accept(buf, pick)
  local s = state[buf]
  local item = current_item(s)
  if not item or not s.shown then
    return false
  end
  local shown = s.shown
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not pick then
    cancel(buf)
    drop(buf)
    insert_at_cursor(buf, shown.ghost, shown.end_col)
    local cmd = item.raw.command
    if client and cmd then
      lsp.request(client, 'workspace/executeCommand', { command = cmd.command, arguments = cmd.arguments }, function() end, buf)
    end
    return true
  end
  local piece = pick(shown.ghost)
  insert_at_cursor(buf, piece)
  notify_partial(client, item.raw, shown.typed .. piece)
  render(buf) -- the rest stays shown; TextChangedI asks again after the debounce
  return true
end

--- accept inserts the whole suggestion; false when none is shown.
---@return boolean
function M.accept()
  local buf = api.nvim_get_current_buf()
  if M.native then
    return vim.lsp.inline_completion.get({ bufnr = buf })
  end
  return own_accept(buf, nil)
end

--- accept_word inserts the suggestion's next word.
---@return boolean
function M.accept_word()
  local buf = api.nvim_get_current_buf()
  if M.native then
    return native_partial(buf, M.first_word)
  end
  return own_accept(buf, M.first_word)
end

--- accept_line inserts the rest of the suggestion's current line.
---@return boolean
function M.accept_line()
  local buf = api.nvim_get_current_buf()
  if M.native then
    return native_partial(buf, M.first_line)
  end
  return own_accept(buf, M.first_line)
end

--- cycle shows the next (delta 1) or previous (-1) suggestion, asking for more when only one
--- is known.
---@param delta integer
function M.cycle(delta)
  local buf = api.nvim_get_current_buf()
  if M.native then
    vim.lsp.inline_completion.select({ bufnr = buf, count = delta })
    return
  end
  local s = state[buf]
  if not s then
    return
  end
  if s.items and #s.items > 1 then
    s.index = (s.index - 1 + delta) % #s.items + 1
    render(buf)
  else
    request(buf, TRIGGER_INVOKED)
  end
end

--- dismiss hides the suggestion until the next keystroke.
function M.dismiss()
  local buf = api.nvim_get_current_buf()
  if M.native then
    -- The built-in has no dismiss: turning it off and on drops its current item.
    if vim.lsp.inline_completion.is_enabled({ bufnr = buf }) then
      vim.lsp.inline_completion.enable(false, { bufnr = buf })
      vim.lsp.inline_completion.enable(true, { bufnr = buf })
    end
    return
  end
  local s = state[buf]
  if s then
    s.timer:stop()
    cancel(buf)
    drop(buf)
  end
end

return M
