-- workspace/applyEdit with a preview: an edit whose changes carry codingplan's change
-- annotation (needsConfirmation) is shown as a diff in a float first, and applied, as one
-- change, only when the user accepts it (a or <CR>); r, q or <Esc> discard it, and the server
-- hears applied = false. Other edits go to Neovim's own handler.
local float = require('codingplan.float')

local M = {}

--- ANNOTATION is lspx.AnnotationPreview.
M.ANNOTATION = 'codingplan.preview'

--- keys accept or discard a preview.
M.accept_keys = { 'a', '<CR>' }
M.reject_keys = { 'r', 'q', '<Esc>' }

--- open is the float of the preview being shown, nil when none is.
M.open = nil

local diff = (vim.text and vim.text.diff) or vim.diff

local function annotated(edit)
  local ann = edit.changeAnnotations and edit.changeAnnotations[M.ANNOTATION]
  return ann ~= nil and ann.needsConfirmation == true
end

--- plain returns edit without change annotations, for Neovim's apply_workspace_edit (which
--- would ask again with its own confirm()).
function M.plain(edit)
  local e = vim.deepcopy(edit)
  e.changeAnnotations = nil
  for _, change in ipairs(e.documentChanges or {}) do
    change.annotationId = nil
    for _, te in ipairs(change.edits or {}) do
      te.annotationId = nil
    end
  end
  return e
end

-- current_lines returns what the file of uri holds now: the buffer's lines when it is loaded,
-- else the file's, else none.
local function current_lines(uri)
  local bufnr = vim.uri_to_bufnr(uri)
  if vim.api.nvim_buf_is_loaded(bufnr) then
    return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  end
  local fname = vim.uri_to_fname(uri)
  if vim.fn.filereadable(fname) == 1 then
    return vim.fn.readfile(fname)
  end
  return {}
end

-- applied returns lines with text_edits applied, on a scratch copy.
local function applied(lines, text_edits, encoding)
  local scratch = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(scratch, 0, -1, false, lines)
  vim.lsp.util.apply_text_edits(text_edits, scratch, encoding)
  local out = vim.api.nvim_buf_get_lines(scratch, 0, -1, false)
  vim.api.nvim_buf_delete(scratch, { force = true })
  return out
end

--- diff_lines returns the unified diff of what edit (without annotations) would change.
---@return string[]
function M.diff_lines(edit, encoding)
  edit = M.plain(edit)
  local files, order = {}, {}
  local function file(uri)
    if not files[uri] then
      files[uri] = { edits = {}, created = false }
      table.insert(order, uri)
    end
    return files[uri]
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == 'create' then
      file(change.uri).created = vim.fn.filereadable(vim.uri_to_fname(change.uri)) == 0
    elseif change.textDocument then
      vim.list_extend(file(change.textDocument.uri).edits, change.edits or {})
    end
  end
  for uri, text_edits in pairs(edit.changes or {}) do
    vim.list_extend(file(uri).edits, text_edits)
  end
  local out = {}
  for _, uri in ipairs(order) do
    local f = files[uri]
    local old = f.created and {} or current_lines(uri)
    local new = applied(old, f.edits, encoding)
    local name = vim.fn.fnamemodify(vim.uri_to_fname(uri), ':~:.')
    table.insert(out, (f.created and '--- /dev/null (new file)' or '--- ' .. name))
    table.insert(out, '+++ ' .. name)
    local d = diff(table.concat(old, '\n') .. '\n', table.concat(new, '\n') .. '\n', { result_type = 'unified', ctxlen = 3 })
    vim.list_extend(out, vim.split(vim.trim(d --[[@as string]]), '\n', { plain = true }))
  end
  return out
end

--- show shows the preview of edit titled label and calls decide(true) when the user accepts
--- it, decide(false) when they discard it.
function M.show(edit, label, encoding, decide)
  local keys = {}
  for _, k in ipairs(M.accept_keys) do
    keys[k] = function()
      decide(true)
    end
  end
  for _, k in ipairs(M.reject_keys) do
    keys[k] = function()
      decide(false)
    end
  end
  M.open = float.open(M.diff_lines(edit, encoding), {
    title = (label or 'codingplan') .. ': a apply · r discard',
    filetype = 'diff',
    keys = keys,
    on_close = function()
      decide(false)
    end,
  })
end

--- create_files creates, empty, the files edit's create operations name with ignoreIfExists
--- that do not exist: Neovim's own apply_workspace_edit only adds a buffer for them, where
--- LSP says the file is created unless it exists.
function M.create_files(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    local fname = change.kind == 'create' and vim.uri_to_fname(change.uri)
    if fname and (change.options or {}).ignoreIfExists and not vim.uv.fs_stat(fname) then
      vim.fn.mkdir(vim.fs.dirname(fname), 'p')
      local f = io.open(fname, 'w')
      if f then
        f:close()
      end
    end
  end
end

--- handler replaces Neovim's workspace/applyEdit handler for codingplan's client. The server's
--- request waits for the user's answer: the handler runs in a coroutine (Neovim's RPC layer
--- calls server-request handlers in one), which it yields until the user decides.
function M.handler(err, params, ctx)
  local default = vim.lsp.handlers['workspace/applyEdit']
  local co = coroutine.running()
  if not params or not params.edit or not annotated(params.edit) or not co then
    return default(err, params, ctx)
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or 'utf-16'
  local ok, shown = pcall(M.show, params.edit, params.label, encoding, function(accepted)
    M.open = nil
    vim.schedule(function()
      coroutine.resume(co, accepted)
    end)
  end)
  if not ok then
    vim.notify('codingplan: the preview failed (' .. tostring(shown) .. '); nothing was applied', vim.log.levels.ERROR)
    return { applied = false, failureReason = 'the preview failed' }
  end
  local accepted = coroutine.yield()
  if not accepted then
    return { applied = false, failureReason = 'discarded by the user' }
  end
  M.create_files(params.edit)
  local applied_ok, res = pcall(vim.lsp.util.apply_workspace_edit, M.plain(params.edit), encoding)
  return { applied = applied_ok, failureReason = not applied_ok and tostring(res) or nil }
end

return M
