// The custom parts of the codingplan language server's protocol, declared once. They mirror the
// Go declarations in lsp/ (see docs/protocol.md and the lead's contracts): change both together.

import { NotificationType, Range } from 'vscode-languageclient';

/** The states of the `codingplan/status` notification. */
export type State =
	| 'signedOut'
	| 'connecting'
	| 'loading'
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

/** Why a state needs the user (`reason` of `codingplan/status`); editors tell the user once per state and reason. */
export type Reason =
	| 'signedOut'
	| 'tokenRejected'
	| 'tokenExpired'
	| 'subscriptionInactive'
	| 'unreachable'
	| 'noBackendUrl'
	| 'rateLimited'
	| 'backendBusy'
	| 'quotaExceeded'
	| 'modelLoading'
	| 'modelFailed'
	| 'protocol';

/** The body of `codingplan/status`, also the result of the status, sign-in and sign-out commands. */
export interface Status {
	state: State;
	/** Human text, safe to show. */
	message: string;
	/** Why, when the state needs the user. */
	reason?: Reason;
	/** When rate limited or retrying a connection: how long until the next try. */
	retryAfterMs?: number;
	plan?: Plan;
	/** Whether completions are enabled. */
	enabled: boolean;
	/** The model requests go to, once the backend listed its models. */
	model?: string;
	/** Which features are off because the model cannot serve them, and why. */
	unavailable?: string;
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

/** The argument of `codingplan.runAction`, the command every offered code action carries. */
export interface RunActionArgs {
	uri: string;
	range: Range;
	kind: string;
	version?: number;
	diagnostics?: string[];
}

/** The body of `codingplan/showMarkdown`: a whole answer (Explain's) to open as Markdown. */
export interface ShowMarkdownParams {
	title: string;
	markdown: string;
}

/**
 * Server -> client: open this Markdown. The server sends it to a client whose experimental
 * capabilities say `{ codingplan: { showMarkdown: true } }` (see experimentalCapabilities).
 */
export const showMarkdownNotification = new NotificationType<ShowMarkdownParams>('codingplan/showMarkdown');

/** The client's experimental capabilities the server reads, under `codingplan`. */
export const experimentalCapabilities = { codingplan: { showMarkdown: true } } as const;

/**
 * The change annotation code action edits carry, with needsConfirmation: VS Code shows them in
 * its refactor preview before they apply.
 */
export const annotationPreview = 'codingplan.preview';

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
	retry: 'codingplan.retry',
	enable: 'codingplan.enable',
	disable: 'codingplan.disable',
	toggle: 'codingplan.toggle',
	acceptCompletion: 'codingplan.acceptCompletion',
	rewrite: 'codingplan.rewrite',
	runAction: 'codingplan.runAction',
} as const;

/** The titles of the code actions, by kind, for their progress notifications. */
export const actionTitles: Record<string, string> = {
	'quickfix.codingplan.fix': 'Fix',
	'refactor.rewrite.codingplan.document': 'Add documentation',
	'refactor.codingplan.explain': 'Explain',
	'refactor.codingplan.tests': 'Write tests',
	'refactor.rewrite.codingplan.simplify': 'Simplify',
	'refactor.rewrite.codingplan.rewrite': 'Rewrite',
};

/** The code action kinds the server offers. */
export const CodeActionKind = {
	fix: 'quickfix.codingplan.fix',
	document: 'refactor.rewrite.codingplan.document',
	explain: 'refactor.codingplan.explain',
	tests: 'refactor.codingplan.tests',
	simplify: 'refactor.rewrite.codingplan.simplify',
	rewrite: 'refactor.rewrite.codingplan.rewrite',
} as const;
