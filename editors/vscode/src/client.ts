// The language client: starts codingplan-lsp over stdio and keeps the server's settings current.

import * as vscode from 'vscode';
import {
	DidChangeConfigurationNotification,
	ExecuteCommandRequest,
	LanguageClient,
	LanguageClientOptions,
	ServerOptions,
	TransportKind,
} from 'vscode-languageclient/node';
import * as config from './config';
import { serverEnv } from './proxy';
import { registerMarkdown } from './markdown';
import { DeviceAction, experimentalCapabilities, SignInAction, statusNotification, Status } from './protocol';

/**
 * Commands that the extension registers itself (they prompt or update the UI first, then call the
 * server command of the same name): the client must not register them a second time from the
 * server's executeCommandProvider.
 */
export const ownCommands = new Set([
	'codingplan.signIn',
	'codingplan.signOut',
	'codingplan.enable',
	'codingplan.disable',
	'codingplan.toggle',
	'codingplan.rewrite',
	'codingplan.runAction',
]);

export interface ClientHooks {
	onStatus(status: Status): void;
	token(): Promise<string | undefined>;
}

/** createClient builds (does not start) a client for the server at serverPath. */
export async function createClient(
	context: vscode.ExtensionContext,
	serverPath: string,
	outputChannel: vscode.LogOutputChannel,
	hooks: ClientHooks,
): Promise<LanguageClient> {
	const serverOptions: ServerOptions = {
		command: serverPath,
		args: [],
		transport: TransportKind.stdio,
		options: { env: serverEnv(outputChannel) },
	};
	const token = await hooks.token();
	const clientOptions: LanguageClientOptions = {
		documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
		outputChannel,
		initializationOptions: { [config.section]: config.serverSettings(context, token) },
		middleware: {
			// Inline completions go straight through: the server decides, VS Code renders.
			provideInlineCompletionItems: (document, position, ctx, cancel, next) => next(document, position, ctx, cancel),
			workspace: {
				// If the server pulls its settings, the token (kept out of settings.json) goes with them.
				configuration: async (params, cancel, next) => {
					const result = await next(params, cancel);
					if (!Array.isArray(result)) {
						return result;
					}
					const secret = await hooks.token();
					return result.map((value, i) =>
						params.items[i]?.section === config.section && secret && value && typeof value === 'object'
							? { ...value, token: secret }
							: value,
					);
				},
			},
		},
	};
	const client = new LanguageClient('codingplan', 'codingplan', serverOptions, clientOptions);
	client.onNotification(statusNotification, (status) => hooks.onStatus(status));
	// Explain's answers open as Markdown documents (codingplan/showMarkdown), which the server
	// sends to a client that says it handles them.
	client.registerFeature({
		fillClientCapabilities: (caps) => {
			caps.experimental = { ...(caps.experimental as object | undefined), ...experimentalCapabilities };
		},
		initialize: () => {},
		getState: () => ({ kind: 'static' }),
		clear: () => {},
	});
	context.subscriptions.push(registerMarkdown(client));
	client.onRequest('window/showMessageRequest', showMessageRequest);

	// Register every server command except the ones the extension wraps.
	const feature = client.getFeature(ExecuteCommandRequest.method);
	const register = feature.register.bind(feature);
	feature.register = (data) =>
		register({
			...data,
			registerOptions: {
				...data.registerOptions,
				commands: (data.registerOptions.commands ?? []).filter((c) => !ownCommands.has(c)),
			},
		});
	return client;
}

/**
 * showMessageRequest answers the server's window/showMessageRequest (replacing the client's
 * default handler, which would drop the action's extra properties): the device sign-in's code
 * with a "Copy code and open" button that copies it and opens the page; other requests as
 * VS Code shows them by default.
 */
async function showMessageRequest(params: {
	type: number;
	message: string;
	actions?: DeviceAction[];
}): Promise<DeviceAction | null> {
	const actions = params.actions ?? [];
	const device = actions.find((a) => a.title === SignInAction.copyAndOpen && a.userCode && a.uri);
	if (device) {
		const pick = await vscode.window.showInformationMessage(
			`codingplan: your sign-in code is ${device.userCode}. ${params.message.replace(/^codingplan: /, '')}`,
			device.title,
		);
		if (pick !== device.title) {
			return null;
		}
		try {
			await vscode.env.clipboard.writeText(device.userCode!);
		} catch {
			// No clipboard (a browser without permission): the code is in the message.
		}
		const opened = await vscode.env.openExternal(vscode.Uri.parse(device.uri!, true));
		return { title: device.title, opened };
	}
	const show =
		params.type === 1
			? vscode.window.showErrorMessage
			: params.type === 2
				? vscode.window.showWarningMessage
				: vscode.window.showInformationMessage;
	const pick = await show(params.message, ...actions.map((a) => a.title));
	return actions.find((a) => a.title === pick) ?? null;
}

/** pushSettings sends the current settings (with the token) to a running client. */
export async function pushSettings(
	context: vscode.ExtensionContext,
	client: LanguageClient,
	token: string | undefined,
): Promise<void> {
	if (!client.isRunning()) {
		return;
	}
	await client.sendNotification(DidChangeConfigurationNotification.type, {
		settings: { [config.section]: config.serverSettings(context, token) },
	});
}

/** executeServerCommand runs one of the server's workspace/executeCommand commands. */
export async function executeServerCommand<T>(client: LanguageClient, command: string, ...args: unknown[]): Promise<T> {
	return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
}
