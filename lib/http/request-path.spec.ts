import { expressPlatform } from './platforms/express.platform.js';
import { fastifyPlatform } from './platforms/fastify.platform.js';
import { canonicalPrefix, MAX_MATCHED_PATH_LENGTH, RequestPaths } from './request-path.js';

const express = new RequestPaths({ caseSensitive: false, strict: false, prefix: '' });
const strict = new RequestPaths({ caseSensitive: true, strict: true, prefix: '' });
const prefixed = new RequestPaths({ caseSensitive: false, strict: false, prefix: '/api' });

/** The canonical path, and the routed one when it differs. */
function forms(paths: RequestPaths, target: string): string | [string, string] {
  const { canonical, routed } = paths.ofTarget(target);
  return canonical === routed ? canonical : [canonical, routed];
}

describe('RequestPaths', () => {
  it('passes a plain path through, without the query string or fragment', () => {
    expect(forms(express, '/towns/1')).toBe('/towns/1');
    expect(forms(express, '/towns/1?page=2')).toBe('/towns/1');
    expect(forms(express, '/towns#top')).toBe('/towns');
    expect(forms(express, '/')).toBe('/');
    expect(forms(express, '?only=query')).toBe('/');
  });

  it('gives every spelling that reaches one handler the same path', () => {
    for (const spelling of [
      '/towns',
      '/TOWNS',
      '/Towns',
      '/towns/',
      '//towns',
      '/towns//',
      '/t%6Fwns',
      '/%74%6f%77%6e%73',
      '/towns;jsessionid=1',
      '/./towns',
      '/x/../towns',
      '/%2e/towns',
      '/towns?x=1',
    ]) {
      expect([spelling, express.ofTarget(spelling).canonical]).toEqual([spelling, '/towns']);
    }
  });

  it('keeps the routed form of a path with dot segments for patterns written for it', () => {
    // A route `/forests/:id` receives `/forests/..` with id '..'.
    expect(forms(express, '/forests/..')).toEqual(['/', '/forests/..']);
    expect(forms(express, '/a/b/../c')).toEqual(['/a/c', '/a/b/../c']);
    expect(forms(express, '/a/./b')).toEqual(['/a/b', '/a/./b']);
    // Dots inside a segment are not dot segments.
    expect(forms(express, '/files/report.v2..pdf')).toBe('/files/report.v2..pdf');
  });

  it('percent-decodes the path, keeping a malformed escape as it came', () => {
    expect(forms(express, '/caf%C3%A9/a%20b')).toBe('/café/a b');
    expect(forms(express, '/bad%zz/%E0%A4%A')).toBe('/bad%zz/%e0%a4%a');
    // A malformed escape does not keep the rest of the path from being decoded.
    expect(forms(express, '/t%6Fwns/%FF')).toBe('/towns/%ff');
    expect(forms(express, '/t%6F%FFwns')).toBe('/to%ffwns');
  });

  it('follows the router: letter case and a trailing slash count when it says so', () => {
    expect(forms(strict, '/Towns/')).toBe('/Towns/');
    expect(forms(strict, '//Towns;x=1')).toBe('/Towns');
    expect(forms(strict, '/')).toBe('/');
  });

  it('drops the global prefix, and only a whole prefix segment', () => {
    expect(forms(prefixed, '/api/towns')).toBe('/towns');
    expect(forms(prefixed, '/API/Towns/')).toBe('/towns');
    expect(forms(prefixed, '/api')).toBe('/');
    expect(forms(prefixed, '/api/')).toBe('/');
    expect(forms(prefixed, '/apiary')).toBe('/apiary');
    expect(forms(prefixed, '/health')).toBe('/health'); // a route excluded from the prefix
  });

  it('uses only the path of an absolute-form request target', () => {
    expect(forms(express, 'http://example.test/towns?x=1')).toBe('/towns');
    expect(forms(express, 'http://example.test')).toBe('/');
  });

  it.each([
    ['Express', expressPlatform],
    ['Fastify', fastifyPlatform],
  ])('reads the target %s received: originalUrl, else url', (_name, platform) => {
    expect(express.ofTarget(platform.target({ originalUrl: '/A', url: '/b' })).canonical).toBe(
      '/a',
    );
    expect(express.ofTarget(platform.target({ url: '/plain?q' })).canonical).toBe('/plain');
  });

  it('matches at most the first MAX_MATCHED_PATH_LENGTH characters', () => {
    const long = `/towns/${'x'.repeat(20_000)}`;
    const { canonical, routed } = express.ofTarget(long);
    expect(canonical).toHaveLength(MAX_MATCHED_PATH_LENGTH);
    expect(canonical.startsWith('/towns/xxx')).toBe(true);
    expect(routed).toBe(canonical);
  });
});

describe('canonicalPrefix', () => {
  it('is the prefix as a path, in the case the router compares', () => {
    expect(canonicalPrefix('', false)).toBe('');
    expect(canonicalPrefix('/', false)).toBe('');
    expect(canonicalPrefix('api', false)).toBe('/api');
    expect(canonicalPrefix('/API/v1/', false)).toBe('/api/v1');
    expect(canonicalPrefix('/API/v1/', true)).toBe('/API/v1');
  });
});
