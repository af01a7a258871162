import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

test('two people see each other in the user list, and a leaver disappears', async ({ browser }) => {
  const alice = await ChatPage.open(browser);
  const bob = await ChatPage.open(browser);
  const aliceName = uniqueName('alice');
  const bobName = uniqueName('bob');

  await alice.join(aliceName);
  await bob.join(bobName);

  for (const person of [alice, bob]) {
    await expect(person.user(aliceName)).toBeVisible();
    await expect(person.user(bobName)).toBeVisible();
  }
  await expect(alice.userList.locator('li.me')).toContainText(aliceName);

  await bob.close();
  await expect(alice.user(bobName)).toHaveCount(0);
  await expect(alice.user(aliceName)).toBeVisible();
  expect(alice.errors).toEqual([]);
  await alice.close();
});

test('a reload rejoins with the same name', async ({ browser }) => {
  const carol = await ChatPage.open(browser);
  const name = uniqueName('carol');
  await carol.join(name);
  await carol.page.reload();
  await expect(carol.status).toHaveAttribute('data-state', 'connected');
  await expect(carol.page.getByTestId('whoami')).toHaveText(name);
  await expect(carol.user(name)).toBeVisible();
  await carol.close();
});
