;;; e2e-emacs.el --- docs/editors.md's eglot setup against the real codingplan-lsp  -*- lexical-binding: t -*-
;;
;; Run by scripts/e2e.sh:  emacs --batch -Q -l scripts/e2e-emacs.el
;; with CODINGPLAN_E2E_LSP, CODINGPLAN_E2E_BACKEND_URL, CODINGPLAN_E2E_EMACS_TOKEN and
;; CODINGPLAN_E2E_EXPECT set. It configures eglot as the documentation says, opens a Go file,
;; checks that the server reports ready, that completion at point offers and inserts the
;; suggestion, and that a code action ("Write tests", run through the codingplan.runAction command
;; since this eglot does not resolve code actions) applies its edit. Prints "N passed, N failed".

(require 'package)
;; Debian's elpa-eglot (and its newer project, xref) live in site-lisp/elpa, which -Q skips.
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)
(require 'eglot)
(require 'cl-lib)

(defvar e2e-passed 0)
(defvar e2e-failed 0)
(defvar e2e-status nil "The last codingplan/status notification's state.")

(defun e2e-env (name)
  (let ((v (getenv name)))
    (if (and v (not (string-empty-p v))) v
      (princ (format "%s is not set (run make test-e2e)\n" name))
      (kill-emacs 2))))

(defun e2e-wait (what pred &optional seconds)
  "Process events until PRED returns non-nil, or fail after SECONDS (default 30)."
  (let ((end (+ (float-time) (or seconds 30))))
    (while (and (not (funcall pred)) (< (float-time) end))
      (accept-process-output nil 0.05))
    (or (funcall pred) (error "Timed out waiting for %s" what))))

(defmacro e2e-case (name &rest body)
  (declare (indent 1))
  `(condition-case err
       (let ((start (float-time)))
         ,@body
         (setq e2e-passed (1+ e2e-passed))
         (princ (format "ok   %s (%.0f ms)\n" ,name (* 1000 (- (float-time) start)))))
     (error
      (setq e2e-failed (1+ e2e-failed))
      (princ (format "FAIL %s: %s\n" ,name (error-message-string err))))))

(cl-defmethod eglot-handle-notification
  (_server (_method (eql codingplan/status)) &key state &allow-other-keys)
  (setq e2e-status state))

(let* ((lsp (e2e-env "CODINGPLAN_E2E_LSP"))
       (url (e2e-env "CODINGPLAN_E2E_BACKEND_URL"))
       (token (e2e-env "CODINGPLAN_E2E_EMACS_TOKEN"))
       (expect (e2e-env "CODINGPLAN_E2E_EXPECT"))
       (dir (make-temp-file "codingplan-emacs-e2e-" t))
       (file (expand-file-name "main.go" dir)))
  ;; A stand-in major mode: Emacs 28 has no Go mode, and eglot names the language after the mode.
  (define-derived-mode go-mode prog-mode "Go")
  ;; The configuration from docs/editors.md, with the token from the environment.
  (setenv "CODINGPLAN_TOKEN" token)
  ;; Eglot asks before applying an edit the server sends; nobody answers in batch mode.
  (setq eglot-confirm-server-initiated-edits nil)
  (add-to-list 'eglot-server-programs
               `(go-mode . (,lsp "--stdio"
                                 :initializationOptions (:codingplan (:backendUrl ,url)))))
  (with-temp-file (expand-file-name "go.mod" dir) (insert "module example.com/e2e\n\ngo 1.22\n"))
  (with-temp-file file (insert "package main\n\nimport \"fmt\"\n\nfunc main() {\n\t\n}\n"))
  (find-file file)
  (go-mode)
  (setq-local indent-tabs-mode t)

  (e2e-case "eglot connects and the server reports ready"
    (apply #'eglot (eglot--guess-contact))
    (e2e-wait "eglot to connect" #'eglot-current-server)
    (e2e-wait "status ready" (lambda () (equal e2e-status "ready"))))

  (e2e-case "completion at point offers and inserts the suggestion"
    (goto-char (point-min))
    (forward-line 5)
    (end-of-line)
    (insert "fmt.Pr")
    (let* ((capf (eglot-completion-at-point))
           (table (nth 2 capf))
           (cands (all-completions "" table)))
      (unless (cl-some (lambda (c) (string-match-p (regexp-quote expect) (concat "fmt.Pr" c)))
                       (append cands (mapcar (lambda (c) (substring-no-properties c)) cands)))
        (error "No candidate completes to %S: %S" expect cands)))
    (completion-at-point)
    (let ((line (buffer-substring (line-beginning-position) (line-end-position))))
      (unless (string= line (concat "\tfmt.Pr" expect))
        (error "Line 6 is %S" line))))

  (e2e-case "a code action applies its edit"
    (let* ((before (buffer-string))
           (count (lambda (s) (cl-loop with i = 0 while (string-match (regexp-quote expect) s i)
                                       count t do (setq i (match-end 0)))))
           (n (funcall count before))
           (beg (progn (goto-char (point-min)) (forward-line 4) (point)))
           (end (progn (forward-line 3) (point))))
      (eglot-code-actions beg end "refactor.codingplan.tests" t)
      (e2e-wait "the edit" (lambda () (> (funcall count (buffer-string)) n)))))

  (ignore-errors (eglot-shutdown (eglot-current-server)))
  (set-buffer-modified-p nil)
  (delete-directory dir t)
  (princ (format "%d passed, %d failed\n" e2e-passed e2e-failed))
  (kill-emacs (if (> e2e-failed 0) 1 0)))
