/**
 * The documentation's links: in README.md and every docs/**.md, each relative link or image
 * [x](path) / ![x](path) / [x]: path must name an existing file, and each #anchor a heading of the
 * target (GitHub's slugs). Also: the README stays a short page whose first code block runs the tests.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** README.md and every .md under docs/, absolute paths. */
function markdownFiles(): string[] {
  const files = [path.join(ROOT, 'README.md')];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.md')) files.push(full);
    }
  };
  walk(path.join(ROOT, 'docs'));
  return files;
}

/** The text with fenced code blocks blanked, line count kept. */
function blankFences(text: string): string {
  let fence: string | null = null;
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
      if (fence === null) {
        if (!m) return line;
        fence = m[1];
        return '';
      }
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1]) fence = null;
      return '';
    })
    .join('\n');
}

/** The text with fenced code blocks blanked and inline code spans removed. */
function stripCode(text: string): string {
  return blankFences(text).replace(/(`+)[^`]*?\1/g, '');
}

/** GitHub's anchor for a heading's text (github-slugger): rendered text, lowercase, punctuation dropped, spaces → '-'. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images → their text
    .replace(/`([^`]*)`/g, '$1') // code spans → their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/\*+/g, '') // emphasis
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=$|[^\p{L}\p{N}])/gu, '$1') // _emphasis_, not snake_case
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings, duplicates numbered as GitHub does (-1, -2, …). */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of blankFences(text).split('\n')) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Every link target of a Markdown text (inline links, images, reference definitions), with its line. */
export function linkTargets(text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  stripCode(text)
    .split('\n')
    .forEach((line, i) => {
      const inline = /!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+("[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
      for (const m of line.matchAll(inline)) out.push({ target: m[1].replace(/^<|>$/g, ''), line: i + 1 });
      const ref = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
      if (ref) out.push({ target: ref[1].replace(/^<|>$/g, ''), line: i + 1 });
    });
  return out;
}

/** The broken links of `text`, read as the file `file` (relative links resolve from its folder). */
export function brokenLinks(text: string, file: string): string[] {
  const problems: string[] = [];
  const name = path.relative(ROOT, file);
  for (const { target, line } of linkTargets(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // URLs, mailto:
    const hash = target.indexOf('#');
    const pathPart = decodeURI(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
    const resolved = pathPart === '' ? file : pathPart.startsWith('/') ? path.join(ROOT, pathPart) : path.resolve(path.dirname(file), pathPart);
    if (resolved !== file && !fs.existsSync(resolved)) {
      problems.push(`${name}:${line}: ${target}: no such file ${path.relative(ROOT, resolved)}`);
      continue;
    }
    if (anchor === null) continue;
    if (!resolved.endsWith('.md') || (resolved !== file && !fs.statSync(resolved).isFile())) {
      problems.push(`${name}:${line}: ${target}: an anchor into a file that is not Markdown`);
      continue;
    }
    const targetText = resolved === file ? text : fs.readFileSync(resolved, 'utf8');
    if (!headingAnchors(targetText).has(anchor)) problems.push(`${name}:${line}: ${target}: no heading #${anchor} in ${path.relative(ROOT, resolved)}`);
  }
  return problems;
}

describe('documentation links', () => {
  const files = markdownFiles();

  test('README.md and the docs pages are all found', () => {
    const names = files.map((f) => path.relative(ROOT, f));
    expect(names).toContain('README.md');
    expect(names).toContain(path.join('docs', 'api.md'));
    expect(names).toContain(path.join('docs', 'second-layer.md'));
    // The extractor finds the links (a regex that matched nothing would pass every file).
    const count = files.reduce((n, f) => n + linkTargets(fs.readFileSync(f, 'utf8')).length, 0);
    expect(count).toBeGreaterThan(30);
  });

  test.each(files.map((f) => [path.relative(ROOT, f), f]))('%s: every relative link and anchor resolves', (_name, file) => {
    const text = fs.readFileSync(file, 'utf8');
    expect(brokenLinks(text, file)).toEqual([]);
  });

  test('every docs page is reachable from the README', () => {
    const readme = path.join(ROOT, 'README.md');
    const linked = new Set(linkTargets(fs.readFileSync(readme, 'utf8')).map((l) => path.resolve(ROOT, l.target.split('#')[0])));
    for (const file of fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')))
      expect([file, linked.has(path.join(ROOT, 'docs', file))]).toEqual([file, true]);
  });
});

describe('the link checker', () => {
  const file = path.join(ROOT, 'docs', 'example.md');

  test('reports a missing file, a missing anchor and an anchor into a non-Markdown file', () => {
    const text = [
      '# Title',
      'See [api](api.md), [gone](nope.md), [bad anchor](api.md#no-such-heading), [image](missing.png),',
      '![shot](report-roadanomaly21.png#x) and [self](#not-here), [ok](#title).',
      '[ref]: ../README.md#pgn-ood',
      '[badref]: ../NOPE.md',
    ].join('\n');
    const problems = brokenLinks(text, file);
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/nope\.md: no such file docs\/nope\.md/);
    expect(problems.join('\n')).toMatch(/no heading #no-such-heading in docs\/api\.md/);
    expect(problems.join('\n')).toMatch(/missing\.png: no such file/);
    expect(problems.join('\n')).toMatch(/report-roadanomaly21\.png#x: an anchor into a file that is not Markdown/);
    expect(problems.join('\n')).toMatch(/#not-here: no heading #not-here in docs\/example\.md/);
    expect(problems.join('\n')).toMatch(/\.\.\/NOPE\.md: no such file NOPE\.md/);
  });

  test('ignores URLs and links inside code', () => {
    const text = ['[web](https://example.org/x.md)', '`[x](nope.md)`', '```md', '[x](nope.md)', '```', '[mail](mailto:a@b.c)'].join('\n');
    expect(brokenLinks(text, file)).toEqual([]);
  });

  test("GitHub's slugs", () => {
    expect(githubSlug('Real data: a Cityscapes network on SegmentMeIfYouCan')).toBe('real-data-a-cityscapes-network-on-segmentmeifyoucan');
    expect(githubSlug('The second-to-last convolution (`pgn2-*`)')).toBe('the-second-to-last-convolution-pgn2-');
    expect(githubSlug('Threads, backends and CPU levels')).toBe('threads-backends-and-cpu-levels');
    expect(githubSlug('The `pgn` command')).toBe('the-pgn-command');
    expect(githubSlug('snake_case and *emphasis*')).toBe('snake_case-and-emphasis');
    expect(githubSlug('See [api.md](api.md)')).toBe('see-apimd');
    expect([...headingAnchors('# A\n## A\n```\n# not a heading\n```\n### A')]).toEqual(['a', 'a-1', 'a-2']);
  });
});

describe('README.md', () => {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  test('is a short page: at most 160 lines', () => {
    expect(text.trimEnd().split('\n').length).toBeLessThanOrEqual(160);
  });

  test('its first code block runs the tests (CI runs that command)', () => {
    const first = /^```[^\n]*\n([\s\S]*?)^```/m.exec(text);
    expect(first).not.toBeNull();
    expect(first![1]).toContain('npm test');
  });
});
