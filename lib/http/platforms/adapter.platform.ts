import type { AbstractHttpAdapter } from '@nestjs/core';
import type { ServerResponse } from 'node:http';
import type { HttpPlatform } from '../http-platform.js';

/**
 * Any other HTTP adapter, through the calls every Nest adapter implements (the ones Nest's docs
 * use in adapter-neutral exception filters). Slower than the two built-in platforms, but correct
 * for an adapter this package does not know.
 */
export function adapterPlatform(adapter: AbstractHttpAdapter): HttpPlatform {
  return {
    name: adapter.getType(),
    target: (request) => String(adapter.getRequestUrl(request) ?? '/'),
    method: (request) => adapter.getRequestMethod(request) as string | undefined,
    setHeader: (response, name, value) => {
      adapter.setHeader(response, name, value);
    },
    isSent: (response) => adapter.isHeadersSent(response) === true,
    send: (response, status, body, contentType) => {
      if (adapter.getHeader(response, 'Content-Type') === undefined) {
        adapter.setHeader(response, 'Content-Type', contentType);
      }
      adapter.reply(response, body, status);
    },
    onFinished: (response, listener) => {
      // No adapter call tells when a response is finished: a response that is Node's own (as in
      // most adapters) says it itself; for any other, the status is known once sent.
      const node = response as Partial<ServerResponse>;
      if (typeof node.once === 'function' && typeof node.statusCode === 'number') {
        node.once('close', () => listener(node.statusCode!));
        return;
      }
      const raw = (response as { raw?: Partial<ServerResponse> }).raw;
      if (raw !== undefined && typeof raw.once === 'function') {
        raw.once('close', () => listener(raw.statusCode ?? 200));
      }
    },
  };
}
