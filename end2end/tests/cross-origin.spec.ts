import { type Server, createServer } from 'node:http';
import { expect, test } from '@playwright/test';
import { testRoom, uniqueName } from '../fixtures/chat-page';
import { BASE_URL, FOREIGN_PORT, PORT } from '../fixtures/servers';

// Another website, really served from loopback on a port of its own (a page
// Playwright fulfilled itself would count as public, and Chromium's Local
// Network Access check, not Banter, would refuse its socket).
const FOREIGN_ORIGIN = `http://127.0.0.1:${FOREIGN_PORT}`;

/** A page that opens a socket to `url` and records what becomes of it. */
function socketPage(url: string): string {
  return `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<script>
  window.events = [];
  const ws = new WebSocket(${JSON.stringify(url)});
  ws.onopen = () => window.events.push('open');
  ws.onclose = (e) => window.events.push('close ' + e.code);
</script>`;
}

async function serve(html: string): Promise<Server> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise<void>((resolve) => server.listen(FOREIGN_PORT, '127.0.0.1', resolve));
  return server;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

test('a page from another origin cannot open a socket to Banter; Banter’s own pages can', async ({ page }) => {
  const socketUrl = `ws://127.0.0.1:${PORT}/start_web_socket?room=${testRoom()}`;
  const foreign = await serve(socketPage(`${socketUrl}&username=mallory`));
  try {
    await page.goto(FOREIGN_ORIGIN);
    await expect.poll(() => page.evaluate(() => (window as any).events)).toEqual(['close 1006']);

    // Why: the Origin check, answered before any upgrade.
    const refused = await fetch(`${BASE_URL}/start_web_socket?username=mallory`, {
      headers: { origin: FOREIGN_ORIGIN },
    });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain(`Connections from ${FOREIGN_ORIGIN} are not allowed`);

    // The same socket from one of Banter's own pages opens.
    await page.goto(BASE_URL);
    await page.evaluate((url) => {
      (window as any).events = [];
      const ws = new WebSocket(url);
      ws.onopen = () => (window as any).events.push('open');
    }, `${socketUrl}&username=${uniqueName('alice')}`);
    await expect.poll(() => page.evaluate(() => (window as any).events)).toEqual(['open']);
  } finally {
    await stop(foreign);
  }
});
