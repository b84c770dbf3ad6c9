import { EmptyInformation } from './empty-information.js';
import type { Identity } from './identity.js';

/** What to say when a field is missing or has the wrong type; sent in the 401 body. */
export interface IdentityFieldMessages {
  readonly noUser: string;
  readonly badUser: string;
  readonly badGroup: string;
}

/**
 * Reads the user and group from a record (JWT claims, a session): the user must be a non-empty
 * string or a finite number (counted as its string); the group may be absent (`'default'`) or a
 * non-empty string. Anything else is `EmptyInformation`, never a silently unlimited caller.
 * Only own properties are read, so a name such as `constructor` cannot find a prototype's member.
 */
export function identityFromFields(
  fields: Record<string, unknown>,
  userKey: string,
  groupKey: string,
  messages: IdentityFieldMessages,
): Identity {
  const user = Object.hasOwn(fields, userKey) ? fields[userKey] : undefined;
  let userId: string;
  if (typeof user === 'string' && user.length > 0) {
    userId = user;
  } else if (typeof user === 'number' && Number.isFinite(user)) {
    userId = String(user);
  } else if (user === undefined || user === null || user === '') {
    throw new EmptyInformation(messages.noUser);
  } else {
    throw new EmptyInformation(messages.badUser);
  }
  const group = Object.hasOwn(fields, groupKey) ? fields[groupKey] : undefined;
  if (group === undefined) return { user: userId, group: 'default' };
  if (typeof group === 'string' && group.length > 0) return { user: userId, group };
  throw new EmptyInformation(messages.badGroup);
}
