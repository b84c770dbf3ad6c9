import { Injectable, type ExecutionContext } from '@nestjs/common';
import { GqlExecutionContext, type GqlContextType } from '@nestjs/graphql';
import { AuthResolver, EmptyInformation, type Identity } from 'nestjs-ratelimit';

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

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** What the resolver reads of a socket.io client: its documented handshake. */
interface SocketIoClient {
  readonly handshake: { readonly headers: Headers };
}

/**
 * The headers of the call, through each transport's Nest API: the HTTP request, the HTTP request
 * of a GraphQL call (`req` in the context of both the Apollo and the Mercurius driver), or the
 * socket.io handshake of a WebSocket message.
 */
function headersOf(context: ExecutionContext): Headers | undefined {
  switch (context.getType<GqlContextType>()) {
    case 'http':
      return context.switchToHttp().getRequest<{ headers: Headers }>().headers;
    case 'graphql':
      return GqlExecutionContext.create(context).getContext<{ req?: { headers: Headers } }>().req
        ?.headers;
    case 'ws':
      return context.switchToWs().getClient<SocketIoClient>().handshake.headers;
    default:
      return undefined;
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
    const key = headersOf(context)?.['x-api-key'];
    if (typeof key !== 'string') throw new EmptyInformation('No API key');
    const found = this.apiKeys.find(key);
    if (!found) throw new EmptyInformation('Unknown API key');
    return { user: `key:${found.owner}`, group: found.plan };
  }
}
