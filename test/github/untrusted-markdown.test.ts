import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  codeBlock,
  codeSpan,
  LINE_BREAK_MARK,
  markdownLink,
  oneLine,
  plainText,
  tableCellCode,
  tableCellText,
  WORD_JOINER,
} from '../../src/github/untrusted-markdown.js';
import { activeConstructs, codeSpanContent, fencedBlock, renderedText, tableCells } from './markdown-reader.js';

/** What a hostile plan author, worker or pusher might write. */
const HOSTILE = [
  'a`b',
  '``double`` and ```triple```',
  '`',
  ' ` ',
  'pipe | in | text',
  'see [the fix](https://evil.example/x)',
  '![tracker](https://evil.example/p.png)',
  '@someone please look, and @org/team',
  'fixes #123 and GH-45 and owner/repo#6',
  '<img src=x onerror=alert(1)> <details open>',
  '**bold** *em* _em_ __strong__ ~~gone~~ ~x~',
  '&lt;b&gt; &#64;someone &amp;',
  'math $x^2$ and $$y$$',
  'https://bare.example www.bare.example mail@bare.example',
  '# heading',
  '> quote',
  '- item',
  '+ item',
  '1. first',
  '2) second',
  '---',
  '===',
  '```\nfenced\n```',
  '~~~\nfenced\n~~~',
  '    indented code',
  'line one\n# heading two\n\n\n- list three',
  'back\\slash\\',
  'a\\|b \\`c\\`',
  '[ref]: https://evil.example',
  '[^footnote]',
  '\r\nwindows\r\nlines\r',
];

describe('codeSpan', () => {
  it.each(HOSTILE)('shows %j verbatim on one line, whatever backticks it holds', (text) => {
    const md = codeSpan(text);
    expect(md).not.toMatch(/[\r\n]/);
    expect(codeSpanContent(md)).toBe(oneLine(text));
  });

  it('leaves ordinary text readable: one backtick each side', () => {
    expect(codeSpan('$.items[0].depends_on[0]')).toBe('`$.items[0].depends_on[0]`');
    expect(codeSpan('a`b')).toBe('``a`b``');
    expect(codeSpan('`x')).toBe('`` `x ``');
    expect(codeSpan('a\nb')).toBe(`\`a${LINE_BREAK_MARK}b\``);
  });

  it('holds any text (property)', () => {
    const unit = fc.constantFrom('a', '`', ' ', '|', '\n', '\\', 'é');
    fc.assert(
      fc.property(fc.string({ unit, minLength: 1, maxLength: 30 }), (text) => codeSpanContent(codeSpan(text)) === oneLine(text)),
      { numRuns: 2000 },
    );
  });
});

describe('plainText', () => {
  it.each(HOSTILE)('neutralises %j: no link, image, mention, reference, HTML or formatting, and reads the same', (text) => {
    const md = plainText(text);
    expect(activeConstructs(md)).toEqual([]);
    const lines = text
      .split(/\r\n|\r|\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '');
    expect(renderedText(md)).toBe(lines.join('\n'));
  });

  it('breaks mentions, references and bare URLs with an invisible word joiner', () => {
    expect(plainText('@someone #12 https://x.example')).toBe(`@${WORD_JOINER}someone #${WORD_JOINER}12 https${WORD_JOINER}://x.example`);
  });

  it('leaves ordinary text as it is', () => {
    for (const text of [
      'exited with code 3: npm ERR! missing script: test',
      'set DOCKER_HOST to a reachable one',
      'skipped: dependency build failed (exited with code 2)',
      'timed out after 30s',
    ]) {
      expect(plainText(text)).toBe(text);
    }
    expect(plainText('exit 3 | see log')).toBe('exit 3 \\| see log');
  });

  it('neutralises any text (property)', () => {
    const unit = fc.constantFrom(
      'a',
      '1',
      '_',
      '`',
      '*',
      '[',
      ']',
      '(',
      ')',
      '!',
      '@',
      '#',
      '<',
      '>',
      '&',
      ';',
      '|',
      '-',
      '.',
      ' ',
      '\n',
      '\\',
      'h',
      't',
      'p',
      's',
      ':',
      '/',
      'w',
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (text) => {
        const md = plainText(text);
        expect(activeConstructs(md)).toEqual([]);
        expect(renderedText(md)).toBe(
          text
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '')
            .join('\n'),
        );
      }),
      { numRuns: 3000 },
    );
  });
});

describe('table cells', () => {
  it.each(HOSTILE)('keep %j in its own cell, as code or as text', (text) => {
    const row = `| ${tableCellCode(text)} | ${tableCellText(text)} | end |`;
    expect(row).not.toMatch(/[\r\n]/);
    const cells = tableCells(row);
    expect(cells).toHaveLength(3);
    expect(codeSpanContent(cells[0]!)).toBe(oneLine(text));
    expect(activeConstructs(cells[1]!, 'table cell')).toEqual([]);
    expect(renderedText(cells[1]!)).toBe(oneLine(text).trim());
    expect(cells[2]).toBe('end');
  });
});

describe('codeBlock', () => {
  it.each(HOSTILE.concat(['```\n````\n  `````  \nafter', 'x\n~~~~\n```', '````````````````']))('keeps %j inside its fence', (text) => {
    const md = codeBlock(text);
    const lines = md.split('\n');
    const block = fencedBlock(lines, 0);
    expect(block).toBeDefined();
    expect(block!.next).toBe(lines.length);
    expect(block!.body).toBe(text.replace(/\r\n?/g, '\n').replace(/\n$/, ''));
  });

  it('uses the ordinary three backticks for ordinary logs', () => {
    expect(codeBlock('building\ndone\n')).toBe('```\nbuilding\ndone\n```');
  });
});

describe('markdownLink', () => {
  /** The label and the target of a `[label](target)` link, or null when `md` is not exactly one. */
  function link(md: string): { label: string; target: string } | null {
    const m = /^\[((?:\\.|[^\\\]])*)\]\(([^\s()<>]*)\)$/s.exec(md);
    return m ? { label: m[1]!, target: m[2]! } : null;
  }

  it('links an http(s) URL, its label plain text', () => {
    expect(markdownLink('r-1.report.html', 'https://github.com/o/r/releases/download/t/r-1.report.html')).toBe(
      '[r-1.report.html](https://github.com/o/r/releases/download/t/r-1.report.html)',
    );
  });

  it('keeps any label and URL inside the link (property): the target has no character that ends it, the label renders as itself', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...HOSTILE), fc.string()), fc.oneof(fc.constantFrom(...HOSTILE), fc.string()), (label, path) => {
        const md = markdownLink(label, `https://h.example/${path}`);
        const parts = link(md);
        expect(parts, md).not.toBeNull();
        expect(activeConstructs(parts!.label)).toEqual([]);
        expect(new URL(parts!.target).host).toBe('h.example');
      }),
    );
  });

  it('never links another scheme: the URL is shown as code', () => {
    for (const url of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'not a url']) {
      const md = markdownLink('report', url);
      expect(link(md)).toBeNull();
      expect(md).toBe(`report (${codeSpan(url)})`);
    }
  });
});
