import { UseGuards } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { RateLimit, RateLimitGuard } from 'nestjs-ratelimit';

/**
 * A socket.io gateway on the sample's HTTP server. `@RateLimit` counts each `chat` message per
 * caller (an API key or token sent with the handshake, else the client address); the 4th in a
 * minute is answered with an `exception` event, `{ status: 'error', statusCode: 429, ... }`, and
 * the connection stays open.
 *
 * `@UseGuards(RateLimitGuard)` is for Nest 11, whose WebSocket module runs no global guard
 * (`APP_GUARD`) for gateways; on Nest 12 the global guard already runs, and the message is still
 * decided (and counted) once.
 */
@UseGuards(RateLimitGuard)
@WebSocketGateway()
export class ChatGateway {
  @RateLimit({ minute: 3 })
  @SubscribeMessage('chat')
  chat(@MessageBody() text: unknown): string {
    return `echo: ${String(text).slice(0, 40)}`;
  }
}
