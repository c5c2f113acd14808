// Telling the user, once, about a state that needs them: a notification per state and reason
// (signed out and why, token expired, backend unreachable, rate limited, subscription inactive,
// model loading), with the action that helps, besides the status bar.

import * as vscode from 'vscode';
import { Reason, ServerCommand, Status } from './protocol';

interface Action {
	title: string;
	command: string;
}

const signIn: Action = { title: 'Sign in', command: 'codingplan.signIn' };

const actions: Partial<Record<Reason, Action>> = {
	signedOut: signIn,
	tokenRejected: signIn,
	tokenExpired: signIn,
	unreachable: { title: 'Retry now', command: ServerCommand.retry },
	noBackendUrl: { title: 'Open Settings', command: 'workbench.action.openSettings' },
};

export class Notifier {
	/** The state+reason pairs already told; cleared when the server is ready again, but for rate limits. */
	private readonly told = new Set<string>();

	onStatus(s: Status): void {
		if (s.state === 'ready' || s.state === 'busy') {
			for (const key of this.told) {
				if (!key.startsWith('rateLimited:')) {
					this.told.delete(key);
				}
			}
			return;
		}
		if (!s.reason) {
			return;
		}
		const key = `${s.state}:${s.reason}`;
		if (this.told.has(key)) {
			return;
		}
		this.told.add(key);
		void this.show(s);
	}

	private async show(s: Status): Promise<void> {
		let text = `codingplan: ${s.message}`;
		if (s.retryAfterMs !== undefined && !s.message.includes('retrying in')) {
			text += ` (retry in ${Math.ceil(s.retryAfterMs / 1000)} s)`;
		}
		const action = actions[s.reason!];
		const items = action ? [action.title] : [];
		const show =
			s.state === 'error'
				? vscode.window.showErrorMessage
				: s.state === 'loading'
					? vscode.window.showInformationMessage
					: vscode.window.showWarningMessage;
		const pick = await show(text, ...items);
		if (action && pick === action.title) {
			const args = action.command === 'workbench.action.openSettings' ? ['codingplan.backendUrl'] : [];
			await vscode.commands.executeCommand(action.command, ...args);
		}
	}
}
