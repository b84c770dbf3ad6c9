import type { AbstractHttpAdapter } from '@nestjs/core';
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
  };
}
