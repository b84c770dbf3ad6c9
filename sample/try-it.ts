/** One feature of the sample, shown by shell lines to paste. */
export interface Demo {
  /** What the lines show; printed above them. */
  description: string;
  /** The lines, pasted together: a later line may use a variable an earlier one set. */
  commands(base: string): string[];
  /**
   * What the lines print, on a fresh start with every demo pasted in the order of {@link DEMOS}
   * (test/sample.spec.ts runs them so and compares, after dropping `\r` and trailing blanks).
   */
  output: string;
}

const status = `curl -s -o /dev/null -w '%{http_code} '`;
const freeKey = `-H 'X-Api-Key: demo-free-key'`;
// Express keeps the case the guard writes (`RateLimit`), Fastify lower-cases every header name.
const lowerCase = `tr A-Z a-z`;

/**
 * The demos, in the order they work when pasted: each counts under its own user or counter, so
 * none eats another's budget, and the blockTime demo runs late and under its own API key, so its
 * 2-minute block hits only that user (`key:acme`), whom the unblock demo then names.
 */
export const DEMOS: readonly Demo[] = [
  {
    description:
      'Default limit (per client IP, 30 a minute), IETF RateLimit headers on every limited response\n' +
      '(names shown in lower case, as Fastify sends them; HTTP header names ignore case):',
    commands: (base) => [`curl -si ${base}/hello | grep -i '^ratelimit' | ${lowerCase}`],
    output: 'ratelimit-policy: "minute";q=30;w=60\nratelimit: "minute";r=29;t=60',
  },
  {
    description: 'Per-method rules on /towns (GET 2 a second, POST 3 a minute):',
    commands: (base) => [
      `for i in 1 2 3; do ${status} ${base}/towns; done; echo`,
      `for i in 1 2 3 4; do ${status} -X POST ${base}/towns; done; echo`,
    ],
    output: '200 200 429\n201 201 201 429',
  },
  {
    description:
      'Zones: /forests and /lakes share one pool of 5 a minute; the 429 body is the onBlocked one:',
    commands: (base) => [
      `for i in 1 2 3 4 5; do ${status} ${base}/forests/$i; done; curl -s ${base}/lakes/1; echo`,
    ],
    output:
      '200 200 200 200 200 {"error":"rate_limited","message":"Over the minute limit; retry in 60s.","retryAfter":60}',
  },
  {
    description:
      'A session login: counted per user, not per IP (alice gets r=29 on /hello, not 28):',
    commands: (base) => [
      `curl -s -c jar -H 'Content-Type: application/json' -d '{"user":"alice"}' ${base}/auth/login; echo; curl -si -b jar ${base}/hello | grep -i '^ratelimit:' | ${lowerCase}`,
    ],
    output: '{"user":"alice"}\nratelimit: "minute";r=29;t=60',
  },
  {
    description: 'Decorators: /reports/export allows 2 a minute, /reports/health is never limited:',
    commands: (base) => [
      `for p in export export export health health; do ${status} ${base}/reports/$p; done; echo`,
    ],
    output: '200 200 429 200 200',
  },
  {
    description: "Admins (JWT group 'admin') are unlimited:",
    commands: (base) => [
      `TOKEN=$(curl -s ${base}/auth/admin-token | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')`,
      `for i in 1 2 3; do ${status} -H "Authorization: Bearer $TOKEN" ${base}/reports/export; done; echo`,
    ],
    output: '200 200 200',
  },
  {
    description:
      'A custom AuthResolver (X-Api-Key, injected ApiKeyService); partners get 300 a minute:',
    commands: (base) => [
      `curl -si -H 'X-Api-Key: demo-partner-key' ${base}/reports/daily | grep -i '^ratelimit' | ${lowerCase}`,
    ],
    output: 'ratelimit-policy: "minute";q=300;w=60\nratelimit: "minute";r=299;t=60',
  },
  {
    description:
      'blockTime: a 6th login in a minute blocks the caller for 2 minutes on every limited route\n' +
      '(here the API key demo-free-key, user key:acme, so the block hits only that user):',
    commands: (base) => [
      `for i in 1 2 3 4 5 6; do ${status} -X POST ${freeKey} ${base}/auth/login; done; curl -s ${freeKey} ${base}/towns; echo`,
    ],
    output:
      '201 201 201 201 201 429 {"error":"rate_limited","message":"Blocked for 120s after going over the limit.","retryAfter":120}',
  },
  {
    description:
      'The admin API (RateLimitAdmin, admin JWT only): how long key:acme is blocked, lift the block,\n' +
      'and key:acme is served again:',
    commands: (base) => [
      `TOKEN=$(curl -s ${base}/auth/admin-token | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')`,
      `${status} -X POST ${base}/admin/rate-limits/unblock/key:acme; echo`,
      `curl -s -X POST -H "Authorization: Bearer $TOKEN" ${base}/admin/rate-limits/unblock/key:acme; echo; ${status} ${freeKey} ${base}/towns; echo`,
    ],
    output: '403\n{"unblocked":true}\n200',
  },
  {
    description:
      'GraphQL: @RateLimit on a resolver (forecast, 2 a minute); the 3rd call is a GraphQL error:',
    commands: (base) => [
      `for i in 1 2 3; do curl -s -H 'Content-Type: application/json' -d '{"query":"{ forecast }"}' ${base}/graphql | grep -o '"forecast":"[a-z]*"\\|"message":"[^"]*"\\|"code":"[A-Z_]*","retryAfter":[0-9]*'; done`,
    ],
    output:
      '"forecast":"sunny"\n"forecast":"sunny"\n"message":"Over the minute limit; retry in 60s."\n' +
      '"code":"TOO_MANY_REQUESTS","retryAfter":60',
  },
  {
    description:
      'WebSocket: @RateLimit on a socket.io @SubscribeMessage handler (chat, 3 a minute); the 4th\n' +
      'message gets an exception event and the connection stays open (run it in the repository,\n' +
      'where socket.io-client is installed):',
    commands: (base) => [
      `node -e "const socket = require('socket.io-client').io('${base}', { reconnection: false });`,
      `  let sent = 0;`,
      `  function send() {`,
      `    if (sent++ === 4) { console.log('connected:', socket.connected); return socket.close(); }`,
      `    socket.emit('chat', 'hi ' + sent, (reply) => { console.log(reply); send(); });`,
      `  }`,
      `  socket.on('exception', (error) => { console.log(JSON.stringify(error)); send(); });`,
      `  socket.on('connect_error', (error) => console.log(error.message));`,
      `  send();"`,
    ],
    output:
      'echo: hi 1\necho: hi 2\necho: hi 3\n' +
      '{"status":"error","statusCode":429,"message":"Over the minute limit; retry in 60s.","retryAfter":60}\n' +
      'connected: true',
  },
];

/** The port `npm start` serves on: `PORT`, default 3000. */
export function samplePort(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.PORT ?? 3000);
}

/** The base URL the printed lines use. */
export function localBase(port: number = samplePort()): string {
  return `http://localhost:${port}`;
}

/** The URLs and curl lines the sample prints at start-up and serves at `/`. */
export function tryIt(base: string): string {
  const demos = DEMOS.map(
    (demo) =>
      `${demo.description}\n${demo
        .commands(base)
        .map((line) => `  ${line}`)
        .join('\n')}\n`,
  );
  return `nestjs-ratelimit sample, listening on ${base}\n\n${demos.join('')}`;
}
