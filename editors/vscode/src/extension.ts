// Entry point: activate starts the language server and wires the status bar and commands;
// deactivate stops the server.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { createClient, pushSettings } from './client';
import { errorText, registerCommands } from './commands';
import * as config from './config';
import { proxySettings } from './proxy';
import { Status } from './protocol';
import { Notifier } from './notify';
import { StatusBar } from './status';

let extension: Extension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
	extension = new Extension(context);
	context.subscriptions.push(extension);
	await extension.start();
}

export async function deactivate(): Promise<void> {
	await extension?.stop();
	extension = undefined;
}

class Extension implements vscode.Disposable {
	private readonly output: vscode.LogOutputChannel;
	private readonly statusBar: StatusBar;
	private readonly notifier = new Notifier();
	private readonly disposables: vscode.Disposable[] = [];
	private running: LanguageClient | undefined;

	constructor(private readonly context: vscode.ExtensionContext) {
		// vscode-languageclient 10+ needs a log output channel.
		this.output = vscode.window.createOutputChannel('codingplan', { log: true });
		this.statusBar = new StatusBar();
		this.disposables.push(
			this.output,
			this.statusBar,
			...registerCommands({
				client: () => this.running,
				status: () => this.statusBar.status,
				onStatus: (s: Status) => this.statusBar.update(s),
				setToken: (t) => this.setToken(t),
				hasToken: async () => (await this.token()) !== undefined,
				showOutput: () => this.output.show(true),
				restart: () => this.restart(),
			}),
			vscode.workspace.onDidChangeConfiguration((e) => void this.onConfigurationChanged(e)),
		);
	}

	/** start starts the server; a failure is shown to the user, never thrown to VS Code. */
	async start(): Promise<void> {
		try {
			const path = config.serverPath(this.context);
			const client = await createClient(this.context, path, this.output, {
				onStatus: (s) => {
					this.statusBar.update(s);
					this.notifier.onStatus(s);
				},
				token: () => this.token(),
			});
			this.output.info(`starting ${path}`);
			await client.start();
			this.running = client;
		} catch (err) {
			const message = errorText(err);
			this.output.error(message);
			this.statusBar.fail(message);
			const pick = await vscode.window.showErrorMessage(
				message.startsWith('codingplan') ? message : `codingplan: the language server did not start: ${message}`,
				'Open Settings',
				'Show Output',
			);
			if (pick === 'Open Settings') {
				void vscode.commands.executeCommand('workbench.action.openSettings', 'codingplan.serverPath');
			} else if (pick === 'Show Output') {
				this.output.show(true);
			}
		}
	}

	async stop(): Promise<void> {
		const client = this.running;
		this.running = undefined;
		if (client) {
			try {
				await client.stop(2000);
			} catch (err) {
				this.output.warn(`stopping the server: ${errorText(err)}`);
			}
		}
	}

	private async restart(): Promise<void> {
		await this.stop();
		await this.start();
	}

	private async token(): Promise<string | undefined> {
		return (await this.context.secrets.get(config.tokenKey)) || undefined;
	}

	private async setToken(token: string | undefined): Promise<void> {
		if (token) {
			await this.context.secrets.store(config.tokenKey, token);
		} else {
			await this.context.secrets.delete(config.tokenKey);
		}
	}

	private async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
		// The proxy reaches the server through its environment: a change needs a new server.
		if (proxySettings.some((k) => e.affectsConfiguration(k))) {
			await this.restart();
			return;
		}
		if (!e.affectsConfiguration(config.section)) {
			return;
		}
		if (e.affectsConfiguration(`${config.section}.serverPath`)) {
			await this.restart();
			return;
		}
		if (this.running) {
			await pushSettings(this.context, this.running, await this.token());
		}
	}

	dispose(): void {
		void this.stop();
		for (const d of this.disposables) {
			d.dispose();
		}
	}
}
