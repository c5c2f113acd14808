-- The ghost-text renderer for Neovim 0.12+: the built-in vim.lsp.inline_completion asks, shows
-- and accepts; this module turns it on per buffer and adds accept word/line on top of
-- vim.lsp.inline_completion.get(). codingplan.ghost calls it; ghost/extmark.lua has the same
-- functions.
local edit = require('codingplan.ghost.edit')

local M = {}

local api = vim.api

local TRIGGER_INVOKED = 1

-- completor returns the built-in's state for buf: a private table of vim.lsp.inline_completion
-- (its request and count_items methods, its current item), read defensively; nil when it is
-- not there or not shaped as in 0.12.
local function completor(buf)
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local class = ok and type(capability.all) == 'table' and capability.all.inline_completion
  local c = class and type(class.active) == 'table' and class.active[buf]
  if c and type(c.request) == 'function' and type(c.count_items) == 'function' then
    return c
  end
  return nil
end

local function ns()
  return api.nvim_get_namespaces()['nvim.lsp.inline_completion']
end

--- setup: the built-in has no options of ours (it debounces and highlights by itself).
function M.setup(_) end

--- attach turns the built-in inline completion on for buf.
function M.attach(buf, _)
  vim.lsp.inline_completion.enable(true, { bufnr = buf })
end

--- detach turns it off for buf.
function M.detach(buf)
  if api.nvim_buf_is_valid(buf) then
    pcall(vim.lsp.inline_completion.enable, false, { bufnr = buf })
  end
end

--- teardown: nothing of ours to undo; stopping the client detaches the buffers.
function M.teardown() end

--- visible tells whether the built-in shows a suggestion in buf.
function M.visible(buf)
  local id = ns()
  return id ~= nil and #api.nvim_buf_get_extmarks(buf, id, 0, -1, { limit = 1 }) > 0
end

--- text returns the suggestion shown in buf as it would be inserted (nil when none).
function M.text(buf)
  local id = ns()
  if not id then
    return nil
  end
  local marks = api.nvim_buf_get_extmarks(buf, id, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local d = marks[1][4]
  local parts = {}
  for _, chunk in ipairs(d.virt_text or {}) do
    if chunk[2] ~= 'ComplHintMore' then -- the " (2/3)" that select() appends
      table.insert(parts, chunk[1])
    end
  end
  local lines = { table.concat(parts) }
  for _, vl in ipairs(d.virt_lines or {}) do
    local l = {}
    for _, chunk in ipairs(vl) do
      if chunk[2] ~= 'ComplHintMore' then
        table.insert(l, chunk[1])
      end
    end
    table.insert(lines, table.concat(l))
  end
  return table.concat(lines, '\n')
end

--- accept inserts the whole suggestion shown in buf; false when none is shown.
function M.accept(buf)
  return vim.lsp.inline_completion.get({ bufnr = buf })
end

--- accept_part inserts pick(ghost) of the suggestion shown in buf; false when none is shown.
---@param pick fun(ghost: string): string
function M.accept_part(buf, pick)
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
      edit.insert_at_cursor(buf, piece)
      local client = vim.lsp.get_client_by_id(item.client_id)
      edit.notify_partial(client, { insertText = text, command = item.command }, typed .. piece)
      -- Returning nil: the buffer was changed here, and the item's command (accepting the
      -- whole suggestion) must not run for a part of it.
      return nil
    end,
  })
end

--- cycle shows the next (delta 1) or previous (-1) suggestion. With at most one known, it asks
--- for more instead: an invoked request (the built-in only ever sends automatic ones), whose
--- answer the built-in shows from its first item.
function M.cycle(buf, delta)
  local c = completor(buf)
  if c and c:count_items() <= 1 then
    c:request(TRIGGER_INVOKED)
    return
  end
  vim.lsp.inline_completion.select({ bufnr = buf, count = delta })
end

--- trigger asks for a suggestion now (an invoked request), as in manual mode (the automatic
--- setting off), where the built-in's automatic requests get none.
function M.trigger(buf)
  local c = completor(buf)
  if c then
    c:request(TRIGGER_INVOKED)
  end
end

--- index returns which suggestion is shown in buf and how many are known, or nil.
function M.index(buf)
  local c = completor(buf)
  if c and c.current and c.current._index then
    return c.current._index, c:count_items()
  end
  return nil
end

--- dismiss hides the suggestion in buf until the next keystroke.
function M.dismiss(buf)
  -- The built-in has no dismiss: turning it off and on drops its current item.
  if vim.lsp.inline_completion.is_enabled({ bufnr = buf }) then
    vim.lsp.inline_completion.enable(false, { bufnr = buf })
    vim.lsp.inline_completion.enable(true, { bufnr = buf })
  end
end

return M
