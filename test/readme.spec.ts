/**
 * The README's complete examples compile against the package as shipped: the library's
 * declarations are built with the real build config into a throw-away node_modules folder inside
 * the repository, and every ```ts block marked `<!-- example: complete -->` is type-checked
 * there, importing 'nestjs-ratelimit' by name as an app would (Nest from the repository's own
 * node_modules).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules/.bin/tsc');
const MARKER = '<!-- example: complete -->';

interface Snippet {
  /** The README line of the opening fence. */
  line: number;
  /** The `##` section the block sits in. */
  section: string;
  code: string;
}

/** The ```ts blocks whose previous non-blank line is the marker. */
function completeExamples(markdown: string): Snippet[] {
  const lines = markdown.split('\n');
  const snippets: Snippet[] = [];
  let section = '';
  let previous = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) section = line.slice(3);
    if (line === '```ts' && previous === MARKER) {
      const end = lines.indexOf('```', i + 1);
      if (end < 0) throw new Error(`README.md:${i + 1}: the code block never closes`);
      snippets.push({ line: i + 1, section, code: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
    if (line.trim() !== '') previous = line.trim();
  }
  return snippets;
}

/** Runs tsc; its diagnostics, or '' when it passes. */
async function typeCheck(args: string[]): Promise<string> {
  try {
    await run(tsc, args, { cwd: root, timeout: 120_000 });
    return '';
  } catch (error) {
    const {
      stdout = '',
      stderr = '',
      message,
    } = error as NodeJS.ErrnoException & {
      stdout?: string;
      stderr?: string;
    };
    return `${stdout}${stderr}`.trim() || message;
  }
}

describe('the README', () => {
  const snippets = completeExamples(readFileSync(join(root, 'README.md'), 'utf8'));
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(root, '.tmp-readme-'));
    const pkg = join(dir, 'node_modules', 'nestjs-ratelimit');
    mkdirSync(pkg, { recursive: true });
    // Its own package.json, so 'nestjs-ratelimit' is not resolved as the repository's self-reference.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme', type: 'module' }));
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    const build = await typeCheck([
      '-p',
      join(root, 'tsconfig.build.json'),
      '--emitDeclarationOnly',
      '--declarationMap',
      'false',
      '--outDir',
      join(pkg, 'dist'),
    ]);
    if (build !== '') throw new Error(`building the declarations failed:\n${build}`);
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('marks the Quick start example as complete', () => {
    expect(snippets.map(({ section }) => section)).toContain('Quick start');
  });

  it('has complete examples that compile against the built package', async () => {
    for (const { line, code } of snippets) writeFileSync(join(dir, `readme-line-${line}.ts`), code);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.json'),
        // No paths: 'nestjs-ratelimit' resolves to the built package in node_modules.
        compilerOptions: { paths: {}, types: ['node'], noEmit: true },
        include: ['*.ts'],
      }),
    );
    expect(await typeCheck(['-p', join(dir, 'tsconfig.json')])).toBe('');
  }, 120_000);
});
