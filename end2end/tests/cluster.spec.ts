import { expect, test } from '@playwright/test';
import { ChatPage, uniqueName } from '../fixtures/chat-page';
import { Cluster } from '../fixtures/cluster';
import { CLUSTER_PORT } from '../fixtures/servers';

// Two Banter processes in cluster mode (a private Redis and PostgreSQL)
// behind nginx with the repository's deploy/nginx.conf: round robin, no
// sticky sessions.

const total = (counts: number[]) => counts.reduce((a, b) => a + b, 0);

test('two people on two processes behind nginx chat; when one process dies its page moves to the other and shows what was said meanwhile, once', async ({ browser }) => {
  test.setTimeout(120_000);
  const cluster = await Cluster.start(CLUSTER_PORT);
  const ann = await ChatPage.open(browser);
  const ben = await ChatPage.open(browser);
  for (const person of [ann, ben]) person.origin = cluster.origin;
  try {
    const [annName, benName] = [uniqueName('ann'), uniqueName('ben')];
    await ann.join(annName);
    await expect.poll(async () => total(await cluster.clients())).toBe(1);
    const annOn = (await cluster.clients()).indexOf(1);
    await ben.join(benName);
    // Round robin spreads requests, not people: reload until Ben's socket
    // is on the other process (a reload rejoins with the same name).
    for (let tries = 0; ; tries++) {
      await expect.poll(async () => total(await cluster.clients())).toBe(2);
      if ((await cluster.clients())[annOn] === 1) break;
      expect(tries, 'Ben never landed on the other process').toBeLessThan(10);
      await ben.page.reload();
      await expect(ben.status).toHaveAttribute('data-state', 'connected');
    }

    await ann.send('hello from one process');
    await expect(ben.message('hello from one process')).toHaveCount(1);
    await ben.send('hello from the other');
    await expect(ann.message('hello from the other')).toHaveCount(1);
    await expect(ann.userList).toContainText(benName);
    await expect(ben.userList).toContainText(annName);

    await cluster.backends[annOn].kill();
    await ben.send('said while Ann was moving');
    // Ann's page reconnects through nginx to the survivor by itself.
    await expect(ann.message('said while Ann was moving')).toHaveCount(1, { timeout: 20_000 });
    await expect(ann.status).toHaveAttribute('data-state', 'connected');
    await expect(ann.message('hello from the other')).toHaveCount(1);
    await expect(ann.message('hello from one process')).toHaveCount(1);
    await ann.send('back, on the other process');
    await expect(ben.message('back, on the other process')).toHaveCount(1);
    expect(ann.errors).toEqual([]);
    expect(ben.errors).toEqual([]);
  } finally {
    await ann.close();
    await ben.close();
    await cluster.stop();
  }
});

test('while Redis is down a message waits as "Sending…", and goes out by itself once it is back', async ({ browser }) => {
  test.setTimeout(120_000);
  const cluster = await Cluster.start(CLUSTER_PORT);
  const ann = await ChatPage.open(browser);
  const ben = await ChatPage.open(browser);
  for (const person of [ann, ben]) person.origin = cluster.origin;
  try {
    await ann.join(uniqueName('ann'));
    await ben.join(uniqueName('ben'));
    await ann.send('before the outage');
    await expect(ben.message('before the outage')).toHaveCount(1);

    await cluster.killRedis();
    await ann.send('typed while Redis was down');
    await expect(ann.pending).toHaveCount(1);
    await expect(ann.notice).toContainText('Delivery is paused');
    // The sockets stay open: nobody is sent back to reconnect.
    await expect(ann.status).toHaveAttribute('data-state', 'connected');
    await cluster.startRedis();

    for (const person of [ann, ben]) {
      await expect(person.message('typed while Redis was down')).toHaveCount(1, { timeout: 20_000 });
    }
    await expect(ann.pending).toHaveCount(0);
    await expect(ben.message('before the outage')).toHaveCount(1);
    expect(ann.errors).toEqual([]);
    expect(ben.errors).toEqual([]);
  } finally {
    await ann.close();
    await ben.close();
    await cluster.stop();
  }
});
