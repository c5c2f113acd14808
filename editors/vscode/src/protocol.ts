// The custom parts of the codingplan language server's protocol, declared once. They mirror the
// Go declarations in lsp/ (see docs/protocol.md and the lead's contracts): change both together.

import { NotificationType, Range } from 'vscode-languageclient';

/** The states of the `codingplan/status` notification. */
export type State =
	| 'signedOut'
	| 'connecting'
	| 'ready'
	| 'busy'
	| 'rateLimited'
	| 'quotaExceeded'
	| 'disabled'
	| 'error';

/** The subscription plan the backend reported, with its concurrency. */
export interface Plan {
	name: string;
	concurrency: number;
	inUse: number;
}

/** The body of `codingplan/status`, also the result of the status, sign-in and sign-out commands. */
export interface Status {
	state: State;
	/** Human text, safe to show. */
	message: string;
	/** When rate limited: how long until a slot is expected to be free. */
	retryAfterMs?: number;
	plan?: Plan;
	/** Whether completions are enabled. */
	enabled: boolean;
}

/** Server -> client: the connection, sign-in and plan state changed. */
export const statusNotification = new NotificationType<Status>('codingplan/status');

/** The result of the enable, disable and toggle commands. */
export interface Enabled {
	enabled: boolean;
}

/** The argument of `codingplan.rewrite`. */
export interface RewriteArgs {
	uri: string;
	range: Range;
	instruction: string;
}

/** The argument of `codingplan.runAction`, for clients that cannot resolve code actions. */
export interface RunActionArgs {
	uri: string;
	range: Range;
	kind: string;
}

/**
 * An action of the server's window/showMessageRequest during a sign-in (lspx.DeviceAction): the
 * device sign-in's message carries the code and the page; the extension copies and opens them
 * itself and answers with `opened: true`, so that the server does not open the page again.
 */
export interface DeviceAction {
	title: string;
	userCode?: string;
	uri?: string;
	opened?: boolean;
}

/** The titles of those actions. */
export const SignInAction = {
	copyAndOpen: 'Copy code and open',
	signIn: 'Sign in',
} as const;

/** The server's workspace/executeCommand commands. */
export const ServerCommand = {
	status: 'codingplan.status',
	signIn: 'codingplan.signIn',
	signOut: 'codingplan.signOut',
	enable: 'codingplan.enable',
	disable: 'codingplan.disable',
	toggle: 'codingplan.toggle',
	acceptCompletion: 'codingplan.acceptCompletion',
	rewrite: 'codingplan.rewrite',
	runAction: 'codingplan.runAction',
} as const;

/** The code action kinds the server offers. */
export const CodeActionKind = {
	fix: 'quickfix.codingplan.fix',
	document: 'refactor.rewrite.codingplan.document',
	explain: 'refactor.codingplan.explain',
	tests: 'refactor.codingplan.tests',
	simplify: 'refactor.rewrite.codingplan.simplify',
	rewrite: 'refactor.rewrite.codingplan.rewrite',
} as const;
