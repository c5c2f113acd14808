-- Defines :Codingplan only; everything else starts with require('codingplan').setup().
if vim.g.loaded_codingplan then
  return
end
vim.g.loaded_codingplan = true

vim.api.nvim_create_user_command('Codingplan', function(cmd)
  require('codingplan.commands').run(cmd.fargs[1])
end, {
  nargs = '?',
  desc = 'codingplan: signin | token | signout | status | toggle | cancel',
  complete = function(arg)
    return vim.tbl_filter(function(s)
      return vim.startswith(s, arg)
    end, { 'signin', 'token', 'signout', 'status', 'toggle', 'cancel' })
  end,
})
