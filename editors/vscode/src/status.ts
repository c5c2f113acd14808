// The status bar item, driven by the server's `codingplan/status` notification.

import * as vscode from 'vscode';
import { State, Status } from './protocol';

interface Look {
	icon: string;
	label: string;
	background?: vscode.ThemeColor;
}

const looks: Record<State, Look> = {
	signedOut: { icon: '$(sign-in)', label: 'signed out', background: new vscode.ThemeColor('statusBarItem.warningBackground') },
	connecting: { icon: '$(sync~spin)', label: 'connecting' },
	loading: { icon: '$(loading~spin)', label: 'model loading' },
	ready: { icon: '$(sparkle)', label: 'ready' },
	busy: { icon: '$(loading~spin)', label: 'busy' },
	rateLimited: { icon: '$(watch)', label: 'rate limited', background: new vscode.ThemeColor('statusBarItem.warningBackground') },
	quotaExceeded: { icon: '$(warning)', label: 'quota exceeded', background: new vscode.ThemeColor('statusBarItem.warningBackground') },
	disabled: { icon: '$(circle-slash)', label: 'disabled' },
	error: { icon: '$(error)', label: 'error', background: new vscode.ThemeColor('statusBarItem.errorBackground') },
};

/** The command the status bar item runs when clicked. */
export const menuCommand = 'codingplan.statusMenu';

export class StatusBar implements vscode.Disposable {
	private readonly item: vscode.StatusBarItem;
	private current: Status = { state: 'connecting', message: 'Starting the language server', enabled: true };

	constructor() {
		this.item = vscode.window.createStatusBarItem('codingplan.status', vscode.StatusBarAlignment.Right, 100);
		this.item.name = 'codingplan';
		this.item.command = menuCommand;
		this.render();
		this.item.show();
	}

	get status(): Status {
		return this.current;
	}

	update(status: Status): void {
		this.current = status;
		this.render();
	}

	/** fail shows an error that happened on the client side (no server to tell us). */
	fail(message: string): void {
		this.update({ state: 'error', message, enabled: this.current.enabled });
	}

	private render(): void {
		const s = this.current;
		const look = looks[s.state] ?? looks.error;
		// Ready shows the icon alone, like other assistants; any other state says what it is.
		this.item.text = s.state === 'ready' ? `${look.icon} codingplan` : `${look.icon} codingplan: ${look.label}`;
		this.item.backgroundColor = look.background;
		this.item.accessibilityInformation = { label: `codingplan: ${look.label}`, role: 'button' };
		const md = new vscode.MarkdownString(undefined, true);
		md.appendText(`codingplan: ${look.label}`);
		if (s.message) {
			md.appendText(`\n\n${s.message}`);
		}
		if (s.plan) {
			md.appendText(`\n\nPlan ${s.plan.name}: ${s.plan.inUse} of ${s.plan.concurrency} streams in use`);
		}
		if (s.retryAfterMs !== undefined) {
			md.appendText(`\n\nRetry in ${Math.ceil(s.retryAfterMs / 1000)} s`);
		}
		if (s.model) {
			md.appendText(`\n\nModel ${s.model}`);
		}
		if (s.unavailable) {
			md.appendText(`\n\n${s.unavailable}`);
		}
		this.item.tooltip = md;
	}

	dispose(): void {
		this.item.dispose();
	}
}
