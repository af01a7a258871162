import { type Page, expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';
import { OwnServer } from '../fixtures/own-server';
import { BASE_URL, HELP_BOT_PORT } from '../fixtures/servers';

test('a browser user talks to helpbot in #help and sees its answers', async ({ browser }) => {
  const server = await OwnServer.start(HELP_BOT_PORT, ['--help-bot']);
  try {
    const ann = await ChatPage.open(browser);
    ann.origin = server.origin;
    ann.room = 'help';
    const name = uniqueName('ann');
    await ann.join(name);
    await expect(ann.user('helpbot')).toBeVisible();
    // Greeted on arriving, then answered.
    const fromBot = ann.messages.filter({ hasText: 'helpbot' });
    await expect(fromBot.filter({ hasText: `Welcome to #help, ${name}!` })).toHaveCount(1);
    await ann.send('hello');
    await expect(fromBot.filter({ hasText: `Hello ${name}, how can I help you today?` })).toHaveCount(1);
    await ann.send('what now');
    await expect(fromBot.filter({ hasText: "Sorry" }).filter({ hasText: "I don't understand" })).toHaveCount(1);
    expect(ann.errors).toEqual([]);
    await ann.close();
  } finally {
    await server.dispose();
  }
});

/** A plain-text WebSocket client (what websocat or a tutorial script is),
 * run in a page of its own: it collects every line it receives. */
async function plainTextClient(page: Page, url: string): Promise<void> {
  await page.goto(`${BASE_URL}/healthz`);
  await page.evaluate(
    (url) =>
      new Promise<void>((resolve, reject) => {
        const lines: string[] = [];
        (window as unknown as { lines: string[] }).lines = lines;
        const ws = new WebSocket(url);
        (window as unknown as { ws: WebSocket }).ws = ws;
        ws.onmessage = (e) => lines.push(String(e.data));
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error('socket failed'));
      }),
    url,
  );
}

async function linesOf(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { lines: string[] }).lines);
}

test('a plain-text client and a browser user talk to each other', async ({ browser }) => {
  const bea = await ChatPage.open(browser);
  const beaName = uniqueName('bea');
  await bea.join(beaName);

  const terminal = await (await browser.newContext()).newPage();
  const termName = uniqueName('term');
  await plainTextClient(terminal, `${BASE_URL.replace('http', 'ws')}/r/${bea.room}?username=${termName}`);
  await expect.poll(() => linesOf(terminal)).toContainEqual(expect.stringContaining(`Welcome to #${bea.room}, ${termName}.`));
  // The browser lists the plain-text user like anyone.
  await expect(bea.user(termName)).toBeVisible();

  await terminal.evaluate(() => (window as unknown as { ws: WebSocket }).ws.send('hello from a terminal'));
  await expect(bea.message('hello from a terminal')).toHaveCount(1);
  await expect(bea.message('hello from a terminal')).toContainText(termName);

  await bea.send('hello back');
  await expect.poll(() => linesOf(terminal)).toContainEqual(`${beaName}: hello back`);
  expect(await linesOf(terminal)).toContainEqual(`${termName}: hello from a terminal`);

  await terminal.evaluate(() => (window as unknown as { ws: WebSocket }).ws.close(1000));
  await expect(bea.user(termName)).toHaveCount(0);
  expect(bea.errors).toEqual([]);
  await terminal.context().close();
  await bea.close();
});
