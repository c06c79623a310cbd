/**
 * A self-contained HTML report of an Evaluation: the figures table, the ROC and PR curves of every
 * score (inline SVG), and for each kept sample the image, ground truth, prediction and each score's
 * heatmap (embedded base64 PNGs). No external resources: the page opens offline.
 */
import path from 'node:path';
import sharp from 'sharp';
import type { Evaluation, EvaluationRow, EvaluationSample } from './evaluate';
import { ensureDir, writeFileAtomic } from '../common/files';
import { formatPercent } from './metrics';
import { colourise, type Colour } from '../image/render';
import { heatColor } from '../image/segment-images';

export interface ReportOptions {
  /** Colour of each class of the prediction. Default: the evaluation's (model card), else Cityscapes' 19 + grey. */
  classColours?: Colour[];
  /** The page's heading. Default: "<data set>: out-of-distribution scores". */
  title?: string;
  /** Embedded images are downscaled to at most this width (default 480). */
  maxImageWidth?: number;
}

/** Cityscapes' 19 train classes, then grey (e.g. a 20th background channel). */
export const CITYSCAPES_COLOURS: Colour[] = [
  [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153],
  [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
  [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
  [128, 128, 128],
];

/** Okabe–Ito: distinct also for colour-blind readers; beyond eight, curves repeat them dashed. */
const CURVE_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#000000', '#B8A800'];

const GT_COLOURS: Record<number, Colour> = { 0: [38, 70, 120], 1: [255, 130, 0], 255: [200, 200, 200] };
const VOID_GREY: Colour = [150, 150, 150];

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const hex = (c: Colour) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

interface Embedded {
  uri: string;
  width: number;
  height: number;
}

/** Raw RGB (or an image file) → PNG data URI at `width`×`height`; `nearest` keeps class colours crisp. */
async function embed(input: Buffer | string, raw: { width: number; height: number } | null, width: number, height: number, nearest: boolean): Promise<Embedded> {
  // an image file upright (EXIF orientation applied), as the model saw it and as the maps are
  const pipeline = raw ? sharp(input, { raw: { ...raw, channels: 3 } }) : sharp(input, { autoOrient: true }).removeAlpha().toColourspace('srgb');
  const png = await pipeline
    .resize(width, height, { fit: 'fill', kernel: nearest ? 'nearest' : 'lanczos3' })
    .png({ palette: true, compressionLevel: 9, effort: 8 })
    .toBuffer();
  return { uri: `data:image/png;base64,${png.toString('base64')}`, width, height };
}

/** Ground truth: in-distribution, OoD and void in three distinct colours. */
function groundTruthRgb(label: Uint8Array): Buffer {
  const rgb = Buffer.alloc(label.length * 3);
  for (let i = 0; i < label.length; i++) {
    const c = GT_COLOURS[label[i]] ?? VOID_GREY;
    rgb[3 * i] = c[0];
    rgb[3 * i + 1] = c[1];
    rgb[3 * i + 2] = c[2];
  }
  return rgb;
}

/** The map min–max normalized over its non-void finite pixels, on inferno; void pixels grey. */
function heatmapRgb(map: Float32Array, label: Uint8Array): { rgb: Buffer; lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (label[i] === 255 || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const rgb = Buffer.alloc(map.length * 3);
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    const c = label[i] === 255 ? VOID_GREY : heatColor(v === Infinity ? 1 : (v - lo) / span);
    rgb[3 * i] = Math.round(c[0]);
    rgb[3 * i + 1] = Math.round(c[1]);
    rgb[3 * i + 2] = Math.round(c[2]);
  }
  return { rgb, lo, hi };
}

const fmtNum = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toPrecision(3)) : String(v));

// ---- curves ----------------------------------------------------------------------------------------

const PLOT = { left: 56, right: 16, top: 14, width: 360, height: 300, legendRow: 18 };

function curveStyle(k: number): { colour: string; dash: string } {
  const colour = CURVE_COLOURS[k % CURVE_COLOURS.length];
  return { colour, dash: k >= CURVE_COLOURS.length ? ' stroke-dasharray="6 3"' : '' };
}

/**
 * One plot, all scores: x and y in [0, 1], ticks every 0.2 with a light grid, a dashed reference,
 * then one path per score and a legend below the axes.
 */
function plotSvg(id: string, caption: string, xLabel: string, yLabel: string, rows: EvaluationRow[], xy: (r: EvaluationRow) => [Float64Array, Float64Array] | null, legend: (r: EvaluationRow) => string, reference: string): string {
  const { left, top, width, height, legendRow } = PLOT;
  const bottom = top + height;
  const legendTop = bottom + 48;
  const svgWidth = left + width + PLOT.right;
  const svgHeight = legendTop + rows.length * legendRow + 4;
  const X = (v: number) => (left + v * width).toFixed(1);
  const Y = (v: number) => (bottom - v * height).toFixed(1);
  const parts: string[] = [];
  parts.push(`<svg id="${id}" class="plot" viewBox="0 0 ${svgWidth} ${svgHeight}" width="${svgWidth}" height="${svgHeight}" role="img" aria-labelledby="${id}-title">`);
  parts.push(`<title id="${id}-title">${escapeHtml(caption)}</title>`);
  parts.push(`<rect x="${left}" y="${top}" width="${width}" height="${height}" class="frame"/>`);
  parts.push('<g class="axes">');
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    const label = v.toFixed(1);
    parts.push(`<line class="grid" x1="${X(v)}" y1="${top}" x2="${X(v)}" y2="${bottom}"/><line class="grid" x1="${left}" y1="${Y(v)}" x2="${left + width}" y2="${Y(v)}"/>`);
    parts.push(`<line class="tick" x1="${X(v)}" y1="${bottom}" x2="${X(v)}" y2="${bottom + 5}"/><text class="tick-label" x="${X(v)}" y="${bottom + 18}" text-anchor="middle">${label}</text>`);
    parts.push(`<line class="tick" x1="${left - 5}" y1="${Y(v)}" x2="${left}" y2="${Y(v)}"/><text class="tick-label" x="${left - 8}" y="${(bottom - v * height + 4).toFixed(1)}" text-anchor="end">${label}</text>`);
  }
  parts.push(`<text class="axis-label" x="${left + width / 2}" y="${bottom + 36}" text-anchor="middle">${escapeHtml(xLabel)}</text>`);
  parts.push(`<text class="axis-label" transform="translate(16 ${top + height / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`);
  parts.push('</g>');
  parts.push(reference);
  parts.push(`<g class="curves"><clipPath id="${id}-clip"><rect x="${left - 2}" y="${top - 2}" width="${width + 4}" height="${height + 4}"/></clipPath>`);
  rows.forEach((r, k) => {
    const c = xy(r);
    if (!c) return;
    const [xs, ys] = c;
    const d: string[] = [];
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      d.push(`${d.length === 0 ? 'M' : 'L'}${X(xs[i])} ${Y(ys[i])}`);
    }
    if (d.length === 0) return;
    const { colour, dash } = curveStyle(k);
    parts.push(`<path class="curve" data-score="${escapeHtml(r.label)}" data-points="${d.length}" clip-path="url(#${id}-clip)" d="${d.join('')}" stroke="${colour}"${dash}/>`);
  });
  parts.push('</g>');
  parts.push('<g class="legend">');
  rows.forEach((r, k) => {
    const y = legendTop + k * legendRow;
    const { colour, dash } = curveStyle(k);
    parts.push(`<g class="legend-entry" data-score="${escapeHtml(r.label)}"><line x1="${left}" y1="${y}" x2="${left + 24}" y2="${y}" stroke="${colour}" stroke-width="3"${dash}/><text x="${left + 32}" y="${y + 4}">${escapeHtml(legend(r))}</text></g>`);
  });
  parts.push('</g></svg>');
  return `<figure class="plot">${parts.join('\n')}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function rocSvg(rows: EvaluationRow[]): string {
  const { left, top, width, height } = PLOT;
  const reference = `<line class="reference" x1="${left}" y1="${top + height}" x2="${left + width}" y2="${top}"/>`;
  return plotSvg('roc', 'ROC curves (pixels pooled over the data set)', 'false positive rate', 'true positive rate', rows,
    (r) => (r.pixel.curves ? [r.pixel.curves.fpr, r.pixel.curves.tpr] : null),
    (r) => `${r.label} — AUROC ${formatPercent(r.pixel.auroc)}%`, reference);
}

function prSvg(rows: EvaluationRow[]): string {
  const { left, top, width, height } = PLOT;
  const p = rows[0]?.pixel;
  const rate = p && p.positives + p.negatives > 0 ? p.positives / (p.positives + p.negatives) : NaN;
  const y = (top + height - rate * height).toFixed(1);
  const reference = Number.isFinite(rate) ? `<line class="reference" x1="${left}" y1="${y}" x2="${left + width}" y2="${y}"><title>OoD pixel rate ${formatPercent(rate)}%: a random score's precision</title></line>` : '';
  return plotSvg('pr', 'Precision–recall curves (pixels pooled over the data set)', 'recall', 'precision', rows,
    (r) => (r.pixel.curves ? [r.pixel.curves.tpr, r.pixel.curves.precision] : null),
    (r) => `${r.label} — AuPRC ${formatPercent(r.pixel.auprc)}%`, reference);
}

// ---- table -----------------------------------------------------------------------------------------

function figuresTable(e: Evaluation): string {
  type Col = { head: string; value: (r: EvaluationRow) => number; better: 'max' | 'min' };
  const cols: Col[] = [
    { head: 'AUROC', value: (r) => r.pixel.auroc, better: 'max' },
    { head: 'AuPRC', value: (r) => r.pixel.auprc, better: 'max' },
    { head: 'FPR95', value: (r) => r.pixel.fpr95, better: 'min' },
    { head: 'sIoU', value: (r) => r.instance?.sIoU ?? NaN, better: 'max' },
    { head: 'PPV', value: (r) => r.instance?.ppv ?? NaN, better: 'max' },
    { head: 'mean F1', value: (r) => r.instance?.meanF1 ?? NaN, better: 'max' },
  ];
  const best = cols.map((c) => {
    const vs = e.rows.map(c.value).filter(Number.isFinite);
    return vs.length > 1 ? (c.better === 'max' ? Math.max(...vs) : Math.min(...vs)) : NaN;
  });
  const firstMs = e.source === 'model' ? 'inference ms/img' : 'load ms/img';
  const head = `<tr><th scope="col">score</th>${cols.map((c) => `<th scope="col">${c.head} %</th>`).join('')}<th scope="col">${firstMs}</th><th scope="col">scoring ms/img</th></tr>`;
  const body = e.rows.map((r) => {
    const cells = cols.map((c, i) => {
      const v = c.value(r);
      return `<td${v === best[i] ? ' class="best"' : ''}>${formatPercent(v)}</td>`;
    });
    return `<tr data-score="${escapeHtml(r.label)}"><th scope="row">${escapeHtml(r.label)}</th>${cells.join('')}<td>${e.timings.inference.toFixed(1)}</td><td>${(e.timings.scoring / e.rows.length).toFixed(1)}</td></tr>`;
  });
  return `<table id="figures">
<caption>Pixel figures (AUROC, AuPRC, FPR95) pooled over all pixels; component figures (sIoU, PPV, mean F1) at each score's best-F1 threshold. Best per column in bold. Scoring time is per score (all scores share one pass).</caption>
<thead>${head}</thead>
<tbody>
${body.join('\n')}
</tbody>
</table>`;
}

// ---- samples ---------------------------------------------------------------------------------------

function panel(img: Embedded, alt: string, caption: string, kind: string): string {
  return `<figure class="panel ${kind}"><img src="${img.uri}" width="${img.width}" height="${img.height}" alt="${escapeHtml(alt)}"><figcaption>${caption}</figcaption></figure>`;
}

async function sampleFigure(s: EvaluationSample, rows: EvaluationRow[], colours: Colour[], maxWidth: number): Promise<string> {
  const { width, height, data: label } = s.label;
  const w = Math.min(maxWidth, width);
  const h = Math.max(1, Math.round((height * w) / width));
  const size = { width, height };
  const stem = escapeHtml(s.item.stem);
  const panels: string[] = [];
  panels.push(panel(await embed(s.item.image, null, w, h, false), `input image ${s.item.stem}`, 'input', 'input'));
  let ood = 0, voids = 0;
  for (const v of label) if (v === 1) ood++; else if (v === 255) voids++;
  const gtCaption = `ground truth <span class="range">OoD ${formatPercent(ood / label.length, 1)}%, void ${formatPercent(voids / label.length, 1)}%</span>`;
  panels.push(panel(await embed(groundTruthRgb(label), size, w, h, true), `ground truth ${s.item.stem}`, gtCaption, 'ground-truth'));
  if (s.prediction) panels.push(panel(await embed(colourise(s.prediction, colours), size, w, h, true), `prediction ${s.item.stem}`, 'prediction (argmax)', 'prediction'));
  for (const [k, r] of rows.entries()) {
    const map = s.maps[k];
    if (!map) continue;
    const { rgb, lo, hi } = heatmapRgb(map, label);
    panels.push(panel(await embed(rgb, size, w, h, false), `${r.label} heatmap ${s.item.stem}`, `${escapeHtml(r.label)}<span class="range">${escapeHtml(fmtNum(lo))} … ${escapeHtml(fmtNum(hi))}</span>`, 'heatmap'));
  }
  return `<figure class="sample" data-stem="${stem}">
<figcaption>${escapeHtml(path.basename(s.item.image))}</figcaption>
<div class="panels" style="--panels: ${panels.length}">
${panels.join('\n')}
</div>
</figure>`;
}

// ---- page ------------------------------------------------------------------------------------------

const STYLE = `
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; background: #fff; }
body { margin: 0 auto; padding: 16px 24px 40px; max-width: 1400px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0; font-size: 0.92rem; }
.meta time, .note .colorbar { white-space: nowrap; }
table { border-collapse: collapse; font-size: 0.92rem; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.8rem; padding-top: 6px; max-width: 60rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; }
thead th { border-bottom: 2px solid #999; text-align: right; white-space: nowrap; }
thead th:first-child, tbody th { text-align: left; font-weight: 600; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; }
td { text-align: right; }
td.best { font-weight: 700; }
tbody tr:hover { background: #f5f7fa; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; }
figure.plot figcaption { font-size: 0.85rem; color: #555; text-align: center; }
svg.plot { font-size: 12px; max-width: 100%; height: auto; }
svg .frame { fill: none; stroke: #888; }
svg .grid { stroke: #ececec; }
svg .tick { stroke: #888; }
svg .tick-label { fill: #555; font-size: 11px; }
svg .axis-label { fill: #333; font-size: 13px; }
svg .reference { stroke: #aaa; stroke-dasharray: 4 4; }
svg .curve { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg .legend text { fill: #222; font-size: 12px; }
.colorbar { display: inline-block; width: 160px; height: 10px; vertical-align: middle; margin: 0 6px;
  background: linear-gradient(to right, INFERNO); border: 1px solid #aaa; }
.note { color: #555; font-size: 0.85rem; }
figure.sample { margin: 0 0 22px; }
figure.sample > figcaption { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9rem; margin-bottom: 6px; font-weight: 600; }
.panels { display: grid; grid-template-columns: repeat(var(--panels), minmax(0, 1fr)); gap: 8px 6px; }
@media (max-width: 900px) { .panels { grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); } }
figure.panel img { width: 100%; height: auto; display: block; border-radius: 2px; image-rendering: auto; }
figure.panel.ground-truth img, figure.panel.prediction img { image-rendering: pixelated; }
figure.panel figcaption { font-size: 0.78rem; color: #333; margin-top: 3px; line-height: 1.35; overflow-wrap: anywhere; }
figure.panel.heatmap figcaption { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.74rem; }
.range { display: block; color: #777; font-variant-numeric: tabular-nums; font-family: system-ui, sans-serif; font-size: 0.72rem; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border: 1px solid #888; vertical-align: -1px; margin: 0 2px 0 4px; }
`;

function inferno(): string {
  const stops: string[] = [];
  for (let i = 0; i <= 8; i++) stops.push(hex(heatColor(i / 8)));
  return stops.join(', ');
}

/** The page as a string (writeReport writes it). */
export async function renderReport(evaluation: Evaluation, options: ReportOptions = {}): Promise<string> {
  const e = evaluation;
  const colours = options.classColours ?? e.classColours ?? CITYSCAPES_COLOURS;
  const maxWidth = options.maxImageWidth ?? 480;
  if (!(Number.isInteger(maxWidth) && maxWidth > 0)) throw new RangeError(`maxImageWidth must be a positive integer, got ${String(maxWidth)}`);
  const name = path.basename(path.resolve(e.dataset));
  const title = options.title ?? `${name}: out-of-distribution scores`;
  const date = new Date();
  const source = e.source === 'model' ? 'model' : 'precomputed tensors';
  const samples: string[] = [];
  for (const s of e.samples) samples.push(await sampleFigure(s, e.rows, colours, maxWidth));
  const samplesSection = samples.length === 0 ? '' : `
<section id="samples">
<h2>Samples</h2>
<p class="note">Ground truth: <span class="swatch" style="background:${hex(GT_COLOURS[0])}"></span>in-distribution <span class="swatch" style="background:${hex(GT_COLOURS[1])}"></span>OoD <span class="swatch" style="background:${hex(GT_COLOURS[255])}"></span>void.<br>
Heatmaps: low <span class="colorbar"></span> high, <span class="swatch" style="background:${hex(VOID_GREY)}"></span>void — inferno, each map min–max normalized over its non-void pixels (its score range under it).</p>
${samples.join('\n')}
</section>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE.replace('INFERNO', inferno())}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="meta">data set <strong>${escapeHtml(name)}</strong> (<code>${escapeHtml(e.dataset)}</code>) · ${e.images} image${e.images === 1 ? '' : 's'} · source: ${source} · <time datetime="${date.toISOString()}">${date.toISOString().slice(0, 16).replace('T', ' ')} UTC</time></p>
</header>
<main>
<section id="figures-section">
<h2>Figures</h2>
${figuresTable(e)}
</section>
<section id="curves">
<h2>Curves</h2>
<div class="plots">
${rocSvg(e.rows)}
${prSvg(e.rows)}
</div>
</section>
${samplesSection}
</main>
</body>
</html>
`;
}

/** Writes DIR/index.html (atomically; DIR is created) and resolves to its path. */
export async function writeReport(dir: string, evaluation: Evaluation, options: ReportOptions = {}): Promise<string> {
  const html = await renderReport(evaluation, options);
  await ensureDir(dir);
  const file = path.join(dir, 'index.html');
  await writeFileAtomic(file, html);
  return file;
}
