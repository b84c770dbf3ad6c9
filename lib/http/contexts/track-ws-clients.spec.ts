import { WsAdapter } from '@nestjs/platform-ws';
import { trackWsClients } from './track-ws-clients.js';

describe('trackWsClients', () => {
  it('is the adapter it wraps to Nest: its class, its fields, its methods run on the adapter', async () => {
    const adapter = new WsAdapter();
    const wrapped = trackWsClients(adapter);
    expect(wrapped).toBeInstanceOf(WsAdapter);
    expect(wrapped.constructor).toBe(WsAdapter);
    // Nest sets this on the adapter it was given while the application starts.
    (wrapped as { forceCloseConnections?: boolean }).forceCloseConnections = true;
    expect((adapter as { forceCloseConnections?: boolean }).forceCloseConnections).toBe(true);
    await expect(wrapped.dispose()).resolves.toBeUndefined();
  });
});
