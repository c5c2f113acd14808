// Running a code action's server command with a progress notification the user can cancel.
// VS Code's language client shows server-created progress in the status bar, where it cannot be
// cancelled; so the extension runs the command itself, with a work-done token of its own, and
// shows that token's progress as a cancellable notification.

import * as vscode from 'vscode';
import {
	ExecuteCommandRequest,
	WorkDoneProgress,
	WorkDoneProgressCancelNotification,
	type LanguageClient,
} from 'vscode-languageclient/node';

let next = 0;

/** runWithProgress runs the server command with args under a cancellable progress titled title. */
export async function runWithProgress(client: LanguageClient, title: string, command: string, args: unknown[]): Promise<unknown> {
	const token = `codingplan-vscode-${++next}`;
	return vscode.window.withProgress(
		{ location: vscode.ProgressLocation.Notification, title: `codingplan: ${title}`, cancellable: true },
		async (progress, cancel) => {
			const updates = client.onProgress(WorkDoneProgress.type, token, (value) => {
				if (value.kind !== 'end' && value.message) {
					progress.report({ message: value.message });
				}
			});
			const onCancel = cancel.onCancellationRequested(() => {
				void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
			});
			try {
				return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args, workDoneToken: token });
			} finally {
				onCancel.dispose();
				updates.dispose();
			}
		},
	);
}
