-- The ghost-text renderer for Neovim 0.10/0.11, which have no built-in inline completion: it
-- asks textDocument/inlineCompletion after a short debounce on TextChangedI/CursorMovedI,
-- cancels the request a newer keystroke supersedes, keeps showing a suggestion while what is
-- typed matches it, and renders it with extmarks (inline virt_text for the first line,
-- virt_lines for the rest). codingplan.ghost calls it; ghost/native.lua has the same functions.
local edit = require('codingplan.ghost.edit')
local lsp = require('codingplan.lsp')

local M = {}

M.ns = vim.api.nvim_create_namespace('codingplan.ghost')

local api = vim.api
local opts = { debounce_ms = 75, hl_group = 'CodingplanGhost' }

local TRIGGER_INVOKED = 1
local TRIGGER_AUTOMATIC = 2

-- Per-buffer state: augroup, timer, client_id, request_id, items, index, shown.
local state = {}

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

local function insert_text(item)
  local t = item.insertText
  if type(t) == 'table' then
    -- A snippet: keep the placeholders' text, drop tab stops.
    t = (t.value or ''):gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', '')
  end
  return type(t) == 'string' and t or nil
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

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

--- setup takes the ghost options (debounce_ms, hl_group).
---@param o { debounce_ms: integer, hl_group: string }
function M.setup(o)
  opts = o
end

--- attach asks for and shows ghost text in buf, served by client.
function M.attach(buf, client)
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

--- detach stops ghost text in buf and forgets its state.
function M.detach(buf)
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

--- teardown detaches every buffer.
function M.teardown()
  for buf in pairs(state) do
    M.detach(buf)
  end
end

--- visible tells whether a suggestion is shown in buf.
function M.visible(buf)
  return state[buf] ~= nil and state[buf].shown ~= nil
end

--- text returns the suggestion shown in buf as it would be inserted (nil when none).
function M.text(buf)
  local s = state[buf]
  return s and s.shown and s.shown.ghost or nil
end

-- accept inserts the shown suggestion: all of it (pick nil), or pick(ghost) of it.
local function accept(buf, pick)
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
    edit.insert_at_cursor(buf, shown.ghost, shown.end_col)
    local cmd = item.raw.command
    if client and cmd then
      lsp.request(client, 'workspace/executeCommand', { command = cmd.command, arguments = cmd.arguments }, function() end, buf)
    end
    return true
  end
  local piece = pick(shown.ghost)
  edit.insert_at_cursor(buf, piece)
  edit.notify_partial(client, item.raw, shown.typed .. piece)
  render(buf) -- the rest stays shown; TextChangedI asks again after the debounce
  return true
end

--- accept inserts the whole suggestion shown in buf; false when none is shown.
function M.accept(buf)
  return accept(buf, nil)
end

--- accept_part inserts pick(ghost) of the suggestion shown in buf; false when none is shown.
---@param pick fun(ghost: string): string
function M.accept_part(buf, pick)
  return accept(buf, pick)
end

--- cycle shows the next (delta 1) or previous (-1) suggestion, asking for more (an invoked
--- request) when only one is known.
function M.cycle(buf, delta)
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

--- trigger asks for a suggestion now (an invoked request), as in manual mode.
function M.trigger(buf)
  if state[buf] then
    request(buf, TRIGGER_INVOKED)
  end
end

--- index returns which suggestion is shown in buf and how many are known, or nil.
function M.index(buf)
  local s = state[buf]
  if s and s.items and s.shown then
    return s.index, #s.items
  end
  return nil
end

--- dismiss hides the suggestion in buf until the next keystroke.
function M.dismiss(buf)
  local s = state[buf]
  if s then
    s.timer:stop()
    cancel(buf)
    drop(buf)
  end
end

return M
