import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpPlatform } from '../http-platform.js';

/** Express's request: Node's, plus the URL as received before a router rewrote `url`. */
interface ExpressRequest extends IncomingMessage {
  readonly originalUrl?: string;
}

/**
 * Express (`@nestjs/platform-express`). Its request and response extend Node's, so Node's own
 * calls are used: `res.setHeader` rather than Express's `res.set`, which also parses content
 * types and costs more on every limited request. Also what a response of Node's `http` module
 * gets when no adapter is known.
 */
export const expressPlatform: HttpPlatform = {
  name: 'express',
  target: (request) => {
    const { originalUrl, url } = request as ExpressRequest;
    return originalUrl ?? url ?? '/';
  },
  method: (request) => (request as IncomingMessage).method,
  setHeader: (response, name, value) => {
    (response as ServerResponse).setHeader(name, value);
  },
  isSent: (response) => {
    const { headersSent, writableEnded } = response as ServerResponse;
    return headersSent || writableEnded;
  },
  send: (response, status, body, contentType) => {
    const res = response as ServerResponse;
    res.statusCode = status;
    if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', contentType);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  },
  onFinished: (response, listener) => {
    // 'close' comes after 'finish', and also when the client went away first: once either way.
    const res = response as ServerResponse;
    res.once('close', () => listener(res.statusCode));
  },
};
