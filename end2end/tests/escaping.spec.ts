import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

test('markup in a message is shown as text and never runs', async ({ browser }) => {
  const mallory = await ChatPage.open(browser);
  const victim = await ChatPage.open(browser);
  const dialogs: string[] = [];
  for (const p of [mallory, victim]) p.page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });

  await mallory.join(uniqueName('mallory'));
  await victim.join(uniqueName('victim'));
  const payload = '<img src=x onerror=alert(1)>';
  await mallory.send(payload);

  for (const p of [mallory, victim]) {
    const row = p.message(payload);
    await expect(row).toHaveCount(1);
    await expect(row.locator('.text')).toHaveText(payload);
    await expect(p.page.locator('.messages img')).toHaveCount(0);
  }
  expect(dialogs).toEqual([]);
  await mallory.close();
  await victim.close();
});
