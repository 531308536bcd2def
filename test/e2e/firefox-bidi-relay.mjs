#!/usr/bin/env node
// Starts Firefox for playwright-core's WebDriver BiDi channel, with a relay between the two that answers the
// commands this Firefox does not know yet. playwright-core 1.65 sends `emulation.setMediaFeaturesOverride` when
// every browser context opens, and Firefox 153 ESR answers "unknown command", so no context could open. The
// tests emulate no media features, so the relay answers success for it in Firefox's place; everything else
// passes through unchanged. Playwright launches this file as the browser (browser.ts), with Firefox's own
// arguments, and reads the listening address from its stderr as it would from Firefox's. Once the ESR knows
// the command, browser.ts can launch Firefox itself and this file goes.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ws as WebSocket, wsServer as WebSocketServer } from 'playwright-core/lib/utilsBundle';

/** Commands answered here: each only overrides something the tests leave at the browser's default. */
const ANSWERED_HERE = new Set(['emulation.setMediaFeaturesOverride']);
const firefoxPath = process.env.YOKE_FIREFOX_BINARY ?? '/usr/bin/firefox-esr';

const firefox = spawn(firefoxPath, process.argv.slice(2), { stdio: ['ignore', 'inherit', 'pipe'] });
firefox.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => firefox.kill(signal));

// Line by line, so Playwright never sees Firefox's own address, even when it arrives split across chunks.
createInterface({ input: firefox.stderr }).on('line', (line) => {
  const listening = line.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
  if (listening) startRelay(listening[1]);
  else process.stderr.write(line + '\n');
});

function startRelay(firefoxAddress) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('listening', () => process.stderr.write(`WebDriver BiDi listening on ws://127.0.0.1:${server.address().port}\n`));
  server.on('connection', (client, request) => {
    const upstream = new WebSocket(firefoxAddress + request.url);
    const pending = [];
    upstream.on('open', () => pending.splice(0).forEach((message) => upstream.send(message)));
    upstream.on('message', (data) => client.send(data.toString()));
    upstream.on('close', () => client.close());
    upstream.on('error', () => client.close());
    client.on('close', () => upstream.close());
    client.on('message', (data) => {
      const text = data.toString();
      const command = JSON.parse(text);
      if (ANSWERED_HERE.has(command.method)) return void client.send(JSON.stringify({ type: 'success', id: command.id, result: {} }));
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else pending.push(text);
    });
  });
}
