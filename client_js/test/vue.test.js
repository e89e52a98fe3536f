import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectScope, isReadonly, watch } from 'vue';
import { useTokenmuxStream } from '../src/vue.js';
import { fakeFetch, sessionEvents, sseBody } from './fake-fetch.js';

test('the composable exposes readonly refs that follow the stream', async () => {
  const fetch = fakeFetch({ body: sseBody(sessionEvents('s1', ['Vu', 'e!'])).match(/[\s\S]{1,25}/g) });
  const scope = effectScope();
  const stream = scope.run(() => useTokenmuxStream('/api/stream', { fetch }));
  const statuses = [];
  scope.run(() => watch(stream.status, (status) => statuses.push(status), { flush: 'sync' }));
  assert.ok(isReadonly(stream.text));
  await stream.start({ prompt: 'Hi' });
  assert.equal(stream.text.value, 'Vue!');
  assert.equal(stream.status.value, 'complete');
  assert.equal(stream.model.value, 'sim-1');
  assert.deepEqual(statuses, ['connecting', 'streaming', 'complete']);
  scope.stop();
});

test('stopping the effect scope cancels the running stream', async () => {
  let aborted = false;
  const client = {
    stream(request, { signal }) {
      signal.addEventListener('abort', () => { aborted = true; });
      return (async function* () {
        yield* sessionEvents('s1', ['x']).slice(0, 2);
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      })();
    },
  };
  const scope = effectScope();
  const stream = scope.run(() => useTokenmuxStream(client));
  const running = stream.start({ prompt: 'Hi' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stream.text.value, 'x');
  scope.stop();
  assert.ok(aborted);
  assert.equal((await running).status, 'cancelled');
});
