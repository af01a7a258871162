import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

test('a message typed by one person appears for both, styled as own for the sender', async ({ browser }) => {
  const alice = await ChatPage.open(browser);
  const bob = await ChatPage.open(browser);
  const aliceName = uniqueName('alice');
  await alice.join(aliceName);
  await bob.join(uniqueName('bob'));

  const text = `hello from ${aliceName}`;
  await alice.send(text);

  await expect(alice.message(text)).toHaveCount(1);
  await expect(bob.message(text)).toHaveCount(1);
  await expect(alice.message(text)).toHaveClass(/\bown\b/);
  await expect(bob.message(text)).not.toHaveClass(/\bown\b/);
  await expect(bob.message(text)).toContainText(aliceName);
  await expect(bob.message(text).locator('time')).toHaveText(/^\d\d:\d\d$/);

  // The input is cleared and keeps focus, ready for the next message.
  await expect(alice.messageInput).toHaveValue('');
  await expect(alice.messageInput).toBeFocused();

  expect(alice.errors).toEqual([]);
  expect(bob.errors).toEqual([]);
  await alice.close();
  await bob.close();
});

test('an empty or blank message is not sent', async ({ browser }) => {
  const dave = await ChatPage.open(browser);
  await dave.join(uniqueName('dave'));
  await dave.send('   ');
  await dave.messageInput.press('Enter');
  await dave.send('real one');
  await expect(dave.message('real one')).toHaveCount(1);
  await expect(dave.messages).toHaveCount(1);
  await dave.close();
});

test('the list follows new messages to the bottom', async ({ browser }) => {
  const erin = await ChatPage.open(browser, { width: 800, height: 500 });
  await erin.join(uniqueName('erin'));
  for (let i = 1; i <= 25; i++) {
    await erin.send(`line ${i}`);
  }
  const last = erin.message('line 25');
  await expect(last).toBeInViewport();
  await erin.close();
});

test('reading older messages is not interrupted by new ones', async ({ browser }) => {
  const reader = await ChatPage.open(browser, { width: 800, height: 500 });
  const talker = await ChatPage.open(browser);
  await reader.join(uniqueName('reader'));
  await talker.join(uniqueName('talker'));
  for (let i = 1; i <= 25; i++) {
    await talker.send(`backlog ${i}`);
  }
  await expect(reader.message('backlog 25')).toBeInViewport();

  // Scroll up to read; a new message arrives and the view stays put.
  await reader.page.locator('.messages').evaluate((list) => list.scrollTo({ top: 0 }));
  await expect(reader.message('backlog 1')).toBeInViewport();
  await talker.send('interruption');
  await expect(reader.message('interruption')).toHaveCount(1);
  await expect(reader.message('backlog 1')).toBeInViewport();
  await expect(reader.message('interruption')).not.toBeInViewport();

  // Sending yourself brings you back down.
  await reader.send('my reply');
  await expect(reader.message('my reply')).toBeInViewport();
  await reader.close();
  await talker.close();
});
