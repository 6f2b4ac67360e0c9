/**
 * Screenshots of the dashboard's pages under test-output/ (ignored by git), and a check that one
 * is not blank. The PNG is decoded by Chromium itself (createImageBitmap on a page of its own, so
 * the dashboard's Content-Security-Policy does not apply): no image library of our own.
 */
// Playwright's types and the functions it runs in the page use the browser's (DOM) types.
/// <reference lib="dom" />
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';

export const TEST_OUTPUT = path.resolve(__dirname, '..', '..', 'test-output');

export interface PixelStats {
  width: number;
  height: number;
  /** Standard deviation of the luminance (0-255). */
  luminanceStdDev: number;
  /** Share of pixels whose colour differs from the most common one (the background). */
  inkShare: number;
}

/** Saves a full-page screenshot as test-output/<dir>/<name>.png; returns its bytes. */
export async function screenshot(page: Page, dir: string, name: string): Promise<Buffer> {
  const file = path.join(TEST_OUTPUT, dir, `${name}.png`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return await page.screenshot({ path: file, fullPage: true });
}

/** How much a PNG varies, decoded in a blank page of `browser`. */
export async function pixelStats(browser: Browser, png: Buffer): Promise<PixelStats> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext('2d')!;
      context.drawImage(bitmap, 0, 0);
      const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
      const pixels = data.length / 4;
      const counts = new Map<number, number>();
      let sum = 0;
      let squares = 0;
      for (let i = 0; i < data.length; i += 4) {
        const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
        sum += y;
        squares += y * y;
        const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        counts.set(colour, (counts.get(colour) ?? 0) + 1);
      }
      const mean = sum / pixels;
      const background = Math.max(...counts.values());
      return { width: bitmap.width, height: bitmap.height, luminanceStdDev: Math.sqrt(Math.max(0, squares / pixels - mean * mean)), inkShare: 1 - background / pixels };
    }, png.toString('base64'));
  } finally {
    await page.close();
  }
}
