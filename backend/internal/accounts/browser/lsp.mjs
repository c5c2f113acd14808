// A minimal LSP client for the browser test: runs codingplan-lsp over stdio (Content-Length
// framing), answers the server's requests with the handler registered for their method (null
// for the rest), and keeps every message the server sent so a test can wait for one.
import { spawn } from 'node:child_process';

export class LspClient {
	// command is the codingplan-lsp binary, env its whole environment, logFile where it logs.
	constructor(command, env, logFile) {
		this.proc = spawn(command, ['--log-level', 'debug', '--log-file', logFile], { env, stdio: ['pipe', 'pipe', 'pipe'] });
		this.nextId = 1;
		this.pending = new Map(); // our requests' ids -> { resolve, reject }
		this.handlers = new Map(); // the server's request methods -> params => result
		this.received = []; // the server's requests and notifications, in order
		this.waiters = new Set();
		this.stderr = '';
		this.buf = Buffer.alloc(0);
		this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
		this.exited.then(() => {
			for (const p of this.pending.values()) p.reject(new Error(`codingplan-lsp exited: ${this.stderr}`));
			this.pending.clear();
		});
		this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4096); });
		this.proc.stdout.on('data', (d) => this.read(d));
		this.proc.stdin.on('error', () => {}); // a write after the exit: the exit reports it
	}

	// answer makes fn(params) the answer to the server's requests of method.
	answer(method, fn) { this.handlers.set(method, fn); }

	read(chunk) {
		this.buf = Buffer.concat([this.buf, chunk]);
		for (;;) {
			const sep = this.buf.indexOf('\r\n\r\n');
			if (sep < 0) return;
			const m = /Content-Length: *(\d+)/i.exec(this.buf.subarray(0, sep).toString());
			if (!m) throw new Error(`not an LSP header: ${this.buf.subarray(0, sep)}`);
			const end = sep + 4 + Number(m[1]);
			if (this.buf.length < end) return;
			const msg = JSON.parse(this.buf.subarray(sep + 4, end).toString());
			this.buf = this.buf.subarray(end);
			this.dispatch(msg);
		}
	}

	dispatch(msg) {
		if (msg.method === undefined) { // an answer to one of ours
			const p = this.pending.get(msg.id);
			this.pending.delete(msg.id);
			if (p) msg.error ? p.reject(new Error(`${msg.error.code}: ${msg.error.message}`)) : p.resolve(msg.result);
			return;
		}
		this.received.push(msg);
		for (const w of this.waiters) w(msg);
		if (msg.id !== undefined) {
			Promise.resolve()
				.then(() => (this.handlers.get(msg.method) ?? (() => null))(msg.params))
				.then((result) => this.write({ jsonrpc: '2.0', id: msg.id, result: result ?? null }),
					(err) => this.write({ jsonrpc: '2.0', id: msg.id, error: { code: -32603, message: String(err) } }));
		}
	}

	write(msg) {
		const body = Buffer.from(JSON.stringify(msg));
		this.proc.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
	}

	// request resolves with the server's answer; it fails after ms without one.
	request(method, params, ms = 15_000) {
		const id = this.nextId++;
		const answered = new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(id);
				reject(new Error(`codingplan-lsp did not answer ${method} in ${ms} ms; stderr: ${this.stderr}`));
			}, ms);
			const settle = (fn) => (v) => { clearTimeout(timer); fn(v); };
			this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
		});
		this.write({ jsonrpc: '2.0', id, method, params });
		return answered;
	}

	notify(method, params) { this.write({ jsonrpc: '2.0', method, params }); }

	// waitFor resolves with the first message from the server, sent already or later, for which
	// match(msg) is true; it fails after ms, listing what did come.
	waitFor(what, match, ms = 15_000) {
		const seen = this.received.find(match);
		if (seen) return Promise.resolve(seen);
		return new Promise((resolve, reject) => {
			const done = () => { clearTimeout(timer); this.waiters.delete(w); };
			const w = (msg) => { if (match(msg)) { done(); resolve(msg); } };
			const timer = setTimeout(() => {
				done();
				const got = this.received.map((m) => `${m.method} ${JSON.stringify(m.params).slice(0, 200)}`).join('\n  ');
				reject(new Error(`codingplan-lsp sent no ${what} in ${ms} ms; it sent:\n  ${got}\nstderr: ${this.stderr}`));
			}, ms);
			this.waiters.add(w);
		});
	}

	// close shuts the server down as an editor does (shutdown, exit) and waits for it to end.
	async close() {
		if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
		const killed = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
		try {
			await this.request('shutdown', null);
			this.notify('exit', null);
		} catch {
			this.proc.kill('SIGKILL');
		}
		const how = await this.exited;
		clearTimeout(killed);
		return how;
	}
}
