// The account pages in a real browser: Debian's Chromium driven by playwright-core, against a
// running codingplan-accounts (dev mode, no SMTP, so mails are read from /dev/mail). Run by
// scripts/pages-e2e.sh (make test-pages), which starts the service and sets:
//
//   CODINGPLAN_PAGES_URL        the service's URL
//   CODINGPLAN_PLAYWRIGHT       the playwright-core package directory (scripts/install-playwright.sh)
//   CODINGPLAN_CHROMIUM         the Chromium binary
//   CODINGPLAN_PAGES_ARTIFACTS  where screenshots and the page's HTML go when a step fails
//   CODINGPLAN_LSP              the codingplan-lsp binary (bin/codingplan-lsp)
//
// One story, as a user on a phone-sized screen and the keyboard: sign up, confirm the mailed
// link, sign in, create an API key, approve the device code a running codingplan-lsp shows
// (its codingplan.signIn, over stdio as an editor runs it), see that editor under devices, sign
// it out there, and see a codingplan-lsp started with the stored sign-in told it has ended;
// then the billing page, sign-out, a password reset by mail, and the account's deletion.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { LspClient } from './lsp.mjs';

const base = process.env.CODINGPLAN_PAGES_URL;
const artifacts = process.env.CODINGPLAN_PAGES_ARTIFACTS || fs.mkdtempSync('/tmp/codingplan-pages-');
const { chromium } = createRequire(path.join(process.env.CODINGPLAN_PLAYWRIGHT, 'package.json'))('playwright-core');

let browser;
let page;
const lsps = []; // every codingplan-lsp started, closed after the test
const problems = []; // CSP refusals and script errors: none may appear (a 400 page is not one)

before(async () => {
	assert.ok(base, 'CODINGPLAN_PAGES_URL is not set');
	browser = await chromium.launch({
		executablePath: process.env.CODINGPLAN_CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	// A phone: 390 x 844 CSS pixels, touch.
	const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
	context.setDefaultTimeout(10_000);
	page = await context.newPage();
	page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));
});

after(async () => {
	await Promise.all(lsps.map((l) => l.close()));
	await browser?.close();
});

// The editor's side: codingplan-lsp with its own config directory (where signin.json goes),
// the service as accountsUrl and no backend (a closed port: the connection only retries).
const lspHome = fs.mkdtempSync(path.join(artifacts, 'lsp-home-'));
const signInFile = path.join(lspHome, 'config', 'codingplan', 'signin.json');
const editorName = 'pages-e2e'; // clientInfo.name: the client_id the service lists

async function startLsp() {
	assert.ok(process.env.CODINGPLAN_LSP, 'CODINGPLAN_LSP is not set');
	const env = {
		PATH: process.env.PATH, HOME: lspHome, XDG_CONFIG_HOME: path.join(lspHome, 'config'),
		CODINGPLAN_ACCOUNTS_URL: base, CODINGPLAN_BACKEND_URL: 'ws://127.0.0.1:9/v1/ws',
	};
	const lsp = new LspClient(process.env.CODINGPLAN_LSP, env, path.join(artifacts, `lsp-${lsps.length + 1}.log`));
	lsps.push(lsp);
	// As an editor plugin that does not open the page itself: it picks the action, and the
	// server asks it to open the page.
	lsp.answer('window/showMessageRequest', (p) => p.actions?.find((a) => a.title === 'Copy code and open') ?? null);
	lsp.answer('window/showDocument', () => ({ success: true }));
	lsp.answer('workspace/configuration', (p) => p.items.map(() => null));
	await lsp.request('initialize', {
		processId: process.pid, clientInfo: { name: editorName, version: '1' }, rootUri: null,
		capabilities: { window: { showDocument: { support: true }, workDoneProgress: true } },
	});
	lsp.notify('initialized', {});
	return lsp;
}

// step runs one part of the story; on failure it keeps a screenshot and the page's HTML.
async function step(name, fn) {
	try {
		await fn();
	} catch (err) {
		const file = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
		await page.screenshot({ path: path.join(artifacts, `${file}.png`), fullPage: true }).catch(() => {});
		fs.writeFileSync(path.join(artifacts, `${file}.html`), await page.content().catch(() => ''));
		err.message = `${name}: ${err.message} (screenshot in ${artifacts}/${file}.png)`;
		throw err;
	}
}

async function form(url, fields) {
	const r = await fetch(base + url, { method: 'POST', body: new URLSearchParams(fields) });
	return { status: r.status, body: await r.json() };
}

// The page fits the phone's width: nothing scrolls sideways.
async function fitsWidth() {
	const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
	assert.ok(scroll <= client, `page ${page.url()} is ${scroll}px wide on a ${client}px screen`);
}

test('sign up, sign in, create a key, approve and sign out a device, reset, delete', async () => {
	const started = Date.now();
	const email = `e2e-${Date.now()}@example.com`;
	const password = 'a long enough password';

	await step('sign up', async () => {
		await page.goto(base + '/signup');
		assert.equal(await page.locator('meta[name=viewport]').getAttribute('content'), 'width=device-width, initial-scale=1');
		// The stylesheet loaded under the CSP: the button has the accent colour, not the default.
		const bg = await page.getByRole('button', { name: 'Create account' }).evaluate((b) => getComputedStyle(b).minHeight);
		assert.equal(bg, '44px');
		await fitsWidth();
		await page.getByLabel('Email').fill(email);
		await page.getByLabel('Name (optional)').fill('E2E <script>alert(1)</script>');
		await page.getByLabel('Password (at least 8 characters)').fill(password);
		await page.getByLabel('Password again').fill(password + 'x');
		await page.getByRole('button', { name: 'Create account' }).click();
		// Errors next to their fields, the markup shown as text, the email kept.
		await page.locator('#name-error').waitFor();
		assert.match(await page.locator('#name-error').textContent(), /letters, digits/);
		assert.match(await page.locator('#confirm-error').textContent(), /differ/);
		assert.equal(await page.getByLabel('Email').inputValue(), email);
		assert.equal(await page.getByLabel('Name (optional)').getAttribute('aria-invalid'), 'true');
		await page.getByLabel('Name (optional)').fill('E2E Tester');
		await page.getByLabel('Password (at least 8 characters)').fill(password);
		await page.getByLabel('Password again').fill(password);
		await page.getByRole('button', { name: 'Create account' }).click();
		await page.getByRole('heading', { name: 'Check your mail' }).waitFor();
	});

	await step('confirm the email from the dev mail page', async () => {
		await page.goto(base + '/dev/mail');
		const mail = page.locator('article.mail', { hasText: email }).first();
		await mail.getByRole('link', { name: /\/verify\?token=/ }).click();
		await page.getByRole('button', { name: 'Confirm my email' }).click();
		await page.waitForURL(/\/signin\?done=verified$/);
		await page.getByText('Your email is confirmed.').waitFor();
	});

	await step('sign in with the keyboard', async () => {
		await page.getByLabel('Email').focus();
		await page.keyboard.type(email);
		await page.keyboard.press('Tab');
		assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
		await page.keyboard.type(password);
		await page.keyboard.press('Enter');
		await page.waitForURL(base + '/account');
		await page.getByRole('heading', { name: 'Your account' }).waitFor();
		assert.equal(await page.locator('#plan').textContent(), 'lite');
		assert.equal(await page.locator('#concurrency').textContent(), '1');
		assert.ok(await page.locator('svg.chart rect').count() === 30, 'the usage chart has 30 bars');
		await fitsWidth();
	});

	let key;
	await step('create an API key', async () => {
		await page.getByLabel('Name of a new key').fill('e2e laptop');
		await page.getByRole('button', { name: 'Create key' }).click();
		key = await page.locator('#new-key').inputValue();
		assert.match(key, /^cpk_[A-Za-z0-9_-]{43}$/);
		await page.getByText('Copy it now').waitFor();
		const t = await form('/v1/token', { grant_type: 'urn:codingplan:grant-type:api_key', api_key: key });
		assert.equal(t.status, 200, JSON.stringify(t.body));
		await page.goto(base + '/account'); // the key is not shown again
		assert.equal(await page.locator('#new-key').count(), 0);
		await page.locator('#keys', { hasText: 'e2e laptop' }).waitFor();
	});

	let refresh;
	await step('approve the device code a running codingplan-lsp shows', async () => {
		const lsp = await startLsp();
		const signIn = lsp.request('workspace/executeCommand', { command: 'codingplan.signIn', arguments: [] }, 30_000);
		signIn.catch(() => {}); // awaited below
		const ask = await lsp.waitFor('device code', (m) => m.method === 'window/showMessageRequest'
			&& m.params.actions?.some((a) => a.title === 'Copy code and open'));
		const action = ask.params.actions.find((a) => a.title === 'Copy code and open');
		assert.ok(ask.params.message.includes(action.userCode), ask.params.message);
		const open = await lsp.waitFor('window/showDocument', (m) => m.method === 'window/showDocument');
		assert.equal(open.params.uri, action.uri);
		assert.equal(open.params.external, true);
		await page.goto(open.params.uri);
		assert.equal(await page.locator('#client').textContent(), editorName);
		assert.equal(await page.locator('#user-code').textContent(), action.userCode);
		await page.getByRole('button', { name: 'Deny' }).waitFor();
		await page.getByRole('button', { name: 'Approve' }).click();
		await page.getByRole('heading', { name: 'Device approved' }).waitFor();
		// The server polls every 5 s: the command answers once it has the tokens.
		const status = await signIn;
		assert.notEqual(status.state, 'signedOut', JSON.stringify(status));
		await lsp.waitFor('"signed in."', (m) => m.method === 'window/showMessage' && m.params.message === 'codingplan: signed in.');
		assert.equal(fs.statSync(signInFile).mode & 0o777, 0o600, 'signin.json is not 0600');
		const stored = JSON.parse(fs.readFileSync(signInFile, 'utf8'));
		assert.equal(stored.accounts_url, base);
		refresh = stored.refresh_token;
		assert.ok(refresh, 'signin.json has no refresh token');
	});

	await step('see the editor listed and sign it out', async () => {
		await page.getByRole('link', { name: 'Your account' }).click();
		await page.locator('#devices', { hasText: editorName }).waitFor();
		await page.getByRole('button', { name: `Sign out ${editorName}` }).click();
		await page.getByText('The device is signed out.').waitFor();
		assert.equal(await page.locator('#devices', { hasText: editorName }).count(), 0);
		const t = await form('/v1/token', { grant_type: 'refresh_token', refresh_token: refresh });
		assert.equal(t.status, 400, 'the signed-out editor can still refresh');
		assert.equal(t.body.error, 'invalid_grant');
	});

	await step('the editor is told its sign-in has ended', async () => {
		// Without a backend nothing refuses the running server's access token before it expires
		// (access_ttl); a server started with the stored sign-in refreshes at once.
		const how = await lsps[0].close();
		assert.equal(how.code, 0, `codingplan-lsp exited with ${JSON.stringify(how)}`);
		const lsp = await startLsp();
		await lsp.waitFor('the sign-in has ended', (m) => m.method === 'window/showMessageRequest'
			&& /sign-in has ended/.test(m.params.message) && m.params.actions?.some((a) => a.title === 'Sign in'));
		const status = await lsp.request('workspace/executeCommand', { command: 'codingplan.status', arguments: [] });
		assert.equal(status.state, 'signedOut', JSON.stringify(status));
		assert.equal(fs.existsSync(signInFile), false, 'the ended sign-in\'s file is still there');
	});

	await step('billing page', async () => {
		await page.getByRole('link', { name: 'Billing' }).click();
		await page.getByRole('heading', { name: 'Plan and billing' }).waitFor();
		await page.getByText('lite (1 concurrent requests)').waitFor();
		await fitsWidth();
	});

	await step('sign out', async () => {
		await page.getByRole('button', { name: 'Sign out', exact: true }).click();
		await page.getByText('You are signed out.').waitFor();
		await page.goto(base + '/account');
		await page.waitForURL(/\/signin\?next=%2Faccount$/);
	});

	const newPassword = 'another long password';
	await step('reset the password', async () => {
		await page.getByRole('link', { name: 'Forgot your password?' }).click();
		await page.getByLabel('Email').fill(email);
		await page.getByRole('button', { name: 'Mail me a link' }).click();
		await page.getByRole('heading', { name: 'Check your mail' }).waitFor();
		await page.goto(base + '/dev/mail');
		await page.locator('article.mail', { hasText: 'Reset your codingplan password' }).first()
			.getByRole('link', { name: /\/reset\/confirm\?token=/ }).click();
		await page.getByLabel('New password (at least 8 characters)').fill(newPassword);
		await page.getByLabel('New password again').fill(newPassword);
		await page.getByRole('button', { name: 'Set password' }).click();
		await page.getByText('Your password is changed.').waitFor();
		await page.getByLabel('Email').fill(email);
		await page.getByLabel('Password').fill(password);
		await page.getByRole('button', { name: 'Sign in' }).click();
		assert.match(await page.locator('#password-error').textContent(), /Wrong email or password/);
		await page.getByLabel('Password').fill(newPassword);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.waitForURL(base + '/account');
	});

	await step('delete the account', async () => {
		await page.getByRole('link', { name: 'Delete my account' }).click();
		await page.getByLabel('Type your password to confirm').fill('not the password');
		await page.getByRole('button', { name: 'Delete my account' }).click();
		assert.match(await page.locator('#password-error').textContent(), /not deleted/);
		await page.getByLabel('Type your password to confirm').fill(newPassword);
		await page.getByRole('button', { name: 'Delete my account' }).click();
		await page.getByText('Your account and everything stored about it are deleted.').waitFor();
		const t = await form('/v1/token', { grant_type: 'urn:codingplan:grant-type:api_key', api_key: key });
		assert.equal(t.status, 400, 'the deleted account\'s API key still works');
	});

	assert.deepEqual(problems, [], 'console errors (a CSP refusal?)');
	console.log(`pages e2e: ${Date.now() - started} ms`);
});
