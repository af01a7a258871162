import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';
import { OwnServer } from '../fixtures/own-server';
import { RESTART_PORT } from '../fixtures/servers';

// A server this spec starts and stops itself, so a restart disturbs no
// other test.

test('a server restart: pages reconnect by themselves and the message typed meanwhile arrives once', async ({ browser }) => {
  const server = await OwnServer.start(RESTART_PORT);
  const ann = await ChatPage.open(browser);
  const ben = await ChatPage.open(browser);
  for (const person of [ann, ben]) person.origin = server.origin;
  try {
    await ann.join(uniqueName('ann'));
    await ben.join(uniqueName('ben'));
    await ann.send('before the restart');
    await expect(ben.message('before the restart')).toHaveCount(1);

    await server.stop();
    await expect(ann.status).toHaveAttribute('data-state', 'disconnected');
    await expect(ann.status).toContainText('reconnecting');
    await ann.send('typed while the server was down');
    await expect(ann.pending).toHaveCount(1);
    await server.start();

    for (const person of [ann, ben]) {
      await expect(person.status).toHaveAttribute('data-state', 'connected', { timeout: 20_000 });
      await expect(person.message('typed while the server was down')).toHaveCount(1);
      await expect(person.message('before the restart')).toHaveCount(1);
    }
    await expect(ann.pending).toHaveCount(0);
    expect(ann.errors).toEqual([]);
    expect(ben.errors).toEqual([]);
  } finally {
    await ann.close();
    await ben.close();
    await server.dispose();
  }
});

test('what others said while a page was cut off appears when it is back', async ({ browser }) => {
  const server = await OwnServer.start(RESTART_PORT);
  const cut = await ChatPage.open(browser);
  const talker = await ChatPage.open(browser);
  for (const person of [cut, talker]) person.origin = server.origin;
  // The cut-off page's socket goes through a switch this test controls.
  let online = true;
  const sockets: { close: () => Promise<void> }[] = [];
  await cut.page.routeWebSocket(/start_web_socket/, (ws) => {
    if (!online) {
      void ws.close({ code: 4000, reason: 'network down (test)' });
      return;
    }
    ws.connectToServer();
    sockets.push(ws);
  });
  try {
    await cut.join(uniqueName('cut'));
    await talker.join(uniqueName('talker'));
    await talker.send('while you were here');
    await expect(cut.message('while you were here')).toHaveCount(1);

    online = false;
    for (const ws of sockets.splice(0)) await ws.close();
    await expect(cut.status).toHaveAttribute('data-state', 'disconnected');
    await talker.send('while you were away 1');
    await talker.send('while you were away 2');
    await expect(talker.message('while you were away 2')).toHaveCount(1);
    online = true;

    await expect(cut.status).toHaveAttribute('data-state', 'connected', { timeout: 20_000 });
    for (const text of ['while you were here', 'while you were away 1', 'while you were away 2']) {
      await expect(cut.message(text)).toHaveCount(1);
    }
    expect(cut.errors).toEqual([]);
  } finally {
    await cut.close();
    await talker.close();
    await server.dispose();
  }
});
