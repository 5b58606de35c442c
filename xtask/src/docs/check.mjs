// The reference page in headless Chromium, driven by puppeteer-core: `cargo xtask docs
// --browser` copies this file beside the pinned node modules and runs
//   node check.mjs PAGE SCREENSHOT BROWSER EXPECTED_JSON
// EXPECTED_JSON: {"operations": [text...], "sections": [text...]}. The page is loaded, each
// tag of its menu opened; every operation's text must show on some tag's page and every
// section on the first; no script error, no console error. A request to another origin (the
// page's attribution logo) is answered here with an empty image and listed, since the
// machine that checks may have no internet. Prints one JSON line; exit 1 when something lacks.
import puppeteer from 'puppeteer-core';

const [pagePath, screenshot, executablePath, expectedJson] = process.argv.slice(2);
const expected = JSON.parse(expectedJson);
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
const errors = [];
const elsewhere = [];
page.on('console', (message) => {
  if (message.type() === 'error') errors.push(message.text());
});
page.on('pageerror', (error) => errors.push(String(error)));
await page.setRequestInterception(true);
page.on('request', (request) => {
  if (request.url().startsWith('file:') || request.url().startsWith('data:')) {
    request.continue();
    return;
  }
  elsewhere.push(request.url());
  request.respond({
    status: 200,
    contentType: 'image/svg+xml',
    body: '<svg xmlns="http://www.w3.org/2000/svg"/>',
  });
});
await page.setViewport({ width: 1400, height: 1100 });
await page.goto('file://' + pagePath, { waitUntil: 'load', timeout: 60000 });
await new Promise((resolve) => setTimeout(resolve, 500));
const overview = await page.evaluate(() => document.body.innerText);
await page.screenshot({ path: screenshot, fullPage: true });
const tags = await page.evaluate(() =>
  [...document.querySelectorAll('a[href^="/"]')]
    .map((link) => link.getAttribute('href'))
    .filter((href) => !href.startsWith('/section/') && href !== '/'),
);
let shown = overview;
for (const tag of [...new Set(tags)]) {
  await page.click(`a[href="${tag}"]`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  shown += await page.evaluate(() => document.body.innerText);
}
await browser.close();
const missing = [
  ...expected.operations.filter((text) => !shown.includes(text)),
  ...expected.sections.filter((text) => !overview.includes(text)),
];
console.log(JSON.stringify({ tags: [...new Set(tags)], missing, errors, elsewhere }));
process.exit(missing.length > 0 || errors.length > 0 ? 1 : 0);
