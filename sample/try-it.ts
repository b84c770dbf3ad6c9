/** The URLs and curl lines the sample prints at start-up and serves at `/`. */
export function tryIt(base: string): string {
  return `nestjs-ratelimit sample, listening on ${base}

Default limit (per client IP, 30 a minute), IETF RateLimit headers on every limited response:
  curl -i ${base}/hello
Per-method rules on /towns (GET 2 a second, POST 3 a minute):
  for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' ${base}/towns; done; echo
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' -X POST ${base}/towns; done; echo
Zones: /forests and /lakes share one pool of 5 a minute:
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' ${base}/forests/$i; done; curl -i ${base}/lakes/1
blockTime: a 6th login in a minute blocks you for 2 minutes on every limited route:
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' -X POST ${base}/auth/login; done; curl -i ${base}/towns
A session login: counted per user, not per IP:
  curl -c jar -H 'Content-Type: application/json' -d '{"user":"alice"}' ${base}/auth/login; curl -b jar -i ${base}/reports/daily
Decorators: /reports/export allows 2 a minute, /reports/health is never limited:
  for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' ${base}/reports/export; done; echo
Admins (JWT group 'admin') are unlimited:
  TOKEN=$(curl -s ${base}/auth/admin-token | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $TOKEN" ${base}/reports/export; done; echo
A custom AuthResolver (X-Api-Key, injected ApiKeyService); partners get 300 a minute:
  curl -i -H 'X-Api-Key: demo-partner-key' ${base}/reports/daily
Lift a block through the exported backend (an admin endpoint in a real app); the user is your
address as the server sees it (127.0.0.1, or ::1 when curl connects over IPv6):
  curl -X POST -H 'Content-Type: application/json' -d '{"user":"127.0.0.1"}' ${base}/auth/unblock
`;
}
