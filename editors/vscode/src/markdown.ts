// Explain's answer as a Markdown document: codingplan/showMarkdown opens a read-only virtual
// document (scheme codingplan-answer) beside the code. The text lives in memory only, for the
// last few answers, and is never written to disk.

import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { ShowMarkdownParams, showMarkdownNotification } from './protocol';

export const scheme = 'codingplan-answer';

/** How many answers stay open-able (their documents' text), oldest dropped first. */
const keep = 20;

class Answers implements vscode.TextDocumentContentProvider {
	private readonly texts = new Map<string, string>();
	private n = 0;

	add(params: ShowMarkdownParams): vscode.Uri {
		const name = (params.title || 'answer').replace(/[\\/?#%]+/g, ' ').trim();
		const uri = vscode.Uri.from({ scheme, path: `/${name}.md`, query: String(++this.n) });
		this.texts.set(uri.toString(), params.markdown);
		for (const key of this.texts.keys()) {
			if (this.texts.size <= keep) break;
			this.texts.delete(key);
		}
		return uri;
	}

	provideTextDocumentContent(uri: vscode.Uri): string {
		return this.texts.get(uri.toString()) ?? '(this answer is no longer kept; run the action again)';
	}
}

/** registerMarkdown opens every codingplan/showMarkdown of client as a Markdown document. */
export function registerMarkdown(client: LanguageClient): vscode.Disposable {
	const answers = new Answers();
	const provider = vscode.workspace.registerTextDocumentContentProvider(scheme, answers);
	const handler = client.onNotification(showMarkdownNotification, async (params) => {
		const uri = answers.add(params);
		const doc = await vscode.workspace.openTextDocument(uri);
		await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
		await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
	});
	return vscode.Disposable.from(provider, handler);
}
