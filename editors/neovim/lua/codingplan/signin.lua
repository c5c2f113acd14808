-- The device sign-in's side in Neovim: the server's window/showMessageRequest carrying the code
-- (lspx.DeviceAction, docs/editors.md "Signing in") is shown in a float, the code copied to the
-- clipboard and the page opened with vim.ui.open; the request is answered at once with the
-- action and opened = true, so the server does not open the page a second time.
local M = {}

M.copy_and_open = 'Copy code and open'

-- The last code shown: { code = 'WDJB-MJHT', uri = 'http://...', opened = bool }, for tests and
-- the statusline.
M.last = nil

local float_win = nil

--- close closes the float showing the code, if it is open.
function M.close()
  if float_win and vim.api.nvim_win_is_valid(float_win) then
    vim.api.nvim_win_close(float_win, true)
  end
  float_win = nil
end

local function show_float(lines)
  M.close()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].bufhidden = 'wipe'
  local width = 0
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l))
  end
  float_win = vim.api.nvim_open_win(buf, false, {
    relative = 'editor',
    row = 1,
    col = math.max(0, vim.o.columns - width - 4),
    width = width,
    height = #lines,
    style = 'minimal',
    border = 'rounded',
    title = ' codingplan ',
    noautocmd = true,
  })
end

--- open opens uri in the browser (vim.ui.open, Neovim 0.10+); it reports whether it tried.
local function open(uri)
  if not vim.ui.open then
    return false
  end
  local ok = pcall(vim.ui.open, uri)
  return ok
end

--- handler is the client's window/showMessageRequest handler.
function M.handler(err, params, ctx, cfg)
  local action = params and params.actions and params.actions[1]
  if type(action) == 'table' and action.title == M.copy_and_open and action.userCode then
    pcall(vim.fn.setreg, '+', action.userCode)
    show_float({
      'Sign in: enter the code',
      '',
      '    ' .. action.userCode,
      '',
      'at ' .. (action.uri or ''),
      '(copied; the page opens in your browser)',
    })
    local opened = open(action.uri)
    M.last = { code = action.userCode, uri = action.uri, opened = opened }
    return { title = action.title, opened = opened }
  end
  if type(action) == 'table' and action.title == 'Sign in' then
    -- A sign-in stopped working: say so once, without a blocking prompt.
    vim.notify((params.message or 'codingplan: sign in again') .. ' (:Codingplan signin)', vim.log.levels.WARN)
    return vim.NIL
  end
  return vim.lsp.handlers['window/showMessageRequest'](err, params, ctx, cfg)
end

return M
