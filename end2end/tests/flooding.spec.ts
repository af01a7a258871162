import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';
import { OwnServer } from '../fixtures/own-server';
import { FLOOD_PORT } from '../fixtures/servers';

test('closed for flooding, the page keeps its name, reconnects and sends what was refused', async ({ browser }) => {
  // One message a second, two at once: the page (paced for the default
  // ten) goes over it at once and, pressing on, is closed with 1008; its
  // address is then refused for 2 s.
  const server = await OwnServer.start(FLOOD_PORT, ['--message-rate', '1', '--message-burst', '2', '--flood-cooldown-ms', '2000']);
  try {
    const fay = await ChatPage.open(browser);
    fay.origin = server.origin;
    const name = uniqueName('fay');
    await fay.join(name);
    for (let i = 1; i <= 8; i++) {
      await fay.messageInput.fill(`burst ${i}`);
      await fay.messageInput.press('Enter');
    }
    // A drop, not a refusal: still in the chat, under the same name.
    await expect(fay.status).toHaveAttribute('data-state', 'disconnected');
    await expect(fay.status).toContainText(/Sending too fast|Too many messages/);
    await expect(fay.nameInput).toHaveCount(0);
    await expect(fay.page.getByTestId('whoami')).toHaveText(name);
    // Back by itself, and every message is delivered once in the end: the
    // outbox is sent again after each reconnect, paced, until echoed.
    await expect(fay.status).toHaveAttribute('data-state', 'connected', { timeout: 20_000 });
    for (let i = 1; i <= 8; i++) {
      await expect(fay.message(`burst ${i}`)).toHaveCount(1, { timeout: 30_000 });
    }
    await expect(fay.pending).toHaveCount(0);
    expect(fay.errors).toEqual([]);
    await fay.close();
  } finally {
    await server.dispose();
  }
});
