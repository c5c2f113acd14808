// The extension's commands. Each one that changes the server's state calls the server command of
// the same name (see protocol.ts) and shows the result.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { runWithProgress } from './actions';
import { executeServerCommand } from './client';
import { actionTitles, Enabled, RewriteArgs, RunActionArgs, ServerCommand, Status } from './protocol';
import { menuCommand } from './status';

/** What the commands need from the running extension. */
export interface Host {
	/** The running client, or undefined with the reason already shown to the user. */
	client(): LanguageClient | undefined;
	status(): Status;
	onStatus(status: Status): void;
	setToken(token: string | undefined): Promise<void>;
	/** Whether a token (from Sign In with Token) is kept in SecretStorage. */
	hasToken(): Promise<boolean>;
	showOutput(): void;
	restart(): Promise<void>;
}

export function registerCommands(host: Host): vscode.Disposable[] {
	const withClient =
		<A extends unknown[]>(run: (client: LanguageClient, ...args: A) => Promise<unknown>) =>
		async (...args: A) => {
			const client = host.client();
			if (!client) {
				void vscode.window.showErrorMessage('codingplan: the language server is not running. See the output for why.', 'Show Output')
					.then((pick) => pick && host.showOutput());
				return;
			}
			try {
				await run(client, ...args);
			} catch (err) {
				void vscode.window.showErrorMessage(`codingplan: ${errorText(err)}`);
			}
		};

	// signIn with a token hands it to the server (as signInWithToken does); without one it runs
	// the device sign-in: the server shows the code (client.ts answers its message request),
	// polls under progress the user can cancel, and keeps the sign-in, renewed by itself. A
	// token kept in SecretStorage would take precedence at the next start: it goes.
	const signIn = async (client: LanguageClient, token?: unknown) => {
		if (typeof token === 'string') {
			return signInWithToken(client, token);
		}
		const status = await executeServerCommand<Status>(client, ServerCommand.signIn);
		host.onStatus(status);
		if (status.state !== 'signedOut' && (await host.hasToken())) {
			await host.setToken(undefined);
		}
	};

	const signInWithToken = async (client: LanguageClient, token?: unknown) => {
		let value = typeof token === 'string' ? token : undefined;
		if (value === undefined) {
			value = await vscode.window.showInputBox({
				title: 'codingplan: Sign In',
				prompt: 'Paste your codingplan token or API key',
				password: true,
				ignoreFocusOut: true,
				validateInput: (v) => (v.trim() === '' ? 'The token cannot be empty' : undefined),
			});
		}
		if (value === undefined) {
			return;
		}
		value = value.trim();
		await host.setToken(value);
		host.onStatus(await executeServerCommand<Status>(client, ServerCommand.signIn, value));
	};

	const setEnabled = (command: string) => async (client: LanguageClient) => {
		const result = await executeServerCommand<Enabled>(client, command);
		host.onStatus({ ...host.status(), enabled: result.enabled });
		vscode.window.setStatusBarMessage(`codingplan: completions ${result.enabled ? 'enabled' : 'disabled'}`, 3000);
	};

	const showStatus = async (client: LanguageClient) => {
		const s = await executeServerCommand<Status>(client, ServerCommand.status);
		host.onStatus(s);
		const parts = [`codingplan: ${s.state}`, s.message];
		if (s.plan) {
			parts.push(`plan ${s.plan.name}, ${s.plan.inUse}/${s.plan.concurrency} streams in use`);
		}
		if (s.model) {
			parts.push(`model ${s.model}`);
		}
		if (s.unavailable) {
			parts.push(s.unavailable);
		}
		parts.push(`completions ${s.enabled ? 'enabled' : 'disabled'}`);
		void vscode.window.showInformationMessage(parts.filter(Boolean).join(' · '));
	};

	// rewrite runs the server's Rewrite with an instruction from the user. The light bulb's
	// "Rewrite…" action calls it with {uri, range}; the command palette, with the selection.
	const rewrite = async (client: LanguageClient, given?: Partial<RewriteArgs>) => {
		let uri = given?.uri;
		let range = given?.range;
		if (!uri || !range) {
			const editor = vscode.window.activeTextEditor;
			if (!editor || editor.selection.isEmpty) {
				void vscode.window.showInformationMessage('codingplan: select the code to rewrite first');
				return;
			}
			uri = client.code2ProtocolConverter.asUri(editor.document.uri);
			range = client.code2ProtocolConverter.asRange(editor.selection);
		}
		const instruction = given?.instruction?.trim() || (await vscode.window.showInputBox({
			title: 'codingplan: Rewrite Selection',
			prompt: 'How should the selection change?',
			placeHolder: 'e.g. use a table-driven test',
			ignoreFocusOut: true,
		}))?.trim();
		if (!instruction) {
			return;
		}
		const args: RewriteArgs = { uri, range, instruction };
		await runWithProgress(client, 'Rewrite', ServerCommand.rewrite, [args]);
	};

	// runAction runs the code action the light bulb offered (its command's argument), with a
	// progress notification that can cancel it.
	const runAction = async (client: LanguageClient, args?: RunActionArgs) => {
		if (!args?.uri || !args.kind) {
			void vscode.window.showInformationMessage('codingplan: pick the action from the light bulb on a selection');
			return;
		}
		await runWithProgress(client, actionTitles[args.kind] ?? 'code action', ServerCommand.runAction, [args]);
	};

	const menu = async () => {
		const s = host.status();
		if (s.state === 'signedOut') {
			await vscode.commands.executeCommand('codingplan.signIn');
			return;
		}
		const items: (vscode.QuickPickItem & { command: string })[] = [
			{ label: '$(sign-in) Sign In', description: 'in the browser', command: 'codingplan.signIn' },
		];
		if (s.unavailable) {
			// Why some features are missing, where the user looks for them; picking it shows the status.
			items.push({ label: '$(info) Not available', detail: s.unavailable, command: 'codingplan.showStatus' });
		}
		if (s.reason === 'unreachable') {
			items.push({ label: '$(refresh) Retry Now', command: ServerCommand.retry });
		}
		items.push(
			{ label: s.enabled ? '$(circle-slash) Disable Completions' : '$(check) Enable Completions', command: 'codingplan.toggle' },
			{ label: '$(info) Show Status', command: 'codingplan.showStatus' },
			{ label: '$(output) Show Output', command: 'codingplan.showOutput' },
			{ label: '$(sign-out) Sign Out', command: 'codingplan.signOut' },
		);
		const pick = await vscode.window.showQuickPick(items, { title: `codingplan: ${s.message || s.state}` });
		if (pick) {
			await vscode.commands.executeCommand(pick.command);
		}
	};

	return [
		vscode.commands.registerCommand('codingplan.signIn', withClient(signIn)),
		vscode.commands.registerCommand('codingplan.signInWithToken', withClient(signInWithToken)),
		vscode.commands.registerCommand(
			'codingplan.signOut',
			withClient(async (client) => {
				await host.setToken(undefined);
				host.onStatus(await executeServerCommand<Status>(client, ServerCommand.signOut));
			}),
		),
		vscode.commands.registerCommand('codingplan.enable', withClient(setEnabled(ServerCommand.enable))),
		vscode.commands.registerCommand('codingplan.disable', withClient(setEnabled(ServerCommand.disable))),
		vscode.commands.registerCommand('codingplan.toggle', withClient(setEnabled(ServerCommand.toggle))),
		vscode.commands.registerCommand('codingplan.showStatus', withClient(showStatus)),
		vscode.commands.registerCommand('codingplan.rewriteSelection', withClient((client) => rewrite(client))),
		vscode.commands.registerCommand(ServerCommand.rewrite, withClient(rewrite)),
		vscode.commands.registerCommand(ServerCommand.runAction, withClient(runAction)),
		vscode.commands.registerCommand('codingplan.showOutput', () => host.showOutput()),
		vscode.commands.registerCommand('codingplan.restart', () => host.restart()),
		vscode.commands.registerCommand(menuCommand, menu),
	];
}

export function errorText(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}
