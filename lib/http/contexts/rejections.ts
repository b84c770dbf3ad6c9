import { HttpStatus, type HttpException } from '@nestjs/common';
import { overLimitMessage } from '../../rate-limit.exception.js';
import type { RateLimitInfo } from '../../rate-limit.info.js';
import type { RateLimitContextType } from '../context-type.js';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../rate-limit-headers.js';
import type { ContextRejections } from './context-edge.js';
import { graphqlRejections } from './graphql-rejections.js';
import { markRpcRejection } from './rpc-rejection.js';
import { wsRejectionPayload } from './ws-rejections.js';

/** The error object a WebSocket or microservice client receives. */
export interface TransportErrorPayload {
  readonly status: 'error';
  readonly statusCode: number;
  readonly message: string;
  /** Whole seconds until a call would be admitted again: on a 429, and on a 503 (as over HTTP). */
  readonly retryAfter?: number;
}

/** What `onBlocked` returned, applied to the default payload: a string message or an object. */
function customised(info: RateLimitInfo, custom: unknown): object {
  const payload: TransportErrorPayload = {
    status: 'error',
    statusCode: HttpStatus.TOO_MANY_REQUESTS,
    message: overLimitMessage(info.retryAfter),
    retryAfter: info.retryAfter,
  };
  if (typeof custom === 'string') return { ...payload, message: custom };
  if (typeof custom === 'object' && custom !== null && !Buffer.isBuffer(custom)) return custom;
  return payload;
}

/** The payload for an HTTP exception raised while deciding (a 401 identity failure, a 503). */
function failurePayload(error: HttpException): TransportErrorPayload {
  const statusCode = error.getStatus();
  const payload: TransportErrorPayload = { status: 'error', statusCode, message: error.message };
  // The closed failure policy's 503 says when to try again, as its Retry-After does over HTTP.
  return statusCode === HttpStatus.SERVICE_UNAVAILABLE
    ? { ...payload, retryAfter: UNAVAILABLE_RETRY_AFTER_SECONDS }
    : payload;
}

type Loader = () => Promise<ContextRejections>;

/**
 * The packages are the application's (optional peers of this one), loaded the first time a call
 * of their context is rejected: an application without WebSockets never loads them.
 */
const LOADERS: Readonly<Record<Exclude<RateLimitContextType, 'http'>, Loader>> = {
  // Nothing to load: graphql-js itself turns what a resolver throws into a GraphQLError.
  graphql: () => Promise.resolve(graphqlRejections),
  ws: async () => {
    const { WsException } = await import('@nestjs/websockets');
    return {
      overLimit: (info, custom) => new WsException(wsRejectionPayload(customised(info, custom))),
      identityFailure: (error) => new WsException(wsRejectionPayload(failurePayload(error))),
    };
  },
  rpc: async () => {
    const { RpcException } = await import('@nestjs/microservices');
    // Marked, so that RateLimitExceptionFilter answers them and Nest does not log each
    // rejected event as an error (see RpcRejection).
    return {
      overLimit: (info, custom) => markRpcRejection(new RpcException(customised(info, custom))),
      identityFailure: (error) => markRpcRejection(new RpcException(failurePayload(error))),
    };
  },
};

const loaded = new Map<RateLimitContextType, Promise<ContextRejections>>();

/** How rejections are thrown in `type`'s context (loaded once per context type). */
export function rejectionsFor(
  type: Exclude<RateLimitContextType, 'http'>,
): Promise<ContextRejections> {
  let rejections = loaded.get(type);
  if (rejections === undefined) {
    rejections = LOADERS[type]();
    loaded.set(type, rejections);
  }
  return rejections;
}
