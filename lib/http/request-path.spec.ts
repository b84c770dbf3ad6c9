import type { RateLimitRequest } from '../auth/identity.js';
import { requestPath } from './request-path.js';

const path = (originalUrl: string) => requestPath({ originalUrl } as RateLimitRequest);

describe('requestPath', () => {
  it('drops the query string and fragment', () => {
    expect(path('/towns/1?page=2')).toBe('/towns/1');
    expect(path('/towns#top')).toBe('/towns');
  });

  it('percent-decodes the path', () => {
    expect(path('/caf%C3%A9/a%20b')).toBe('/café/a b');
  });

  it('keeps a path with a malformed escape as it came, without throwing', () => {
    expect(path('/bad%zz/%E0%A4%A')).toBe('/bad%zz/%E0%A4%A');
  });

  it('uses only the path of an absolute-form request target', () => {
    expect(path('http://example.test/towns?x=1')).toBe('/towns');
    expect(path('http://example.test')).toBe('/');
  });

  it('falls back to url when Express did not set originalUrl', () => {
    expect(requestPath({ url: '/plain?q' } as RateLimitRequest)).toBe('/plain');
  });
});
