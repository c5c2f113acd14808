// Keystroke-to-ghost-text in the VS Code workbench, timed inside the page (performance.now()):
// a keydown listener notes the key, a MutationObserver the first moment the ghost text holds
// what is awaited. Used by vscode.test.mjs when CODINGPLAN_E2E_GHOST_RUNS is set
// (scripts/bench-ghost.sh), with the test provider streaming a multi-line block slowly.

import fs from 'node:fs';

/** installProbe runs in the page: window.__ghostArm(key, want) starts a measurement. */
function installProbe() {
	if (window.__ghostArm) return;
	const text = () =>
		[...document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')]
			.map((e) => e.textContent)
			.join('')
			.replaceAll('\u00a0', ' ');
	window.__ghost = {};
	window.__ghostArm = (key, want) => {
		window.__ghost = { key, want };
	};
	document.addEventListener(
		'keydown',
		(e) => {
			const p = window.__ghost;
			if (p.key === e.key && p.t0 === undefined) p.t0 = performance.now();
		},
		true,
	);
	new MutationObserver(() => {
		const p = window.__ghost;
		if (p.t0 === undefined || p.t1 !== undefined) return;
		const g = text();
		if (g.includes(p.want)) {
			p.t1 = performance.now();
			p.text = g;
		}
	}).observe(document.body, { subtree: true, childList: true, characterData: true });
}

function median(xs) {
	const s = [...xs].sort((a, b) => a - b);
	if (!s.length) return NaN;
	return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmt = (x) => (Number.isNaN(x) ? '-' : x.toFixed(1));

/**
 * measureGhost times, runs times, Enter at the end of "func main() {" (a blank line in the body:
 * a multi-line request) to the first ghost text and, when that is not the whole block, Tab
 * (accept) to the next line's ghost text. Each run reloads main.go with a comment naming the run,
 * a context nobody has seen; run 0 warms up and is not counted. readMs is how long the user
 * reads the first line before Tab (0: Tab as soon as it shows). main.go must be open in the
 * editor.
 */
export async function measureGhost({ page, poll, runCommand, mainGo, runs, block, readMs = 0, log }) {
	const lines = block.split('\n');
	const [first, second, last] = [lines[0], lines[1].trim(), lines[lines.length - 1].trim()];
	const original = fs.readFileSync(mainGo, 'utf8');
	await page.evaluate(installProbe);
	const until = async (key, want) => {
		await page.evaluate(([k, w]) => window.__ghostArm(k, w), [key, want]);
		await page.keyboard.press(key);
		return poll(`ghost text with ${want} after ${key}`, () => page.evaluate(() => (window.__ghost.t1 ? window.__ghost : null)), 30_000, 20);
	};
	const firsts = [];
	const nexts = [];
	const blocks = [];
	for (let i = 0; i <= runs; i++) {
		const mark = `// run ${i} ${Date.now()}`;
		fs.writeFileSync(mainGo, `${mark}\n${original}`);
		await runCommand('File: Revert File');
		await page.locator('.monaco-editor .view-lines', { hasText: mark }).waitFor({ timeout: 30_000 });
		// Line 6 is "func main() {".
		await page.keyboard.press('Control+G');
		await page.keyboard.type('6');
		await page.keyboard.press('Enter');
		await page.keyboard.press('End');
		const p = await until('Enter', first);
		// Run 0 warms up: its times go to arrays nobody reads.
		const [f, n, b] = i ? [firsts, nexts, blocks] : [[], [], []];
		let line = `ghost-bench editor=vscode run=${i}${i ? '' : ' (warm-up)'} first_ms=${fmt(p.t1 - p.t0)}`;
		f.push(p.t1 - p.t0);
		if (p.text.includes(last)) {
			b.push(p.t1 - p.t0);
			line += ` block_ms=${fmt(p.t1 - p.t0)} (whole block at once)`;
		} else {
			await new Promise((r) => setTimeout(r, readMs)); // the user reading
			const q = await until('Tab', second);
			n.push(q.t1 - q.t0);
			b.push(q.t1 - p.t0);
			line += ` next_ms=${fmt(q.t1 - q.t0)} block_ms=${fmt(q.t1 - p.t0)}`;
		}
		log(line);
		await page.keyboard.press('Escape');
	}
	log(`ghost-bench editor=vscode runs=${runs} median first_ms=${fmt(median(firsts))} next_ms=${fmt(median(nexts))} block_ms=${fmt(median(blocks))}`);
	fs.writeFileSync(mainGo, original);
}
