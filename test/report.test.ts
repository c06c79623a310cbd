/**
 * The HTML report: written from a real evaluate() run on a tiny synthetic data set (tensors mode),
 * then loaded in headless Chromium to check that the curves, the table and every embedded image are
 * there, decoded, with no console error and no network request.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { evaluate, Evaluation } from '../src/eval/evaluate';
import { writeNpy } from '../src/common/npy';
import { renderReport, writeReport } from '../src/eval/report';
import { buildSegModel } from './helpers/onnx-builder';
import { randomArray, rng } from './helpers/reference';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) console.warn(`report.test: ${CHROMIUM} not found, the browser checks are skipped (apt-get install chromium)`);
const describeBrowser = haveChromium || process.env.CI ? describe : describe.skip;

const SCORES = ['pgn-oh:p=0.5', 'entropy', 'msp'];
const [W, H, w, h, C, F] = [48, 32, 12, 8, 5, 4];
const STEMS = ['a', 'b', 'c'];

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgn-report-'));
const dataset = path.join(root, 'data');

/** Images, masks (OoD box, void strip) and low-resolution tensors whose logits flatten over the OoD box. */
async function makeDataset(): Promise<void> {
  for (const d of ['images', 'labels_masks', 'tensors']) fs.mkdirSync(path.join(dataset, d), { recursive: true });
  const r = rng(17);
  for (const [n, stem] of STEMS.entries()) {
    const [bx, by] = [8 + 6 * n, 6 + 2 * n];
    const inBox = (x: number, y: number) => x >= bx && x < bx + 16 && y >= by && y < by + 12;
    const label = new Uint8Array(W * H);
    const rgb = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        label[i] = y >= H - 3 ? 255 : inBox(x, y) ? 1 : 0;
        rgb[3 * i] = inBox(x, y) ? 220 : 40 + 4 * x;
        rgb[3 * i + 1] = 60 + 5 * y;
        rgb[3 * i + 2] = Math.floor(255 * r());
      }
    await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(dataset, 'images', `${stem}.png`));
    await sharp(Buffer.from(label), { raw: { width: W, height: H, channels: 1 } }).png().toFile(path.join(dataset, 'labels_masks', `${stem}.png`));
    const logits = randomArray(C * h * w, r, -4, 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (inBox((x + 0.5) * (W / w), (y + 0.5) * (H / h))) for (let c = 0; c < C; c++) logits[c * h * w + y * w + x] *= 0.15;
    await writeNpy(path.join(dataset, 'tensors', `${stem}.logits.npy`), logits, [1, C, h, w]);
    await writeNpy(path.join(dataset, 'tensors', `${stem}.features.npy`), randomArray(F * h * w, r, 0, 2), [1, F, h, w]);
  }
}

let evaluation: Evaluation;
beforeAll(async () => {
  await makeDataset();
  evaluation = await evaluate({ dataset, tensors: path.join(dataset, 'tensors'), scores: SCORES, samples: 2, threads: 1 });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('writeReport', () => {
  test('writes DIR/index.html, self-contained: every image a PNG data URI, no external reference', async () => {
    const file = await writeReport(path.join(root, 'out', 'nested'), evaluation);
    expect(file).toBe(path.join(root, 'out', 'nested', 'index.html'));
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    const text = html.replace(/data:image\/png;base64,[A-Za-z0-9+/]+=*/g, 'data:…');
    expect(text.length).toBeLessThan(200_000); // markup and curves, without the images
    expect(text).not.toMatch(/https?:|file:|\/\/|url\((?!#)|@import/);
    const srcs = [...html.matchAll(/<img src="([^"]*)"/g)].map((m) => m[1]);
    expect(srcs).toHaveLength(2 * (3 + SCORES.length));
    for (const src of srcs) expect(src).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['index.html']);
  });

  test('the title is escaped; the heading carries data set, image count and source', async () => {
    const html = await renderReport(evaluation, { title: 'a <b>bold</b> & "quoted" run' });
    expect(html).toContain('<h1>a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; run</h1>');
    expect(html).toMatch(/3 images · source: precomputed tensors/);
    expect(html).toContain('<strong>data</strong>');
  });

  test('embedded images are downscaled to maxImageWidth', async () => {
    const html = await renderReport(evaluation, { maxImageWidth: 24 });
    const first = /<img src="data:image\/png;base64,([^"]+)" width="(\d+)" height="(\d+)"/.exec(html)!;
    expect([first[2], first[3]]).toEqual(['24', '16']);
    const meta = await sharp(Buffer.from(first[1], 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([24, 16]);
  });

  test('the input panel of an EXIF-rotated JPEG is upright, as the model saw it', async () => {
    // stored 32×48, left half red, right half blue; orientation 6 shows it turned clockwise: 48×32,
    // red on top, blue below. Unrotated and squashed to 48×32 it would be red left, blue right.
    const stored = Buffer.alloc(32 * 48 * 3);
    for (let i = 0; i < 32 * 48; i++) stored.set(i % 32 < 16 ? [220, 20, 20] : [20, 20, 220], 3 * i);
    const jpg = path.join(root, 'rotated.jpg');
    await sharp(stored, { raw: { width: 32, height: 48, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(jpg);
    const rotated = { ...evaluation, samples: [{ ...evaluation.samples[0], item: { ...evaluation.samples[0].item, image: jpg } }] };
    const html = await renderReport(rotated);
    const input = /<figure class="panel input"><img src="data:image\/png;base64,([^"]+)" width="48" height="32"/.exec(html)!;
    const { data } = await sharp(Buffer.from(input[1], 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rgb = (x: number, y: number) => Array.from(data.subarray(3 * (y * 48 + x), 3 * (y * 48 + x) + 3));
    for (const [x, y] of [[2, 2], [45, 2]]) expect(rgb(x, y)[0]).toBeGreaterThan(150); // top: red
    for (const [x, y] of [[2, 29], [45, 29]]) expect(rgb(x, y)[2]).toBeGreaterThan(150); // bottom: blue
  });

  test('model mode: evaluate() exposes the card\'s class colours, which colour the prediction', async () => {
    const modelDir = path.join(root, 'model');
    fs.mkdirSync(modelDir);
    fs.writeFileSync(path.join(modelDir, 'model.onnx'), buildSegModel({ dynamic: true, classes: C, features: F }).bytes);
    const colours: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]];
    fs.writeFileSync(path.join(modelDir, 'model.json'), JSON.stringify({
      name: 'tiny', model: 'model.onnx',
      input: { name: 'input', resize: 'none', channelOrder: 'rgb', scale: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      classes: colours.map((color, i) => ({ name: `c${i}`, color })),
    }));
    const e = await evaluate({ dataset, model: modelDir, scores: ['msp'], samples: 1, instance: false, threads: 1, intraOpThreads: 1 });
    expect(e.source).toBe('model');
    expect(e.classColours).toEqual(colours);
    const html = await renderReport(e);
    const pred = /<figure class="panel prediction"><img src="data:image\/png;base64,([^"]+)"/.exec(html)!;
    const { data } = await sharp(Buffer.from(pred[1], 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const seen = new Set<string>();
    for (let i = 0; i < data.length; i += 3) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    for (const c of seen) expect(colours.map(String)).toContain(c);
  });
});

describe('pgn eval --report', () => {
  test('writes the report after the table and prints its path', async () => {
    const out = path.join(root, 'cli-report');
    const { stdout } = await promisify(execFile)('node', [path.join(__dirname, '..', 'dist', 'cli', 'index.js'), 'eval', dataset, '--tensors', '--score', 'entropy', '--score', 'msp', '--threads', '1', '--report', out]);
    const lines = stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toBe(`report: ${path.join(out, 'index.html')}`);
    expect(lines.some((l) => l.startsWith('| entropy'))).toBe(true);
    const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html.match(/<figure class="sample"/g)).toHaveLength(3); // 4 requested, 3 images in the set
  });
});

describeBrowser('the report in headless Chromium', () => {
  type Page = import('playwright-core').Page;
  type Browser = import('playwright-core').Browser;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const requests: string[] = [];
  let url: string;

  beforeAll(async () => {
    if (!haveChromium)
      throw new Error(`${CHROMIUM} is missing: CI needs Debian's chromium for the report test (.ci/run installs it with apt-get install -y chromium)`);
    const file = await writeReport(path.join(root, 'browser'), evaluation);
    url = `file://${file}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    page.on('request', (r) => { if (r.url() !== url && !r.url().startsWith('data:')) requests.push(r.url()); });
    await page.goto(url, { waitUntil: 'load' });
  });
  afterAll(async () => {
    await browser?.close();
  });

  test.each(['roc', 'pr'])('the %s plot has one curve per score, with many points, and a legend naming each score', async (id) => {
    const curves = await page.$$eval(`svg#${id} path.curve`, (paths) => paths.map((p) => ({
      score: p.getAttribute('data-score'),
      points: (p.getAttribute('d') ?? '').match(/[ML]/g)?.length ?? 0,
      length: (p as unknown as { getTotalLength(): number }).getTotalLength(),
      colour: p.getAttribute('stroke'),
    })));
    expect(curves.map((c) => c.score)).toEqual(SCORES);
    for (const c of curves) {
      expect(c.points).toBeGreaterThanOrEqual(20);
      expect(c.length).toBeGreaterThan(100);
    }
    expect(new Set(curves.map((c) => c.colour)).size).toBe(SCORES.length);
    const legend = await page.$$eval(`svg#${id} .legend text`, (ts) => ts.map((t) => t.textContent ?? ''));
    expect(legend).toHaveLength(SCORES.length);
    SCORES.forEach((s, k) => expect(legend[k]).toContain(s));
    const metric = id === 'roc' ? 'AUROC' : 'AuPRC';
    evaluation.rows.forEach((r, k) => expect(legend[k]).toContain(`${metric} ${(100 * (id === 'roc' ? r.pixel.auroc : r.pixel.auprc)).toFixed(2)}%`));
    const ticks = await page.$$eval(`svg#${id} .tick-label`, (ts) => ts.map((t) => t.textContent));
    expect(ticks).toEqual(expect.arrayContaining(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']));
    const box = await page.locator(`svg#${id}`).boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    expect(box!.height).toBeGreaterThan(200);
  });

  test('the figures table has one row per score, with the figures in %', async () => {
    const rows = await page.$$eval('table#figures tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent)));
    expect(rows.map((r) => r[0])).toEqual(SCORES);
    expect(rows[0][1]).toBe((100 * evaluation.rows[0].pixel.auroc).toFixed(2));
    const head = await page.$$eval('table#figures thead th', (ths) => ths.map((t) => t.textContent ?? ''));
    for (const h of ['AUROC', 'AuPRC', 'FPR95', 'sIoU', 'PPV', 'mean F1', 'ms/img']) expect(head.join(' ')).toContain(h);
  });

  test('each sample shows image, ground truth, prediction and one heatmap per score, all decoded', async () => {
    const samples = await page.$$eval('figure.sample', (figs) => Promise.all(figs.map(async (f) => {
      const imgs = [...f.querySelectorAll('img')];
      await Promise.all(imgs.map((i) => i.decode()));
      return {
        stem: f.getAttribute('data-stem'),
        images: imgs.map((i) => ({ natural: i.naturalWidth, shown: i.getBoundingClientRect().width, alt: i.alt })),
        captions: [...f.querySelectorAll('figure.panel figcaption')].map((c) => c.textContent ?? ''),
      };
    })));
    expect(samples.map((s) => s.stem)).toEqual(['a', 'b']);
    for (const s of samples) {
      expect(s.images.length).toBeGreaterThanOrEqual(3 + SCORES.length);
      for (const i of s.images) {
        expect(i.natural).toBe(W);
        expect(i.shown).toBeGreaterThan(50);
      }
      expect(s.captions[0]).toBe('input');
      expect(s.captions[1]).toMatch(/^ground truth/);
      expect(s.captions[2]).toMatch(/^prediction/);
      SCORES.forEach((score, k) => expect(s.captions[3 + k]).toContain(score));
    }
  });

  test('no console errors and no network request', () => {
    expect(consoleErrors).toEqual([]);
    expect(requests).toEqual([]);
  });
});
