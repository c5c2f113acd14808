// End-to-end test of the VS Code extension in the real VS Code workbench (code-server), driven by
// playwright-core in Debian's Chromium, against the real codingplan-lsp, backend and test provider.
// scripts/e2e.sh starts the backend and sets the environment:
//
//   CODINGPLAN_E2E_CODE_SERVER   code-server binary (scripts/install-code-server.sh)
//   CODINGPLAN_E2E_VSIX          the package to install (make vsix)
//   CODINGPLAN_E2E_BACKEND_URL   ws://.../v1/ws
//   CODINGPLAN_E2E_TOKEN         a token for a user on a plan with one concurrent stream
//   CODINGPLAN_E2E_EXPECT        what the test provider completes after "fmt.Pr"
//   CODINGPLAN_E2E_CHOICES       every choice it gives when asked for several, a JSON array
//   CODINGPLAN_E2E_LSP           codingplan-lsp, for the second connection that holds the slot
//   CODINGPLAN_E2E_HOLD_MODEL    the model on which the test provider hangs (default "hang")
//   CODINGPLAN_E2E_FAKEPROVIDER  the test provider's URL (its /_events tell when the slot is held)
//   CODINGPLAN_E2E_ARTIFACTS     where screenshots and logs go on failure (default: a temp dir)
//   CODINGPLAN_E2E_ACCOUNTS_URL, _ACCOUNTS_EMAIL, _ACCOUNTS_PASSWORD
//                                the account service and an account on it, for the device sign-in
//   CODINGPLAN_E2E_SIGNIN_BACKEND_URL  a backend that trusts the account service's keys
//   CODINGPLAN_E2E_GHOST_RUNS    measure instead: keystroke-to-ghost-text this many times with the
//                                server CODINGPLAN_E2E_LSP (ghost.mjs; scripts/bench-ghost.sh)
//   CODINGPLAN_E2E_GHOST_BLOCK   the multi-line reply the provider streams then
//   CODINGPLAN_E2E_GHOST_READ_MS how long the user reads the first line before Tab (default 0)
//
// Run with: node --test editors/vscode/test/e2e/vscode.test.mjs

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { measureGhost } from './ghost.mjs';
import { LspProcess } from './lsp.mjs';

const env = (name, fallback) => {
	const v = process.env[name] ?? fallback;
	if (v === undefined || v === '') throw new Error(`${name} is not set (run make test-e2e)`);
	return v;
};

const codeServer = env('CODINGPLAN_E2E_CODE_SERVER');
const vsix = env('CODINGPLAN_E2E_VSIX');
const backendUrl = env('CODINGPLAN_E2E_BACKEND_URL');
const token = env('CODINGPLAN_E2E_TOKEN');
const expect = env('CODINGPLAN_E2E_EXPECT');
const choices = JSON.parse(process.env.CODINGPLAN_E2E_CHOICES || '[]');
const lspBin = process.env.CODINGPLAN_E2E_LSP ?? '';
const holdModel = process.env.CODINGPLAN_E2E_HOLD_MODEL || 'hang';
const fakeProvider = process.env.CODINGPLAN_E2E_FAKEPROVIDER ?? '';
const accountsUrl = process.env.CODINGPLAN_E2E_ACCOUNTS_URL ?? '';
const accountsEmail = process.env.CODINGPLAN_E2E_ACCOUNTS_EMAIL ?? '';
const accountsPassword = process.env.CODINGPLAN_E2E_ACCOUNTS_PASSWORD ?? '';
const signinBackendUrl = process.env.CODINGPLAN_E2E_SIGNIN_BACKEND_URL ?? '';
const chromiumPath = process.env.CODINGPLAN_E2E_CHROMIUM || '/usr/bin/chromium';
const ghostRuns = Number(process.env.CODINGPLAN_E2E_GHOST_RUNS || 0);

// Every wait ends on what it waits for; these bounds only turn a hang into a failure.
const LOAD_TIMEOUT = 90_000;
const WAIT = 30_000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'codingplan-vscode-e2e-'));
const artifacts = process.env.CODINGPLAN_E2E_ARTIFACTS || path.join(tmp, 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const dirs = {
	home: path.join(tmp, 'home'),
	userData: path.join(tmp, 'user-data'),
	extensions: path.join(tmp, 'extensions'),
	workspace: path.join(tmp, 'workspace'),
	browser: path.join(tmp, 'browser'),
};
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
const mainGo = path.join(dirs.workspace, 'main.go');

let server; // code-server child (own process group)
let serverLog = '';
let browser; // a persistent browser context
let page;
let failed = false;
const timings = {};

function childEnv(extra = {}) {
	return {
		PATH: process.env.PATH,
		HOME: dirs.home,
		XDG_CONFIG_HOME: path.join(dirs.home, '.config'),
		XDG_DATA_HOME: path.join(dirs.home, '.local/share'),
		XDG_CACHE_HOME: path.join(dirs.home, '.cache'),
		XDG_STATE_HOME: path.join(dirs.home, '.local/state'),
		TMPDIR: tmp,
		LANG: 'C.UTF-8',
		...extra,
	};
}

async function freePort() {
	const srv = net.createServer();
	srv.listen(0, '127.0.0.1');
	await once(srv, 'listening');
	const { port } = srv.address();
	srv.close();
	await once(srv, 'close');
	return port;
}

/** poll calls f until it returns a truthy value or the deadline passes; returns that value. */
async function poll(what, f, timeout = WAIT, every = 50) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		try {
			last = await f();
			if (last) return last;
		} catch (err) {
			last = err;
		}
		if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
		await new Promise((r) => setTimeout(r, every));
	}
}

async function statusLabel() {
	return page.evaluate(() => {
		for (const el of document.querySelectorAll('.statusbar [aria-label]')) {
			const label = el.getAttribute('aria-label');
			if (label.startsWith('codingplan: ')) return label;
		}
		return '';
	});
}

async function waitStatus(label, timeout = WAIT) {
	return poll(`status bar "codingplan: ${label}"`, async () => (await statusLabel()) === `codingplan: ${label}`, timeout);
}

async function ghostText() {
	return page.evaluate(() =>
		[...document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')]
			.map((e) => e.textContent)
			.join(''),
	);
}

async function runCommand(title) {
	await page.keyboard.press('F1');
	const input = page.locator('.quick-input-widget input');
	await input.waitFor({ state: 'visible', timeout: WAIT });
	await input.fill(`>${title}`);
	await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: WAIT });
	await page.keyboard.press('Enter');
}

/** openFile opens NAME of the workspace with Quick Open and waits for its editor. */
async function openFile(name) {
	// From the Explorer, whose rows stay put: Quick Open matches loosely ("main.go" matches
	// main_test.go), ranks recent files first and re-sorts its rows while they are clicked.
	const row = page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${name.replace('.', '\\.')}$`) }) }).first();
	await row.waitFor({ state: 'visible', timeout: WAIT });
	await row.click();
	await page.locator('.editor-group-container.active .tab.active', { hasText: name }).first().waitFor({ timeout: WAIT });
	await page.locator('.editor-group-container.active .monaco-editor textarea').first().focus();
	await page.locator('.editor-group-container.active .tab.active', { hasText: name }).first().waitFor({ timeout: WAIT });
}

/** lightBulbAction selects N lines from line FROM and picks the light bulb's action matching re. */
async function lightBulbAction(re, from, n) {
	await page.keyboard.press('Control+G');
	await page.keyboard.type(String(from));
	await page.keyboard.press('Enter');
	await page.keyboard.press('Home');
	await page.keyboard.press('Home'); // past the indentation, to the column 1
	for (let i = 1; i < n; i++) await page.keyboard.press('Shift+ArrowDown');
	await page.keyboard.press('Shift+End');
	const bulb = page.locator('.lightBulbWidget, .monaco-editor .codicon-light-bulb, .monaco-editor .codicon-lightbulb-sparkle').first();
	await bulb.waitFor({ state: 'visible', timeout: WAIT });
	await bulb.click();
	const row = page.locator('.action-widget .monaco-list-row', { hasText: re }).first();
	await row.waitFor({ state: 'visible', timeout: WAIT });
	// The list takes keys (a click can land on the menu's pointer block): move the focus to the
	// action, then Enter.
	const focused = page.locator('.action-widget .monaco-list-row.focused');
	for (let i = 0; i < 20 && !re.test((await focused.textContent().catch(() => '')) ?? ''); i++) {
		await page.keyboard.press('ArrowDown');
	}
	await page.keyboard.press('Enter');
}

/**
 * applyPreview applies the Refactor Preview showing FILE: VS Code lists edits that need
 * confirmation unchecked, so the user ticks the file (all of its changes), then Apply.
 */
async function applyPreview(file) {
	const panel = page.locator('.bulk-edit-panel', { hasText: file }).first();
	await panel.waitFor({ state: 'visible', timeout: WAIT });
	const box = panel.locator('.monaco-list-row', { hasText: file }).first().locator('input.edit-checkbox');
	await box.click();
	await poll('the changes ticked', async () => {
		const boxes = await panel.locator('input.edit-checkbox').evaluateAll((els) => els.map((e) => e.checked));
		return boxes.length > 0 && boxes.every(Boolean);
	});
	// The panel's Apply button (its command is not in the command palette).
	await page.locator('.monaco-button', { hasText: /^Apply$/ }).first().click();
	await panel.waitFor({ state: 'hidden', timeout: WAIT });
}

/** screenshot saves the page as NAME.png in the artifacts dir. */
async function screenshot(name) {
	if (!page) return;
	const file = path.join(artifacts, `${name}.png`);
	await page.screenshot({ path: file }).catch(() => {});
	return file;
}

/** step runs one part, f(subtest); a failure keeps a screenshot and the logs. */
async function step(t, name, f) {
	await t.test(name, async (st) => {
		const start = Date.now();
		try {
			await f(st);
			timings[name] = Date.now() - start;
		} catch (err) {
			failed = true;
			const shot = await screenshot(name.replace(/\W+/g, '-'));
			console.error(`vscode e2e: "${name}" failed; screenshot ${shot}`);
			throw err;
		}
	});
}

before(async () => {
	try {
		await setUp();
	} catch (err) {
		failed = true;
		console.error(`vscode e2e: setup failed; screenshot ${await screenshot('setup')}`);
		throw err;
	}
});

async function setUp() {
	fs.writeFileSync(path.join(dirs.workspace, 'go.mod'), 'module example.com/e2e\n\ngo 1.22\n');
	fs.writeFileSync(mainGo, 'package main\n\nimport "fmt"\n\nfunc main() {\n\t\n}\n');
	if (ghostRuns) {
		// The server under measurement; serverPath is machine-scoped: code-server's Machine settings.
		const machineDir = path.join(dirs.userData, 'Machine');
		fs.mkdirSync(machineDir, { recursive: true });
		fs.writeFileSync(path.join(machineDir, 'settings.json'), JSON.stringify({ 'codingplan.serverPath': env('CODINGPLAN_E2E_LSP') }));
	}
	const userDir = path.join(dirs.userData, 'User');
	fs.mkdirSync(userDir, { recursive: true });
	fs.writeFileSync(
		path.join(userDir, 'settings.json'),
		JSON.stringify(
			{
				'telemetry.telemetryLevel': 'off',
				'update.mode': 'none',
				'extensions.autoUpdate': false,
				'extensions.autoCheckUpdates': false,
				'chat.disableAIFeatures': true,
				'security.workspace.trust.enabled': false,
				'workbench.startupEditor': 'none',
				'workbench.tips.enabled': false,
				'workbench.enableExperiments': false,
				'editor.inlineSuggest.enabled': true,
				// The suggest widget would take Tab: this test is about ghost text.
				'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
				'editor.suggestOnTriggerCharacters': false,
				'files.autoSave': 'off',
				'codingplan.backendUrl': backendUrl,
			},
			null,
			2,
		),
	);

	// codingplan.backendUrl is machine-scoped: in code-server's remote window the value that
	// counts is the remote machine's (the Settings editor's Remote tab), not the user's.
	const machineDir = path.join(dirs.userData, 'Machine');
	fs.mkdirSync(machineDir, { recursive: true });
	fs.writeFileSync(path.join(machineDir, 'settings.json'), JSON.stringify({ 'codingplan.backendUrl': backendUrl }, null, 2));

	let start = Date.now();
	await promisify(execFile)(
		codeServer,
		['--install-extension', vsix, '--extensions-dir', dirs.extensions, '--user-data-dir', dirs.userData],
		{ env: childEnv() },
	);
	timings['install extension'] = Date.now() - start;

	start = Date.now();
	const port = await freePort();
	const closed = await freePort(); // nothing listens here: the gallery is unreachable on purpose
	server = spawn(
		codeServer,
		[
			'--bind-addr', `127.0.0.1:${port}`,
			'--auth', 'none',
			'--disable-telemetry',
			'--disable-update-check',
			'--disable-workspace-trust',
			'--user-data-dir', dirs.userData,
			'--extensions-dir', dirs.extensions,
			dirs.workspace,
		],
		{
			env: childEnv({ EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: `http://127.0.0.1:${closed}/` }) }),
			detached: true, // its own process group: extension hosts outlive the browser
			stdio: ['ignore', 'pipe', 'pipe'],
		},
	);
	const collect = (d) => {
		serverLog = (serverLog + d.toString()).slice(-65536);
	};
	server.stdout.on('data', collect);
	server.stderr.on('data', collect);
	await poll('code-server to listen', () => serverLog.includes('HTTP server listening'), LOAD_TIMEOUT);

	browser = await chromium.launchPersistentContext(dirs.browser, {
		executablePath: chromiumPath,
		headless: true,
		viewport: { width: 1400, height: 900 },
		args: [
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
		],
	});
	page = browser.pages()[0] ?? (await browser.newPage());
	await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`);
	await page.locator('.monaco-workbench').waitFor({ timeout: LOAD_TIMEOUT });
	await poll('the codingplan status bar item', statusLabel, LOAD_TIMEOUT);
	timings['workbench load'] = Date.now() - start;
}

after(async () => {
	await browser?.close().catch(() => {});
	if (server?.pid) {
		try {
			process.kill(-server.pid, 'SIGTERM');
		} catch {}
		await Promise.race([once(server, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
		try {
			process.kill(-server.pid, 'SIGKILL');
		} catch {}
	}
	if (failed) {
		fs.writeFileSync(path.join(artifacts, 'code-server.log'), serverLog);
		// The extension's output channel: the client's and the server's stderr.
		const logs = path.join(dirs.userData, 'logs');
		if (fs.existsSync(logs)) fs.cpSync(logs, path.join(artifacts, 'vscode-logs'), { recursive: true });
		console.error(`vscode e2e: artifacts in ${artifacts}`);
	}
	console.log(`vscode e2e timings (ms): ${JSON.stringify(timings)}`);
	if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
});

/** selectLines selects from the start of line `from` (1-based) to the end of the line `down` lines below. */
async function selectLines(from, down) {
	await page.keyboard.press('Escape');
	await page.keyboard.press('Control+G');
	await page.keyboard.type(String(from));
	await page.keyboard.press('Enter');
	await page.keyboard.press('Home');
	for (let i = 0; i < down; i++) await page.keyboard.press('Shift+ArrowDown');
	await page.keyboard.press('Shift+End');
}

/**
 * setSetting sets a user setting (key, shown as title) in the Settings editor, as a user would (the settings file is
 * not watched reliably in code-server), then closes the editor. '' clears a text setting.
 */
async function setSetting(key, title, value, { remote = false } = {}) {
	await runCommand('Preferences: Open User Settings');
	await page.locator('.settings-editor').waitFor({ state: 'visible', timeout: WAIT });
	// The search box has the focus; a settings editor opened before may hold an older query, and
	// shows its result until the new one is in: wait for the item titled title.
	await page.keyboard.press('Control+A');
	await page.keyboard.type(key);
	if (remote) {
		// A machine-scoped setting is set on the Remote tab in a remote window (code-server's).
		await page.locator('.settings-editor .settings-tabs-widget .action-label', { hasText: 'Remote' }).first().click();
	}
	const item = page.locator('.settings-editor .setting-item', {
		has: page.locator('.setting-item-label', { hasText: new RegExp(`^${title}$`) }),
	});
	const box = item.locator('.monaco-inputbox input').first();
	await box.waitFor({ state: 'visible', timeout: WAIT });
	await box.click();
	await box.fill(value);
	await page.keyboard.press('Tab');
	// main.go opens from the Explorer, whichever editor has the focus (closing "the" editor here
	// could close main.go and ask to save it).
	await openFile('main.go');
}

/**
 * explicitItems opens text as a document in a codingplan-lsp of its own and returns the items of
 * an explicitly invoked inline completion (triggerKind 1) at position.
 */
async function explicitItems(text, position) {
	const lsp = new LspProcess(lspBin, ['--stdio'], { ...process.env, CODINGPLAN_TOKEN: '' });
	try {
		await lsp.request('initialize', {
			processId: process.pid,
			rootUri: `file://${dirs.workspace}`,
			capabilities: { textDocument: { inlineCompletion: {} } },
			clientInfo: { name: 'codingplan-e2e-probe' },
			initializationOptions: { codingplan: { backendUrl, token } },
		});
		lsp.notify('initialized', {});
		await poll('the probe connection ready', () =>
			lsp.notifications.some((m) => m.method === 'codingplan/status' && m.params?.state === 'ready'),
		);
		const uri = `file://${mainGo}`;
		lsp.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'go', version: 1, text } });
		const result = await lsp.request('textDocument/inlineCompletion', {
			textDocument: { uri },
			position,
			context: { triggerKind: 1 },
		});
		return Array.isArray(result) ? result : (result?.items ?? []);
	} finally {
		if (failed) fs.writeFileSync(path.join(artifacts, 'probe.stderr'), lsp.stderr);
		await lsp.kill();
	}
}

async function signIn() {
	await runCommand('codingplan: Sign In with Token');
	const input = page.locator('.quick-input-widget input[type="password"]');
	await input.waitFor({ state: 'visible', timeout: WAIT });
	await input.fill(token);
	await page.keyboard.press('Enter');
	await waitStatus('ready');
}

async function openMainGo() {
	await openFile('main.go');
	await page.locator('.monaco-editor .view-lines', { hasText: 'package main' }).waitFor({ timeout: WAIT });
}

test('keystroke-to-ghost-text with a streaming model', { skip: !ghostRuns && 'set CODINGPLAN_E2E_GHOST_RUNS (scripts/bench-ghost.sh)' }, async (t) => {
	await step(t, 'sign in', signIn);
	await step(t, 'measure', async () => {
		await openMainGo();
		await measureGhost({ page, poll, runCommand, mainGo, runs: ghostRuns, block: env('CODINGPLAN_E2E_GHOST_BLOCK'),
			readMs: Number(process.env.CODINGPLAN_E2E_GHOST_READ_MS || 0), log: console.log });
	});
});

test('VS Code (code-server) with the codingplan extension', { skip: ghostRuns > 0 && 'measuring (CODINGPLAN_E2E_GHOST_RUNS)' }, async (t) => {
	await step(t, 'sign in with a token through the command and the status bar says ready', signIn);

	await step(t, 'typing shows ghost text and Tab inserts it', async () => {
		await openMainGo();
		// Line 6 is the empty line inside main().
		await page.keyboard.press('Control+G');
		await page.keyboard.type('6');
		await page.keyboard.press('Enter');
		await page.keyboard.press('End');
		await page.keyboard.type('fmt.Pr', { delay: 30 });
		let lastKey = Date.now();
		// Right after load the workbench sometimes does not ask for inline completions on the
		// first keystrokes: retype the last character until it does.
		let retyped = Date.now();
		const ghost = await poll('ghost text', async () => {
			const g = await ghostText();
			if (g) return g;
			if (Date.now() - retyped > 2000) {
				await page.keyboard.press('Backspace');
				await page.keyboard.type('r');
				retyped = lastKey = Date.now();
			}
			return '';
		});
		timings['ghost text after the last keystroke'] = Date.now() - lastKey;
		// Monaco renders spaces in decorations as no-break spaces.
		assert.equal(ghost.replaceAll('\u00a0', ' '), expect, 'the ghost text is not the reply');
		await page.keyboard.press('Tab');
		await page.keyboard.press('Control+S');
		await poll('main.go saved with the completion', () => fs.readFileSync(mainGo, 'utf8').includes(`fmt.Pr${expect}`));
	});

	await step(t, 'Alt+] asks for more suggestions, shows the second, and Tab accepts it', async (st) => {
		// What the server answers to an explicit request on line 6 retyped to "\tfmt.Pr", from a
		// connection of its own before the editor asks (the lite plan has one slot); this answer
		// decides the skip below, until the server returns several suggestions.
		if (!lspBin) throw new Error('CODINGPLAN_E2E_LSP is needed for this step');
		await page.keyboard.press('Control+S');
		await poll('main.go saved', () => fs.readFileSync(mainGo, 'utf8').includes(`fmt.Pr${expect}`));
		const lines = fs.readFileSync(mainGo, 'utf8').split('\n');
		lines[5] = '\tfmt.Pr';
		const items = await explicitItems(lines.join('\n'), { line: 5, character: lines[5].length });
		if (items.length < 2) {
			assert.fail(`explicit inline completion returned ${items.length} item(s), want several`);
		}
		// Each item applied to the line (ASCII: UTF-16 offsets are string offsets).
		const applied = items.map((it) => {
			const text = typeof it.insertText === 'string' ? it.insertText : it.insertText.value;
			const [s, e] = it.range ? [it.range.start.character, it.range.end.character] : [lines[5].length, lines[5].length];
			return lines[5].slice(0, s) + text + lines[5].slice(e);
		});
		assert.equal(new Set(applied).size, applied.length, `the server's suggestions are not distinct: ${JSON.stringify(applied)}`);
		for (const l of applied) {
			if (choices.length) assert.ok(choices.includes(l.replace(/^\tfmt\.Pr/, '')), `suggestion ${JSON.stringify(l)} is none of the provider's choices`);
		}
		const second = applied[1];

		// Line 6 back to "\tfmt.Pr": Shift+Home selects from the end to the first non-blank.
		await page.keyboard.press('Control+G');
		await page.keyboard.type('6');
		await page.keyboard.press('Enter');
		await page.keyboard.press('End');
		await page.keyboard.press('Shift+Home');
		await page.keyboard.type('fmt.Pr', { delay: 30 });
		await poll('ghost text', async () => (await ghostText()).replaceAll('\u00a0', ' ') === expect);
		// Alt+] is editor.action.inlineSuggest.showNext: it asks the extension explicitly
		// (triggerKind Invoked), then moves from the first suggestion of the answer to the next.
		await page.keyboard.press('Alt+BracketRight');
		await poll('the second suggestion as ghost text', async () => `\tfmt.Pr${(await ghostText()).replaceAll('\u00a0', ' ')}` === second);
		// Tab is editor.action.inlineSuggest.commit while a suggestion is shown.
		await page.keyboard.press('Tab');
		await page.keyboard.press('Control+S');
		await poll('main.go saved with the second suggestion', () => fs.readFileSync(mainGo, 'utf8').split('\n')[5] === second);
	});

	await step(t, 'Write tests from the light bulb creates main_test.go after the refactor preview', async () => {
		const before = fs.readFileSync(mainGo, 'utf8');
		const testGo = path.join(dirs.workspace, 'main_test.go');
		await page.keyboard.press('Escape');
		await openFile('main.go');
		await lightBulbAction(/write tests/i, 5, 3); // func main, lines 5-7
		// The edit waits in the Refactor Preview, and the action's progress notification, which
		// can cancel it, stays while it does.
		await page.locator('.bulk-edit-panel', { hasText: 'main_test.go' }).first().waitFor({ state: 'visible', timeout: WAIT });
		const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'codingplan: Write tests' }).first();
		await toast.waitFor({ state: 'visible', timeout: WAIT });
		assert.ok(await toast.locator('.monaco-button', { hasText: 'Cancel' }).count(), 'the progress notification has no Cancel button');
		assert.ok(!fs.existsSync(testGo), 'main_test.go exists before the preview was applied');
		await applyPreview('main_test.go');
		await poll('main_test.go with the tests', async () => {
			await runCommand('File: Save All');
			return fs.existsSync(testGo) && fs.readFileSync(testGo, 'utf8').includes(expect);
		});
		assert.equal(fs.readFileSync(mainGo, 'utf8'), before, 'main.go changed');
		await toast.waitFor({ state: 'hidden', timeout: WAIT });
	});

	await step(t, 'Explain opens the whole answer as a Markdown document', async () => {
		await openFile('main.go');
		await lightBulbAction(/explain/i, 5, 3);
		const tab = page.locator('.tabs-container .tab', { hasText: 'Explain: main.go' }).first();
		await tab.waitFor({ state: 'visible', timeout: WAIT });
		await poll('the answer in the active editor', async () => {
			const text = await page.evaluate(() => {
				const ed = document.querySelector('.editor-group-container.active .monaco-editor .view-lines');
				return ed ? ed.textContent : '';
			});
			const norm = text.replaceAll('\u00a0', ' ');
			return norm.includes('# Explain: main.go, lines 5–7') && norm.includes(expect) ? norm : '';
		});
		assert.equal(
			await page.evaluate(() => document.querySelector('.editor-group-container.active .tab.active')?.getAttribute('aria-label') ?? ''),
			await tab.getAttribute('aria-label'),
		);
		await runCommand('View: Close Editor');
		await openFile('main.go');
	});

	await step(t, 'rewrite selection asks for an instruction and applies the rewrite', async () => {
		await page.keyboard.press('Control+S');
		const before = await poll('main.go saved', () => fs.readFileSync(mainGo, 'utf8'));
		await selectLines(5, 1);
		await runCommand('codingplan: Rewrite Selection with Instruction');
		const input = page.locator('.quick-input-widget input');
		await page.locator('.quick-input-widget', { hasText: 'How should the selection change?' }).waitFor({ timeout: WAIT });
		await input.fill('make it shorter');
		await page.keyboard.press('Enter');
		await applyPreview('main.go');
		// main.go already holds the reply (accepted on line 6, inserted by the code action), so
		// "includes the reply" proves nothing: lines 1-4 and 7 on must stay as they were, and
		// what replaced the selection (lines 5-6) must be the reply, not nothing and not the
		// old lines.
		const lines = before.split('\n');
		const head = lines.slice(0, 4).join('\n') + '\n';
		const tail = '\n' + lines.slice(6).join('\n');
		await poll('the rewrite applied', async () => {
			await runCommand('File: Save All');
			const now = fs.readFileSync(mainGo, 'utf8');
			if (now === before || now.length < head.length + tail.length || !now.startsWith(head) || !now.endsWith(tail)) return '';
			const mid = now.slice(head.length, now.length - tail.length);
			return mid.includes(expect) && !mid.includes('func main') && !mid.includes('fmt.Pr') ? now : '';
		});
	});

	await step(t, 'Add documentation applies only after the preview is applied', async () => {
		await openFile('main.go');
		await page.keyboard.press('Control+S');
		const before = await poll('main.go saved', () => fs.readFileSync(mainGo, 'utf8'));
		const editorText = () =>
			page.evaluate(() => document.querySelector('.editor-group-container.active .monaco-editor .view-lines')?.textContent ?? '');
		const shown = await editorText();
		await lightBulbAction(/add documentation/i, 1, 1); // package main
		await page.locator('.bulk-edit-panel', { hasText: 'main.go' }).first().waitFor({ state: 'visible', timeout: WAIT });
		await page.locator('.monaco-button', { hasText: /^Discard$/ }).first().click();
		await page.locator('.bulk-edit-panel', { hasText: 'main.go' }).first().waitFor({ state: 'hidden', timeout: WAIT });
		assert.equal(await editorText(), shown, 'a discarded preview changed the editor');
		await openFile('main.go');
		await lightBulbAction(/add documentation/i, 1, 1);
		await page.locator('.bulk-edit-panel', { hasText: 'main.go' }).first().waitFor({ state: 'visible', timeout: WAIT });
		assert.equal(await editorText(), shown, 'the editor changed before the preview was applied');
		await applyPreview('main.go');
		await poll('the documentation applied', async () => {
			await openFile('main.go');
			await page.keyboard.press('Control+S');
			const now = fs.readFileSync(mainGo, 'utf8');
			return now !== before && now.startsWith(expect) ? now : '';
		});
	});

	await step(t, 'the status bar shows rate limited while another connection holds the only slot', async (st) => {
		if (!lspBin || !fakeProvider) {
			throw new Error('CODINGPLAN_E2E_LSP and CODINGPLAN_E2E_FAKEPROVIDER are needed for this step');
		}
		const events = await fetch(`${fakeProvider}/_events`);
		const reader = events.body.getReader();
		let seen = '';
		const holder = new LspProcess(lspBin, ['--stdio'], { ...process.env, CODINGPLAN_TOKEN: '' });
		try {
			await holder.request('initialize', {
				processId: process.pid,
				rootUri: null,
				capabilities: { textDocument: { inlineCompletion: {} } },
				clientInfo: { name: 'codingplan-e2e-holder' },
				initializationOptions: { codingplan: { backendUrl, token, model: holdModel } },
			});
			holder.notify('initialized', {});
			const uri = `file://${path.join(dirs.workspace, 'hold.go')}`;
			holder.notify('textDocument/didOpen', {
				textDocument: { uri, languageId: 'go', version: 1, text: 'package main\n\nfunc hold() {\n\t\n}\n' },
			});
			void holder
				.request('textDocument/inlineCompletion', {
					textDocument: { uri },
					position: { line: 3, character: 1 },
					context: { triggerKind: 1 },
				})
				.catch(() => {});
			// The provider reports the hanging request's start: from then on the slot is taken.
			await poll(`the test provider to start a "${holdModel}" request`, async () => {
				const { value, done } = await Promise.race([
					reader.read(),
					new Promise((r) => setTimeout(() => r({ value: undefined, done: false }), 500)),
				]);
				if (value) seen += new TextDecoder().decode(value);
				if (done) throw new Error('event stream ended');
				return seen.split('\n').some((l) => l.includes('"start"') && l.includes(`"${holdModel}"`));
			});
			await page.keyboard.press('Control+G');
			await page.keyboard.type('7');
			await page.keyboard.press('Enter');
			await page.keyboard.press('End');
			await page.keyboard.type('fmt.Pr', { delay: 30 });
			await waitStatus('rate limited');
		} finally {
			await reader.cancel().catch(() => {});
			if (holder.stderr && failed) fs.writeFileSync(path.join(artifacts, 'holder.stderr'), holder.stderr);
			await holder.kill();
		}
	});

	await step(t, 'with the built-in model no code action is offered, and the status menu says why', async () => {
		await setSetting('codingplan.model', 'Model', 'local');
		// The status menu names what the model cannot serve (it shows once the server has the
		// new setting and the backend's list of models).
		await poll('the status menu saying why code actions are missing', async () => {
			await page.locator('.statusbar [aria-label^="codingplan: "]').first().click();
			const row = page.locator('.quick-input-list .monaco-list-row', { hasText: /no code actions/i }).first();
			const shown = await row.waitFor({ state: 'visible', timeout: 1000 }).then(() => true, () => false);
			const text = shown ? await row.textContent() : '';
			await page.keyboard.press('Escape');
			return shown && text.includes('local') ? text : '';
		});
		// Ctrl+. lists the code actions for the selection: none of codingplan's.
		await selectLines(5, 1);
		await page.keyboard.press('Control+Period');
		const widget = page.locator('.action-widget');
		await poll('the code action list', async () => (await widget.isVisible()) || (await page.locator('.monaco-editor .message, .monaco-editor-overlaymessage', { hasText: /no code actions/i }).count()) > 0);
		const listed = (await page.locator('.action-widget .monaco-list-row').allTextContents()).join(' | ');
		await page.keyboard.press('Escape');
		assert.ok(!/write tests|add documentation|explain|simplify|rewrite|codingplan/i.test(listed), `code actions with the built-in model: ${listed}`);
		await setSetting('codingplan.model', 'Model', '');
	});

	await step(t, 'an unreachable backend is told once, with the retry time and Retry now', async () => {
		// backendUrl is machine-scoped: a workspace cannot redirect the token.
		await setSetting('codingplan.backendUrl', 'Backend Url', `ws://127.0.0.1:${await freePort()}/v1/ws`, { remote: true });
		const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'cannot reach the backend' });
		await toast.first().waitFor({ state: 'visible', timeout: WAIT });
		const text = await toast.first().textContent();
		assert.match(text, /retrying in/, 'the notification lacks the retry time');
		// Retry now: another attempt, which fails the same way and must not be told again.
		await toast.first().locator('.monaco-button', { hasText: 'Retry now' }).click();
		const until = Date.now() + 3000;
		await poll('the same failure told no second time', async () => {
			const n = await toast.count();
			if (n > 1) throw new Error(`${n} notifications about the unreachable backend`);
			return Date.now() > until;
		});
		await setSetting('codingplan.backendUrl', 'Backend Url', backendUrl, { remote: true });
		await waitStatus('ready');
	});

	await step(t, 'device sign-in: the code in a notification, Copy code and open, approved, ready; sign out', async () => {
		if (!accountsUrl || !signinBackendUrl) {
			throw new Error('CODINGPLAN_E2E_ACCOUNTS_URL and CODINGPLAN_E2E_SIGNIN_BACKEND_URL are needed for this step');
		}
		await browser.grantPermissions(['clipboard-read', 'clipboard-write']).catch(() => {});
		// A backend that trusts the account service, set in the Settings editor as a user would
		// (backendUrl is machine-scoped: on the Remote tab).
		await setSetting('codingplan.accountsUrl', 'Accounts Url', accountsUrl);
		await setSetting('codingplan.backendUrl', 'Backend Url', signinBackendUrl, { remote: true });
		// The pasted token is not valid there: signed out (and told once, with a Sign in button).
		await waitStatus('signed out');
		// Click the status bar item: signed out, it signs in.
		await page.locator('.statusbar [aria-label^="codingplan: "]').first().click();
		const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'your sign-in code is' }).first();
		await toast.waitFor({ state: 'visible', timeout: WAIT });
		const text = await toast.innerText();
		const code = /your sign-in code is ([A-Z]{4}-[A-Z]{4})/.exec(text)?.[1];
		assert.ok(code, `no code in the notification: ${text}`);
		const opened = browser.waitForEvent('page', { timeout: WAIT });
		await toast.locator('.monaco-button', { hasText: 'Copy code and open' }).first().click();
		const devicePage = await opened;
		// code-server opens loopback URLs through its port proxy (/proxy/<port>/...), and the
		// device page sends a browser that is not signed in to the sign-in page first.
		const accountsPort = new URL(accountsUrl).port;
		assert.ok(devicePage.url().includes(accountsPort), `opened ${devicePage.url()}, want the account service`);
		await devicePage.close().catch(() => {});
		// Approve as the signed-in user would on the device page, through the service's API.
		const session = await fetch(`${accountsUrl}/v1/session`, {
			method: 'POST',
			headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify({ email: accountsEmail, password: accountsPassword }),
		});
		assert.equal(session.status, 200, 'POST /v1/session');
		const cookie = session.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
		const approve = await fetch(`${accountsUrl}/v1/device/approve`, {
			method: 'POST',
			headers: { 'Content-Type': 'application/json', Cookie: cookie },
			body: JSON.stringify({ user_code: code, action: 'approve' }),
		});
		assert.ok(approve.ok, `POST /v1/device/approve: ${approve.status}`);
		await waitStatus('ready', 3 * WAIT);
		const file = path.join(dirs.home, '.config', 'codingplan', 'signin.json');
		assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the sign-in file is not 0600');

		await runCommand('codingplan: Sign Out');
		await waitStatus('signed out');
		await poll('the sign-in file deleted', () => !fs.existsSync(file));
	});

	await step(t, 'a server that cannot start is reported to the user', async () => {
		// Set codingplan.serverPath in the Settings editor, as a user would; the extension restarts
		// the server on the change.
		await runCommand('Preferences: Open User Settings');
		await page.locator('.settings-editor').waitFor({ state: 'visible', timeout: WAIT });
		await page.keyboard.type('codingplan.serverPath');
		// serverPath is machine-scoped (a workspace must not pick the binary VS Code runs): in a
		// remote window such as code-server's it is set on the Remote tab.
		await page.locator('.settings-editor .settings-tabs-widget .action-label', { hasText: 'Remote' }).first().click();
		const item = page.locator('.settings-editor .setting-item', { hasText: 'Server Path' }).first();
		await item.waitFor({ state: 'visible', timeout: WAIT });
		const box = item.locator('.monaco-inputbox input');
		await box.click();
		await box.fill(path.join(tmp, 'no-such-codingplan-lsp'));
		await page.keyboard.press('Tab');
		await page.locator('.notifications-toasts .notification-toast', { hasText: 'no-such-codingplan-lsp' })
			.first()
			.waitFor({ state: 'visible', timeout: WAIT });
		await waitStatus('error');
	});
});
