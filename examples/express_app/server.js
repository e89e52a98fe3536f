// An Express app that streams answers from tokenmux as its own server-sent events.
//
// GET /chat?prompt=... starts one tokenmux session and relays it to the browser as
// `event: text` / `error` / `end` blocks. The app keeps one TokenmuxClient (one WebSocket)
// for all its requests; each request is one session on it. When the browser goes away,
// the response closes, the AbortController aborts, and the client cancels the session on
// the tokenmux server, which aborts the provider request.
//
//   TOKENMUX_URL=http://127.0.0.1:8080 PORT=3000 node server.js

import express from 'express';
import WebSocket from 'ws'; // Node 20 has no WebSocket global
import { TokenmuxClient } from 'tokenmux-client';

const tokenmuxUrl = (process.env.TOKENMUX_URL ?? 'http://127.0.0.1:8080').replace(/^http/, 'ws');
const client = new TokenmuxClient(`${tokenmuxUrl}/ws`, { WebSocket, reconnect: true });

const app = express();

app.get('/chat', async (req, res) => {
  const abort = new AbortController();
  // 'close' on the response: finished, or the connection went away before that.
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const session = client.stream({ prompt: String(req.query.prompt ?? '') }, { signal: abort.signal });
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  });
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  try {
    for await (const event of session) {
      if (event.type === 'content_chunk') send('text', { text: event.data.content });
      else if (event.type === 'error') send('error', { code: event.data.code, message: event.data.message });
      else if (event.type === 'stream_end') send('end', { reason: event.data.reason });
    }
  } catch (err) {
    // Refused before it began (rate limited, bad request) or the connection was lost.
    send('error', { code: err.code ?? 'internal', message: err.message });
  }
  res.end();
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

process.on('SIGTERM', () => {
  client.close();
  server.close();
  server.closeAllConnections();
});
