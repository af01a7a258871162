import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

const PHONE = { width: 375, height: 740 };

async function hasNoHorizontalScroll(chat: ChatPage): Promise<void> {
  const overflow = await chat.page.evaluate(() => {
    const root = document.scrollingElement ?? document.documentElement;
    return root.scrollWidth - root.clientWidth;
  });
  expect(overflow).toBeLessThanOrEqual(0);
}

test('at 375 px wide nothing scrolls sideways', async ({ browser }) => {
  const phone = await ChatPage.open(browser, PHONE);
  await phone.goto();
  await hasNoHorizontalScroll(phone);

  await phone.join(uniqueName('averyveryverylongname'));
  await phone.send('a'.repeat(300));
  await phone.send('https://example.invalid/' + 'path/'.repeat(40));
  await expect(phone.messages).toHaveCount(2);
  await hasNoHorizontalScroll(phone);
  await expect(phone.messageInput).toBeInViewport();
  await expect(phone.sendButton).toBeInViewport();
  await phone.close();
});

test('the join form works from the keyboard alone', async ({ browser }) => {
  const kim = await ChatPage.open(browser);
  await kim.goto();
  await expect(kim.nameInput).toBeFocused();
  await kim.page.keyboard.type(uniqueName('kim'));
  await kim.page.keyboard.press('Enter');
  await expect(kim.status).toHaveAttribute('data-state', 'connected');
  await expect(kim.messageInput).toBeFocused();
  await kim.close();
});
