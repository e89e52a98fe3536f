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
watchFromLink();

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

/**
 * A page opened from a card's "open in new tab" link (`#watch=ID&token=T`) watches that
 * session live as one more reader: the first tab keeps it. The token stays in the fragment,
 * which is never sent to the server or in a Referer.
 */
function watchFromLink() {
  const link = new URLSearchParams(location.hash.slice(1));
  const id = link.get('watch');
  const token = link.get('token');
  if (!id || !token) return;
  const batch = document.createDocumentFragment();
  runCard({ session: client.watch(id, { token }) }, batch);
  cards.prepend(batch);
}

function showProviders(info) {
  const select = $('#provider');
  for (const name of info.providers ?? []) {
    const option = new Option(name === info.default_provider ? `${name} (default)` : name, name);
    select.append(option);
  }
  showSimulatorKnobs();
}

/** Whether the chosen provider is the simulator, the only one that takes its knobs. */
function simulatorChosen() {
  const info = client.serverInfo;
  if (!info) return false;
  const name = $('#provider').value || info.default_provider;
  return info.provider_types?.[name] === 'sim';
}

function showSimulatorKnobs() {
  const simulator = simulatorChosen();
  for (const label of document.querySelectorAll('.sim-only')) {
    label.dataset.disabled = String(!simulator);
    label.querySelector('input').disabled = !simulator;
    label.title = simulator ? '' : 'the simulator\'s knob: other providers refuse it';
  }
}

$('#provider').addEventListener('change', showSimulatorKnobs);

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
  if (simulatorChosen()) { // another provider answers the simulator's knobs with invalid_field
    if ($('#rate').value !== '') params.tokens_per_second = Number($('#rate').value);
    if ($('#reasoning').value !== '') params.reasoning_tokens = Number($('#reasoning').value);
    if ($('#sources').value !== '') params.sources = Number($('#sources').value);
  }
  const provider = $('#provider').value || undefined;
  return Array.from({ length: total }, (_, i) => ({
    prompt: prompts[i % prompts.length],
    ...(provider && { provider }),
    ...(Object.keys(params).length && { params }),
    ...($('#tools').checked && { tools: [WEATHER_TOOL] }),
  }));
}

/** The sample tool the "tools" toggle sends, and the page's canned answer to a call of it. */
const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city, e.g. Paris' } },
    required: ['city'],
  },
};
const MAX_TOOL_TURNS = 4; // a model that keeps calling stops here

/** @returns {string} the tool's result, as the `tool` turn's content */
function runTool(call) {
  if (call.name !== WEATHER_TOOL.name || call.arguments === null) {
    return JSON.stringify({ error: `cannot run ${call.name} with these arguments` });
  }
  return JSON.stringify({ city: call.arguments.city, temp_c: 21, sky: 'sunny' });
}

/** The next request of a tool loop: the turns so far, the assistant's calls, their results. */
function followUp(request, session, results) {
  const assistant = {
    role: 'assistant',
    content: session.text,
    tool_calls: session.toolCalls.map(({ id, name, arguments: args, signature }) => (
      { id, name, arguments: args ?? {}, ...(signature && { signature }) })),
    ...((session.reasoning || session.reasoningSignature) && {
      reasoning: { text: session.reasoning, ...(session.reasoningSignature && { signature: session.reasoningSignature }) },
    }),
  };
  const { prompt, messages, ...rest } = request;
  return {
    ...rest,
    messages: [
      ...(messages ?? [{ role: 'user', content: prompt }]),
      assistant,
      ...results.map(({ call, content }) => ({ role: 'tool', tool_call_id: call.id, content })),
    ],
  };
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

/**
 * A card for a new session (`request`), or for one restored after a reload (`session`).
 * With tools, the card runs the whole loop: each answer that ends in tool calls is answered
 * with the tools' results and the conversation continues, one session per turn.
 */
function runCard({ request, session: restored }, batch) {
  const card = $('#card-template').content.firstElementChild.cloneNode(true);
  const field = (name) => card.querySelector(`.${name}`);
  cardNumber += 1;
  const number = cardNumber;
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
  let session = null;
  field('cancel').addEventListener('click', () => {
    field('cancel').disabled = true;
    field('note').textContent = 'cancelling…';
    session?.cancel();
  });
  if (restored?.watching) {
    card.dataset.watching = 'true';
    field('note').textContent = 'watching…';
  } else if (restored) {
    card.dataset.restored = 'true';
    field('note').textContent = 'resuming after reload…';
  }

  (async () => {
    let next = request;
    for (let turn = 0; ; turn += 1) {
      try {
        session = restored ?? client.stream(next);
      } catch (error) {
        setStatus(card, 'error');
        field('note').textContent = error.message;
        typewriter.end();
        break;
      }
      card.session = session;
      card.dataset.session = session.id;
      card.dataset.turn = String(turn + 1);
      field('sid').textContent = `#${number} · ${session.id}${turn ? ` · turn ${turn + 1}` : ''}`;
      live.add(session);
      field('cancel').disabled = false;
      updateCounters();
      const ended = await followTurn(session, Boolean(restored));
      live.delete(session);
      const calls = session.toolCalls;
      const loop = ended === 'complete' && next?.tools && session.finishReason === 'tool_calls' && calls.length;
      if (!loop) break;
      if (turn + 1 >= MAX_TOOL_TURNS) {
        field('note').textContent = `stopped after ${MAX_TOOL_TURNS} tool turns`;
        break;
      }
      const results = calls.map((call) => ({ call, content: runTool(call) }));
      for (const result of results) showToolResult(result);
      if (session.text) typewriter.append('\n\n');
      setStatus(card, 'streaming');
      field('note').textContent = 'answering the tool call…';
      next = followUp(next, session, results);
    }
    typewriter.end();
    field('cancel').disabled = true;
    finished += 1;
    updateCounters();
  })();

  /** The card's "open in new tab" link: another page that watches this session live. */
  function showWatchLink(session) {
    const link = field('watch-link');
    if (!session.resumeToken || session.ended) return;
    const fragment = new URLSearchParams({ watch: session.id, token: session.resumeToken });
    link.href = `${location.pathname}#${fragment}`;
    link.hidden = false;
    session.done.finally(() => { link.hidden = true; }).catch(() => {});
  }

  /** Follow one session (one turn of the card) to its end; resolves with its end reason. */
  async function followTurn(session, replay) {
    // A restored card's events arrive as a burst of replay: its time to first token is the
    // server's (final metadata), and its rate is worked out at the end.
    const began = performance.now();
    let firstChunkAt = null;
    let serverTtftMs = null;
    let chunks = 0;
    let metaPending = false;
    let reasoning = null; // this turn's reasoning block, made on its first piece
    const callBlocks = new Map();
    const showMeta = () => {
      metaPending = false;
      if (firstChunkAt !== null && !replay) {
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
    session.onReasoning = (delta) => {
      reasoning ??= addReasoning();
      reasoning.text.append(delta); // shown as it arrives: only the answer is typed out
      reasoning.size.textContent = `· ${session.reasoning.length} characters`;
      firstChunkAt ??= performance.now();
    };
    session.onToolCall = (call) => {
      let block = callBlocks.get(call.id);
      if (!block) callBlocks.set(call.id, (block = addToolCall(call)));
      showToolCall(block, call);
    };
    session.onSource = (source) => addSource(source);
    let reason = 'error';
    try {
      for await (const event of session) {
        switch (event.type) {
          case 'stream_start':
            setStatus(card, 'streaming');
            showWatchLink(session);
            field('model').textContent = `${event.data.provider}/${event.data.model}`;
            field('model').title = field('model').textContent;
            break;
          case 'content_chunk':
            firstChunkAt ??= performance.now();
            chunks = event.data.index + 1; // the chunks before a recovered: false replay count too
            if (['resuming after reload…', 'answering the tool call…', 'watching…'].includes(field('note').textContent)) {
              field('note').textContent = '';
            }
            typewriter.append(event.data.content);
            scheduleMeta();
            break;
          case 'metadata':
            if (event.data.recovered === false) showRecovery(event);
            if (replay && typeof event.data.ttft_ms === 'number') serverTtftMs = event.data.ttft_ms;
            if (field('model').textContent === '–' && event.data.model) field('model').textContent = event.data.model;
            scheduleMeta();
            break;
          case 'error':
            field('note').textContent = `${event.data.code}: ${event.data.message}`;
            break;
          case 'stream_end':
            reason = event.data.reason;
            finish(event.data);
            break;
        }
      }
    } catch (error) {
      setStatus(card, 'error');
      field('note').textContent = `${error.code ?? 'error'}: ${error.message}`;
    }
    return reason;

    function finish(end) {
      const status = end.reason === 'complete' || end.reason === 'cancelled' ? end.reason : 'error';
      setStatus(card, status);
      showMeta();
      const ttftMs = replay ? serverTtftMs : firstChunkAt === null ? null : firstChunkAt - began;
      if (ttftMs !== null && end.duration_ms && end.chunks) {
        const streamingMs = end.duration_ms - ttftMs;
        if (streamingMs > 0) field('rate').textContent = (end.chunks / (streamingMs / 1000)).toFixed(1);
      }
      const seconds = `${(end.duration_ms / 1000).toFixed(2)} s`;
      if (status === 'complete') {
        field('note').textContent = session.refusal ? `refused: ${session.refusal}`
          : session.finishReason === 'tool_calls' ? `called ${session.toolCalls.map((c) => c.name).join(', ')} in ${seconds}`
            : `done in ${seconds}`;
      }
      if (status === 'cancelled') field('note').textContent = `cancelled after ${seconds}`;
      if (status === 'error' && !field('note').textContent) field('note').textContent = end.reason;
    }
  }

  function addReasoning() {
    const block = $('#reasoning-template').content.firstElementChild.cloneNode(true);
    field('trace').append(block);
    return { text: block.querySelector('.reasoning-text'), size: block.querySelector('.reasoning-size') };
  }

  function addToolCall(call) {
    const block = $('#tool-call-template').content.firstElementChild.cloneNode(true);
    block.dataset.call = call.id;
    field('trace').append(block);
    return block;
  }

  /** The call's name, then its arguments as they stream, then the parsed object. */
  function showToolCall(block, call) {
    block.querySelector('.tool-name').textContent = call.name;
    const args = block.querySelector('.tool-args');
    const state = block.querySelector('.tool-state');
    if (call.status === 'streaming') {
      args.textContent = call.argumentsText;
      return;
    }
    if (call.error === 'invalid_json') {
      block.dataset.status = 'invalid';
      state.textContent = 'arguments are not valid JSON';
      args.textContent = call.argumentsText;
    } else {
      block.dataset.status = 'done';
      state.textContent = 'arguments parsed';
      args.textContent = JSON.stringify(call.arguments, null, 2);
    }
  }

  function showToolResult({ call, content }) {
    const block = $('#tool-result-template').content.firstElementChild.cloneNode(true);
    block.dataset.call = call.id;
    block.querySelector('.tool-name').textContent = call.name;
    block.querySelector('.tool-output').textContent = content;
    field('trace').append(block);
  }

  function addSource(source) {
    const list = field('sources');
    const item = document.createElement('li');
    if (source.url) {
      const link = Object.assign(document.createElement('a'), { href: source.url, target: '_blank', rel: 'noopener' });
      link.textContent = source.title ?? source.url;
      item.append(link);
    } else {
      item.textContent = source.title ?? `document ${source.document_index ?? ''}`.trim();
    }
    if (source.cited_text) item.append(' — ', Object.assign(document.createElement('q'), { textContent: source.cited_text }));
    list.append(item);
    list.hidden = false;
  }

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
}

function setStatus(card, status) {
  card.dataset.status = status;
  const badge = card.querySelector('.status');
  badge.dataset.status = status;
  badge.textContent = status;
}

updateCounters();
