import { withoutStackTrace } from './without-stack-trace.js';

describe('withoutStackTrace', () => {
  it('creates the error with its first line only, and restores the trace limit', () => {
    const limit = Error.stackTraceLimit;
    const error = withoutStackTrace(() => new RangeError('over the limit'));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.stack).toBe('RangeError: over the limit');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('later').stack).toContain('\n    at ');
  });

  it('restores the trace limit when creating the error throws', () => {
    const limit = Error.stackTraceLimit;
    expect(() =>
      withoutStackTrace(() => {
        throw new TypeError('broken factory');
      }),
    ).toThrow('broken factory');
    expect(Error.stackTraceLimit).toBe(limit);
  });
});
