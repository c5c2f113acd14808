-- A focused floating window over a scratch buffer, closed with keys: what the code action
-- preview and the Explain answer are shown in.
local M = {}

--- open shows lines in a float titled title, with filetype ft. keys maps a key to a function
--- called (once, with the float closed first) when it is pressed; on_close runs when the float
--- goes any other way (:q, another window's command), with no key.
---@param lines string[]
---@param opts { title: string, filetype: string, keys: table<string, fun()>, on_close: fun()|nil }
---@return integer win, integer buf
function M.open(lines, opts)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].bufhidden = 'wipe'
  -- A filetype plugin may fail (0.12's markdown one without its treesitter parser): the text
  -- still shows.
  pcall(function()
    vim.bo[buf].filetype = opts.filetype
  end)
  vim.bo[buf].modifiable = false
  local width = 20
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l))
  end
  width = math.min(width + 2, math.max(20, math.floor(vim.o.columns * 0.9)))
  local height = math.min(math.max(#lines, 1), math.max(3, math.floor((vim.o.lines - 2) * 0.8)))
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor',
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    width = width,
    height = height,
    border = 'rounded',
    style = 'minimal',
    title = ' ' .. opts.title .. ' ',
    title_pos = 'center',
  })
  vim.wo[win].wrap = true
  local done = false
  local function finish(f)
    if done then
      return
    end
    done = true
    if vim.api.nvim_win_is_valid(win) then
      vim.api.nvim_win_close(win, true)
    end
    if f then
      f()
    end
  end
  for key, f in pairs(opts.keys) do
    vim.keymap.set('n', key, function()
      finish(f)
    end, { buffer = buf, nowait = true, desc = 'codingplan: ' .. opts.title })
  end
  vim.api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      vim.schedule(function()
        finish(opts.on_close)
      end)
    end,
  })
  return win, buf
end

return M
