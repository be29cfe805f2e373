import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uiDir } from '../../src/api/routes/ui.js';
import { readEnv } from '../../src/env.js';
import type { Span } from '../../src/observability/spans.js';
import { cosmos, listeningUrl, stopCli, type CliRun } from '../support/cli.js';

/** Debian's Chromium; `.ci/run` installs it. */
const CHROMIUM = process.env.COSMOS_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'ui');
const present = existsSync(CHROMIUM);
if (!present) {
  const line = `browser tests: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  if (readEnv().ci) throw new Error(`${line}; in CI they must run`);
  console.warn(`\n!!! ${line}: SKIPPED\n`);
}

/** The acceptance walk through the web UI, in real headless Chromium, against `cosmos dev` and the examples. */
describe.runIf(present)('web UI in Chromium', () => {
  let run: CliRun;
  let url: string;
  let data: string;
  let browser: Browser;
  let page: Page;
  let executionId: string;
  let spans: Span[];

  const shot = (name: string): Promise<Buffer> =>
    page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    expect(existsSync(join(uiDir(), 'index.html')), `the UI is not built in ${uiDir()}: npm run build`).toBe(
      true,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    data = mkdtempSync(join(tmpdir(), 'cosmos-ui-'));
    run = cosmos(['dev', '--port', '0', '--data', data]);
    url = await listeningUrl(run, 60_000);
    const res = await fetch(`${url}/v1/services/catalog/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=90' },
      body: JSON.stringify({
        title: 'browser walk',
        source: { sample: 'countdown', frames: 32, width: 320, height: 180 },
        chunkFrames: 8,
      }),
    });
    const body = (await res.json()) as { executionId: string; status: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    executionId = body.executionId;
    spans = ((await (await fetch(`${url}/v1/executions/${executionId}/trace`)).json()) as { spans: Span[] })
      .spans;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stopCli(run);
    rmSync(data, { recursive: true, force: true });
  });

  it('finds the ingest in the list by searching for it', async () => {
    await page.goto(`${url}/ui/`);
    await page.getByLabel('Search executions').fill(executionId.slice(0, 8));
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=/);
    // The id's prefix finds the ingest and its child executions (their ids extend the parent's).
    const row = page
      .getByTestId('execution-row')
      .filter({ has: page.getByRole('link', { name: executionId, exact: true }) });
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain('catalog.ingest');
    const others = await page.getByTestId('execution-row').allTextContents();
    for (const o of others) expect(o).toContain(executionId);
    await shot('1-search');
  });

  it('opens it: the timeline has one bar per invocation of the whole trace', async () => {
    await page.getByRole('link', { name: executionId, exact: true }).click();
    await page.waitForURL(`**/ui/executions/${executionId}`);
    await page.getByTestId('timeline').waitFor();
    const invocations = spans.filter((s) => s.kind === 'invocation');
    // 4 chunks x 3 rungs, split, 3 assemblies, index, and the quality work: dozens, across three services.
    expect(invocations.length).toBeGreaterThan(20);
    const bars = page.locator('[data-testid="bar"][data-kind="invocation"]');
    await expect.poll(() => bars.count()).toBe(invocations.length);
    const drawn = await Promise.all((await bars.all()).map((b) => b.getAttribute('data-span')));
    expect(new Set(drawn)).toEqual(new Set(invocations.map((s) => s.id)));
    await page.getByRole('button', { name: 'Zoom in' }).click();
    expect(await page.getByTestId('zoom').textContent()).toBe('2×');
    await shot('2-timeline');
  });

  it('opens an encode invocation and reads its log line', async () => {
    await page.locator('[data-testid="bar"][data-name="encodeChunk"]').first().click();
    const details = page.getByTestId('span-details');
    await details.waitFor();
    const line = details.getByTestId('log-line').first();
    await line.waitFor();
    expect(await line.textContent()).toMatch(/\d+ frames, \d+ bytes/);
    expect(await details.textContent()).toContain('Input');
    await shot('3-invocation');
  });

  it('shows the state after each rule firing', async () => {
    await page.getByRole('button', { name: 'Zoom out' }).click();
    const steps = page.getByTestId('state-step');
    expect(await steps.count()).toBeGreaterThan(2);
    expect(await page.getByTestId('state-steps').textContent()).toContain('rule fired');
  });

  it('opens a child execution', async () => {
    const child = page.getByTestId('children').getByRole('link').first();
    const childId = (await child.textContent())!;
    expect(childId.startsWith(`${executionId}.`)).toBe(true);
    await child.click();
    await page.waitForURL(`**/ui/executions/${childId}`);
    await page.getByTestId('timeline').waitFor();
    expect(await page.locator('h2').first().textContent()).toContain(childId);
    expect(await page.locator('main').textContent()).toMatch(/encoder\.encode|quality\.measure/);
    await shot('4-child');
  });

  it('lists the services with owners and functions, and the pools and queues', async () => {
    await page.getByRole('link', { name: 'Services' }).click();
    await expect.poll(() => page.getByTestId('service').count()).toBe(4);
    expect(await page.locator('main').textContent()).toContain('encodeChunk');
    await shot('5-services');
    await page.getByRole('link', { name: 'Pools and queues' }).click();
    await page.getByTestId('queues').locator('tbody tr').first().waitFor();
    expect(await page.getByTestId('pools').textContent()).toContain('thumbnails');
    await shot('6-pools');
  });

  it('updates the list live when a new execution starts', async () => {
    await page.goto(`${url}/ui/`);
    const rows = page.getByTestId('execution-row');
    await rows.first().waitFor();
    const before = await rows.count();
    const res = await fetch(`${url}/v1/services/thumbnails/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: { sample: 'countdown', frames: 2, width: 64, height: 36, frame: 1 } }),
    });
    const started = (await res.json()) as { executionId: string };
    expect(res.status, JSON.stringify(started)).toBe(202);
    // No reload: the page hears about it over /v1/live.
    await page.getByRole('link', { name: started.executionId, exact: true }).waitFor({ timeout: 15_000 });
    expect(await rows.count()).toBeGreaterThanOrEqual(Math.min(before + 1, 50));
  });
});
