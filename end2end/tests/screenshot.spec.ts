import { expect, test } from '@playwright/test';
import { ChatPage } from '../fixtures/chat-page';
import { SHOWCASE_ORIGIN } from '../fixtures/servers';

// The README's screenshot. Written to test-results/ on every run; set
// UPDATE_README_SCREENSHOT=1 to refresh end2end/screenshots/chat.png.
test('screenshot of a conversation', async ({ browser }, testInfo) => {
  const ada = await ChatPage.open(browser, { width: 1100, height: 640 });
  const grace = await ChatPage.open(browser);
  // A server of its own, so the room list shows only this conversation.
  for (const person of [ada, grace]) {
    person.origin = SHOWCASE_ORIGIN;
    person.room = 'general';
  }
  await ada.join('Ada');
  await grace.join('Grace');
  await grace.send('Morning! Did the deploy go out?');
  await ada.send('It did: zero dropped connections during the restart.');
  await grace.send('Lovely. Shipping the release notes now.');
  await expect(ada.messages).toHaveCount(3);
  const path = process.env.UPDATE_README_SCREENSHOT
    ? 'screenshots/chat.png'
    : testInfo.outputPath('chat.png');
  await ada.page.screenshot({ path });
  await ada.close();
  await grace.close();
});
