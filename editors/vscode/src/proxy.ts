// Proxy: VS Code's http.proxy and http.noProxy reach the server as the environment variables
// its websocket dial reads (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; docs/configuration.md).

import * as vscode from 'vscode';

/** Settings of VS Code's `http` section that change the server's environment. */
export const proxySettings = ['http.proxy', 'http.noProxy', 'http.proxyStrictSSL'];

/**
 * serverEnv returns the server's environment: the editor's, with VS Code's proxy settings laid
 * over it when they are set. `http.proxyStrictSSL: false` is not followed (the server always
 * verifies the backend's certificate, which guards the token); log says so.
 */
export function serverEnv(log: vscode.LogOutputChannel): NodeJS.ProcessEnv {
	const http = vscode.workspace.getConfiguration('http');
	const env: NodeJS.ProcessEnv = { ...process.env };
	const proxy = (http.get<string>('proxy') ?? '').trim();
	if (proxy) {
		env.HTTPS_PROXY = proxy;
		env.HTTP_PROXY = proxy;
		delete env.https_proxy;
		delete env.http_proxy;
		log.info('the server uses http.proxy for its connection to the backend');
	}
	const noProxy = (http.get<string[]>('noProxy') ?? []).filter((h) => h.trim() !== '');
	if (noProxy.length > 0) {
		env.NO_PROXY = noProxy.join(',');
		delete env.no_proxy;
	}
	if (http.get<boolean>('proxyStrictSSL') === false) {
		log.warn(
			'http.proxyStrictSSL is false: codingplan still verifies the backend\'s certificate; ' +
				'behind a TLS-inspecting proxy, set codingplan.caFile to its CA certificate',
		);
	}
	return env;
}
