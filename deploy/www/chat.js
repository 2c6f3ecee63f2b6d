/*
 * The llmgw chat page: sends a message to /chat/stream with fetch, reads
 * the Server-Sent Events from response.body as they arrive and appends
 * their text to the page.  No libraries, nothing loaded from elsewhere.
 *
 * SseParser is also what a front-end developer can lift: it follows the
 * HTML standard's event-stream rules (lines end in CRLF, LF or CR; an
 * event's data lines join with LF; a blank line ends an event; comments and
 * unknown fields are ignored), and it takes text in pieces of any size.
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
		return 'The message is too long for llmgw' + also + '.';
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
	module.exports = {SseParser, explainError};

if (typeof document !== 'undefined')
	document.addEventListener('DOMContentLoaded', () => {
		const $ = id => document.getElementById(id);
		const apiBase = (document.querySelector('meta[name=llmgw-api]') || {}).content || 'api/v1';
		const api = route => new URL(apiBase.replace(/\/*$/, '/') + route, document.baseURI);
		const tokenKey = 'llmgw-token';
		let running = null;	/* the AbortController of the reply in progress */

		function showForms() {
			const have = !!sessionStorage.getItem(tokenKey);
			$('token-form').hidden = have;
			$('chat-form').hidden = !have;
			$('forget').hidden = !have;
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
			const text = document.createTextNode('');
			reply.append(text);
			$('log').append(ex);
			return {ex, reply, text};
		}

		/* Blank options are left out, so that llmgw's defaults apply. */
		function requestBody(message) {
			const body = {message, include_usage: true};
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
			const body = requestBody(message);
			const {ex, reply, text} = newExchange(message);
			const controller = new AbortController();
			const t0 = performance.now();
			let firstMs = null, usage = null, done = false, broke = null, id = '';

			running = controller;
			$('send').disabled = true;
			$('stop').disabled = false;
			setStatus('Waiting for the first words…');
			try {
				const res = await fetch(api('chat/stream'), {
					method: 'POST',
					headers: {
						'Authorization': 'Bearer ' + token,
						'Content-Type': 'application/json',
						'Accept': 'text/event-stream',
					},
					body: JSON.stringify(body),
					signal: controller.signal,
				});
				id = res.headers.get('X-Request-Id') || '';
				if (!res.ok) {
					const answer = await res.json().catch(() => null);
					addLine(ex, 'error', explainError(res.status, answer,
					    res.headers.get('Retry-After')));
					reply.remove();
					if (res.status === 401) {
						sessionStorage.removeItem(tokenKey);
						showForms();
					}
					return false;
				}
				setStatus('Streaming…');
				const parser = new SseParser(ev => {
					if (ev.event === 'error') {
						let d;
						try { d = JSON.parse(ev.data).detail; } catch (e) { d = ev.data; }
						broke = d || 'unknown error';
					} else if (ev.event === 'usage') {
						try { usage = JSON.parse(ev.data); } catch (e) { /* shown without */ }
					} else if (ev.event === '' && ev.data === '[DONE]') {
						done = true;
					} else if (ev.event === '') {
						if (firstMs === null)
							firstMs = performance.now() - t0;
						text.appendData(ev.data);
					}
				});
				const reader = res.body.getReader();
				const decoder = new TextDecoder();
				for (;;) {
					const {done: end, value} = await reader.read();
					if (end)
						break;
					parser.feed(decoder.decode(value, {stream: true}));
				}
				parser.feed(decoder.decode());
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
			}
			if (broke !== null)
				addLine(ex, 'error', 'The reply broke off: ' + broke);
			else if (!done)
				addLine(ex, 'error', 'The stream ended before the reply was complete.');
			const secs = ((performance.now() - t0) / 1000).toFixed(1);
			let u = usage ? usage.input_tokens + ' tokens in, ' + usage.output_tokens + ' out · ' : '';
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
