import { defineConfig } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The release build of Banter, started by Playwright itself on a port of its
// own with a fresh data directory, and awaited on /healthz before any test.
import { BASE_URL as baseURL, PORT as port, SHOWCASE_ORIGIN, SHOWCASE_PORT as showcasePort } from './fixtures/servers';

// Made once, by the runner, and removed when it exits (after it has stopped
// the servers). Its workers load this file too: they inherit the paths
// through the environment instead of making directories nobody uses.
function runDir(variable: string, prefix: string): string {
  const made = process.env[variable];
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.env[variable] = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const dataDir = runDir('BANTER_E2E_DATA_DIR', 'banter-e2e-');
const showcaseDir = runDir('BANTER_E2E_SHOWCASE_DIR', 'banter-e2e-showcase-');

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  // One Chromium at a time: the machine has two cores and the server wants one.
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: process.env.CI ? [['list']] : [['list'], ['html', { open: 'never' }]],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        browserName: 'chromium',
        viewport: { width: 1280, height: 800 },
        launchOptions: {
          // Debian's Chromium: Playwright's own browser download is impossible here.
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--no-first-run',
            '--disable-sync',
          ],
        },
      },
    },
  ],
  webServer: [
    {
      command: `target/release/banter --addr 127.0.0.1:${port} --data-dir ${dataDir} --log warn`,
      cwd: '..',
      url: `${baseURL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
    {
      command: `target/release/banter --addr 127.0.0.1:${showcasePort} --data-dir ${showcaseDir} --log warn`,
      cwd: '..',
      url: `${SHOWCASE_ORIGIN}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
  ],
});
