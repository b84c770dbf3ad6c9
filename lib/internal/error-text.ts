/**
 * An error as a log line or a message shows it: its message, and its `code` when the message does
 * not contain it (`ECONNREFUSED`...). Read without `instanceof Error`, since errors of Node's
 * sockets and of other packages can come from another realm (a test sandbox, a VM context).
 */
export function errorText(error: unknown): string {
  const message: unknown =
    typeof error === 'object' && error !== null ? Reflect.get(error, 'message') : undefined;
  if (typeof message !== 'string') return String(error);
  const code: unknown = Reflect.get(error as object, 'code');
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}
