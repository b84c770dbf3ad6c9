import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { backendFromEnvironment } from './backend.js';
import { adapterFromEnvironment, configureApp, createHttpAdapter } from './setup.js';
import { localBase, samplePort, tryIt } from './try-it.js';

async function bootstrap(): Promise<void> {
  const { backend, description, close } = backendFromEnvironment();
  const adapter = adapterFromEnvironment();
  const app = await NestFactory.create(
    AppModule.register(backend, adapter),
    createHttpAdapter(adapter),
  );
  await configureApp(app);
  // Ctrl-C / SIGTERM: close the app (which closes the backend), then what the sample opened.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void app
        .close()
        .then(close)
        .finally(() => process.exit(0));
    });
  }
  const port = samplePort();
  await app.listen(port);
  console.log(`\nHTTP adapter: ${adapter} (HTTP_ADAPTER=express|fastify)`);
  console.log(`Rate limits kept in: ${description}`);
  console.log(`\n${tryIt(localBase(port))}`);
}

await bootstrap();
