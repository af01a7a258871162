import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

test('joining with a name already in use shows why, and the holder keeps chatting', async ({ browser }) => {
  const alice = await ChatPage.open(browser);
  const bob = await ChatPage.open(browser);
  const imposter = await ChatPage.open(browser);
  const name = uniqueName('alice');
  await alice.join(name);
  await bob.join(uniqueName('bob'));

  await imposter.tryJoin(name);
  await expect(imposter.joinError).toHaveText(`Username ${name} is already taken`);
  await expect(imposter.nameInput).toBeVisible();

  await alice.send('still here');
  await expect(alice.message('still here')).toHaveCount(1);
  await expect(alice.status).toHaveAttribute('data-state', 'connected');
  for (const page of [alice, bob, imposter]) await page.close();
});
