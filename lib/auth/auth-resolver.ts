import type { ExecutionContext } from '@nestjs/common';
import type { Identity } from './identity.js';

/**
 * Identifies the caller of an HTTP request. The abstract class is also the DI token: extend it,
 * decorate the subclass with `@Injectable()`, inject whatever services you need, and pass the class
 * as `authenticate`; the module creates it through Nest's DI.
 *
 * @example
 * @Injectable()
 * export class ApiKeyAuthResolver extends AuthResolver {
 *   constructor(private readonly keys: ApiKeyService) { super(); }
 *   async resolve(context: ExecutionContext): Promise<Identity> {
 *     const key = context.switchToHttp().getRequest().headers['x-api-key'];
 *     const owner = await this.keys.owner(key);
 *     if (!owner) throw new EmptyInformation('Unknown API key');
 *     return { user: owner.id, group: owner.plan };
 *   }
 * }
 */
export abstract class AuthResolver {
  /**
   * Returns who is calling.
   * @throws EmptyInformation when the caller cannot be identified
   */
  abstract resolve(context: ExecutionContext): Identity | Promise<Identity>;
}
