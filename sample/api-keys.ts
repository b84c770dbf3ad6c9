import { Injectable, type ExecutionContext } from '@nestjs/common';
import { AuthResolver, EmptyInformation, callerRequestOf, type Identity } from 'nestjs-ratelimit';

/** The application's own service: who owns which API key, and on which plan. */
@Injectable()
export class ApiKeyService {
  private readonly keys = new Map([
    ['demo-free-key', { owner: 'acme', plan: 'default' }],
    ['demo-partner-key', { owner: 'globex', plan: 'partner' }],
  ]);

  find(key: string): { owner: string; plan: string } | undefined {
    return this.keys.get(key);
  }
}

/**
 * A custom resolver: Nest creates it and injects ApiKeyService. Callers that send `X-Api-Key` (a
 * header of the HTTP request or of the WebSocket handshake) are counted per key owner, in the
 * group of their plan; everyone else falls through to the next resolver of the chain.
 */
@Injectable()
export class ApiKeyAuthResolver extends AuthResolver {
  constructor(private readonly apiKeys: ApiKeyService) {
    super();
  }

  resolve(context: ExecutionContext): Identity {
    // The headers of the HTTP request, of a GraphQL call's HTTP request or of a WebSocket
    // handshake alike (context.switchToHttp() only works over HTTP).
    const key = callerRequestOf(context)?.headers['x-api-key'];
    if (typeof key !== 'string') throw new EmptyInformation('No API key');
    const found = this.apiKeys.find(key);
    if (!found) throw new EmptyInformation('Unknown API key');
    return { user: `key:${found.owner}`, group: found.plan };
  }
}
