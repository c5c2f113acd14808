// A minimal LSP client over a child process's stdio, for the e2e test's second connection (the
// one that holds the plan's only slot).

import { spawn } from 'node:child_process';

export class LspProcess {
	constructor(command, args, env) {
		this.proc = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
		this.nextId = 1;
		this.pending = new Map();
		this.notifications = [];
		this.stderr = '';
		this.buf = Buffer.alloc(0);
		this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
		this.proc.stderr.on('data', (d) => {
			this.stderr = (this.stderr + d.toString()).slice(-8192);
		});
		this.proc.stdout.on('data', (d) => this.onData(d));
	}

	onData(chunk) {
		this.buf = Buffer.concat([this.buf, chunk]);
		for (;;) {
			const sep = this.buf.indexOf('\r\n\r\n');
			if (sep < 0) return;
			const header = this.buf.subarray(0, sep).toString();
			const m = /Content-Length: *(\d+)/i.exec(header);
			if (!m) throw new Error(`bad LSP header: ${header}`);
			const len = Number(m[1]);
			if (this.buf.length < sep + 4 + len) return;
			const body = JSON.parse(this.buf.subarray(sep + 4, sep + 4 + len).toString());
			this.buf = this.buf.subarray(sep + 4 + len);
			if (body.id !== undefined && body.method === undefined) {
				const p = this.pending.get(body.id);
				this.pending.delete(body.id);
				if (p) body.error ? p.reject(new Error(body.error.message)) : p.resolve(body.result);
			} else if (body.id !== undefined) {
				// A request from the server: answer null (no configuration, no edits).
				this.write({ jsonrpc: '2.0', id: body.id, result: null });
			} else {
				this.notifications.push(body);
			}
		}
	}

	write(msg) {
		const body = Buffer.from(JSON.stringify(msg));
		this.proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
		this.proc.stdin.write(body);
	}

	request(method, params) {
		const id = this.nextId++;
		this.write({ jsonrpc: '2.0', id, method, params });
		return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
	}

	notify(method, params) {
		this.write({ jsonrpc: '2.0', method, params });
	}

	kill() {
		this.proc.kill('SIGKILL');
		return this.exited;
	}
}
