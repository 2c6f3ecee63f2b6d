/*
 * The llmgw chat page: a conversation kept in this tab, sent whole with
 * each message to /chat/ui (the Vercel AI SDK's chat protocol), the reply
 * read from response.body as it arrives and shown as Markdown.  No
 * libraries, nothing loaded from elsewhere.
 *
 * What a front-end developer can lift:
 *  - SseParser follows the HTML standard's event-stream rules (lines end
 *    in CRLF, LF or CR; an event's data lines join with LF; a blank line
 *    ends an event; comments and unknown fields are ignored), and takes
 *    text in pieces of any size.
 *  - UiStream reads the UI message stream (JSON chunks: start, text-delta,
 *    finish with the usage, error, then [DONE]).
 *  - markdownTree() turns the model's text into a tree of a few safe
 *    elements (paragraphs, headings, lists, code, emphasis, links to
 *    http, https and mailto only); toDom() builds it with textContent
 *    only, so no markup from the model ever reaches the page as HTML.
 */
'use strict';

class SseParser {
	/* onEvent({event, data}) for each complete event; event is '' when
	 * the stream named none. */
	constructor(onEvent) {
		this.onEvent = onEvent;
		this.rest = '';
		this.event = '';
		this.data = [];
	}

	/* Text as it arrives; decode bytes with TextDecoder's stream option
	 * first, so that a character split between chunks survives. */
	feed(text) {
		const lineEnd = /\r\n|\n|\r(?!$)/g;	/* a final CR may be half a CRLF */
		const buf = this.rest + text;
		let from = 0;
		let m;

		while ((m = lineEnd.exec(buf)) !== null) {
			this.line(buf.slice(from, m.index));
			from = lineEnd.lastIndex;
		}
		this.rest = buf.slice(from);
	}

	line(line) {
		if (line === '') {
			if (this.data.length > 0)
				this.onEvent({event: this.event, data: this.data.join('\n')});
			this.event = '';
			this.data = [];
			return;
		}
		if (line[0] === ':')
			return;				/* a comment: keep-alive */
		const colon = line.indexOf(':');
		const field = colon < 0 ? line : line.slice(0, colon);
		let value = colon < 0 ? '' : line.slice(colon + 1);
		if (value[0] === ' ')
			value = value.slice(1);
		if (field === 'data')
			this.data.push(value);
		else if (field === 'event')
			this.event = value;
	}
}

/*
 * The UI message stream, chunk by chunk: on.text(delta), on.finish(usage,
 * reason), on.error(text); done is true once [DONE] came.
 */
class UiStream {
	constructor(on) {
		this.on = on;
		this.done = false;
		this.finished = false;
		this.parser = new SseParser(ev => this.event(ev));
	}

	feed(text) { this.parser.feed(text); }

	event(ev) {
		if (ev.data === '[DONE]') {
			this.done = true;
			return;
		}
		let c;
		try { c = JSON.parse(ev.data); } catch (e) { return; }
		if (c.type === 'text-delta' && typeof c.delta === 'string')
			this.on.text(c.delta);
		else if (c.type === 'finish') {
			this.finished = true;
			const m = c.messageMetadata || {};
			this.on.finish(m.usage || null, c.finishReason || '');
		} else if (c.type === 'error')
			this.on.error(String(c.errorText || 'unknown error'));
	}
}

/* Links the page makes: nothing that can run script. */
function safeHref(url) {
	return /^(https?:\/\/|mailto:)/i.test(url.trim()) ? url.trim() : null;
}

/* Inline Markdown: code spans, **strong**, *em* or _em_, [text](url). */
function inlineTree(text) {
	const out = [];
	const re = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*|\b_([^_\n]+)_\b|\[([^\]\n]+)\]\(([^)\s]+)\)/g;
	let at = 0;
	let m;

	while ((m = re.exec(text)) !== null) {
		if (m.index > at)
			out.push(text.slice(at, m.index));
		if (m[1] !== undefined)
			out.push({tag: 'code', children: [m[1]]});
		else if (m[2] !== undefined)
			out.push({tag: 'strong', children: inlineTree(m[2])});
		else if (m[3] !== undefined || m[4] !== undefined)
			out.push({tag: 'em', children: inlineTree(m[3] !== undefined ? m[3] : m[4])});
		else {
			const href = safeHref(m[6]);
			out.push(href ? {tag: 'a', href, children: inlineTree(m[5])} : m[0]);
		}
		at = re.lastIndex;
	}
	if (at < text.length)
		out.push(text.slice(at));
	return out;
}

/*
 * Block Markdown: fenced code (```), headings (#), lists (-, *, + or
 * 1.), paragraphs (lines between blank lines).  A tree of {tag, children,
 * href?, lang?} and strings; an unfinished fence (a reply still coming)
 * is code to the end.
 */
function markdownTree(src) {
	const lines = src.split(/\r\n|\n|\r/);
	const blocks = [];
	let para = null, list = null;
	const flush = () => { para = null; list = null; };

	for (let i = 0; i < lines.length; i++) {
		const line = lines[i];
		const fence = /^\s*```\s*([\w+-]*)\s*$/.exec(line);
		if (fence) {
			const code = [];
			for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++)
				code.push(lines[i]);
			blocks.push({tag: 'pre', lang: fence[1], children: [{tag: 'code', children: [code.join('\n')]}]});
			flush();
			continue;
		}
		if (/^\s*$/.test(line)) {
			flush();
			continue;
		}
		const head = /^(#{1,6})\s+(.*)$/.exec(line);
		if (head) {
			blocks.push({tag: 'h' + Math.min(6, head[1].length + 2), children: inlineTree(head[2])});
			flush();
			continue;
		}
		const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
		if (item) {
			const tag = /\d/.test(item[1]) ? 'ol' : 'ul';
			if (!list || list.tag !== tag) {
				list = {tag, children: []};
				blocks.push(list);
			}
			list.children.push({tag: 'li', children: inlineTree(item[2])});
			para = null;
			continue;
		}
		if (para) {
			para.children.push('\n', ...inlineTree(line));
		} else {
			para = {tag: 'p', children: inlineTree(line)};
			blocks.push(para);
			list = null;
		}
	}
	return blocks;
}

/* Build a markdownTree() in "parent", with textContent and a few
 * attributes only; code blocks get a copy button. */
function toDom(tree, parent) {
	const doc = parent.ownerDocument;
	for (const n of tree) {
		if (typeof n === 'string') {
			parent.append(doc.createTextNode(n));
			continue;
		}
		const el = doc.createElement(n.tag);
		if (n.tag === 'a') {
			el.href = n.href;
			el.rel = 'noopener noreferrer';
			el.target = '_blank';
		}
		if (n.tag === 'pre') {
			const box = doc.createElement('div');
			box.className = 'code';
			const copy = doc.createElement('button');
			copy.type = 'button';
			copy.className = 'copy';
			copy.textContent = 'Copy';
			const text = n.children[0].children[0];
			copy.addEventListener('click', () => {
				navigator.clipboard.writeText(text).then(() => { copy.textContent = 'Copied'; },
				    () => { copy.textContent = 'Copy failed'; });
			});
			box.append(copy, el);
			parent.append(box);
		} else
			parent.append(el);
		toDom(n.children || [], el);
	}
}

/* The words for an HTTP error from llmgw, from its status and JSON detail. */
function explainError(status, body, retryAfter) {
	let detail = body && body.detail;

	if (Array.isArray(detail))	/* 422: one entry per problem */
		detail = detail.map(d => {
			const where = Array.isArray(d.loc) ? d.loc.filter(x => x !== 'body').join('.') : '';
			return (where ? where + ': ' : '') + d.msg;
		}).join('; ');
	else if (typeof detail !== 'string')
		detail = '';
	const also = detail ? ' (' + detail + ')' : '';
	switch (status) {
	case 401:
		return 'The token was not accepted' + also + '. Enter it again.';
	case 403:
		return 'This token may not do that' + also + '.';
	case 413:
		return 'The conversation is too long for llmgw' + also + '. Start a new one.';
	case 422:
		return 'llmgw could not accept the message: ' + (detail || 'invalid request') + '.';
	case 429: {
		const secs = parseInt(retryAfter, 10);
		return 'Too many requests' + also + '. ' + (secs >= 0 ?
		    'Try again in ' + secs + (secs === 1 ? ' second.' : ' seconds.') :
		    'Try again in a little while.');
	}
	case 502:
		return 'The AI service failed' + also + '. Try again.';
	case 503:
		return 'The AI service is overloaded right now' + also + '. Try again in a little while.';
	case 504:
		return 'The AI service did not answer in time' + also + '.';
	default:
		return 'llmgw answered ' + status + also + '.';
	}
}

if (typeof module !== 'undefined')
	module.exports = {SseParser, UiStream, markdownTree, safeHref, explainError};

if (typeof document !== 'undefined')
	document.addEventListener('DOMContentLoaded', () => {
		const $ = id => document.getElementById(id);
		const apiBase = (document.querySelector('meta[name=llmgw-api]') || {}).content || 'api/v1';
		const api = route => new URL(apiBase.replace(/\/*$/, '/') + route, document.baseURI);
		const tokenKey = 'llmgw-token';
		let running = null;	/* the AbortController of the reply in progress */
		let conversation = [];	/* {role, text}: what is sent with each message */
		let chatId = String(Date.now());

		function showForms() {
			const have = !!sessionStorage.getItem(tokenKey);
			$('token-form').hidden = have;
			$('chat-form').hidden = !have;
			$('forget').hidden = !have;
			$('new').hidden = !have;
			(have ? $('message') : $('token')).focus();
		}

		function setStatus(text) { $('status').textContent = text; }

		function addLine(parent, cls, text) {
			const el = document.createElement('div');
			el.className = cls;
			el.textContent = text;
			parent.append(el);
			return el;
		}

		function newExchange(message) {
			const ex = document.createElement('div');
			ex.className = 'exchange';
			addLine(ex, 'user', message);
			const reply = addLine(ex, 'reply', '');
			$('log').append(ex);
			return {ex, reply};
		}

		/* The reply so far, as Markdown; its text kept for the tests and
		 * for copying. */
		function render(reply, text) {
			reply.replaceChildren();
			toDom(markdownTree(text), reply);
			reply.dataset.text = text;
		}

		/* The body /chat/ui takes: the conversation as UI messages, and
		 * the options that are set (blank ones leave llmgw's defaults). */
		function requestBody() {
			const body = {
				id: chatId,
				trigger: 'submit-message',
				messages: conversation.map((m, i) => ({id: 'm' + i, role: m.role,
				    parts: [{type: 'text', text: m.text}]})),
			};
			const model = $('model').value.trim();
			const max = $('max-tokens').value.trim();

			if (model)
				body.model = model;
			if (max)
				body.max_tokens = Number(max);
			return body;
		}

		async function send(message) {
			const token = sessionStorage.getItem(tokenKey);
			const {ex, reply} = newExchange(message);
			const controller = new AbortController();
			const t0 = performance.now();
			let firstMs = null, usage = null, broke = null, id = '', text = '';

			conversation.push({role: 'user', text: message});
			running = controller;
			$('send').disabled = true;
			$('stop').disabled = false;
			setStatus('Waiting for the first words…');
			const stream = new UiStream({
				text: delta => {
					if (firstMs === null)
						firstMs = performance.now() - t0;
					text += delta;
					render(reply, text);
				},
				finish: u => { usage = u; },
				error: e => { broke = e; },
			});
			try {
				const res = await fetch(api('chat/ui'), {
					method: 'POST',
					headers: {
						'Authorization': 'Bearer ' + token,
						'Content-Type': 'application/json',
						'Accept': 'text/event-stream',
					},
					body: JSON.stringify(requestBody()),
					signal: controller.signal,
				});
				id = res.headers.get('X-Request-Id') || '';
				if (!res.ok) {
					const answer = await res.json().catch(() => null);
					addLine(ex, 'error', explainError(res.status, answer,
					    res.headers.get('Retry-After')));
					reply.remove();
					conversation.pop();	/* not taken: sent again */
					if (res.status === 401) {
						sessionStorage.removeItem(tokenKey);
						showForms();
					}
					return false;
				}
				setStatus('Streaming…');
				const reader = res.body.getReader();
				const decoder = new TextDecoder();
				for (;;) {
					const {done: end, value} = await reader.read();
					if (end)
						break;
					stream.feed(decoder.decode(value, {stream: true}));
				}
				stream.feed(decoder.decode());
			} catch (e) {
				if (controller.signal.aborted)
					addLine(ex, 'error', 'Stopped. llmgw has cancelled the rest of the reply.');
				else
					addLine(ex, 'error', 'Could not reach llmgw: ' + e.message);
				return true;
			} finally {
				running = null;
				$('send').disabled = false;
				$('stop').disabled = true;
				setStatus('');
				if (id)
					ex.dataset.requestId = id;
				/* What the model said, even cut short, is the
				 * conversation's next turn. */
				if (text)
					conversation.push({role: 'assistant', text});
				render(reply, text);
			}
			if (broke !== null)
				addLine(ex, 'error', 'The reply broke off: ' + broke);
			else if (!stream.finished)
				addLine(ex, 'error', 'The stream ended before the reply was complete.');
			const secs = ((performance.now() - t0) / 1000).toFixed(1);
			let u = usage ? usage.inputTokens + ' tokens in, ' + usage.outputTokens + ' out · ' : '';
			if (firstMs !== null)
				u += 'first words after ' + Math.round(firstMs) + ' ms · ';
			addLine(ex, 'usage', u + secs + ' s' + (id ? ' · request ' + id : ''));
			return true;
		}

		$('token-form').addEventListener('submit', e => {
			e.preventDefault();
			sessionStorage.setItem(tokenKey, $('token').value.trim());
			$('token').value = '';
			showForms();
		});
		$('forget').addEventListener('click', () => {
			sessionStorage.removeItem(tokenKey);
			showForms();
		});
		$('new').addEventListener('click', () => {
			if (running)
				running.abort();
			conversation = [];
			chatId = String(Date.now());
			$('log').replaceChildren();
			$('message').focus();
		});
		$('chat-form').addEventListener('submit', async e => {
			e.preventDefault();
			const message = $('message').value;
			if (!message.trim() || running)
				return;
			/* The message stays in the box until llmgw has taken it. */
			if (await send(message) && $('message').value === message)
				$('message').value = '';
		});
		$('message').addEventListener('keydown', e => {
			if (e.key === 'Enter' && (e.ctrlKey || e.metaKey))
				$('chat-form').requestSubmit();
		});
		$('stop').addEventListener('click', () => {
			if (running)
				running.abort();
		});
		showForms();
	});
