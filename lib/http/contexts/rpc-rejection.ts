/** Set on every `RpcException` the guard throws, so the module's filter can recognise them. */
const RPC_REJECTION = Symbol('nestjs-ratelimit:rpc-rejection');

/** What the filter needs of an `RpcException`: the error object the client receives. */
interface RpcErrorLike {
  getError(): string | object;
}

/** Marks `error` (an `RpcException`) as a rejection of this module. */
export function markRpcRejection<E extends RpcErrorLike>(error: E): E {
  Object.defineProperty(error, RPC_REJECTION, { value: true });
  return error;
}

/**
 * The `RpcException`s the guard throws to reject a microservice message (over its limit, an
 * unidentifiable caller, a closed failure policy), as a class for `@Catch()`.
 *
 * Nest (12, since nestjs/nest#17634) logs every `RpcException` of an `@EventPattern` handler that
 * no exception filter handles, as an error: left to Nest, each dropped event would be an error
 * line, when a rejection must not be logged above debug level. `RateLimitExceptionFilter`
 * catches this class and answers as Nest would (the client of a message receives the same error
 * object), without the log line.
 * `@nestjs/microservices` is an optional peer, loaded only once a message is rejected, so the
 * class cannot extend `RpcException`: `instanceof` recognises the mark instead.
 */
export abstract class RpcRejection implements RpcErrorLike {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && Object.hasOwn(value, RPC_REJECTION);
  }

  abstract getError(): string | object;
}
