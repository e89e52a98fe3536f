// The multi-session dashboard: N sessions at once over the client's one WebSocket.
// Sessions are kept in sessionStorage (`persist`), so a reload continues every running card.
import { TokenmuxClient, Typewriter } from '/client/index.js';

const $ = (selector) => document.querySelector(selector);
const client = new TokenmuxClient('/ws', { reconnect: true, persist: true });
const cards = $('#cards');
const live = new Set();
let finished = 0;
let cardNumber = 0;

client.addEventListener('statechange', (event) => showConnection(event.detail));
client.addEventListener('sessionend', updateCounters);
showConnection(client.state);
client.connect().then(showProviders, () => {});
restoreCards();

function showConnection(state) {
  const pill = $('#connection');
  pill.dataset.state = state;
  pill.textContent = state === 'open' ? 'connected' : state;
}

/** The sessions the page had before a reload: their text comes back by replay from seq 0. */
function restoreCards() {
  if (!client.restored.length) return;
  const batch = document.createDocumentFragment();
  for (const session of client.restored) runCard({ session }, batch);
  cards.prepend(batch);
}

function showProviders(info) {
  const select = $('#provider');
  for (const name of info.providers ?? []) {
    const option = new Option(name === info.default_provider ? `${name} (default)` : name, name);
    select.append(option);
  }
}

function updateCounters() {
  $('#open-count').textContent = String(client.liveSessions);
  $('#done-count').textContent = String(finished);
  $('#cancel-all').disabled = live.size === 0;
  $('#empty').hidden = cards.children.length > 0;
}

function readRequests() {
  const text = $('#prompt').value.trim();
  const count = Math.max(1, Math.min(100, Number($('#count').value) || 1));
  const lines = text.split('\n').map((line) => line.trim()).filter(Boolean);
  const each = $('#mode').value === 'each';
  const prompts = each ? lines : [text];
  // "One each": every line runs, even when Sessions is below the number of lines.
  const total = each ? Math.min(100, Math.max(count, lines.length)) : count;
  const params = {};
  if ($('#max-tokens').value) params.max_tokens = Number($('#max-tokens').value);
  if ($('#rate').value !== '') params.tokens_per_second = Number($('#rate').value);
  const provider = $('#provider').value || undefined;
  return Array.from({ length: total }, (_, i) => ({
    prompt: prompts[i % prompts.length],
    ...(provider && { provider }),
    ...(Object.keys(params).length && { params }),
  }));
}

$('#controls').addEventListener('submit', (event) => {
  event.preventDefault();
  if (!$('#prompt').value.trim()) return;
  const batch = document.createDocumentFragment();
  for (const request of readRequests()) runCard({ request }, batch);
  cards.prepend(batch); // the newest batch on top, in start order
  updateCounters();
});

$('#cancel-all').addEventListener('click', () => {
  for (const session of live) session.cancel();
});

$('#clear').addEventListener('click', () => {
  for (const card of [...cards.children]) {
    if (!live.has(card.session)) card.remove();
  }
  updateCounters();
});

/** A card for a new session (`request`), or for one restored after a reload (`session`). */
function runCard({ request, session: restored }, batch) {
  const card = $('#card-template').content.firstElementChild.cloneNode(true);
  const field = (name) => card.querySelector(`.${name}`);
  cardNumber += 1;
  batch.append(card);
  const output = field('output');
  let follow = true; // keep the newest text in view unless the reader scrolled up
  output.addEventListener('scroll', () => {
    follow = output.scrollTop + output.clientHeight >= output.scrollHeight - 24;
  });
  const typewriter = new Typewriter(output, {
    onRender: () => { if (follow) output.scrollTop = output.scrollHeight; },
  });
  typewriter.start();
  let session = restored;
  try {
    session ??= client.stream(request);
  } catch (error) {
    setStatus(card, 'error');
    field('note').textContent = error.message;
    return;
  }
  card.session = session;
  card.dataset.session = session.id;
  if (restored) {
    card.dataset.restored = 'true';
    field('note').textContent = 'resuming after reload…';
  }
  field('sid').textContent = `#${cardNumber} · ${session.id}`;
  live.add(session);
  field('cancel').addEventListener('click', () => {
    field('cancel').disabled = true;
    field('note').textContent = 'cancelling…';
    session.cancel();
  });

  // A restored card's events arrive as a burst of replay: its time to first token is the
  // server's (final metadata), and its rate is worked out at the end.
  const began = performance.now();
  let firstChunkAt = null;
  let serverTtftMs = null;
  let chunks = 0;
  let metaPending = false;
  const showMeta = () => {
    metaPending = false;
    if (firstChunkAt !== null && !restored) {
      field('ttft').textContent = `${Math.round(firstChunkAt - began)} ms`;
      const seconds = (performance.now() - firstChunkAt) / 1000;
      if (seconds > 0.05 && !session.ended) field('rate').textContent = (chunks / seconds).toFixed(1);
    }
    if (serverTtftMs !== null) field('ttft').textContent = `${Math.round(serverTtftMs)} ms`;
    field('tokens').textContent = String(session.usage?.output_tokens ?? chunks);
  };
  const scheduleMeta = () => {
    if (!metaPending) { metaPending = true; requestAnimationFrame(showMeta); }
  };

  (async () => {
    try {
      for await (const event of session) {
        switch (event.type) {
          case 'stream_start':
            setStatus(card, 'streaming');
            field('model').textContent = `${event.data.provider}/${event.data.model}`;
            field('model').title = field('model').textContent;
            break;
          case 'content_chunk':
            firstChunkAt ??= performance.now();
            chunks = event.data.index + 1; // the chunks before a recovered: false replay count too
            if (restored && field('note').textContent === 'resuming after reload…') field('note').textContent = '';
            typewriter.append(event.data.content);
            scheduleMeta();
            break;
          case 'metadata':
            if (event.data.recovered === false) showRecovery(event);
            if (restored && typeof event.data.ttft_ms === 'number') serverTtftMs = event.data.ttft_ms;
            if (field('model').textContent === '–' && event.data.model) field('model').textContent = event.data.model;
            scheduleMeta();
            break;
          case 'error':
            field('note').textContent = `${event.data.code}: ${event.data.message}`;
            break;
          case 'stream_end':
            finish(event.data);
            break;
        }
      }
    } catch (error) {
      setStatus(card, 'error');
      field('note').textContent = `${error.code ?? 'error'}: ${error.message}`;
      typewriter.end();
    } finally {
      live.delete(session);
      field('cancel').disabled = true;
      finished += 1;
      updateCounters();
    }
  })();

  /** The server no longer kept the start: say so, since the text before came in one piece. */
  function showRecovery(event) {
    card.dataset.recovered = 'false';
    typewriter.set(event.data.content_so_far);
    const kept = client.serverInfo?.resume?.buffer_events;
    const notice = field('replay');
    notice.hidden = false;
    notice.textContent = `Replayed from event ${event.seq + 1}${kept ? ` (the server keeps the last ${kept})` : ''}: `
      + `the ${event.data.content_so_far.length} characters before it were restored in one piece.`;
  }

  function finish(end) {
    const status = end.reason === 'complete' || end.reason === 'cancelled' ? end.reason : 'error';
    setStatus(card, status);
    typewriter.end();
    showMeta();
    const ttftMs = restored ? serverTtftMs : firstChunkAt === null ? null : firstChunkAt - began;
    if (ttftMs !== null && end.duration_ms) {
      const streamingMs = end.duration_ms - ttftMs;
      if (streamingMs > 0) field('rate').textContent = (end.chunks / (streamingMs / 1000)).toFixed(1);
    }
    const seconds = `${(end.duration_ms / 1000).toFixed(2)} s`;
    if (status === 'complete') field('note').textContent = `done in ${seconds}`;
    if (status === 'cancelled') field('note').textContent = `cancelled after ${seconds}`;
    if (status === 'error' && !field('note').textContent) field('note').textContent = end.reason;
  }
}

function setStatus(card, status) {
  card.dataset.status = status;
  const badge = card.querySelector('.status');
  badge.dataset.status = status;
  badge.textContent = status;
}

updateCounters();
