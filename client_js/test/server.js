// Starts a real tokenmux server for the integration and browser tests.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
const LISTENING = /tokenmux listening on (http:\/\/\S+)/;

/**
 * Spawn `.venv/bin/python -m server serve --port 0` and wait for its "listening" log line.
 * @param {{config?: string, timeoutMs?: number}} [options]
 * @returns {Promise<{url: string, wsUrl: string, stop: () => Promise<void>, log: () => string}>}
 */
export async function startServer(options = {}) {
  const python = process.env.TOKENMUX_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
  const config = options.config ?? path.join(here, 'fixtures', 'server.yaml');
  const child = spawn(python, ['-m', 'server', 'serve', '--port', '0', '--config', config], {
    cwd: repoRoot,
    env: { ...process.env, PYTHONASYNCIODEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), options.timeoutMs ?? 20_000);
    const onData = (chunk) => {
      output += chunk;
      const match = LISTENING.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    url,
    wsUrl: `${url.replace('http://', 'ws://')}/ws`,
    log: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
