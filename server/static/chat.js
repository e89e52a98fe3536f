// A single-stream chat over the SSE route, POST /api/stream.
import { streamSSE, Typewriter } from '/client/index.js';

const $ = (selector) => document.querySelector(selector);
const output = $('#output');
const errorBox = $('.error');
const typewriter = new Typewriter(output);
let controller = null;

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function setBusy(busy) {
  $('#send').disabled = busy;
  $('#stop').hidden = !busy;
}

$('#stop').addEventListener('click', () => controller?.abort());

$('#composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const prompt = $('#prompt').value.trim();
  if (!prompt || controller) return;
  $('#question').textContent = prompt;
  $('#question').hidden = false;
  errorBox.hidden = true;
  $('#status').textContent = '';
  $('#prompt').value = '';
  typewriter.start();
  controller = new AbortController();
  setBusy(true);
  const began = performance.now();
  let firstChunk = null;
  try {
    for await (const envelope of streamSSE('/api/stream', { prompt }, { signal: controller.signal })) {
      if (envelope.type === 'stream_start') {
        $('#status').textContent = `${envelope.data.provider}/${envelope.data.model}`;
      } else if (envelope.type === 'content_chunk') {
        firstChunk ??= performance.now() - began;
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
    controller = null;
    setBusy(false);
    $('#prompt').focus();
  }
});
