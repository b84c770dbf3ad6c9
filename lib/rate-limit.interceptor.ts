import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, tap, throwError, type Observable } from 'rxjs';
import { statusOfError, takeSettlement } from './counting/pending-settlements.js';

/**
 * Settles `count: 'failures' | 'successes'` rules outside HTTP (GraphQL resolvers, WebSocket and
 * microservice handlers), where no response status exists: a handler that returns (or emits)
 * counts as a success (200), one that throws as its exception's status (a non-HTTP error: 500).
 * Over HTTP the response's own status is used instead, so this does nothing there.
 *
 * `@RateLimit()` puts it on the classes and handlers that carry such a rule, so no other call
 * goes through it. (The pattern table's rules count HTTP requests, GraphQL's too, so they are
 * settled by the HTTP response's status and need no interceptor.)
 */
@Injectable()
export class RateLimitInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    // The usual case, every call of every handler: nothing waits, nothing to add.
    const settle = context.getType() === 'http' ? undefined : takeSettlement(context);
    if (settle === undefined) return next.handle();
    let settled = false;
    const once = (status: number): void => {
      if (settled) return;
      settled = true;
      settle(status);
    };
    return next.handle().pipe(
      tap({ next: () => once(200), complete: () => once(200) }),
      catchError((error: unknown) => {
        once(statusOfError(error));
        return throwError(() => error);
      }),
    );
  }
}
