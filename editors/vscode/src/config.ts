// Settings: what the extension reads from the `codingplan` section and hands to the server.
//
// Every server setting (lsp/internal/config Settings) is declared in package.json's
// contributes.configuration with the server's default; lsp/internal/config/editors_test.go checks
// that they agree. The token is the exception: it lives in SecretStorage, never in settings.json.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

export const section = 'codingplan';

/** The key of the token in the extension's SecretStorage. */
export const tokenKey = 'codingplan.token';

/** Settings that belong to the extension alone and are not sent to the server. */
const clientOnly = new Set(['serverPath']);

/** settingKeys lists the keys under `codingplan.` that package.json declares. */
function settingKeys(context: vscode.ExtensionContext): string[] {
	const props = context.extension.packageJSON?.contributes?.configuration?.properties ?? {};
	return Object.keys(props)
		.filter((k) => k.startsWith(section + '.'))
		.map((k) => k.slice(section.length + 1));
}

/**
 * serverSettings returns the `codingplan` section as the server expects it: every declared key
 * with its effective value, less the client's own, plus the token when there is one.
 */
export function serverSettings(context: vscode.ExtensionContext, token: string | undefined): Record<string, unknown> {
	const cfg = vscode.workspace.getConfiguration(section);
	const out: Record<string, unknown> = {};
	for (const key of settingKeys(context)) {
		if (!clientOnly.has(key)) {
			out[key] = cfg.get(key);
		}
	}
	if (token) {
		out.token = token;
	}
	return out;
}

/**
 * serverPath finds the codingplan-lsp binary: the `codingplan.serverPath` setting, else the one
 * bundled in the extension (bin/codingplan-lsp). It throws with a message fit for the user.
 */
export function serverPath(context: vscode.ExtensionContext): string {
	const configured = vscode.workspace.getConfiguration(section).get<string>('serverPath', '').trim();
	const candidate = configured
		? configured.replace(/^~(?=$|\/)/, process.env.HOME ?? '~')
		: context.asAbsolutePath(path.join('bin', process.platform === 'win32' ? 'codingplan-lsp.exe' : 'codingplan-lsp'));
	try {
		fs.accessSync(candidate, fs.constants.X_OK);
	} catch {
		const where = configured ? `codingplan.serverPath (${candidate})` : `the bundled server (${candidate})`;
		throw new Error(`codingplan: cannot run ${where}: not found or not executable`);
	}
	return candidate;
}
