import { expect, test } from '@playwright/test';
import { ChatPage } from '../fixtures/chat-page';

test('an unknown address says so and links back to the chat', async ({ browser }) => {
  const visitor = await ChatPage.open(browser);
  const response = await visitor.page.goto('/no/such/room');
  expect(response?.status()).toBe(404);
  await expect(visitor.page.getByText('There is nothing at this address.')).toBeVisible();
  await visitor.page.getByRole('link', { name: 'Go to the chat' }).click();
  await expect(visitor.nameInput).toBeVisible();
  expect(visitor.errors).toEqual([]);
  await visitor.close();
});
