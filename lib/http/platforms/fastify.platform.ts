import type { ServerResponse } from 'node:http';
import type { HttpPlatform } from '../http-platform.js';

/** The documented parts of Fastify's request the module reads. */
interface FastifyRequestLike {
  /** The URL as received, before any internal re-routing (Fastify 4.x and later). */
  readonly originalUrl?: string;
  readonly url: string;
  readonly method: string;
}

/** The documented parts of Fastify's reply the module writes through. */
interface FastifyReplyLike {
  readonly sent: boolean;
  header(name: string, value: string): unknown;
  hasHeader(name: string): boolean;
  code(status: number): unknown;
  type(contentType: string): unknown;
  send(payload: string | Buffer): unknown;
  /** Node's response under the reply (documented as `reply.raw`). */
  readonly raw: ServerResponse;
}

/**
 * Fastify (`@nestjs/platform-fastify`): its own request and reply, through their documented
 * calls. A body is sent with `reply.send`, so Fastify's hooks (`onSend`, compression, CORS) run
 * on a 429 as on any other reply.
 */
export const fastifyPlatform: HttpPlatform = {
  name: 'fastify',
  target: (request) => {
    const { originalUrl, url } = request as FastifyRequestLike;
    return originalUrl ?? url;
  },
  method: (request) => (request as FastifyRequestLike).method,
  setHeader: (response, name, value) => {
    (response as FastifyReplyLike).header(name, value);
  },
  isSent: (response) => (response as FastifyReplyLike).sent,
  send: (response, status, body, contentType) => {
    const reply = response as FastifyReplyLike;
    reply.code(status);
    if (!reply.hasHeader('content-type')) reply.type(contentType);
    reply.send(body);
  },
  onFinished: (response, listener) => {
    // Fastify writes the status to Node's response when it sends; 'close' comes after that, and
    // also when the client went away first.
    const { raw } = response as FastifyReplyLike;
    raw.once('close', () => listener(raw.statusCode));
  },
};
