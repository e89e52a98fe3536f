// A chat over the SSE route, POST /api/stream: the whole conversation goes with every
// question as `messages`, so the model sees what was said before.
import { streamSSE, Typewriter } from '/client/index.js';

const $ = (selector) => document.querySelector(selector);
const conversation = $('#conversation');
const errorBox = $('.error');
/** @type {{role: 'user' | 'assistant', content: string}[]} */
let history = [];
let controller = null;

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function setBusy(busy) {
  $('#send').disabled = busy;
  $('#stop').hidden = !busy;
}

function bubble(kind, text = '') {
  const element = document.createElement('div');
  element.className = `bubble ${kind}`;
  element.textContent = text;
  conversation.append(element);
  $('#empty').hidden = true;
  return element;
}

$('#stop').addEventListener('click', () => controller?.abort());

$('#new-chat').addEventListener('click', () => {
  controller?.abort();
  history = [];
  conversation.replaceChildren();
  errorBox.hidden = true;
  $('#status').textContent = '';
  $('#empty').hidden = false;
  $('#prompt').focus();
});

$('#composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const prompt = $('#prompt').value.trim();
  if (!prompt || controller) return;
  const turns = [...history, { role: 'user', content: prompt }];
  const chat = history;
  bubble('user', prompt);
  const typewriter = new Typewriter(bubble('reply'));
  errorBox.hidden = true;
  $('#status').textContent = '';
  $('#prompt').value = '';
  typewriter.start();
  controller = new AbortController();
  setBusy(true);
  const began = performance.now();
  let firstChunk = null;
  let reply = '';
  try {
    for await (const envelope of streamSSE('/api/stream', { messages: turns }, { signal: controller.signal })) {
      if (envelope.type === 'stream_start') {
        $('#status').textContent = `${envelope.data.provider}/${envelope.data.model}`;
      } else if (envelope.type === 'content_chunk') {
        firstChunk ??= performance.now() - began;
        reply += envelope.data.content;
        typewriter.append(envelope.data.content);
      } else if (envelope.type === 'error') {
        showError(`${envelope.data.message} (${envelope.data.code})`);
      } else if (envelope.type === 'stream_end') {
        const ttft = firstChunk === null ? '' : ` · first token after ${Math.round(firstChunk)} ms`;
        $('#status').textContent += ` · ${envelope.data.reason}${ttft}`;
      }
    }
  } catch (error) {
    if (error?.name === 'AbortError') $('#status').textContent += ' · stopped';
    else showError(`The request failed: ${error.message}`);
  } finally {
    typewriter.end();
    // A question without any answer is not part of the conversation (its bubble stays);
    // a stopped answer is, as far as it got. "New chat" meanwhile: keep the new one.
    if (reply && history === chat) history = [...turns, { role: 'assistant', content: reply }];
    controller = null;
    setBusy(false);
    $('#prompt').focus();
  }
});
