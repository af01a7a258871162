import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';

test('a reload keeps the room and the scrollback', async ({ browser }) => {
  const ann = await ChatPage.open(browser);
  const name = uniqueName('ann');
  await ann.join(name);
  await ann.send('written before the reload');
  await expect(ann.message('written before the reload')).toHaveCount(1);

  await ann.page.reload();
  await expect(ann.status).toHaveAttribute('data-state', 'connected');
  await expect(ann.page).toHaveURL(ann.url());
  await expect(ann.roomTitle).toHaveText(`#${ann.room}`);
  await expect(ann.message('written before the reload')).toHaveCount(1);
  expect(ann.errors).toEqual([]);
  await ann.close();
});

test('scrolling up loads older messages until the beginning', async ({ browser }) => {
  // 120 messages typed in a few seconds go out at the page's own pace, just
  // under the server's flood limit (10 a second after a burst of 20), so
  // the last arrives ~12 s after the first: slowed, none refused.
  test.setTimeout(60_000);
  const writer = await ChatPage.open(browser);
  await writer.join(uniqueName('writer'));
  for (let i = 1; i <= 120; i++) {
    await writer.send(`old ${i}`);
  }
  await expect(writer.message('old 120')).toHaveCount(1, { timeout: 20_000 });
  await expect(writer.page.getByText('Sending…')).toHaveCount(0);

  const reader = await ChatPage.open(browser, { width: 900, height: 600 });
  await reader.join(uniqueName('reader'));
  // The latest page: 50 messages, the oldest of them "old 71".
  await expect(reader.messages).toHaveCount(50);
  await expect(reader.message('old 71')).toHaveCount(1);
  await expect(reader.message('old 70')).toHaveCount(0);

  // Scroll to the top until the very first message is there.
  const list = reader.page.getByRole('list', { name: 'Messages' });
  await expect(async () => {
    await list.evaluate((el) => el.scrollTo(0, 0));
    await expect(reader.message('old 1')).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(reader.messages).toHaveCount(120);
  await expect(reader.page.getByTestId('beginning')).toBeVisible();
  expect(reader.errors).toEqual([]);
  await writer.close();
  await reader.close();
});

test('the typing indicator appears for the others and goes away', async ({ browser }) => {
  const typist = await ChatPage.open(browser);
  const watcher = await ChatPage.open(browser);
  const typistName = uniqueName('typist');
  await typist.join(typistName);
  await watcher.join(uniqueName('watcher'));

  await typist.messageInput.pressSequentially('hel');
  await expect(watcher.typing).toHaveText(`${typistName} is typing…`);
  await expect(typist.typing).toHaveText('');
  // It expires a few seconds after the typing stops.
  await expect(watcher.typing).toHaveText('', { timeout: 8_000 });

  // And goes at once when the message arrives.
  await typist.messageInput.pressSequentially('lo');
  await expect(watcher.typing).toHaveText(`${typistName} is typing…`);
  await typist.messageInput.press('Enter');
  await expect(watcher.message('hello')).toHaveCount(1);
  await expect(watcher.typing).toHaveText('');
  await typist.close();
  await watcher.close();
});

test('rooms: switching without a reload, links that open a room, and isolation', async ({ browser }) => {
  const eve = await ChatPage.open(browser);
  const finn = await ChatPage.open(browser);
  const other = `${eve.room.slice(0, 30)}-other`;
  await eve.join(uniqueName('eve'));
  await finn.join(uniqueName('finn'));
  await eve.send('in the first room');
  await expect(finn.message('in the first room')).toHaveCount(1);

  // Eve creates and switches to another room by name; the page stays.
  await eve.page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  await eve.page.getByLabel('Join or create a room').fill(other);
  await eve.page.getByLabel('Join or create a room').press('Enter');
  await expect(eve.page).toHaveURL(eve.url(other));
  await expect(eve.roomTitle).toHaveText(`#${other}`);
  await expect(eve.status).toHaveAttribute('data-state', 'connected');
  expect(await eve.page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
  await expect(eve.message('in the first room')).toHaveCount(0);
  await eve.send('in the other room');
  await expect(eve.message('in the other room')).toHaveCount(1);

  // Finn, in the first room, sees neither the message nor Eve any more.
  await expect(finn.message('in the other room')).toHaveCount(0);
  // A link opens the room directly; the room list offers the way back.
  await finn.page.goto(finn.url(other));
  await expect(finn.status).toHaveAttribute('data-state', 'connected');
  await expect(finn.message('in the other room')).toHaveCount(1);
  await finn.roomList.getByRole('link', { name: `#${finn.room}` }).click();
  await expect(finn.page).toHaveURL(finn.url());
  await expect(finn.message('in the first room')).toHaveCount(1);
  // Back goes back.
  await finn.page.goBack();
  await expect(finn.roomTitle).toHaveText(`#${other}`);
  expect(eve.errors).toEqual([]);
  expect(finn.errors).toEqual([]);
  await eve.close();
  await finn.close();
});
