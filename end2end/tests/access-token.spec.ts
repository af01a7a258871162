import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';
import { OwnServer } from '../fixtures/own-server';
import { ACCESS_TOKEN_PORT } from '../fixtures/servers';

// A server of this spec's own that needs an access token. The token has
// characters a URL must encode, so every place that sends it is checked.
const TOKEN = 'e2e tok+en/&=?';
const link = (page: ChatPage, token: string) => `${page.url()}?accessToken=${encodeURIComponent(token)}`;

test('the link with ?accessToken= lets you chat, and the token leaves the address bar', async ({ browser }) => {
  const server = await OwnServer.start(ACCESS_TOKEN_PORT, ['--auth-tokens', TOKEN]);
  const ann = await ChatPage.open(browser);
  ann.origin = server.origin;
  try {
    await ann.page.goto(`${link(ann, TOKEN)}&keep=1#end`);
    // Gone at once, the rest of the address kept.
    await expect(ann.page).toHaveURL(`${ann.url()}?keep=1#end`);

    const rooms = ann.page.waitForResponse((r) => r.url().includes('/api/rooms'));
    await ann.nameInput.fill(uniqueName('ann'));
    await ann.joinButton.click();
    await expect(ann.status).toHaveAttribute('data-state', 'connected');
    expect((await rooms).status(), 'the room list is fetched with the token').toBe(200);
    await ann.send('hello with a token');
    await expect(ann.message('hello with a token')).toHaveCount(1);
    await expect(ann.pending).toHaveCount(0);

    // The tab keeps the token (and the name) across a reload.
    await ann.page.reload();
    await expect(ann.status).toHaveAttribute('data-state', 'connected');
    await expect(ann.message('hello with a token')).toHaveCount(1);
    expect(ann.page.url()).not.toContain('accessToken');
    expect(ann.errors).toEqual([]);
  } finally {
    await ann.close();
    await server.dispose();
  }
});

test('without a token: the server’s reason and how to get in, no chat, no retrying', async ({ browser }) => {
  const server = await OwnServer.start(ACCESS_TOKEN_PORT, ['--auth-tokens', TOKEN]);
  const eve = await ChatPage.open(browser);
  eve.origin = server.origin;
  let sockets = 0;
  eve.page.on('websocket', () => {
    sockets += 1;
  });
  try {
    await eve.tryJoin(uniqueName('eve'));
    await expect(eve.joinError).toContainText('This server needs an access token');
    await expect(eve.joinError).toContainText('accessToken=');
    await expect(eve.messageInput).toHaveCount(0);
    await expect(eve.nameInput).toBeVisible();
    // A refusal is not retried: one socket, however long we wait.
    await eve.page.waitForTimeout(1_500);
    expect(sockets).toBe(1);
    expect(eve.errors).toEqual([]);
  } finally {
    await eve.close();
    await server.dispose();
  }
});

test('a wrong token: the server says it was refused', async ({ browser }) => {
  const server = await OwnServer.start(ACCESS_TOKEN_PORT, ['--auth-tokens', TOKEN]);
  const eve = await ChatPage.open(browser);
  eve.origin = server.origin;
  try {
    await eve.page.goto(link(eve, 'guessed'));
    await expect(eve.page).not.toHaveURL(/accessToken/);
    await eve.nameInput.fill(uniqueName('eve'));
    await eve.joinButton.click();
    await expect(eve.joinError).toContainText('The access token was refused');
    await expect(eve.messageInput).toHaveCount(0);
    expect(eve.errors).toEqual([]);
  } finally {
    await eve.close();
    await server.dispose();
  }
});
